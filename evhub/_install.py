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
# The Claude Code events `evhub hook` handles, with the matcher each is registered under.
CLAUDE_HOOKS: dict[str, str | None] = {
    "SessionStart": "startup|resume|clear|compact",
    "UserPromptSubmit": None,
    "PostToolUse": "*",
    "Stop": None,
    "SessionEnd": None,
}
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


def install_claude(project: Path, mcp: bool = False) -> list[str]:
    """Add evhub's hooks to PROJECT/.claude/settings.json and its section to CLAUDE.md (and with MCP,
    the `evhub mcp` server to PROJECT/.mcp.json); the files changed.  Every file is read and checked
    before any is written, so a file evhub cannot merge into leaves them all as they were."""
    settings_path = project / ".claude" / "settings.json"
    settings = _read_json(settings_path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BadInput(f'{settings_path}: "hooks" is not an object; fix it, then install again')
    for event, matcher in CLAUDE_HOOKS.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise BadInput(f'{settings_path}: "hooks.{event}" is not a list; fix it, then install again')
        if not any(_is_ours(h) for g in groups for h in _hooks_of(g)):
            group: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
            group["hooks"] = [{"type": "command", "command": HOOK_COMMAND}]
            groups.append(group)
    md_path = project / "CLAUDE.md"
    text = _read_text(md_path)
    section = _section(text)
    if section is None:
        text = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + CLAUDE_MD
    else:
        text = text[: section[0]] + CLAUDE_MD + text[section[1]:]
    writes = [(settings_path, _json_text(settings)), (md_path, text)]
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
    return [p for p in (_write_text(path, new) for path, new in writes) if p]


def remove_claude(project: Path) -> list[str]:
    """Take out what install_claude added; the files changed (a file left empty is removed)."""
    settings_path = project / ".claude" / "settings.json"
    changed = []
    if settings_path.exists():
        settings = _read_json(settings_path)
        hooks = settings.get("hooks")
        if isinstance(hooks, dict):
            for event in list(hooks):
                groups = hooks[event]
                if not isinstance(groups, list):
                    continue
                for g in groups:
                    if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                        g["hooks"] = [h for h in g["hooks"] if not _is_ours(h)]
                hooks[event] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
                if not hooks[event]:
                    del hooks[event]
            if not hooks:
                del settings["hooks"]
        changed += [p for p in (_write_json(settings_path, settings),) if p]
        if not settings_path.exists():
            try:
                settings_path.parent.rmdir()  # .claude/, when nothing else is in it
            except OSError:
                pass
    mcp_path = project / ".mcp.json"
    if mcp_path.exists():
        config = _read_json(mcp_path)
        servers = config.get("mcpServers")
        if isinstance(servers, dict) and servers.get("evhub") == MCP_SERVER:
            del servers["evhub"]
            if not servers:
                del config["mcpServers"]
            changed += [p for p in (_write_json(mcp_path, config),) if p]
    md_path = project / "CLAUDE.md"
    text = _read_text(md_path)
    section = _section(text)
    if section is not None:
        start, end = section
        before = text[:start]
        if before.endswith("\n\n"):
            before = before[:-1]  # the blank line install put before the section
        changed += [p for p in (_write_text(md_path, before + text[end:]),) if p]
    return changed


TARGETS: dict[str, tuple[Callable[[Path, bool], list[str]], Callable[[Path], list[str]]]] = {
    "claude": (install_claude, remove_claude),
}


def _is_ours(hook: object) -> bool:
    return isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command") == HOOK_COMMAND


def _hooks_of(group: object) -> list[object]:
    hooks = group.get("hooks") if isinstance(group, dict) else None
    return hooks if isinstance(hooks, list) else []


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


def _write_json(path: Path, doc: dict[str, Any]) -> str | None:
    return _write_text(path, _json_text(doc))


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
