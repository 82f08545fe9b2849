"""The hook's fast path: a throttled PostToolUse or UserPromptSubmit with nothing to push, answered
without loading the hub (no typer, no rich, no SQLite).

Such calls are most of an agent's hook calls: one after every tool call.  The full path (_hook.run)
leaves a stamp per agent session, beside the log: the hub session, its status and last sighting, and
the checkpoint of the log its answer was taken at, when nothing was left unread.  The fast path
answers "nothing to do" only when the log still holds that checkpoint, the heartbeat is not due, and
the events appended since (only those are read, by the log's own rules, so a damaged line is a
CorruptLog) can neither owe the agent a message nor change who or how its session is.  On anything
else, or any doubt, the full path answers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from . import _events as ev
from . import _place
from ._agents import AGENTS
from ._errors import EvhubError, HubNotFound
from ._pgstore import StoreSettings
from ._store import Checkpoint, Store
from ._values import now, seconds_between

if TYPE_CHECKING:
    from ._hub import Hub

HEARTBEAT_EVERY_S = 30
WORKING = "working"  # the status a throttled event beats
THROTTLED = frozenset({"UserPromptSubmit", "PostToolUse"})  # the events the fast path may answer
STAMPS = "hooks"  # the stamps' folder, beside the log
MAX_TAIL = 1 << 20  # bytes appended since the stamp worth reading here; more is the full path's job
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Events that matter to no session but the one they are by (or, for a message or an attachment,
# addressed to): any other (a rename, a repair's placeholder, one from a newer evhub) is a doubt.
_BYSTANDER = (ev.Heartbeat, ev.SessionRegistered, ev.SessionLeft, ev.IdProposed, ev.IdRejected, ev.PriorityClaimed,
              ev.PriorityReleased, ev.FocusSet, ev.NoteAdded, ev.MilestoneCreated, ev.MilestoneClaimed,
              ev.StepUpdated, ev.StepsAdded, ev.MessagePosted, ev.MessagesRead, ev.AgentAttached)


class Stamp(msgspec.Struct, forbid_unknown_fields=True):
    """What the full path left for the fast path: the agent session's hub SESSION, as the log stood
    at CHECKPOINT, with nothing unread."""

    agent: str
    agent_session: str
    session: str
    status: str
    last_seen: str
    checkpoint: Checkpoint


class _HookFields(msgspec.Struct):
    """The fields of a hook input the fast path reads (the full path's HookInput reads more)."""

    hook_event_name: str
    session_id: str
    cwd: str | None = None


def find_root(hub_dir: str | None, cwd: str | None, env: Mapping[str, str], project_dir: str | None) -> Path:
    """The root of the hub a hook event works on: at HUB_DIR (else $EVHUB_HUB), else found from the
    project's folder (in the agent's variable PROJECT_DIR, if it has one), which stays put, then from
    the event's CWD, which follows the agent's `cd`."""
    project = env.get(project_dir) if project_dir else None
    starts: list[str | None] = [start for start in (project, cwd) if start] or [None]
    for start in starts[:-1]:
        try:
            return _place.find(hub_dir, start=start)
        except HubNotFound:
            continue
    return _place.find(hub_dir, start=starts[-1])


def stamp_path(events_dir: Path, agent: str, agent_session: str) -> Path | None:
    """Where the stamp of AGENT's session AGENT_SESSION is kept; None for a name unfit for a file."""
    if not (_NAME.fullmatch(agent) and _NAME.fullmatch(agent_session)):
        return None
    return events_dir / STAMPS / f"{agent}-{agent_session}.json"


def answer(raw: bytes, env: Mapping[str, str], hub_dir: str | None, agent: str) -> bool:
    """Whether the hook input RAW is sure to need nothing from the hub: no heartbeat due, nothing to
    push, nothing changed for its session since the full path's stamp.  False is no verdict: the
    full path decides.  The clock is _values.now, EVHUB_NOW included, as on the full path, so both
    paths throttle alike."""
    hook = msgspec.json.decode(raw, type=_HookFields)
    if hook.hook_event_name not in THROTTLED:
        return False
    if agent not in AGENTS:
        return False
    root = find_root(hub_dir, hook.cwd, env, AGENTS[agent].project_dir)
    events_dir = _place.events_dir(root)
    path = stamp_path(events_dir, agent, hook.session_id)
    if path is None or StoreSettings.read(events_dir) is not None:
        return False  # a log on PostgreSQL: reading its tail costs what the full path does
    try:
        stamp = msgspec.json.decode(path.read_bytes(), type=Stamp)
    except FileNotFoundError:
        return False
    if (stamp.agent, stamp.agent_session) != (agent, hook.session_id) or stamp.status != WORKING \
            or seconds_between(stamp.last_seen, now()) >= HEARTBEAT_EVERY_S:
        return False
    store = _place.open_store(root)
    try:
        clone = _place.clone_of(events_dir)
        return store.resume(stamp.checkpoint) and _quiet_since(store, stamp, None if clone is None else clone.clone)
    finally:
        store.close()


def _quiet_since(store: Store, stamp: Stamp, clone: int | None) -> bool:
    """Whether every event after STAMP's checkpoint (resumed), read by the log's own rules, leaves its
    session as it was: none by it, no message to it or to all, no attachment of its agent session, none
    merged from another clone than this one, CLONE (a merge may have lost it a claim)."""
    start = stamp.checkpoint.offset
    for events in store.read_blocks(stamp.checkpoint.seq):
        if store.reached - start > MAX_TAIL:
            return False
        for e in events:
            if not isinstance(e, _BYSTANDER) or e.session == stamp.session:
                return False
            if e.num is not msgspec.UNSET and e.num % ev.CLONES != clone:
                return False
            if isinstance(e, ev.MessagePosted) and e.to in ("all", stamp.session):
                return False
            if isinstance(e, ev.AgentAttached) and (e.agent, e.agent_session) == (stamp.agent, stamp.agent_session):
                return False
    # A torn tail, or a write of several events not all there, is a write under way (or cut short).
    return not store.torn_tail


def remember(hub: Hub, event: str, agent: str, agent_session: str) -> None:
    """After the full path handled EVENT for AGENT's session AGENT_SESSION: leave the stamp the fast
    path answers the next such event from, or take it away when the hub's state gives none.  The state,
    the checkpoint and the unread messages are of one moment: a log that moved while they were read
    leaves no stamp.  Best effort: without a stamp the next hook takes the full path."""
    path = stamp_path(hub.events_dir, agent, agent_session)
    if path is None:
        return
    try:
        # Another event changes the session (a start, a stop, an end): no stamp outlives it, none piles up.
        stamp = _stamp(hub, agent, agent_session) if event in THROTTLED else None
    except EvhubError:
        stamp = None
    try:
        if stamp is None:
            path.unlink(missing_ok=True)
        else:
            _write(path, msgspec.json.encode(stamp))
    except OSError:
        pass


def _stamp(hub: Hub, agent: str, agent_session: str) -> Stamp | None:
    if hub.store.where is not None:
        return None  # a log beyond this machine's files (see answer)
    state = hub.state()
    seen = hub.store.checkpoint()
    sid = state.agent_session(agent, agent_session)
    s = state.sessions.get(sid) if sid is not None else None
    if s is None or s.left or hub.damage is not None or seen.seq != state.seq:
        return None
    unread = hub.unread(s.id)[1]
    if unread or hub.store.checkpoint() != seen:
        return None
    return Stamp(agent, agent_session, s.id, s.status, s.last_seen, seen)


def _write(path: Path, data: bytes) -> None:
    """DATA into PATH by way of a temporary name, so a reader finds the old stamp or the new one whole;
    the stamps' folder ignores itself in git (a hub kept in a work tree)."""
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(exist_ok=True)
        (folder / ".gitignore").write_text("*\n")
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
