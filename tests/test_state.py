"""The fold: pieces, snapshots and round trips agree; liveness, renames and incarnations."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from histories import TTL, Sim, histories
from hypothesis import given, settings
from hypothesis import strategies as st

from evhub import _decide as d
from evhub import _events as ev
from evhub._state import Claim, Session, State, claim_history, fold
from evhub._values import FUTURE_BOUND_S, format_ts, seconds_between

SETTINGS = settings(max_examples=120, deadline=None)


def copy_state(state: State) -> State:
    """A deep copy made as the read model keeps the state: through msgpack."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=State)


def packed(state: State) -> bytes:
    return msgspec.msgpack.encode(state)


@SETTINGS
@given(histories(), st.data())
def test_folding_in_two_pieces_equals_folding_whole(events: list[ev.AnyEvent], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(events)), label="cut")
    whole = fold(events)
    first = fold(events[:cut])
    assert packed(fold(events[cut:], first)) == packed(whole)
    # A snapshot of the first piece (as a cache would keep it) folds on to the same state too.
    snapshot = copy_state(fold(events[:cut]))
    assert packed(fold(events[cut:], snapshot)) == packed(whole)
    assert whole.seq == len(events)


@SETTINGS
@given(histories())
def test_folding_the_log_lines_equals_folding_the_events(events: list[ev.AnyEvent]) -> None:
    lines = b"".join(ev.encode(e) for e in events)  # type: ignore[arg-type]
    decoded = [ev.decode(line + b"\n") for line in lines.splitlines()]
    assert decoded == events
    assert ev.decode_block(lines) == events
    assert packed(fold(decoded)) == packed(fold(events))


@SETTINGS
@given(histories())
def test_folded_state_is_consistent(events: list[ev.AnyEvent]) -> None:
    state = fold(events)
    by_seq = {e.seq: e for e in events}
    for priority, claim in state.claims.items():
        holder = state.sessions[claim.session]
        assert not holder.left, f"{claim} is held by a session that left"
        # The token is the seq of the priority_claimed event that granted it.
        granted = by_seq[claim.token]
        assert isinstance(granted, ev.PriorityClaimed) and granted.priority == priority
        assert claim.since == granted.ts <= claim.refreshed
    for m in state.milestones.values():
        assert m.owner is None or m.owner in state.sessions
        assert (m.completed is not None) == (bool(m.steps) and m.next_step is None)
    for sid, s in state.sessions.items():
        assert s.id == sid
        assert sid not in state.aliases
        assert s.last_seen >= s.first_seen
    for alias, target in state.aliases.items():
        assert target in state.sessions, f"alias {alias} -> {target} leads nowhere"
    assert state.unknown_events == 0


@SETTINGS
@given(histories(), st.data())
def test_unknown_events_are_counted_and_otherwise_ignored(
    events: list[ev.AnyEvent], data: st.DataObject
) -> None:
    at = data.draw(st.integers(1, len(events)), label="at")
    newer = ev.UnknownEvent(seq=0, id="N1", ts=events[at - 1].ts, type="session_paused", session="session-1")
    mixed = [msgspec.structs.replace(e, seq=n) for n, e in enumerate([*events[:at], newer, *events[at:]], 1)]
    expected = fold([msgspec.structs.replace(e, seq=0) for e in events])
    got = fold([msgspec.structs.replace(e, seq=0) for e in mixed])
    assert got.unknown_events == 1
    got.unknown_events = 0
    # Claim tokens and read positions are seqs, so compare with every seq zeroed on both sides.
    assert packed(got) == packed(expected)


def test_liveness_is_computed_from_the_clock() -> None:
    sim = Sim()
    sim.do(d.Hello(session="a"))
    sim.do(d.Hello(session="b"))
    st0 = sim.ts()
    assert sim.state.live_sessions(st0) == ["a", "b"]
    sim.tick(TTL)
    assert sim.state.is_alive("a", sim.ts()), "exactly the ttl is still alive"
    sim.do(d.Heartbeat(session="b"))
    sim.tick(1)
    assert not sim.state.is_alive("a", sim.ts())
    assert sim.state.is_alive("b", sim.ts())
    # The state did not change; only the clock asked about did.
    assert sim.state.is_alive("a", st0)
    assert not sim.state.is_alive("nobody", st0)


def test_bye_makes_a_session_not_alive_at_once() -> None:
    sim = Sim()
    sim.do(d.Hello(session="a"))
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    sim.do(d.Bye(session="a"))
    assert not sim.state.is_alive("a", sim.ts())
    assert sim.state.sessions["a"].left
    assert sim.state.claims == {}
    assert sim.state.live_sessions(sim.ts()) == []


def test_ttl_comes_from_hub_created() -> None:
    sim = Sim(alive_ttl_s=30)
    sim.do(d.Hello(session="a"))
    sim.tick(31)
    assert sim.state.alive_ttl_s == 30
    assert not sim.state.is_alive("a", sim.ts())


def test_agreed_rename_moves_claims_and_milestones() -> None:
    sim = Sim()
    for sid in ("session-1", "session-2"):
        sim.do(d.Hello(session=sid))
    sim.do(d.CreateMilestone(session="session-1", title="Deploy dashboard", steps=("build", "ship")))
    sim.do(d.ClaimMilestone(session="session-1", milestone="deploy-dashboard"))
    sim.do(d.ClaimPriority(session="session-1", priority="p1", ttl_s=600))
    token = sim.state.claims["p1"].token
    sim.do(d.ProposeId(session="session-1", proposed="alice", reason="I do the dashboard"))
    assert "session-1" in sim.state.sessions, "no rename before every voter accepted"
    sim.do(d.AcceptId(session="session-2", proposed="alice"))
    state = sim.state
    assert "session-1" not in state.sessions
    alice = state.sessions["alice"]
    assert alice.agreement == "agreed" and alice.aka == ["session-1"]
    assert state.claims["p1"].session == "alice" and state.claims["p1"].token == token
    assert state.claims["deploy-dashboard"].session == "alice"
    assert state.milestones["deploy-dashboard"].owner == "alice"
    assert state.resolve("session-1") == "alice"
    # The old id still acts for the renamed session.
    sim.do(d.ReleasePriority(session="session-1", priority="p1", token=token))
    assert "p1" not in sim.state.claims


def test_new_incarnation_drops_old_claims() -> None:
    sim = Sim()
    sim.do(d.Hello(session="a"))
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    sim.tick(TTL + 1)
    sim.do(d.Hello(session="a"))
    assert sim.state.claims == {}
    assert sim.state.sessions["a"].incarnation == sim.state.seq


def test_resume_keeps_claims_nobody_took_over() -> None:
    sim = Sim()
    sim.do(d.Hello(session="a"))
    sim.do(d.Hello(session="b"))
    sim.do(d.ClaimPriority(session="a", priority="p1"))
    sim.do(d.ClaimPriority(session="a", priority="p2"))
    before = sim.state.claims["p1"].token
    sim.tick(TTL + 1)
    sim.do(d.ClaimPriority(session="b", priority="p2"))
    [hello] = sim.do(d.Hello(session="a", resume=True))
    assert isinstance(hello, ev.SessionRegistered) and hello.resume
    assert sim.state.claims["p1"].session == "a" and sim.state.claims["p1"].token == before
    assert sim.state.claims["p2"].session == "b"
    assert sim.state.claims["p2"].took_over_from == "a"


ENDINGS = {"released", "finished", "force-released", "dropped", "left"}


@SETTINGS
@given(histories())
def test_the_claim_history_ends_where_the_fold_ends(events: list[ev.AnyEvent]) -> None:
    """Replaying the changes claim_history reports gives the fold's claims, holder and token, and
    folding through it is the plain fold."""
    state = State()
    held: dict[str, tuple[str, int]] = {}
    for change in claim_history(events, state):
        if change.action in ENDINGS:
            assert held.pop(change.priority)[1] == change.token
            continue
        if change.action in ("refreshed", "renamed"):
            assert held[change.priority][1] == change.token  # the same claim: its token stays
        held[change.priority] = (change.session, change.token)
    assert packed(state) == packed(fold(events))
    assert held == {p: (c.session, c.token) for p, c in state.claims.items()}


def test_a_renamed_holder_keeps_its_claim_and_a_newcomer_under_the_old_id_takes_nothing() -> None:
    def event(cls: type, seq: int, **fields: object) -> ev.AnyEvent:
        return cls(seq=seq, id=f"{seq:026d}", ts=f"2026-11-25T12:00:{seq:02d}.000000Z", **fields)  # type: ignore[no-any-return]

    events = [
        event(ev.HubCreated, 1),
        event(ev.SessionRegistered, 2, session="alice"),
        event(ev.SessionRegistered, 3, session="bob"),
        event(ev.PriorityClaimed, 4, session="alice", priority="api"),
        event(ev.IdProposed, 5, session="alice", proposed="alicia"),
        event(ev.IdAccepted, 6, session="bob", proposed="alicia"),
        event(ev.SessionRegistered, 7, session="alice"),  # a newcomer takes the free old id
        event(ev.PriorityClaimed, 8, session="alicia", priority="api"),
    ]
    changes = list(claim_history(events, State()))
    assert [(c.action, c.session, c.token, c.event.seq) for c in changes] == [
        ("claimed", "alice", 4, 4), ("renamed", "alicia", 4, 6), ("refreshed", "alicia", 4, 8)]
    assert changes[1].renamed_from == "alice"
    assert [c.event.seq for c in claim_history(events, State(), priority="other")] == []


_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(seen=_TIMES, now=_TIMES, ttl=st.integers(0, 10_000), left=st.booleans(), hand_written=st.booleans())
def test_liveness_by_comparing_stored_times_is_the_rule_written_in_seconds(
        seen: datetime, now: datetime, ttl: int, left: bool, hand_written: bool) -> None:
    """is_alive compares stored times as strings (a view of thousands of sessions asks each); it must answer as
    the rule does: seen no longer than the ttl ago, and no further ahead than a clock may run."""
    stored = format_ts(seen)
    # A hand-made log may hold a time in another spelling (no microseconds, an offset): compared as a time.
    last_seen = seen.strftime("%Y-%m-%dT%H:%M:%S+00:00") if hand_written and seen.microsecond == 0 else stored
    state = State(alive_ttl_s=ttl)
    state.sessions["s"] = Session(id="s", last_seen=last_seen, left=left)
    state.claims["p"] = Claim(priority="p", session="s", token=1, since=stored, refreshed=stored, ttl_s=ttl // 2)
    ago = seconds_between(stored, format_ts(now))
    alive = not left and -FUTURE_BOUND_S <= ago <= ttl
    assert state.is_alive("s", format_ts(now)) == alive
    holds = alive and ago <= ttl // 2
    assert state.claim_holds(state.claims["p"], format_ts(now)) == holds
    # A view of thousands of claims asks each with the live sessions found once: the same answers.
    live = set(state.live_sessions(format_ts(now)))
    assert live == ({"s"} if alive else set())
    assert state.claim_holds(state.claims["p"], format_ts(now), live) == holds
    assert state.stale_reason(state.claims["p"], format_ts(now), live) == state.stale_reason(
        state.claims["p"], format_ts(now)) == ("" if holds else "ttl expired" if alive else "holder not alive")
