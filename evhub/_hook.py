"""`evhub hook`: a Claude Code hook event in, the right hub calls out.

So an agent heartbeats, reads its mail and gets its bearings back after a compaction without
being told to.  A hook must never hold the agent up: a missing or busy hub, or input that is not
a hook event, prints nothing on stdout, says why on stderr, and exits 0.
"""

import shlex
from collections.abc import Callable, Mapping

import msgspec

from ._documents import one_line
from ._errors import EvhubError
from ._fasthook import HEARTBEAT_EVERY_S, WORKING, find_root, remember
from ._hub import Hub
from ._values import now, seconds_between

ROLE = "claude code"


class HookInput(msgspec.Struct):
    """The fields of Claude Code's hook input that evhub reads; others are ignored."""

    hook_event_name: str
    session_id: str
    cwd: str | None = None
    source: str | None = None
    agent: str = "claude"  # not read from the input: the agent `evhub hook --agent` names (run sets it)


def run(raw: bytes, env: Mapping[str, str], hub_dir: str | None = None, agent: str = "claude") -> tuple[str, str]:
    """The hook's stdout and stderr for the hook input RAW from AGENT (the hub at HUB_DIR, else found
    as the CLI finds it, from the event's cwd)."""
    try:
        hook = msgspec.json.decode(raw, type=HookInput)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        return "", f"evhub hook: not a hook event, ignored: {e}\n"
    hook.agent = agent
    handler = _HANDLERS.get(hook.hook_event_name)
    if handler is None:
        return "", f"evhub hook: nothing to do on {hook.hook_event_name}\n"
    try:
        hub = _find_hub(hub_dir, hook, env)
        context = handler(hub, hook, env)
        remember(hub, hook.hook_event_name, hook.agent, hook.session_id)  # what the fast path answers from
        hub.flush()
    except EvhubError as e:
        return "", f"evhub hook: {e}\n"
    if not context:
        return "", ""
    out = {"hookSpecificOutput": {"hookEventName": hook.hook_event_name, "additionalContext": context}}
    return msgspec.json.encode(out).decode() + "\n", ""


def _find_hub(hub_dir: str | None, hook: HookInput, env: Mapping[str, str]) -> Hub:
    """The hub at HUB_DIR, else found as the fast path finds it (find_root)."""
    return Hub(find_root(hub_dir, hook.cwd, env))


def _session_start(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
    from ._report import recall_markdown

    sid = hub.join_agent(hook.agent, hook.session_id, role=ROLE)
    env_file = env.get("CLAUDE_ENV_FILE")
    if env_file:
        # Claude Code sources this file before each shell command the agent runs.
        try:
            with open(env_file, "a") as f:
                f.write(f"export EVHUB_SESSION={shlex.quote(sid)}\nexport EVHUB_HUB={shlex.quote(str(hub.root))}\n")
        except OSError as e:
            hub.warnings.append(f"cannot write {env_file}: {e.strerror}")
    found = hub.recall(sid, recent=0)
    card = recall_markdown(found)
    if found.unread:
        hub.mark_read(found.session, found.unread[-1].seq)  # shown in the card: pushed, so read
    lead = (f"evhub: you are session {sid} on the coordination hub at {hub.root} "
            f"(EVHUB_SESSION is set for your shell commands). Claim a priority before you start work "
            f"(`evhub claim P`), post with `evhub msg send TEXT [--to ID]`, and run `evhub recall` after "
            f"a context loss.")
    return f"{lead}\n\n{card}"


def _working(status: str) -> Callable[[Hub, HookInput, Mapping[str, str]], str]:
    """A hook that keeps the session alive (at most one heartbeat each HEARTBEAT_EVERY_S seconds
    unless its status changes) and pushes its unread messages to the agent once."""

    def beat_and_push(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
        sid = _session(hub, hook)
        s = hub.state().sessions[sid]
        if s.status != status or seconds_between(s.last_seen, now()) >= HEARTBEAT_EVERY_S:
            hub.heartbeat(sid, status)
        if status == "idle":
            return ""
        messages = hub.inbox(sid)
        if not messages:
            return ""
        lines = [f"evhub: {len(messages)} new message(s) for {sid} (now marked read):"]
        lines += [f"- #{m.seq} from {m.sender} to {m.to}: {one_line(m.text)}" for m in messages]
        return "\n".join(lines)

    return beat_and_push


def _session_end(hub: Hub, hook: HookInput, env: Mapping[str, str]) -> str:
    hub.bye(_session(hub, hook))
    return ""


def _session(hub: Hub, hook: HookInput) -> str:
    """The session attached to the agent's session; joins one for an agent seen first mid-session
    (evhub installed while it ran), or whose session left."""
    state = hub.state()
    sid = state.agent_session(hook.agent, hook.session_id)
    if sid is not None and sid in state.sessions and not state.sessions[sid].left:
        return sid
    return hub.join_agent(hook.agent, hook.session_id, role=ROLE)


_HANDLERS: dict[str, Callable[[Hub, HookInput, Mapping[str, str]], str]] = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _working(WORKING),  # these two are the fast path's THROTTLED
    "PostToolUse": _working(WORKING),
    "Stop": _working("idle"),
    "SessionEnd": _session_end,
}
