"""Conflicts between clones are decided by the fold, the same on every clone, and the loser is told."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from clock import at, fixed_now

from evhub import Conflict, Hub, _place
from evhub._state import MERGE_SENDER, State


@pytest.fixture
def clones(tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    """Two clones of one hub, A (index 0) with alice, B (index 1) with bob, at a fixed clock."""
    with fixed_now(at(0)):
        a, _ = Hub.init(tmp_path / "A")
        a.hello("alice")
        a.become_clone(0)
        _place.join(tmp_path / "B", a.log_bytes(), 1)
        b = Hub(tmp_path / "B")
        b.hello("bob")
        a.merge_log(b.log_bytes())
        yield a, b


def synced(*hubs: Hub) -> None:
    """Every hub merges every other's log, twice round, so all hold every event."""
    for _ in range(2):
        for x in hubs:
            for y in hubs:
                if x is not y:
                    x.merge_log(y.log_bytes())


def same_state(a: State, b: State) -> None:
    """A and B agree on everything but where the events sit in each clone's file."""
    pa, pb = msgspec.structs.replace(a, seq=0), msgspec.structs.replace(b, seq=0)
    assert msgspec.msgpack.encode(pa) == msgspec.msgpack.encode(pb)


def notices(hub: Hub, session: str) -> list[str]:
    return [m.text for m in hub.unread(session)[1] if m.sender == MERGE_SENDER]


def test_two_clones_that_claimed_one_priority_agree_on_the_first_and_the_other_is_told(clones: tuple[Hub, Hub]) -> None:
    a, b = clones
    with fixed_now(at(10)):
        won = a.claim("alice", "api")
    with fixed_now(at(20)):
        lost = b.claim("bob", "api")
    assert won.token != lost.token  # numbered apart: no token is handed out twice
    with fixed_now(at(30)):
        synced(a, b)
        sa, sb = a.state(), b.state()
    same_state(sa, sb)
    assert sa.claims["api"].session == "alice" and sa.claims["api"].token == won.token
    with fixed_now(at(30)):
        [told] = notices(b, "bob")
        assert notices(a, "bob") == [told]
        assert f"your claim on api (token {lost.token}) was lost in a merge to alice" in told
        assert notices(a, "alice") == []
        with pytest.raises(Conflict, match=f"stale token {lost.token}"):
            b.release("bob", "api", token=lost.token)
        a.release("alice", "api", token=won.token)
        synced(a, b)
    for hub in (a, b):
        report = hub.verify()
        assert (report["warnings"], report["views"]) == ([], [])


def test_the_merge_takes_over_a_claim_that_was_stale_when_the_other_clone_claimed(clones: tuple[Hub, Hub]) -> None:
    a, b = clones
    with fixed_now(at(10)):
        a.claim("alice", "api", ttl_s=60)
    with fixed_now(at(200)):  # alice's ttl ran out before bob claimed on his clone
        b.claim("bob", "api")
        synced(a, b)
        claim = a.state().claims["api"]
    assert (claim.session, claim.took_over_from) == ("bob", "alice")
    with fixed_now(at(200)):
        assert notices(b, "bob") == []


def test_the_loser_of_a_milestone_keeps_no_ownership_and_its_steps_are_not_taken(clones: tuple[Hub, Hub]) -> None:
    a, b = clones
    with fixed_now(at(5)):
        a.create_milestone("alice", "Ship it", milestone="m1", priority="ship", steps=["build", "test"])
        synced(a, b)
    with fixed_now(at(10)):
        a.claim_milestone("alice", "m1")
        a.update_step("alice", "m1", 1, "in-progress", note="building")
    with fixed_now(at(20)):
        b.claim_milestone("bob", "m1")
        b.update_step("bob", "m1", 1, "done")
    with fixed_now(at(30)):
        synced(a, b)
        m = a.state().milestones["m1"]
        assert m.owner == "alice" and m.steps[0].status == "in-progress"
        same_state(a.state(), b.state())
        assert any("your claim on ship" in text for text in notices(b, "bob"))


def test_an_id_taken_on_both_clones_becomes_one_session_and_both_are_told(clones: tuple[Hub, Hub]) -> None:
    a, b = clones
    with fixed_now(at(10)):
        a.hello("carol")
    with fixed_now(at(20)):
        b.hello("carol")
    with fixed_now(at(30)):
        synced(a, b)
        assert list(a.state().sessions) == list(b.state().sessions)
        [told] = notices(a, "carol")
        assert "the id carol was taken on two clones apart" in told


def test_a_notice_read_before_the_merge_is_not_taken_as_read(clones: tuple[Hub, Hub]) -> None:
    """A clone's "read up to" covers what it held when it read: not the notice a later merge writes,
    nor a message from the other clone numbered below it."""
    a, b = clones
    with fixed_now(at(10)):
        a.claim("alice", "api")
        a.send("alice", "hello bob", to="bob")
    with fixed_now(at(20)):
        b.claim("bob", "api")
        for n in range(5):
            b.send("bob", f"note {n}")
        b.inbox("bob")  # reads up to a number above alice's message and the lost claim
    with fixed_now(at(30)):
        synced(a, b)
        texts = [m.text for m in b.unread("bob")[1]]
    assert "hello bob" in texts and any("lost in a merge" in t for t in texts)
    with fixed_now(at(31)):
        b.inbox("bob")
        assert b.unread("bob")[1] == []
        synced(a, b)
        assert a.unread("bob")[1] == []


def test_two_clones_that_proposed_one_id_keep_the_first_proposal(clones: tuple[Hub, Hub]) -> None:
    a, b = clones
    with fixed_now(at(10)):
        a.propose_id("alice", "lead")
    with fixed_now(at(20)):
        b.propose_id("bob", "lead")
    with fixed_now(at(30)):
        synced(a, b)
        [pending] = [p for p in a.state().proposals if p.status == "pending"]
        assert pending.session == "alice"
        [told] = notices(b, "bob")
        assert "your proposal to be known as lead was lost in a merge: alice proposed it first" in told
        b.accept_id("bob", "lead")
        synced(a, b)
        assert "lead" in a.state().sessions and "lead" in b.state().sessions
