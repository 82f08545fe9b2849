"""`evhub hook`: a Claude Code or Codex hook event in, the right hub calls out.

So an agent heartbeats, reads its mail and gets its bearings back after a compaction without
being told to.  A hook must never hold the agent up: a missing or busy hub, or input that is not
a hook event, prints nothing on stdout, says why on stderr, and exits 0.  Codex sends the same
input fields and reads the same `hookSpecificOutput.additionalContext`, so one set of handlers
serves both; what differs per agent is in AGENTS.
"""

import shlex
from collections.abc import Callable, Mapping

import msgspec

from ._agents import AGENTS, Agent
from ._documents import one_line
from ._errors import BadInput, EvhubError
from ._fasthook import HEARTBEAT_EVERY_S, WORKING, find_root, remember
from ._hub import Hub
from ._values import now, seconds_between


class HookInput(msgspec.Struct):
    """The fields of a hook input that evhub reads; others are ignored."""

    hook_event_name: str
    session_id: str
    cwd: str | None = None
    source: str | None = None
    task_id: str | None = None  # TaskCompleted (Claude Code's shared task list)
    task_subject: str | None = None
    teammate_name: str | None = None  # TaskCompleted, TeammateIdle (Claude Code's agent teams)
    team_name: str | None = None


def run(raw: bytes, env: Mapping[str, str], hub_dir: str | None = None, agent: str = "claude") -> tuple[str, str]:
    """The hook's stdout and stderr for AGENT's hook input RAW (the hub at HUB_DIR, else found as the
    CLI finds it, from the agent's project folder, then the event's cwd)."""
    if agent not in AGENTS:
        return "", f"evhub hook: unknown agent {agent!r} (use {' or '.join(AGENTS)}), ignored\n"
    try:
        hook = msgspec.json.decode(raw, type=HookInput)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        return "", f"evhub hook: not a hook event, ignored: {e}\n"
    handler = _HANDLERS.get(hook.hook_event_name)
    if handler is None:
        return "", f"evhub hook: nothing to do on {hook.hook_event_name}\n"
    said = ""
    try:
        hub = _find_hub(hub_dir, hook, env, AGENTS[agent])
        if hook.hook_event_name == "SessionStart":
            said += _sync(hub)  # first, so the card shows what the other clones did
        context = handler(hub, hook, env, AGENTS[agent])
        remember(hub, hook.hook_event_name, agent, hook.session_id)  # what the fast path answers from
        hub.flush()
        if hook.hook_event_name == "SessionEnd":
            said += _sync(hub)  # last, so the other clones learn this session left
    except EvhubError as e:
        return "", f"{said}evhub hook: {e}\n"
    if not context:
        return "", said
    out = {"hookSpecificOutput": {"hookEventName": hook.hook_event_name, "additionalContext": context}}
    return msgspec.json.encode(out).decode() + "\n", said


def _sync(hub: Hub) -> str:
    """Sync with the repository's remote when `git config evhub.sync true` asks for it (`evhub install
    --sync`); failing is a line on stderr, never the hook's failure. Only at a session's start and end: never
    on the per-tool-call path."""
    from ._sync import sync_if_remote, wanted

    if not wanted(hub.root):
        return ""
    try:
        sync_if_remote(hub)
    except EvhubError as e:
        return f"evhub hook: warning: not synced: {e}\n"
    return ""


def _find_hub(hub_dir: str | None, hook: HookInput, env: Mapping[str, str], agent: Agent) -> Hub:
    """The hub at HUB_DIR, else found as the fast path finds it (find_root)."""
    return Hub(find_root(hub_dir, hook.cwd, env, agent.project_dir))


def _session_start(hub: Hub, hook: HookInput, env: Mapping[str, str], agent: Agent) -> str:
    """Register the agent (or take it back after a resume) and hand it its recall card; after a
    compaction the agent goes on as the session it was, so only the card is new."""
    from ._report import CONTEXT_BUDGET, recall_markdown

    if hook.source == "compact":
        sid = _session(hub, hook, agent)
        _beat(hub, sid, WORKING)
    else:
        sid = hub.join_agent(agent.name, hook.session_id, role=agent.role)
    env_file = env.get(agent.env_file)
    if env_file:
        # The agent sources this file before each shell command it runs.
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


def _working(status: str) -> Callable[[Hub, HookInput, Mapping[str, str], Agent], str]:
    """A hook that keeps the session alive and pushes its unread messages to the agent once: the
    newest that fit the context budget; the others stay unread."""

    def beat_and_push(hub: Hub, hook: HookInput, env: Mapping[str, str], agent: Agent) -> str:
        from ._report import CONTEXT_BUDGET, fit_messages

        sid = _session(hub, hook, agent)
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


def _session_end(hub: Hub, hook: HookInput, env: Mapping[str, str], agent: Agent) -> str:
    hub.bye(_session(hub, hook, agent))
    return ""


def _task_completed(hub: Hub, hook: HookInput, env: Mapping[str, str], agent: Agent) -> str:
    """A task of Claude Code's shared task list completed: a note on the session that completed it, so
    its history and recall say so.  The task list itself stays Claude Code's (see the README)."""
    if not hook.task_id:
        raise BadInput("a TaskCompleted event without a task_id")
    by = ", ".join(f"{what} {one_line(name)}" for what, name in
                   (("teammate", hook.teammate_name), ("team", hook.team_name)) if name)
    # one line each: they are parts of a line composed here
    text = f"completed task {one_line(hook.task_id)}: {one_line(hook.task_subject or '(no subject)')}"
    hub.note(_session(hub, hook, agent), f"{text} ({by})" if by else text)
    return ""  # Claude Code reads only exit codes here; nothing to say


def _session(hub: Hub, hook: HookInput, agent: Agent) -> str:
    """The session attached to the agent's session (joined if none is live: evhub installed while it ran)."""
    return hub.agent_here(agent.name, hook.session_id, role=agent.role)


# Keyed by event name; Claude Code and Codex share the names of the events both have (Codex has no
# SessionEnd: its sessions leave by the hub's alive TTL).
_HANDLERS: dict[str, Callable[[Hub, HookInput, Mapping[str, str], Agent], str]] = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _working(WORKING),  # these two are the fast path's THROTTLED
    "PostToolUse": _working(WORKING),
    "Stop": _working("idle"),
    "SessionEnd": _session_end,
    "TaskCompleted": _task_completed,
    "TeammateIdle": _working("idle"),  # a teammate of an agent team waiting for work
}
