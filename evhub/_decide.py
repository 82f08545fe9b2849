"""Commands and `decide`: the pure rules that turn a command and the current state into events.

`decide` reads the state, never changes it, and raises a Conflict, NotFound or BadInput when
the command may not happen.  The events it returns carry their seq and time; the shell gives
each its unique id and appends them all in one write.
"""


from collections.abc import Callable, Iterable
from typing import Union

import msgspec

from . import _events as ev
from ._errors import BadInput, Conflict, NotFound, NotYours
from ._state import Claim, Milestone, State, next_number
from ._values import (
    MAX_DURATION_S,
    STEP_STATUSES,
    check_id,
    check_text,
    did_you_mean,
    format_duration,
    seconds_between,
    slug,
)


class Hello(msgspec.Struct, frozen=True, kw_only=True):
    session: str | None = None
    role: str = ""
    specialization: str = ""
    about: str = ""
    resume: bool = False


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    status: str | None = ""  # None: the session's status as it is


class Bye(msgspec.Struct, frozen=True, kw_only=True):
    session: str


class ClaimPriority(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    priority: str
    ttl_s: int | None = None


class ReleasePriority(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    priority: str
    done: bool = False
    note: str = ""
    force: bool = False
    token: int | None = None


class SetFocus(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    text: str


class AddNote(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    text: str


class CreateMilestone(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    title: str
    milestone: str | None = None
    priority: str | None = None
    steps: tuple[str, ...] = ()


class ClaimMilestone(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    milestone: str
    ttl_s: int | None = None


class UpdateStep(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    milestone: str
    step: int
    status: str
    note: str = ""
    token: int | None = None


class AddSteps(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    milestone: str
    steps: tuple[str, ...]


class SendMessage(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    text: str
    to: str = "all"


class MarkRead(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    upto: int
    seqs: tuple[int, ...] = ()  # also read, above UPTO


class ProposeId(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    proposed: str
    reason: str = ""


class AcceptId(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    proposed: str


class RejectId(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    proposed: str
    reason: str = ""


class AttachAgent(msgspec.Struct, frozen=True, kw_only=True):
    session: str
    agent: str
    agent_session: str


class JoinAgent(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's session starting: the session attached to it resumes, else a new session-N is
    registered and attached to it, in one write."""

    agent: str
    agent_session: str
    role: str = ""
    about: str = ""


Command = Union[
    Hello, Heartbeat, Bye, ClaimPriority, ReleasePriority, SetFocus, AddNote, CreateMilestone, ClaimMilestone,
    UpdateStep, AddSteps, SendMessage, MarkRead, ProposeId, AcceptId, RejectId, AttachAgent, JoinAgent,
]


def decide(cmd: Command, state: State, now: str, *, caller: str | None = None,
           on_behalf: bool = False, clone: int | None = None) -> list[ev.Event]:
    """The events COMMAND produces against STATE at time NOW (none when it changes nothing).

    CALLER is the session the caller itself is, when known: a command for another registered session
    is refused unless ON_BEHALF says it is meant, and then its events record the caller (`by`). A hub
    that is clone CLONE of a hub numbers its events as that clone (_order)."""
    other = _other_session(cmd, state, caller)
    if other is not None and not on_behalf:
        raise NotYours(f"you are session {caller}: acting for {other} needs --on-behalf (and is recorded)")
    by = caller if other is not None and caller is not None else msgspec.UNSET
    # Times never run backwards in the log, even when a writer's clock is behind the last writer's: the
    # command is decided at the time it is stamped with, so a slow clock cannot see a live holder as dead.
    ts = max(now, state.last_ts)
    events = _DECIDERS[type(cmd)](cmd, state, ts)
    top = state.number
    for n, e in enumerate(events, state.seq + 1):
        e.seq, e.ts, e.by = n, ts, by
        if clone is not None:
            top = e.num = next_number(top, clone)
    return events


def _other_session(cmd: Command, state: State, caller: str | None) -> str | None:
    """The registered session COMMAND acts for, when CALLER is known and that is not CALLER itself."""
    session = getattr(cmd, "session", None)
    if caller is None or session is None:
        return None
    sid = state.resolve(session)
    return sid if sid in state.sessions and sid != state.resolve(caller) else None


def _new(cls: type, **fields: object) -> ev.Event:
    event: ev.Event = cls(seq=0, id="", ts="", **fields)
    return event


def acting_session(state: State, session: str) -> str:
    """The current id of a registered session that has not left, else NotFound."""
    sid = state.resolve(session)
    s = state.sessions.get(sid)
    if s is None:
        raise NotFound(f"unknown session {session!r}{_unknown_session(state, session)}")
    if s.left:
        raise NotFound(f"session {session!r} has left: run `evhub hello {sid}` to start again")
    return sid


def _unknown_session(st: State, session: str) -> str:
    """What to do about SESSION, which is not registered: the close ids, else how to register it, or the
    valid id nearest it (advice that itself works: never `hello` with an id that cannot be)."""
    hint = did_you_mean(session, st.sessions)
    if hint:
        return f": {hint}"
    try:
        return f": run `evhub hello {check_id(session)}` first"
    except BadInput:
        valid = slug(session)  # lower case, runs of other characters as '-'
        return " (ids are 1-64 of a-z 0-9 . _ -)" + (f": run `evhub hello {valid}` first" if valid else "")


def _held_by_other(state: State, claim: Claim | None, me: str, now: str) -> bool:
    return claim is not None and claim.session != me and state.claim_holds(claim, now)


def _holder_error(claim: Claim, now: str) -> Conflict:
    age = format_duration(seconds_between(claim.since, now))
    return Conflict(
        f"{claim.priority} is held by {claim.session} since {claim.since} ({age} ago, token {claim.token})"
    )


def _hello(cmd: Hello, st: State, now: str) -> list[ev.Event]:
    if cmd.session is None:
        n = 1
        while (
            f"session-{n}" in st.sessions
            or f"session-{n}" in st.aliases
            or st.pending_proposal(f"session-{n}") is not None
        ):
            n += 1
        sid = f"session-{n}"
    else:
        sid = check_id(cmd.session, "session id")
    # Agreeing that proposal would rename its proposer on top of this newcomer.
    pending = st.pending_proposal(sid)
    if pending is not None:
        raise Conflict(f"{pending.session} has proposed to be known as {sid}: pick another id")
    for what, text in (("role", cmd.role), ("specialization", cmd.specialization), ("about", cmd.about)):
        check_text(text, what)
    known = sid in st.sessions
    if known and st.is_alive(sid, now) and not cmd.resume:
        last = format_duration(seconds_between(st.sessions[sid].last_seen, now))
        raise Conflict(f"session {sid} is alive (seen {last} ago): pick another id, or --resume if you are {sid}")
    return [
        _new(
            ev.SessionRegistered,
            session=sid,
            role=cmd.role,
            specialization=cmd.specialization,
            about=cmd.about,
            resume=cmd.resume and known,
        )
    ]


def _heartbeat(cmd: Heartbeat, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    status = st.sessions[sid].status if cmd.status is None else check_text(cmd.status, "status")
    return [_new(ev.Heartbeat, session=sid, status=status)]


def _bye(cmd: Bye, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    out = [_new(ev.PriorityReleased, session=sid, priority=c.priority, note="bye") for c in st.claims_of(sid)]
    return out + [_new(ev.SessionLeft, session=sid)]


def _claim_event(st: State, sid: str, priority: str, ttl_s: int | None, now: str) -> ev.Event:
    """The claim of PRIORITY by SID: a grant, a refresh by the holder, or a takeover."""
    if ttl_s is not None and not 1 <= ttl_s <= MAX_DURATION_S:
        raise BadInput(f"ttl {ttl_s}s is out of range (1s to {format_duration(MAX_DURATION_S)})")
    c = st.claims.get(priority)
    if _held_by_other(st, c, sid, now):
        assert c is not None
        raise _holder_error(c, now)
    took_over = c.session if c is not None and c.session != sid else None
    return _new(ev.PriorityClaimed, session=sid, priority=priority, ttl_s=ttl_s, took_over_from=took_over)


def _claim(cmd: ClaimPriority, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    return [_claim_event(st, sid, check_id(cmd.priority, "priority"), cmd.ttl_s, now)]


def _check_token(st: State, priority: str, token: int | None) -> None:
    if token is None:
        return
    c = st.claims.get(priority)
    if c is None or c.token != token:
        current = f"token {c.token} held by {c.session}" if c else "no claim"
        raise Conflict(f"stale token {token}: {priority} now has {current}")


def _release(cmd: ReleasePriority, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    priority = cmd.priority
    c = st.claims.get(priority)
    if c is None:
        hint = _close_ids(priority, st.claims, "priority")
        raise NotFound(f"{priority} is not claimed" + (f": {hint}" if hint else ""))
    _check_token(st, priority, cmd.token)
    if c.session != sid and not cmd.force:
        raise Conflict(f"{priority} is held by {c.session}: only the holder releases it (or use --force)")
    note = check_text(cmd.note, "note")
    released = _new(ev.PriorityReleased, session=sid, priority=priority, done=cmd.done, note=note,
                    forced=c.session != sid)
    if c.session == sid:
        return [released]
    # The holder may still believe it holds the claim: it is told where it reads its mail (the hook's
    # context, recall, inbox, the MCP server), in the same write as the release.
    told = f"force-released your claim on {priority} (token {c.token})" + (f": {note}" if note else "")
    return [released, _new(ev.MessagePosted, session=sid, to=c.session, text=told)]


def _nonempty(text: str, what: str) -> str:
    if not text.strip():
        raise BadInput(f"{what} is empty")
    return check_text(text, what)


def _focus(cmd: SetFocus, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    return [_new(ev.FocusSet, session=sid, text=_nonempty(cmd.text, "focus"))]


def _note(cmd: AddNote, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    return [_new(ev.NoteAdded, session=sid, text=_nonempty(cmd.text, "note"))]


def _close_ids(given: str, known: Iterable[str], what: str) -> str:
    """The KNOWN ids close to GIVEN, as did_you_mean says them; when none is and GIVEN cannot be an id
    at all, BadInput telling the rule for ids."""
    hint = did_you_mean(given, known)
    if not hint:
        check_id(given, what)
    return hint


def find_milestone(st: State, milestone: str) -> Milestone:
    """The milestone with id MILESTONE, else NotFound naming the close ones."""
    m = st.milestones.get(milestone)
    if m is None:
        hint = _close_ids(milestone, st.milestones, "milestone id")
        raise NotFound(f"unknown milestone {milestone!r}: {hint or '`evhub milestone list --all` lists them'}")
    return m


def _create_milestone(cmd: CreateMilestone, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    title = _nonempty(cmd.title, "title")
    mid = cmd.milestone if cmd.milestone is not None else slug(title)
    if not mid:
        raise BadInput(f"cannot make a milestone id from title {title!r}: give one with --id")
    mid = check_id(mid, "milestone id")
    if mid in st.milestones:
        raise Conflict(f"milestone {mid} exists (created by {st.milestones[mid].created_by})")
    priority = check_id(cmd.priority if cmd.priority is not None else mid, "priority")
    steps = [_nonempty(s, "step") for s in cmd.steps]
    return [_new(ev.MilestoneCreated, session=sid, milestone=mid, title=title, priority=priority, steps=steps)]


def _claim_milestone(cmd: ClaimMilestone, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    mid = find_milestone(st, cmd.milestone).id
    claim = _claim_event(st, sid, st.milestones[mid].priority, cmd.ttl_s, now)
    return [_new(ev.MilestoneClaimed, session=sid, milestone=mid), claim]


# The two step statuses the seed's scripts and README spell otherwise (update-milestone.sh took
# `completed`). A command takes these words exactly, nothing looser: reading a hand-kept file
# (_legacy.step_status) is lenient, a command's input is not.
SEED_STATUSES = {"completed": "done", "in_progress": "in-progress"}


def _update_step(cmd: UpdateStep, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    m = find_milestone(st, cmd.milestone)
    mid = m.id
    if not m.steps:
        raise BadInput(f"{mid} has no steps yet: add them with `evhub milestone add-step {mid} TEXT...`")
    if not 1 <= cmd.step <= len(m.steps):
        raise BadInput(f"step {cmd.step} is out of range: {mid} has steps 1..{len(m.steps)}")
    status = SEED_STATUSES.get(cmd.status, cmd.status)
    if status not in STEP_STATUSES:
        raise BadInput(f"unknown status {cmd.status!r}: use one of {', '.join(STEP_STATUSES)}")
    _check_token(st, m.priority, cmd.token)
    _check_not_held(st, m, sid, now)
    return [
        _new(
            ev.StepUpdated,
            session=sid,
            milestone=mid,
            step=cmd.step,
            status=status,
            note=check_text(cmd.note, "note"),
        )
    ]


def _add_steps(cmd: AddSteps, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    m = find_milestone(st, cmd.milestone)
    if not cmd.steps:
        raise BadInput("no step given: name at least one")
    steps = [_nonempty(s, "step") for s in cmd.steps]
    _check_not_held(st, m, sid, now)
    return [_new(ev.StepsAdded, session=sid, milestone=m.id, steps=steps)]


def _check_not_held(st: State, m: Milestone, sid: str, now: str) -> None:
    """A milestone whose priority another live session holds is that session's to change."""
    c = st.claims.get(m.priority)
    if _held_by_other(st, c, sid, now):
        assert c is not None
        raise Conflict(f"milestone {m.id} is being worked on: {_holder_error(c, now)}")


def _send(cmd: SendMessage, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    to = cmd.to
    if to != "all":
        to = st.resolve(check_id(to, "recipient"))
        if to not in st.sessions:
            hint = did_you_mean(to, st.sessions) or "use a session id or all"
            raise NotFound(f"unknown recipient {cmd.to!r}: {hint}")
    return [_new(ev.MessagePosted, session=sid, to=to, text=_nonempty(cmd.text, "message"))]


def _mark_read(cmd: MarkRead, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    last = max((cmd.upto, *cmd.seqs))
    if last > st.number:
        raise BadInput(f"cannot mark messages read up to {last}: the log ends at {st.number}")
    s = st.sessions[sid]
    upto = max(cmd.upto, s.read_upto)
    # Once the hub is cloned, UPTO does not cover what came from other clones: those are read when listed.
    floor = s.read_upto if st.top else upto
    seqs = sorted({q for q in cmd.seqs if q > floor} - set(s.read_seqs))
    if upto == s.read_upto and not seqs:
        return []
    return [_new(ev.MessagesRead, session=sid, upto=upto, seqs=seqs or msgspec.UNSET)]


def _attach_agent(cmd: AttachAgent, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    agent, agent_session = _agent_ids(cmd.agent, cmd.agent_session)
    if st.agent_session(agent, agent_session) == sid:
        return []
    return [_new(ev.AgentAttached, session=sid, agent=agent, agent_session=agent_session)]


def _join_agent(cmd: JoinAgent, st: State, now: str) -> list[ev.Event]:
    agent, agent_session = _agent_ids(cmd.agent, cmd.agent_session)
    sid = st.agent_session(agent, agent_session)
    if sid is not None and sid in st.sessions:
        return _hello(Hello(session=sid, resume=True, role=cmd.role, about=cmd.about), st, now)
    [registered] = _hello(Hello(role=cmd.role, about=cmd.about), st, now)
    assert isinstance(registered, ev.SessionRegistered)
    return [registered,
            _new(ev.AgentAttached, session=registered.session, agent=agent, agent_session=agent_session)]


def _agent_ids(agent: str, agent_session: str) -> tuple[str, str]:
    check_text(agent_session, "agent session id")
    if len(agent_session) > 200 or not agent_session.isprintable():
        raise BadInput("the agent session id must be one printable line of at most 200 characters")
    return check_id(agent, "agent"), agent_session


def _propose(cmd: ProposeId, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    proposed = check_id(cmd.proposed, "proposed id")
    if proposed == sid:
        raise BadInput(f"you are already {sid}")
    if proposed in st.sessions:
        raise Conflict(f"id {proposed} is taken by a registered session")
    pending = st.pending_proposal(proposed)
    if pending is not None and pending.session != sid and st.is_alive(pending.session, now):
        raise Conflict(f"{pending.session} has already proposed {proposed}")
    return [_new(ev.IdProposed, session=sid, proposed=proposed, reason=check_text(cmd.reason, "reason"))]


def _answer(cmd: AcceptId | RejectId, st: State, now: str) -> list[ev.Event]:
    sid = acting_session(st, cmd.session)
    proposed = check_id(cmd.proposed, "proposed id")
    p = st.pending_proposal(proposed)
    if p is None:
        raise NotFound(f"no pending proposal of {proposed}")
    if p.session == sid:
        raise BadInput("you cannot answer your own proposal")
    if sid not in p.voters:
        raise Conflict(f"{sid} was not live when {p.session} proposed {proposed}; its answer is not asked")
    if isinstance(cmd, RejectId):
        return [_new(ev.IdRejected, session=sid, proposed=proposed, reason=check_text(cmd.reason, "reason"))]
    if sid in p.accepted:
        return []
    return [_new(ev.IdAccepted, session=sid, proposed=proposed)]


_DECIDERS: dict[type, Callable[..., list[ev.Event]]] = {
    Hello: _hello,
    Heartbeat: _heartbeat,
    Bye: _bye,
    ClaimPriority: _claim,
    ReleasePriority: _release,
    SetFocus: _focus,
    AddNote: _note,
    CreateMilestone: _create_milestone,
    ClaimMilestone: _claim_milestone,
    UpdateStep: _update_step,
    AddSteps: _add_steps,
    SendMessage: _send,
    MarkRead: _mark_read,
    ProposeId: _propose,
    AcceptId: _answer,
    RejectId: _answer,
    AttachAgent: _attach_agent,
    JoinAgent: _join_agent,
}
