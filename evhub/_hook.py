"""`evhub hook`: a Claude Code hook event in, the right hub calls out.

So an agent heartbeats, reads its mail and gets its bearings back after a compaction without
being told to.  A hook must never hold the agent up: a missing or busy hub, or input that is not
a hook event, prints nothing on stdout, says why on stderr, and exits 0.
"""

import shlex
from collections.abc import Callable, Mapping

import msgspec

from ._documents import one_line
from ._errors import EvhubError, HubNotFound
from ._hub import Hub
from ._values import now, seconds_between

AGENT = "claude"
HEARTBEAT_EVERY_S = 30
LOCK_WAIT_S = "0.3"  # EVHUB_LOCK_TIMEOUT for a hook, unless the user set one
ROLE = "claude code"


class HookInput(msgspec.Struct):
    """The fields of Claude Code's hook input that evhub reads; others are ignored."""

    hook_event_name: str
    session_id: str
    cwd: str | None = None
    source: str | None = None


def run(raw: bytes, env: Mapping[str, str], hub_dir: str | None = None) -> tuple[str, str]:
    """The hook's stdout and stderr for the hook input RAW (the hub at HUB_DIR, else found as the
    CLI finds it, from the event's cwd)."""
    try:
        hook = msgspec.json.decode(raw, type=HookInput)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        return "", f"evhub hook: not a hook event, ignored: {e}\n"
    handler = _HANDLERS.get(hook.hook_event_name)
    if handler is None:
        return "", f"evhub hook: nothing to do on {hook.hook_event_name}\n"
    try:
        hub = _find_hub(hub_dir, hook, env)
        context = handler(hub, hook, env)
        hub.flush()
    except EvhubError as e:
        return "", f"evhub hook: {e}\n"
    except Exception as e:  # evhub's own failure is still never the agent's: one line, and it goes on
        return "", f"evhub hook: failed on {hook.hook_event_name}, ignored: {type(e).__name__}: {one_line(str(e))}\n"
    if not context:
        return "", ""
    out = {"hookSpecificOutput": {"hookEventName": hook.hook_event_name, "additionalContext": context}}
    return msgspec.json.encode(out).decode() + "\n", ""


def _find_hub(hub_dir: str | None, hook: HookInput, env: Mapping[str, str]) -> Hub:
    """The hub at HUB_DIR, else found from the project's folder, which stays put, then from the event's
    cwd, which follows the agent's `cd`."""
    starts: list[str | None] = [start for start in (env.get("CLAUDE_PROJECT_DIR"), hook.cwd) if start] or [None]
    for start in starts[:-1]:
        try:
            return Hub.find(hub_dir, start=start)
        except HubNotFound:
            continue
    return Hub.find(hub_dir, start=starts[-1])


def _session_start(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
    """Register the agent (or take it back after a resume) and hand it its recall card; after a
    compaction the agent goes on as the session it was, so only the card is new."""
    from ._report import CONTEXT_BUDGET, recall_markdown

    if hook.source == "compact":
        sid = _session(hub, hook)
        _beat(hub, sid, "working")
    else:
        sid = hub.join_agent(AGENT, hook.session_id, role=ROLE)
    env_file = env.get("CLAUDE_ENV_FILE")
    if env_file:
        # Claude Code sources this file before each shell command the agent runs.
        try:
            with open(env_file, "a") as f:
                f.write(f"export EVHUB_SESSION={shlex.quote(sid)}\nexport EVHUB_HUB={shlex.quote(str(hub.root))}\n")
        except OSError as e:
            hub.warnings.append(f"cannot write {env_file}: {e.strerror}")
    lead = (f"evhub: you are session {sid} on the coordination hub at {one_line(str(hub.root))}; EVHUB_SESSION "
            f"is set to it for your shell commands. Commands: `evhub claim P` claims priority P, "
            f"`evhub msg send TEXT [--to ID]` posts a message, `evhub recall` prints this card again.")
    found = hub.recall(sid, recent=0)
    card, shown = recall_markdown(found, CONTEXT_BUDGET - len(lead) - 2)
    hub.mark_shown(found.session, found.unread, shown)
    return f"{lead}\n\n{card}"


def _beat(hub: Hub, sid: str, status: str) -> None:
    """A heartbeat at most each HEARTBEAT_EVERY_S seconds, unless the status changes."""
    s = hub.state().sessions[sid]
    if s.status != status or seconds_between(s.last_seen, now()) >= HEARTBEAT_EVERY_S:
        hub.heartbeat(sid, status)


def _working(status: str) -> Callable[[Hub, HookInput, Mapping[str, str]], str]:
    """A hook that keeps the session alive and pushes its unread messages to the agent once: the
    newest that fit the context budget; the others stay unread."""

    def beat_and_push(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
        from ._report import CONTEXT_BUDGET, fit_messages

        sid = _session(hub, hook)
        _beat(hub, sid, status)
        if status == "idle":
            return ""
        _, unread = hub.unread(sid)
        if not unread:
            return ""
        title = (f"evhub: {len(unread)} unread message(s) for session {sid}; those below are now marked read, "
                 f"each text quoted as a JSON string as its sender wrote it:")
        shown, lines = fit_messages(unread, CONTEXT_BUDGET - len(title) - 1)
        hub.mark_shown(sid, unread, shown)
        return "\n".join([title, *lines])

    return beat_and_push


def _session_end(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
    hub.bye(_session(hub, hook))
    return ""


def _session(hub: Hub, hook: HookInput) -> str:
    """The session attached to the agent's session; joins one for an agent seen first mid-session
    (evhub installed while it ran), or whose session left."""
    state = hub.state()
    sid = state.agent_session(AGENT, hook.session_id)
    if sid is not None and sid in state.sessions and not state.sessions[sid].left:
        return sid
    return hub.join_agent(AGENT, hook.session_id, role=ROLE)


_HANDLERS: dict[str, Callable[[Hub, HookInput, Mapping[str, str]], str]] = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _working("working"),
    "PostToolUse": _working("working"),
    "Stop": _working("idle"),
    "SessionEnd": _session_end,
}
