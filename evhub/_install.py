"""`evhub install TARGET`: wire evhub into an agent's project configuration, and take it out again.

A target adds only what it can recognise later (its exact hook command, a marked section of
text), so installing twice changes nothing and `--remove` takes out exactly what was added,
leaving a user's own hooks and text as they were.  Each target is a pair of functions in TARGETS:
Claude Code and Codex so far.
"""

import json
import os
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import BadInput, StorageError
from ._git import exclude_file

HOOK_COMMAND = "evhub hook"
MCP_SERVER = {"command": "evhub", "args": ["mcp"]}  # in the project's .mcp.json, under "evhub"
# The Claude Code events `evhub hook` handles: the matcher each is registered under (None: every
# source or tool; SessionStart's sources are startup, resume, clear, compact and fork, and a compaction
# is how the card comes back, since PostCompact's output never reaches the model) and its timeout in
# seconds.  A hook's usual run is well under a second; SessionEnd's own budget is 1.5 s unless a hook's
# timeout raises it, and `bye` must not be cut short.
CLAUDE_HOOKS: dict[str, tuple[str | None, int | None]] = {
    "SessionStart": (None, 10),
    "UserPromptSubmit": (None, 5),
    "PostToolUse": ("*", 5),
    "Stop": (None, 5),
    "SessionEnd": (None, 5),
    # Claude Code's agent teams and shared task list (the README says why only these two)
    "TaskCompleted": (None, 5),
    "TeammateIdle": (None, 5),
}
# Codex runs the same command with --agent; it has no SessionEnd (a session leaves by the alive TTL),
# and its SessionStart sources are startup, resume, clear and compact.
CODEX_HOOK_COMMAND = f"{HOOK_COMMAND} --agent codex"
# Codex waits 600 s for a hook that gives no timeout: a hung evhub would hold the agent's turn that long.
CODEX_HOOKS: dict[str, tuple[str | None, int | None]] = {
    "SessionStart": ("startup|resume|clear|compact", 10),
    "UserPromptSubmit": (None, 5),
    "PostToolUse": ("*", 5),
    "Stop": (None, 5),
}
# Where evhub's part for Claude Code goes: the shared files a project commits, or with --local the
# personal ones Claude Code reads beside them (kept out of git in the clone: _personal_excluded).
SHARED = (Path(".claude") / "settings.json", Path("CLAUDE.md"))
LOCAL = (Path(".claude") / "settings.local.json", Path("CLAUDE.local.md"))
TOML_BEGIN, TOML_END = "# evhub: begin", "# evhub: end"
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
    _add_hooks(settings_path, settings, CLAUDE_HOOKS, HOOK_COMMAND)
    writes = [(settings_path, _json_text(settings)), (md_path, _with_section(_read_text(md_path), CLAUDE_MD)),
              *_taken_out(other_settings, HOOK_COMMAND), (other_md, _without_section(_read_text(other_md)))]
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
    writes += _personal_excluded(project, local)
    changed = _write_all(writes)
    _remove_if_empty(project / ".claude")
    return changed


def _personal_excluded(project: Path, local: bool) -> list[tuple[Path, str]]:
    """The write that makes git ignore the personal files in PROJECT's clone when LOCAL (as Claude Code does
    for a settings.local.json it makes), through the clone's own exclude file, or that takes that out again;
    none outside a git work tree."""
    found = exclude_file(project)
    if found is None:
        return []
    path, prefix = found
    text = _read_text(path)
    # A section for each project folder of the repository (its own begin line, newline included).
    begin = f"{TOML_BEGIN}: the personal files of /{prefix} (`evhub install claude --local`)\n"
    if not local:
        return [(path, _without_section(text, begin, TOML_END))]
    folder = "".join(f"\\{c}" if c in "*?[\\" else c for c in prefix)  # a folder's name, not a pattern
    ours = "".join(f"/{folder}{p.as_posix()}\n" for p in LOCAL)
    return [(path, _with_section(text, f"{begin}{ours}{TOML_END}\n", begin, TOML_END))]


def remove_claude(project: Path) -> list[str]:
    """Take out what install_claude added, from the shared files and the personal ones; the files
    changed (a file left empty is removed)."""
    writes = []
    for settings_path, md_path in ((project / p for p in pair) for pair in (SHARED, LOCAL)):
        writes += [*_taken_out(settings_path, HOOK_COMMAND), (md_path, _without_section(_read_text(md_path)))]
    changed = _write_all([*writes, *_personal_excluded(project, local=False)])
    _remove_if_empty(project / ".claude")
    mcp_path = project / ".mcp.json"
    if mcp_path.exists():
        config = _read_json(mcp_path)
        servers = config.get("mcpServers")
        if isinstance(servers, dict) and servers.get("evhub") == MCP_SERVER:
            del servers["evhub"]
            if not servers:
                del config["mcpServers"]
            changed += [p for p in (_write_json(mcp_path, config),) if p]
    return changed


def install_codex(project: Path, mcp: bool = False, local: bool = False) -> list[str]:
    """Add evhub's hooks to PROJECT/.codex/hooks.json, the `evhub mcp` server to PROJECT/.codex/config.toml
    and evhub's section to AGENTS.md; the files changed.  The MCP server is always added (MCP is ignored):
    it is how a Codex agent reaches the hub without a shell.  Every file is read and checked before any
    is written, as for Claude Code."""
    if local:
        raise BadInput("--local is for Claude Code, whose personal settings file sits beside the shared one")
    hooks_path = project / ".codex" / "hooks.json"
    hooks = _read_json(hooks_path)
    _add_hooks(hooks_path, hooks, CODEX_HOOKS, CODEX_HOOK_COMMAND)
    config_path = project / ".codex" / "config.toml"
    md_path = project / "AGENTS.md"
    return _write_all([(hooks_path, _json_text(hooks)), (config_path, _with_mcp_server(config_path, project)),
                       (md_path, _with_section(_read_text(md_path), CLAUDE_MD))])


def remove_codex(project: Path) -> list[str]:
    """Take out what install_codex added; the files changed (a file left empty is removed)."""
    hooks_path = project / ".codex" / "hooks.json"
    hooks = _read_json(hooks_path)
    _drop_hooks(hooks, CODEX_HOOK_COMMAND)
    config_path = project / ".codex" / "config.toml"
    config = _read_text(config_path)
    _toml(config_path, config)
    md_path = project / "AGENTS.md"
    changed = _write_all([(hooks_path, _json_text(hooks)),
                          (config_path, _without_section(config, TOML_BEGIN, TOML_END)),
                          (md_path, _without_section(_read_text(md_path)))])
    _remove_if_empty(hooks_path.parent)
    return changed


TARGETS: dict[str, tuple[Callable[[Path, bool, bool], list[str]], Callable[[Path], list[str]]]] = {
    "claude": (install_claude, remove_claude),
    "codex": (install_codex, remove_codex),
}


def _add_hooks(path: Path, doc: dict[str, Any], table: dict[str, tuple[str | None, int | None]],
               command: str) -> None:
    """Register COMMAND in DOC (the hooks file at PATH) for each event of TABLE, under its matcher and
    with its timeout; one an older evhub registered otherwise (another matcher, no timeout) is replaced.
    Claude Code and Codex share this file format."""
    hooks = doc.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BadInput(f'{path}: "hooks" is not an object; fix it, then install again')
    for event, (matcher, timeout) in table.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise BadInput(f'{path}: "hooks.{event}" is not a list; fix it, then install again')
        group: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
        group["hooks"] = [{"type": "command", "command": command, **({} if timeout is None else {"timeout": timeout})}]
        if group not in groups:
            hooks[event] = groups = _without(groups, command)
            groups.append(group)


def _drop_hooks(doc: dict[str, Any], command: str) -> None:
    """Take COMMAND out of DOC's hooks, and the groups and events left empty by that."""
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        return
    for event in list(hooks):
        if not isinstance(hooks[event], list):
            continue
        hooks[event] = _without(hooks[event], command)
        if not hooks[event]:
            del hooks[event]
    if not hooks:
        del doc["hooks"]


def _without(groups: list[Any], command: str) -> list[Any]:
    """GROUPS without COMMAND, and without a group that leaves empty."""
    for g in groups:
        if isinstance(g, dict) and isinstance(g.get("hooks"), list):
            g["hooks"] = [h for h in g["hooks"] if not _is_ours(h, command)]
    return [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]


def _taken_out(path: Path, command: str) -> list[tuple[Path, str]]:
    """The write that takes COMMAND out of the settings at PATH, if they hold it: a file without it is
    left as it is written."""
    doc = _read_json(path)
    _drop_hooks(doc, command)
    return [] if doc == _read_json(path) else [(path, _json_text(doc))]


def _with_mcp_server(path: Path, project: Path) -> str:
    """The text of the Codex config at PATH with `evhub mcp` as [mcp_servers.evhub], run in PROJECT.

    Python reads TOML (tomllib) but does not write it, and a round trip through a writer would lose
    the user's comments and layout anyway; so the server is a marked block of text, appended (or
    replaced in place), like the Markdown section.  The file is parsed before and after, so what is
    written is valid TOML holding exactly evhub's server, and a server named evhub of the user's own is
    refused rather than shadowed."""
    server = {"command": MCP_SERVER["command"], "args": MCP_SERVER["args"], "cwd": str(project)}
    keys = "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in server.items())
    block = (f"{TOML_BEGIN}\n# cwd: Codex passes an MCP server only a whitelist of environment variables\n"
             f"[mcp_servers.evhub]\n{keys}{TOML_END}\n")
    text = _read_text(path)
    _toml(path, text)
    servers = _toml(path, _without_section(text, TOML_BEGIN, TOML_END)).get("mcp_servers")
    if isinstance(servers, dict) and "evhub" in servers:
        raise BadInput(f"{path} already has an [mcp_servers.evhub] that is not evhub's; rename or remove it")
    new = _with_section(text, block, TOML_BEGIN, TOML_END)
    try:
        ours = tomllib.loads(new)["mcp_servers"]["evhub"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        ours = e
    if ours != server:
        raise BadInput(f"{path}: evhub's [mcp_servers.evhub] does not fit in this file; add it by hand")
    return new


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # .claude/ or .codex/, when nothing else is in it
    except OSError:
        pass


def _is_ours(hook: object, command: str) -> bool:
    return isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command") == command


def _section(text: str, begin: str = BEGIN, end_mark: str = END) -> tuple[int, int] | None:
    """Where evhub's marked section of TEXT starts and ends (with its newline), if it has one."""
    start = text.find(begin)
    end = text.find(end_mark, start)
    if start < 0 or end < 0:
        return None
    end += len(end_mark)
    return start, end + 1 if text[end:end + 1] == "\n" else end


def _with_section(text: str, section: str, begin: str = BEGIN, end: str = END) -> str:
    """TEXT with evhub's SECTION in place of its old one, else appended after a blank line."""
    found = _section(text, begin, end)
    if found is None:
        return text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + section
    return text[: found[0]] + section + text[found[1]:]


def _without_section(text: str, begin: str = BEGIN, end: str = END) -> str:
    """TEXT without evhub's section, nor the blank line _with_section put before it."""
    found = _section(text, begin, end)
    if found is None:
        return text
    before = text[: found[0]]
    if before.endswith("\n\n"):
        before = before[:-1]
    return before + text[found[1]:]


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


def _toml(path: Path, text: str) -> dict[str, Any]:
    """TEXT, the TOML file at PATH, parsed."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path} is not valid TOML ({e}); fix it, then run this again") from e


def _json_text(doc: dict[str, Any]) -> str:
    """DOC as the file's text; an empty object is no file at all."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n" if doc else ""


def _write_json(path: Path, doc: dict[str, Any]) -> str | None:
    return _write_text(path, _json_text(doc))


def _write_all(writes: list[tuple[Path, str]]) -> list[str]:
    """Write each (path, text) of WRITES; the paths that changed."""
    return [p for p in (_write_text(path, text) for path, text in writes) if p]


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
