"""The hub's state and `evolve`: the pure fold of events into registry, claims, milestones and messages.

`evolve` updates the state it is given and returns it (folding a million events through
immutable copies would cost more than the fold itself); it does no I/O and reads no clock,
so folding the same events always gives the same state.

The state stays the same size however long the log grows: it keeps the last messages, and
the messages (and renames of their senders and recipients) posted since the state was last
stored, which the read model then takes into its messages table.  So a command loads and
saves a small snapshot on day 300 as on day 1.
"""


from collections.abc import Callable, Container, Iterable, Iterator
from datetime import timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from . import _events as ev
from ._values import FUTURE_BOUND_S, format_ts, normalize_ts, parse_ts

CLONES = ev.CLONES
NOTES_KEPT = 10
MESSAGES_KEPT = 100
COMPLETED_KEPT = 10
DECIDED_PROPOSALS_KEPT = 20


class Note(msgspec.Struct, gc=False):
    seq: int
    ts: str
    text: str


class Session(msgspec.Struct):
    id: str
    role: str = ""
    specialization: str = ""
    about: str = ""
    first_seen: str = ""
    last_seen: str = ""
    status: str = ""
    left: bool = False
    incarnation: int = 0
    read_upto: int = 0  # every message up to this number from before the hub's first sync is read
    read_seqs: list[int] = []  # messages read above read_upto, ascending
    read_clones: dict[int, int] = {}  # clone -> messages written there up to this number are read
    agreement: str = "none"
    aka: list[str] = []
    notes: list[Note] = []


class Claim(msgspec.Struct, gc=False):
    priority: str
    session: str
    token: int
    since: str
    refreshed: str
    ttl_s: int | None = None
    took_over_from: str | None = None


class Step(msgspec.Struct, gc=False):
    text: str
    status: str = "pending"
    note: str = ""
    updated: str = ""
    by: str = ""


class Milestone(msgspec.Struct):
    id: str
    title: str
    priority: str
    created: str
    created_by: str
    owner: str | None = None
    steps: list[Step] = []
    completed: str | None = None

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.status in ("done", "skipped"))

    @property
    def next_step(self) -> int | None:
        """The 1-based number of the first step not done or skipped."""
        for n, s in enumerate(self.steps, 1):
            if s.status not in ("done", "skipped"):
                return n
        return None


NOT_CLONED = -1  # a message's clone before the hub's first sync: known on every clone
NOTICE = -2  # a message the fold wrote (a claim lost in a merge): read only once shown
MERGE_SENDER = "evhub"  # who notices come from


class Message(msgspec.Struct, gc=False, repr_omit_defaults=True):
    seq: int  # its number (_order)
    ts: str
    sender: str
    to: str
    text: str
    clone: int = NOT_CLONED  # the clone it was written on, or NOTICE
    at: int = 0  # the seq of its event in this clone's log, where its text is read (0: a notice, the fold's)


class Rename(msgspec.Struct, gc=False):
    """An agreed rename at SEQ: the mail of OLD posted before it now belongs to NEW."""

    seq: int
    old: str
    new: str


def is_unread(m: Message, s: Session) -> bool:
    """Whether session S has yet to read M: to it, or to all since it registered (a newcomer is not
    handed the hub's history; a session that resumes keeps its place), not from it, and not read.

    "Read up to N" covers only the messages its reader's clone held: those written there (and before the
    hub's first sync). A message that came from another clone, or a notice, is read once it was shown."""
    if m.sender == s.id or m.seq in s.read_seqs:
        return False
    if m.seq <= (s.read_upto if m.clone == NOT_CLONED else s.read_clones.get(m.clone, 0)):
        return False
    return m.to == s.id or (m.to == "all" and m.seq > s.incarnation)


class Completed(msgspec.Struct, gc=False):
    ts: str
    kind: str
    name: str
    session: str
    note: str = ""


class Proposal(msgspec.Struct):
    seq: int
    ts: str
    session: str  # the proposer's id then
    proposed: str
    reason: str = ""
    voters: list[str] = []
    accepted: list[str] = []
    status: str = "pending"
    rejected_by: str = ""
    reject_reason: str = ""
    known_as: str = ""  # the proposer's id now, through later renames


class Focus(msgspec.Struct, gc=False):
    text: str
    session: str
    ts: str


class OutOfOrder(Exception):
    """A write sorts before one the state has folded (a merge brought events older than the state's): the
    whole log must be folded again, in its order (_order.fold_in_order)."""


class State(msgspec.Struct):
    seq: int = 0  # the position in this clone's log of the last event folded
    top: int = 0  # the highest `num` folded (0 while the hub never synced: its numbers are its seqs)
    tops: dict[int, int] = {}  # clone -> the highest number folded from it (a clone's events arrive in order)
    order: tuple[str, int] = ("", 0)  # the last write folded begins at this (time, number): the fold's place
    opening: bool = False  # the last event folded has `more`: the next one continues its write
    hub_id: str = ""
    prefix: int = 0  # once the hub is cloned, the last number of the events written before its first sync
    last_ts: str = ""
    created: str = ""
    alive_ttl_s: int = 300
    version: int = ev.LOG_VERSION
    sessions: dict[str, Session] = {}
    claims: dict[str, Claim] = {}
    milestones: dict[str, Milestone] = {}
    messages: list[Message] = []  # the last MESSAGES_KEPT
    message_count: int = 0
    new_messages: list[Message] = []  # posted since the state was last stored
    new_renames: list[Rename] = []  # agreed since the state was last stored
    completed: list[Completed] = []
    proposals: list[Proposal] = []
    aliases: dict[str, str] = {}
    agents: dict[str, str] = {}  # "agent/agent session" -> session id
    focus: Focus | None = None
    unknown_events: int = 0

    # Liveness is computed from the clock, never stored; a sign of life from further in the future
    # than a clock may run ahead is no sign of life (it would last until the future came).
    @property
    def number(self) -> int:
        """The highest event number folded: the hub's place across clones ("as of event #N")."""
        return self.top or self.seq

    def appended(self, events: list[ev.Event]) -> None:
        """EVENTS, folded one command at a time, were appended as one write: place the state where a fold of
        the log puts it, after a write that begins with their first."""
        if events and events[0].num is not msgspec.UNSET:
            self.order = (events[0].ts, events[0].num)

    def is_alive(self, session_id: str, now: str) -> bool:
        s = self.sessions.get(session_id)
        if s is None or s.left:
            return False
        earliest, latest = _window(now, self.alive_ttl_s)
        return _within(s.last_seen, earliest, latest)

    def holder_alive(self, claim: Claim, now: str, alive: Container[str] | None = None) -> bool:
        """Whether CLAIM's holder is alive at NOW. ALIVE: the sessions alive at NOW, when the caller asks of
        many claims (see live_sessions)."""
        return claim.session in alive if alive is not None else self.is_alive(claim.session, now)

    def claim_holds(self, claim: Claim, now: str, alive: Container[str] | None = None) -> bool:
        """Whether CLAIM still excludes others: its holder lives and its ttl has not run out (ALIVE: see
        holder_alive)."""
        if not self.holder_alive(claim, now, alive):
            return False
        return claim.ttl_s is None or _within(claim.refreshed, _window(now, claim.ttl_s)[0], None)

    def stale_reason(self, claim: Claim, now: str, alive: Container[str] | None = None) -> str:
        """Why CLAIM no longer excludes others; empty while it does."""
        if self.claim_holds(claim, now, alive):
            return ""
        return "ttl expired" if self.holder_alive(claim, now, alive) else "holder not alive"

    def live_sessions(self, now: str) -> list[str]:
        earliest, latest = _window(now, self.alive_ttl_s)
        # _within inlined for the times evhub writes (a status of thousands of sessions asks each): only a
        # time of another shape pays for the call.
        width = len(_LAST)
        live = []
        for sid, s in self.sessions.items():
            t = s.last_seen
            if not s.left and (earliest <= t <= latest if len(t) == width and t[-1] == "Z"
                               else _within(t, earliest, latest)):
                live.append(sid)
        return live

    def claims_of(self, session_id: str) -> list[Claim]:
        """The claims SESSION_ID holds, stale or not, by priority."""
        return sorted((c for c in self.claims.values() if c.session == session_id), key=_priority)

    def milestones_of(self, session_id: str) -> list[Milestone]:
        """The unfinished milestones SESSION_ID owns, by id."""
        return sorted((m for m in self.milestones.values() if m.owner == session_id and m.completed is None),
                      key=_mid)

    def claims_by_holder(self) -> dict[str, list[Claim]]:
        """claims_of every session that holds one, in one pass (a view of every session asks for all)."""
        held: dict[str, list[Claim]] = {}
        for c in sorted(self.claims.values(), key=_priority):
            held.setdefault(c.session, []).append(c)
        return held

    def milestones_by_owner(self) -> dict[str, list[Milestone]]:
        """milestones_of every session that owns one, in one pass."""
        owned: dict[str, list[Milestone]] = {}
        for m in sorted(self.milestones.values(), key=_mid):
            if m.owner is not None and m.completed is None:
                owned.setdefault(m.owner, []).append(m)
        return owned

    def resolve(self, session_id: str) -> str:
        """The current id of a session, following agreed renames."""
        if session_id in self.sessions:
            return session_id
        return self.aliases.get(session_id, session_id)

    def agent_session(self, agent: str, agent_session: str) -> str | None:
        """The session an agent's own session was attached to, under its current id."""
        return self.agents.get(f"{agent}/{agent_session}")

    def stored(self) -> None:
        """Forget the new messages and renames: the read model holds them now."""
        self.new_messages = []
        self.new_renames = []

    def pending_proposal(self, proposed: str) -> Proposal | None:
        for p in self.proposals:
            if p.status == "pending" and p.proposed == proposed:
                return p
        return None


_FIRST, _LAST = "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"


@lru_cache(maxsize=64)
def _window(now: str, seconds: float) -> tuple[str, str]:
    """The stored times from SECONDS before NOW to FUTURE_BOUND_S after it: stored times have a fixed
    width, so one is in the window exactly when it sorts between the two (a string comparison is what
    lets a view of thousands of sessions ask each whether it is alive)."""
    at = parse_ts(now)
    try:
        earliest = format_ts(at - timedelta(seconds=seconds))
    except OverflowError:
        earliest = _FIRST
    try:
        latest = format_ts(at + timedelta(seconds=FUTURE_BOUND_S))
    except OverflowError:
        latest = _LAST
    return earliest, latest


def _within(ts: str, earliest: str, latest: str | None) -> bool:
    """Whether the stored time TS is from EARLIEST to LATEST (no bound when None)."""
    if len(ts) != len(_LAST) or ts[-1] != "Z":
        ts = normalize_ts(ts)  # not as evhub writes times (a hand-made log): compared as a time
    return earliest <= ts and (latest is None or ts <= latest)


def _priority(c: Claim) -> str:
    return c.priority


def _mid(m: Milestone) -> str:
    return m.id


def fold(events: Iterable[ev.Event | ev.UnknownEvent], state: State | None = None) -> State:
    """The state after EVENTS, starting from STATE (or an empty hub).

    This loop is the replay's hot path (a million events): one dict lookup and one handler
    call an event, and the latest time kept in a local."""
    st = State() if state is None else state
    handlers, seen = _HANDLERS, _SEEN
    sessions = st.sessions
    heartbeat = ev.Heartbeat
    unset = msgspec.UNSET
    seq, last_ts = st.seq, st.last_ts
    try:
        for e in events:
            if e.num is not unset:
                _numbered(st, e, e.num, seq)
            seq = e.seq
            if e.ts > last_ts:
                last_ts = e.ts
            cls = e.__class__
            if cls is heartbeat:
                # Seven events in ten are heartbeats: handled here, without a call.
                s = sessions.get(e.session)  # type: ignore[union-attr, arg-type]
                if s is not None:
                    s.last_seen = e.ts
                    s.status = e.status  # type: ignore[union-attr]
            elif (handler := seen.get(cls)) is not None:
                # A sign of life of its session, marked here rather than by a call around the handler.
                s = sessions.get(e.session)  # type: ignore[union-attr, arg-type]
                if s is not None:
                    s.last_seen = e.ts
                handler(st, e)
            else:
                handlers.get(cls, _unknown)(st, e)
    finally:
        # Kept in locals in the loop: setting a Struct attribute costs as much as the rest of a heartbeat.
        st.seq, st.last_ts = seq, last_ts
    return st


def next_number(top: int, clone: int) -> int:
    """The number clone CLONE gives its next event when the highest number it knows is TOP: the smallest
    above TOP that ends in CLONE (see _order)."""
    return top + 1 + (clone - top - 1) % CLONES


def _numbered(st: State, e: ev.Event | ev.UnknownEvent, n: int, before: int) -> None:
    """Place event E, numbered N by a clone, in the fold's order: a write must begin after the last one folded
    began (else OutOfOrder). BEFORE is the seq of the event folded before it."""
    if not st.top:
        st.prefix = before  # the events numbered by their seqs come first, in every clone's log and order
    if not st.opening:
        key = (e.ts, n)
        if key < st.order:
            raise OutOfOrder(f"event {n} sorts before event {st.order[1]}, folded already")
        st.order = key
    st.opening = e.more is True
    if n > st.top:
        st.top = n
    clone = n % CLONES
    if n > st.tops.get(clone, 0):
        st.tops[clone] = n
    # Written on a clone that had not seen a rename agreed on another: the id it names is the renamed
    # session's (decide names sessions by their current ids, so no other event needs this).
    sid = getattr(e, "session", None)
    if sid in st.aliases and sid not in st.sessions and not isinstance(e, ev.SessionRegistered):
        e.session = st.aliases[sid]  # type: ignore[union-attr]


def evolve(state: State, e: ev.Event | ev.UnknownEvent) -> State:
    """Apply one event to STATE and return it."""
    return fold((e,), state)


def _unknown(st: State, e: ev.Event | ev.UnknownEvent) -> None:
    """An event from a newer evhub: kept in the log, counted, not folded."""
    st.unknown_events += 1


def _hub_created(st: State, e: ev.HubCreated) -> None:
    st.hub_id = e.id
    st.created = e.ts
    st.alive_ttl_s = e.alive_ttl_s
    st.version = e.v


def _registered(st: State, e: ev.SessionRegistered) -> None:
    st.aliases.pop(e.session, None)
    old = st.sessions.get(e.session)
    if old is not None and not e.resume and _apart(e, old.incarnation) and st.is_alive(e.session, e.ts):
        # Two clones apart each let a session take this id: they are one session here, and are told.
        old.last_seen = e.ts
        _tell(st, e, f"the id {e.session} was taken on two clones apart (here since {old.first_seen}, and again "
                     f"at {e.ts}): the two sessions are one here now; one of you should pick another id with "
                     f"`evhub hello NEW_ID` and release what it holds as {e.session}")
        return
    if old is not None:
        old.last_seen = e.ts
    if old is None:
        st.sessions[e.session] = Session(
            id=e.session,
            role=e.role,
            specialization=e.specialization,
            about=e.about,
            first_seen=e.ts,
            last_seen=e.ts,
            incarnation=e.number,
        )
        return
    if not e.resume:
        # A new incarnation never revives the claims its predecessor left behind.
        for c in st.claims_of(e.session):
            del st.claims[c.priority]
        old.incarnation = e.number
        old.first_seen = e.ts
        old.role, old.specialization, old.about = e.role, e.specialization, e.about
    else:
        old.role = e.role or old.role
        old.specialization = e.specialization or old.specialization
        old.about = e.about or old.about
    old.left = False
    old.status = ""


def _left(st: State, e: ev.SessionLeft) -> None:
    s = st.sessions.get(e.session)
    if s is not None:
        s.left = True
        s.status = "left"
    for c in st.claims_of(e.session):
        del st.claims[c.priority]


def _proposed(st: State, e: ev.IdProposed) -> None:
    rival = st.pending_proposal(e.proposed)
    if rival is not None and rival.session != e.session and _apart(e, rival.seq) and st.is_alive(rival.session, e.ts):
        _tell(st, e, f"your proposal to be known as {e.proposed} was lost in a merge: {rival.session} proposed it "
                     f"first on another clone ({rival.ts})")
        return
    voters = [sid for sid in st.live_sessions(e.ts) if sid != e.session]
    # A new proposal replaces the proposer's pending one, and one for the same id whose proposer died.
    for old in st.proposals:
        if old.status == "pending" and (old.session == e.session or old.proposed == e.proposed):
            old.status = "withdrawn"
    p = Proposal(seq=e.number, ts=e.ts, session=e.session, proposed=e.proposed, reason=e.reason, voters=voters,
                 known_as=e.session)
    st.proposals.append(p)
    s = st.sessions.get(e.session)
    if s is not None:
        s.agreement = "proposed"
    _settle(st, p, e)


def _accepted(st: State, e: ev.IdAccepted) -> None:
    p = st.pending_proposal(e.proposed)
    if p is None or e.session in p.accepted:
        return
    p.accepted.append(e.session)
    _settle(st, p, e)


def _rejected(st: State, e: ev.IdRejected) -> None:
    p = st.pending_proposal(e.proposed)
    if p is None:
        return
    p.status = "rejected"
    p.rejected_by = e.session
    p.reject_reason = e.reason
    s = st.sessions.get(p.session)
    if s is not None:
        s.agreement = "rejected"
    _trim_proposals(st)


def _settle(st: State, p: Proposal, e: ev.IdProposed | ev.IdAccepted) -> None:
    """Agree a proposal once every session live at the proposal has accepted it."""
    if not set(p.voters) <= set(p.accepted):
        return
    if p.proposed in st.sessions:
        # Registered on another clone meanwhile (a hub alone refuses both): the session that has it keeps it.
        p.status = "withdrawn"
        s = st.sessions.get(p.known_as)
        if s is not None:
            s.agreement = "none"
        _post(st, Message(seq=e.number, ts=e.ts, sender=MERGE_SENDER, to=p.known_as, clone=NOTICE,
                          text=f"your proposal to be known as {p.proposed} was lost in a merge: a session "
                               f"registered as {p.proposed} on another clone"))
        _trim_proposals(st)
        return
    p.status = "agreed"
    _rename(st, p.session, p.proposed, e.number)
    _trim_proposals(st)


def _trim_proposals(st: State) -> None:
    decided = [p for p in st.proposals if p.status != "pending"]
    for p in decided[:-DECIDED_PROPOSALS_KEPT]:
        st.proposals.remove(p)


def _rename(st: State, old: str, new: str, seq: int) -> None:
    s = st.sessions.pop(old, None)
    if s is None:
        return
    s.id = new
    s.agreement = "agreed"
    s.aka.append(old)
    st.sessions[new] = s
    # An old name taken up again stops leading to its former owner, as after a hello under it.
    st.aliases.pop(new, None)
    for alias, target in st.aliases.items():
        if target == old:
            st.aliases[alias] = new
    st.aliases[old] = new
    for key, sid in st.agents.items():
        if sid == old:
            st.agents[key] = new
    for c in st.claims.values():
        if c.session == old:
            c.session = new
    for m in st.milestones.values():
        if m.owner == old:
            m.owner = new
    # Mail follows the session, so a later session under the old name never reads it.
    for msg in (*st.messages, *st.new_messages):
        if msg.to == old:
            msg.to = new
        if msg.sender == old:
            msg.sender = new
    st.new_renames.append(Rename(seq=seq, old=old, new=new))
    # Proposals keep the proposer's id as it was then, the record of who asked for what, and follow it in
    # known_as (a later session under the old id is not their proposer).
    for p in st.proposals:
        if p.known_as == old:
            p.known_as = new
        p.voters = [new if v == old else v for v in p.voters]
        p.accepted = [new if v == old else v for v in p.accepted]


def _apart(e: ev.Event, number: int) -> bool:
    """Whether event E was written on another clone than the thing numbered NUMBER, so it may not have known
    it (a clone learns another's events only when they sync). Events before the hub's first sync were known
    to every clone; an event that did know it was decided by decide's rules, and the fold keeps it as it is."""
    return e.num is not msgspec.UNSET and e.num % CLONES != number % CLONES


def _beaten(st: State, priority: str, e: ev.SessionEvent, took_over_from: str | None) -> Claim | None:
    """The claim on PRIORITY that E's claim (taken over from TOOK_OVER_FROM) loses to in a merge: held
    by another session on another clone, unknown to E, and still holding when E was made. Decided as
    decide would have decided E had it known (a stale claim is taken over)."""
    c = st.claims.get(priority)
    if c is None or c.session == e.session or took_over_from == c.session or not _apart(e, c.token):
        return None
    return c if st.claim_holds(c, e.ts) else None


def _tell(st: State, e: ev.SessionEvent, text: str) -> None:
    """A notice from the fold to E's session, numbered by E (each event makes one at most)."""
    _post(st, Message(seq=e.number, ts=e.ts, sender=MERGE_SENDER, to=e.session, text=text, clone=NOTICE))


def _claimed(st: State, e: ev.PriorityClaimed) -> None:
    c = st.claims.get(e.priority)
    took_over_from = e.took_over_from
    if c is not None and c.session != e.session and took_over_from != c.session and _apart(e, c.token):
        if st.claim_holds(c, e.ts):
            _tell(st, e, f"your claim on {e.priority} (token {e.number}) was lost in a merge to {c.session}, who "
                         f"claimed it first on another clone (token {c.token}, since {c.since}): token {e.number} "
                         "is refused from now on")
            return
        took_over_from = c.session  # stale when this claim was made: taken over, as decide would have
    if c is not None and c.session == e.session and took_over_from is None:
        # A refresh by the holder keeps its fencing token.
        c.refreshed = e.ts
        c.ttl_s = e.ttl_s
        return
    st.claims[e.priority] = Claim(
        priority=e.priority,
        session=e.session,
        token=e.number,
        since=e.ts,
        refreshed=e.ts,
        ttl_s=e.ttl_s,
        took_over_from=took_over_from,
    )


def _completed(st: State, item: Completed) -> None:
    st.completed.append(item)
    del st.completed[:-COMPLETED_KEPT]


def _released(st: State, e: ev.PriorityReleased) -> None:
    c = st.claims.get(e.priority)
    if c is not None and c.session != e.session and not e.forced:
        return  # a release by a claimer that lost the claim in a merge: the holder keeps it
    st.claims.pop(e.priority, None)
    if e.done:
        _completed(st, Completed(ts=e.ts, kind="priority", name=e.priority, session=e.session, note=e.note))


def _focus(st: State, e: ev.FocusSet) -> None:
    st.focus = Focus(text=e.text, session=e.session, ts=e.ts)


def _note(st: State, e: ev.NoteAdded) -> None:
    s = st.sessions.get(e.session)
    if s is not None:
        s.notes.append(Note(seq=e.number, ts=e.ts, text=e.text))
        del s.notes[:-NOTES_KEPT]


def _milestone_created(st: State, e: ev.MilestoneCreated) -> None:
    st.milestones[e.milestone] = Milestone(
        id=e.milestone,
        title=e.title,
        priority=e.priority,
        created=e.ts,
        created_by=e.session,
        steps=[Step(text=t) for t in e.steps],
    )


def _milestone_claimed(st: State, e: ev.MilestoneClaimed) -> None:
    m = st.milestones.get(e.milestone)
    # Its priority's claim follows in the same write, and tells the loser of a merge.
    if m is not None and _beaten(st, m.priority, e, None) is None:
        m.owner = e.session


def _step_updated(st: State, e: ev.StepUpdated) -> None:
    m = st.milestones.get(e.milestone)
    if m is None or not 1 <= e.step <= len(m.steps) or _beaten(st, m.priority, e, None) is not None:
        return  # the beaten: made by a session that lost the milestone's claim in a merge
    step = m.steps[e.step - 1]
    step.status, step.note, step.updated, step.by = e.status, e.note, e.ts, e.session
    complete = m.next_step is None and bool(m.steps)
    if complete and m.completed is None:
        m.completed = e.ts
        _completed(st, Completed(ts=e.ts, kind="milestone", name=m.id, session=e.session, note=m.title))
    elif not complete:
        m.completed = None


def _steps_added(st: State, e: ev.StepsAdded) -> None:
    m = st.milestones.get(e.milestone)
    if m is None:
        return
    m.steps.extend(Step(text=t) for t in e.steps)
    if e.steps:
        m.completed = None  # new work to do: complete again once its steps are done too


def _message(st: State, e: ev.MessagePosted) -> None:
    _post(st, Message(seq=e.number, ts=e.ts, sender=e.session, to=e.to, text=e.text, clone=_clone(e), at=e.seq))


def _clone(e: ev.Event) -> int:
    """The clone event E was written on (NOT_CLONED before the hub's first sync)."""
    return NOT_CLONED if e.num is msgspec.UNSET else e.num % CLONES


def _post(st: State, m: Message) -> None:
    st.message_count += 1
    st.new_messages.append(m)
    st.messages.append(m)
    if len(st.messages) > 2 * MESSAGES_KEPT:  # trimmed in steps, so a long fold does not shift the list each time
        del st.messages[:-MESSAGES_KEPT]


def _read(st: State, e: ev.MessagesRead) -> None:
    s = st.sessions.get(e.session)
    if s is None:
        return
    clone = _clone(e)
    if clone == NOT_CLONED:
        s.read_upto = max(s.read_upto, e.upto)
    else:
        s.read_upto = max(s.read_upto, min(e.upto, st.prefix))
        s.read_clones[clone] = max(s.read_clones.get(clone, 0), e.upto)
    seqs = [] if e.seqs is msgspec.UNSET else e.seqs
    if seqs or s.read_seqs:
        s.read_seqs = sorted({q for q in (*s.read_seqs, *seqs) if q > s.read_upto})


def _agent_attached(st: State, e: ev.AgentAttached) -> None:
    st.agents[f"{e.agent}/{e.agent_session}"] = e.session


def _lost(st: State, e: ev.EventLost) -> None:
    """A placeholder for a damaged line changes no state: what it held is in quarantine."""


_HANDLERS: dict[type, Callable[[State, Any], None]] = {
    ev.HubCreated: _hub_created,
    ev.SessionRegistered: _registered,  # it looks at the session's liveness before this sign of life
    ev.EventLost: _lost,
}
# The events that are a sign of life of their session: the fold marks it seen at the event's time, then
# calls the handler (heartbeats, which only do that and set the status, it handles itself).
_SEEN: dict[type, Callable[[State, Any], None]] = {
    ev.SessionLeft: _left,
    ev.IdProposed: _proposed,
    ev.IdAccepted: _accepted,
    ev.IdRejected: _rejected,
    ev.PriorityClaimed: _claimed,
    ev.PriorityReleased: _released,
    ev.FocusSet: _focus,
    ev.NoteAdded: _note,
    ev.MilestoneCreated: _milestone_created,
    ev.MilestoneClaimed: _milestone_claimed,
    ev.StepUpdated: _step_updated,
    ev.StepsAdded: _steps_added,
    ev.MessagePosted: _message,
    ev.MessagesRead: _read,
    ev.AgentAttached: _agent_attached,
}


# -- claim history: what each event did to the claims, as the fold decided it --------------------


class ClaimChange(NamedTuple):
    """What one event did to one priority's claim."""

    action: str  # claimed, refreshed, took over, released, finished, force-released, dropped, left, renamed
    priority: str
    session: str  # the holder by its id after the event (once released: the last holder)
    token: int
    event: ev.AnyEvent
    renamed_from: str | None = None  # for "renamed": the holder's id before


RUN_FOLDED = 4096  # events folded at once between two that can move a claim (bounds the memory held)
# The only events that can change who holds what; every other event is folded in runs, unwatched.
_MOVES_CLAIMS = frozenset({ev.PriorityClaimed, ev.PriorityReleased, ev.SessionRegistered, ev.SessionLeft,
                           ev.IdProposed, ev.IdAccepted})


def claim_history(events: Iterable[ev.AnyEvent], state: State, priority: str | None = None,
                  ) -> Iterator[ClaimChange]:
    """Fold EVENTS into STATE and yield, in order, each change they made to the claims (to
    PRIORITY's only, when given).  The fold alone decides who holds what (renames, new
    incarnations and takeovers included); this only compares the claims before and after."""
    run: list[ev.AnyEvent] = []
    for e in events:
        if e.__class__ not in _MOVES_CLAIMS:
            run.append(e)
            if len(run) == RUN_FOLDED:
                fold(run, state)
                run = []
            continue
        if run:
            fold(run, state)
            run = []
        yield from _changes(state, e, priority)
    if run:
        fold(run, state)


def _changes(st: State, e: ev.AnyEvent, priority: str | None) -> list[ClaimChange]:
    claims = st.claims
    watched = [priority] if priority is not None else list(claims)
    before = {p: (claims[p].session, claims[p].token) for p in watched if p in claims}
    fold((e,), st)
    if priority is None and isinstance(e, ev.PriorityClaimed) and e.priority not in before:
        watched.append(e.priority)
    out: list[ClaimChange] = []
    for p in watched:
        old, c = before.get(p), claims.get(p)
        if c is None:
            if old is not None:
                out.append(ClaimChange(_ending(e), p, old[0], old[1], e))
        elif old is None or c.token != old[1]:
            out.append(ClaimChange("took over" if c.took_over_from else "claimed", p, c.session, c.token, e))
        elif c.session != old[0]:
            out.append(ClaimChange("renamed", p, c.session, c.token, e, renamed_from=old[0]))
        elif isinstance(e, ev.PriorityClaimed) and e.priority == p:
            out.append(ClaimChange("refreshed", p, c.session, c.token, e))
    return out


def _ending(e: ev.AnyEvent) -> str:
    """How event E ended the claim it took away."""
    if isinstance(e, ev.PriorityReleased):
        return "force-released" if e.forced else ("finished" if e.done else "released")
    if isinstance(e, ev.SessionRegistered):
        return "dropped"  # a new incarnation of the holder never revives its claim
    return "left"
