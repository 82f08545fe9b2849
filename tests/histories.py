"""Valid event histories for property tests: random commands run through the pure `decide`.

`Sim` is a hub without I/O: a state, its log and a fake clock.  `histories()` is a hypothesis
strategy of whole logs (starting with hub_created) made by running random commands against it,
skipping the ones `decide` refuses, as the real hub would.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from clock import T0
from hypothesis import strategies as st

from evhub import _decide as d
from evhub import _events as ev
from evhub._errors import EvhubError
from evhub._state import State, evolve, fold
from evhub._values import STEP_STATUSES, format_ts

TTL = 300
SESSIONS = ("session-1", "session-2", "alice", "bob")
NEW_IDS = ("alice", "bob", "carol")
PRIORITIES = ("p1", "p2", "deploy-dashboard")
TITLES = ("Deploy dashboard", "Fix CI")
MILESTONES = ("deploy-dashboard", "fix-ci")


class Sim:
    """A hub in memory: decide, give each event an id, evolve, append."""

    def __init__(self, alive_ttl_s: int = TTL) -> None:
        self.now = T0
        self.events: list[ev.AnyEvent] = [
            ev.HubCreated(seq=1, id="E000001", ts=self.ts(), alive_ttl_s=alive_ttl_s)
        ]
        self.state: State = fold(self.events)

    def ts(self) -> str:
        return format_ts(self.now)

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def do(self, cmd: d.Command) -> list[ev.Event]:
        """The events CMD produced, now applied; raises what decide raises."""
        events = d.decide(cmd, self.state, self.ts())
        for e in events:
            e.id = f"E{e.seq:06d}"
            self.events.append(e)  # type: ignore[arg-type]
            evolve(self.state, e)  # type: ignore[arg-type]
        return events

    def attempt(self, cmd: d.Command) -> list[ev.Event] | None:
        try:
            return self.do(cmd)
        except EvhubError:
            return None


def positionless(state: State) -> bytes:
    """STATE without the positions of events in one clone's file (its own, and each message's): what clones
    that hold the same events must agree on."""
    messages = [msgspec.structs.replace(m, at=0) for m in state.messages]
    return msgspec.msgpack.encode(msgspec.structs.replace(state, seq=0, messages=messages))


# Text that logs and views must survive: newlines, JSON quoting, U+2028, RTL marks, astral emoji.
ODD = ("\n", "\r\n", '"', "\\", "}\n{", "\u2028", "\u202e", "e\u0301", "\ufeff", "🧠", "ﬀ", " ", "\t")
texts = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.lists(st.sampled_from(ODD), max_size=4).map("".join),
)
# Focus, notes, messages and steps must not be blank.
words = st.tuples(st.sampled_from(("fix", "ok", "🧠")), texts).map("".join)
sessions = st.sampled_from(SESSIONS)
priorities = st.sampled_from(PRIORITIES)
milestones = st.sampled_from(MILESTONES)
ttls = st.sampled_from([None, 60, 600])
tokens = st.one_of(st.none(), st.none(), st.integers(1, 60))

# A command appearing twice is one drawn twice as often.
commands = st.one_of(
    st.builds(d.Hello, session=sessions, role=texts, resume=st.booleans()),
    st.builds(d.Hello, session=st.none() | sessions),
    st.builds(d.Heartbeat, session=sessions, status=texts),
    st.builds(d.Bye, session=sessions),
    st.builds(d.ClaimPriority, session=sessions, priority=priorities, ttl_s=ttls),
    st.builds(d.ClaimPriority, session=sessions, priority=priorities, ttl_s=ttls),
    st.builds(
        d.ReleasePriority,
        session=sessions,
        priority=priorities,
        done=st.booleans(),
        note=texts,
        force=st.booleans(),
        token=tokens,
    ),
    st.builds(d.SetFocus, session=sessions, text=words),
    st.builds(d.AddNote, session=sessions, text=words),
    st.builds(
        d.CreateMilestone,
        session=sessions,
        title=st.sampled_from(TITLES),
        priority=st.none() | priorities,
        steps=st.lists(words, max_size=3).map(tuple),
    ),
    st.builds(d.ClaimMilestone, session=sessions, milestone=milestones, ttl_s=ttls),
    st.builds(
        d.UpdateStep,
        session=sessions,
        milestone=milestones,
        step=st.integers(0, 3),
        status=st.sampled_from((*STEP_STATUSES, "done", "done", "finished")),
        token=tokens,
    ),
    st.builds(d.SendMessage, session=sessions, text=words, to=st.just("all") | sessions),
    st.builds(d.MarkRead, session=sessions, upto=st.integers(0, 60)),
    st.builds(d.ProposeId, session=sessions, proposed=st.sampled_from(NEW_IDS), reason=texts),
    st.builds(d.AcceptId, session=sessions, proposed=st.sampled_from(NEW_IDS)),
    st.builds(d.AcceptId, session=sessions, proposed=st.sampled_from(NEW_IDS)),
    st.builds(d.RejectId, session=sessions, proposed=st.sampled_from(NEW_IDS), reason=texts),
)
# Mostly short gaps; now and then exactly the ttl, just past it, or a long silence.
gaps = st.integers(0, 90) | st.sampled_from([TTL, TTL + 1, 10 * TTL])


def run(greeters: list[str], steps: list[tuple[int, d.Command]]) -> list[ev.AnyEvent]:
    sim = Sim()
    for sid in greeters:
        sim.do(d.Hello(session=sid))
    for gap, cmd in steps:
        sim.tick(gap)
        sim.attempt(cmd)
    return sim.events


def histories(max_steps: int = 60) -> st.SearchStrategy[list[ev.AnyEvent]]:
    """Logs of a hub that random sessions used: every event one `decide` returned."""
    return st.builds(
        run,
        st.lists(sessions, unique=True, max_size=len(SESSIONS)),
        st.lists(st.tuples(gaps, commands), min_size=max_steps // 2, max_size=max_steps),
    )
