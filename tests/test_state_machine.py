"""Random commands by several sessions, with a clock that jumps: no two live holders, ever."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from histories import MILESTONES, NEW_IDS, PRIORITIES, SESSIONS, TITLES, TTL, Sim, texts, ttls, words
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from evhub import _decide as d
from evhub import _events as ev
from evhub._errors import EvhubError
from evhub._state import evolve
from evhub._values import STEP_STATUSES

sessions = st.sampled_from(SESSIONS)
priorities = st.sampled_from(PRIORITIES)
milestones = st.sampled_from(MILESTONES)


@dataclass(frozen=True)
class Before:
    """A claim as it stood when decide ran: its holder, and whether it still excluded others."""

    session: str
    holds: bool


class Hub(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim()
        self.births = 0  # sessions registered under an id no session had

    def run(self, cmd: d.Command) -> None:
        state, now = self.sim.state, self.sim.ts()
        before = {p: Before(c.session, state.claim_holds(c, now)) for p, c in state.claims.items()}
        packed = msgspec.msgpack.encode(state)
        try:
            events = d.decide(cmd, state, now)
        except EvhubError:
            events = []
        assert msgspec.msgpack.encode(state) == packed, f"decide changed the state for {cmd}"
        for e in events:
            if isinstance(e, ev.PriorityClaimed):
                prev = before.get(e.priority)
                assert prev is None or prev.session == e.session or not prev.holds, (
                    f"{e.session} was granted {e.priority} while live {prev and prev.session} held it"
                )
                expected = prev.session if prev is not None and prev.session != e.session else None
                assert e.took_over_from == expected
            if isinstance(e, ev.SessionRegistered) and e.session not in self.sim.state.sessions:
                self.births += 1
            e.id = f"E{e.seq:06d}"
            self.sim.events.append(e)  # type: ignore[arg-type]
            evolve(self.sim.state, e)  # type: ignore[arg-type]

    @initialize(greeters=st.lists(sessions, unique=True, min_size=2))
    def greet(self, greeters: list[str]) -> None:
        for sid in greeters:
            self.run(d.Hello(session=sid))

    @rule(seconds=st.integers(0, 120) | st.sampled_from([TTL, TTL + 1, 2 * TTL]))
    def wait(self, seconds: int) -> None:
        self.sim.tick(seconds)

    @rule(sid=sessions, resume=st.booleans())
    def hello(self, sid: str, resume: bool) -> None:
        self.run(d.Hello(session=sid, resume=resume))

    @rule()
    def hello_any(self) -> None:
        self.run(d.Hello())

    @rule(sid=sessions, status=texts)
    def heartbeat(self, sid: str, status: str) -> None:
        self.run(d.Heartbeat(session=sid, status=status))

    @rule(sid=sessions)
    def bye(self, sid: str) -> None:
        self.run(d.Bye(session=sid))

    @rule(sid=sessions, priority=priorities, ttl_s=ttls)
    def claim(self, sid: str, priority: str, ttl_s: int | None) -> None:
        self.run(d.ClaimPriority(session=sid, priority=priority, ttl_s=ttl_s))

    @precondition(lambda self: self.sim.state.claims)
    @rule(data=st.data(), seconds=st.sampled_from([0, 30, 61, TTL, TTL + 1]), ttl_s=ttls)
    def contest(self, data: st.DataObject, seconds: int, ttl_s: int | None) -> None:
        """Another session goes for a held priority, now or after a while."""
        c = data.draw(st.sampled_from(list(self.sim.state.claims.values())))
        self.sim.tick(seconds)
        sid = data.draw(sessions.filter(lambda s: s != c.session))
        self.run(d.ClaimPriority(session=sid, priority=c.priority, ttl_s=ttl_s))

    @precondition(lambda self: self.sim.state.claims)
    @rule(data=st.data(), force=st.booleans(), done=st.booleans())
    def release(self, data: st.DataObject, force: bool, done: bool) -> None:
        c = data.draw(st.sampled_from(list(self.sim.state.claims.values())))
        sid = data.draw(st.just(c.session) | sessions)
        token = data.draw(st.sampled_from([None, c.token, c.token - 1]))
        head = len(self.sim.events)
        self.run(d.ReleasePriority(session=sid, priority=c.priority, force=force, token=token, done=done))
        if token is not None and token != c.token:
            assert len(self.sim.events) == head, "a stale fencing token released a claim"

    @rule(
        sid=sessions,
        title=st.sampled_from(TITLES),
        priority=st.none() | priorities,
        steps=st.lists(words, max_size=3),
    )
    def milestone_create(self, sid: str, title: str, priority: str | None, steps: list[str]) -> None:
        self.run(d.CreateMilestone(session=sid, title=title, priority=priority, steps=tuple(steps)))

    @rule(sid=sessions, milestone=milestones, ttl_s=ttls)
    def milestone_claim(self, sid: str, milestone: str, ttl_s: int | None) -> None:
        self.run(d.ClaimMilestone(session=sid, milestone=milestone, ttl_s=ttl_s))

    @rule(sid=sessions, milestone=milestones, step=st.integers(1, 3), status=st.sampled_from(STEP_STATUSES))
    def milestone_step(self, sid: str, milestone: str, step: int, status: str) -> None:
        self.run(d.UpdateStep(session=sid, milestone=milestone, step=step, status=status))

    @rule(sid=sessions, milestone=milestones, steps=st.lists(words, min_size=1, max_size=2))
    def milestone_add_steps(self, sid: str, milestone: str, steps: list[str]) -> None:
        self.run(d.AddSteps(session=sid, milestone=milestone, steps=tuple(steps)))

    @rule(sid=sessions, text=words, to=st.just("all") | sessions)
    def msg_send(self, sid: str, text: str, to: str) -> None:
        self.run(d.SendMessage(session=sid, text=text, to=to))

    @rule(sid=sessions)
    def msg_read(self, sid: str) -> None:
        self.run(d.MarkRead(session=sid, upto=self.sim.state.seq))

    @rule(sid=sessions, proposed=st.sampled_from(NEW_IDS))
    def propose(self, sid: str, proposed: str) -> None:
        self.run(d.ProposeId(session=sid, proposed=proposed))

    @precondition(lambda self: any(p.status == "pending" for p in self.sim.state.proposals))
    @rule(data=st.data(), accept=st.booleans())
    def answer(self, data: st.DataObject, accept: bool) -> None:
        p = data.draw(st.sampled_from([p for p in self.sim.state.proposals if p.status == "pending"]))
        sid = data.draw(st.sampled_from(p.voters) | sessions if p.voters else sessions)
        answer = d.AcceptId if accept else d.RejectId
        self.run(answer(session=sid, proposed=p.proposed))

    @invariant()
    def seq_is_gap_free_and_time_never_runs_back(self) -> None:
        events = self.sim.events
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert self.sim.state.seq == len(events)
        assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))

    @invariant()
    def at_most_one_live_holder_per_priority(self) -> None:
        state, now = self.sim.state, self.sim.ts()
        holding = [c.priority for c in state.claims.values() if state.claim_holds(c, now)]
        assert len(holding) == len(set(holding))

    @invariant()
    def every_claim_has_a_registered_holder_that_has_not_left(self) -> None:
        state = self.sim.state
        for p, c in state.claims.items():
            assert c.priority == p
            assert c.session in state.sessions and not state.sessions[c.session].left

    @invariant()
    def no_session_is_ever_lost(self) -> None:
        # Renames move a session to a new key; nothing may land on top of another session.
        assert len(self.sim.state.sessions) == self.births

    @invariant()
    def a_milestone_is_complete_exactly_when_it_has_steps_all_done_or_skipped(self) -> None:
        for m in self.sim.state.milestones.values():
            assert (m.completed is not None) == (bool(m.steps) and m.next_step is None), m

    @invariant()
    def every_proposal_knows_its_proposer_by_a_registered_id(self) -> None:
        for p in self.sim.state.proposals:
            assert p.known_as in self.sim.state.sessions, p


TestHub = Hub.TestCase
TestHub.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
