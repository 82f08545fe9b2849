"""`evhub install TARGET`: wire evhub into an agent's project configuration, and take it out again.

A target adds only what it can recognise later (its exact hook command, a marked section of
text), so installing twice changes nothing and `--remove` takes out exactly what was added,
leaving a user's own hooks and text as they were.  Claude Code is the one target so far; another
agent is another pair of functions in TARGETS.
"""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import BadInput, StorageError

HOOK_COMMAND = "evhub hook"
MCP_SERVER = {"command": "evhub", "args": ["mcp"]}  # in the project's .mcp.json, under "evhub"
# The Claude Code events `evhub hook` handles: the matcher each is registered under (None: every
# source or tool; SessionStart's sources are startup, resume, clear, compact and fork, and a compaction
# is how the card comes back, since PostCompact's output never reaches the model) and its timeout in
# seconds.  A hook's usual run is well under a second; SessionEnd's own budget is 1.5 s unless a hook's
# timeout raises it, and `bye` must not be cut short.
CLAUDE_HOOKS: dict[str, tuple[str | None, int]] = {
    "SessionStart": (None, 10),
    "UserPromptSubmit": (None, 5),
    "PostToolUse": ("*", 5),
    "Stop": (None, 5),
    "SessionEnd": (None, 5),
}
# Where evhub's part goes: the shared files a project commits, or with --local the personal ones
# Claude Code reads beside them (kept out of git by the user, as Claude Code's own local files are).
SHARED = (Path(".claude") / "settings.json", Path("CLAUDE.md"))
LOCAL = (Path(".claude") / "settings.local.json", Path("CLAUDE.local.md"))
BEGIN, END = "<!-- evhub: begin -->", "<!-- evhub: end -->"
CLAUDE_MD = f"""{BEGIN}
## Working beside other sessions (evhub)

This repository is shared by several agent sessions, coordinated by evhub (`SESSIONS/`).
Hooks register you and keep you alive; `EVHUB_SESSION` holds your session id.

- Before starting a piece of work, claim it: `evhub claim PRIORITY` (refused when another live
  session holds it: pick other work or ask them). Release it when done: `evhub release PRIORITY --done`.
- After a context loss or compaction, run `evhub recall`: your claims, milestones and unread messages.
- Tell others what they need to know: `evhub msg send TEXT [--to SESSION]`; `evhub status` shows the hub.
{END}
"""


def install_claude(project: Path, mcp: bool = False, local: bool = False) -> list[str]:
    """Add evhub's hooks to PROJECT/.claude/settings.json and its section to CLAUDE.md (with LOCAL, to
    the personal .claude/settings.local.json and CLAUDE.local.md instead, taking them out of the shared
    ones, and back), and with MCP the `evhub mcp` server to PROJECT/.mcp.json; the files changed.
    Every file is read and checked before any is written, so a file evhub cannot merge into leaves
    them all as they were."""
    if mcp and local:
        raise BadInput(".mcp.json is shared with the project; for yourself only: `claude mcp add evhub -- evhub mcp`")
    (settings_path, md_path), (other_settings, other_md) = (
        (project / p for p in pair) for pair in ((LOCAL, SHARED) if local else (SHARED, LOCAL)))
    settings = _read_json(settings_path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BadInput(f'{settings_path}: "hooks" is not an object; fix it, then install again')
    for event, (matcher, timeout) in CLAUDE_HOOKS.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise BadInput(f'{settings_path}: "hooks.{event}" is not a list; fix it, then install again')
        group: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
        group["hooks"] = [{"type": "command", "command": HOOK_COMMAND, "timeout": timeout}]
        if group not in groups:  # ours as an older evhub wrote it (another matcher, no timeout) is replaced
            hooks[event] = groups = _without_ours(groups)
            groups.append(group)
    writes = [(settings_path, _json_text(settings)), (md_path, _with_section(_read_text(md_path)))]
    writes += _taken_out(other_settings)
    writes.append((other_md, _without_section(_read_text(other_md))))
    if mcp:
        mcp_path = project / ".mcp.json"
        config = _read_json(mcp_path)
        servers = config.setdefault("mcpServers", {})
        if not isinstance(servers, dict):
            raise BadInput(f'{mcp_path}: "mcpServers" is not an object; fix it, then install again')
        if "evhub" in servers and servers["evhub"] != MCP_SERVER:
            raise BadInput(f'{mcp_path} already has a server named "evhub" that is not `evhub mcp`')
        servers["evhub"] = MCP_SERVER
        writes.append((mcp_path, _json_text(config)))
    changed = [p for p in (_write_text(path, new) for path, new in writes) if p]
    _remove_empty(project / ".claude")
    return changed


def remove_claude(project: Path) -> list[str]:
    """Take out what install_claude added, from the shared files and the personal ones; the files
    changed (a file left empty is removed)."""
    writes = []
    for settings_path, md_path in ((project / p for p in pair) for pair in (SHARED, LOCAL)):
        writes += _taken_out(settings_path)
        writes.append((md_path, _without_section(_read_text(md_path))))
    mcp_path = project / ".mcp.json"
    if mcp_path.exists():
        config = _read_json(mcp_path)
        servers = config.get("mcpServers")
        if isinstance(servers, dict) and servers.get("evhub") == MCP_SERVER:
            del servers["evhub"]
            if not servers:
                del config["mcpServers"]
            writes.append((mcp_path, _json_text(config)))
    changed = [p for p in (_write_text(path, new) for path, new in writes) if p]
    _remove_empty(project / ".claude")
    return changed


TARGETS: dict[str, tuple[Callable[[Path, bool, bool], list[str]], Callable[[Path], list[str]]]] = {
    "claude": (install_claude, remove_claude),
}


def _taken_out(path: Path) -> list[tuple[Path, str]]:
    """The write that takes evhub's hooks out of the settings at PATH (and what that leaves empty),
    if it holds any: a file without them is left as it is written."""
    settings = _read_json(path)
    hooks = settings.get("hooks")
    if isinstance(hooks, dict):
        for event in list(hooks):
            if isinstance(hooks[event], list):
                hooks[event] = _without_ours(hooks[event])
                if not hooks[event]:
                    del hooks[event]
        if not hooks:
            del settings["hooks"]
    return [] if settings == _read_json(path) else [(path, _json_text(settings))]


def _without_ours(groups: list[Any]) -> list[Any]:
    """GROUPS without evhub's hook, and without a group it leaves empty."""
    for g in groups:
        if isinstance(g, dict) and isinstance(g.get("hooks"), list):
            g["hooks"] = [h for h in g["hooks"] if not _is_ours(h)]
    return [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]


def _with_section(text: str) -> str:
    section = _section(text)
    if section is None:
        return text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + CLAUDE_MD
    return text[: section[0]] + CLAUDE_MD + text[section[1]:]


def _without_section(text: str) -> str:
    section = _section(text)
    if section is None:
        return text
    start, end = section
    before = text[:start]
    if before.endswith("\n\n"):
        before = before[:-1]  # the blank line install put before the section
    return before + text[end:]


def _remove_empty(folder: Path) -> None:
    """Remove FOLDER (.claude/) when nothing is left in it."""
    try:
        folder.rmdir()
    except OSError:
        pass


def _is_ours(hook: object) -> bool:
    return isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command") == HOOK_COMMAND


def _section(text: str) -> tuple[int, int] | None:
    """Where evhub's marked section of TEXT starts and ends (with its newline), if it has one."""
    start = text.find(BEGIN)
    end = text.find(END, start)
    if start < 0 or end < 0:
        return None
    end += len(END)
    return start, end + 1 if text[end:end + 1] == "\n" else end


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise StorageError(f"cannot read {path}: {e}") from e


def _read_json(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path} is not valid JSON ({e}); fix it, then run this again") from e
    if not isinstance(doc, dict):
        raise BadInput(f"{path} does not hold a JSON object; fix it, then run this again")
    return doc


def _json_text(doc: dict[str, Any]) -> str:
    """DOC as the file's text; an empty object is no file at all."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n" if doc else ""


def _write_text(path: Path, text: str) -> str | None:
    """Write TEXT to PATH whole (an empty TEXT removes it); PATH when it changed, else None."""
    if _read_text(path) == text:
        return None
    try:
        if not text:
            path.unlink(missing_ok=True)
            return str(path)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                os.fchmod(f.fileno(), mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from e
    return str(path)
