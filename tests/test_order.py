"""Clones of one hub merging their logs (Hub.merge_log, the union of _order) through the Python API.

Three clones run random commands while apart and merge in random order between random pairs; once
everyone has merged with everyone they hold the same events, each once, and show the same state and
byte-identical views. The merge is commutative, associative and idempotent; it refuses another hub's log
and a copy that went on apart (made by `evhub import`), changing nothing; and a hub that never synced
writes its log as before (no `num`). Then the cases the properties found or that sit beside them: a merged
message is unread, the readers of history (replay, why, timeline, watch) take a merged log in the fold's
order, a hub that took a clone's log writes once it is a clone, and an id renamed on one clone is followed
by the events another clone made under it.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clock import at, fixed_now
from command import ok, run
from histories import positionless
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evhub import BadInput, Conflict, EvhubError, Hub, UnrelatedHub, _place
from evhub import _events as ev
from evhub._state import CLONES

SIDS = ("alice", "bob", "carol")
PRIOS = ("api", "ui")
STEPS = ("design", "build")
STATUSES = ("in-progress", "done", "blocked")
DELAYS = (0, 1, 1, 2, 30, 400)  # mostly busy; now and then a session falls silent past the hub's 300 s
FIXED = at(10_000)  # the moment every clone's views are rendered at, for comparing them


def act(hub: Hub, action: int, who: int, x: int) -> None:
    """One command of a session of HUB (refused ones raise EvhubError, as on any hub)."""
    me, other, p = SIDS[who], SIDS[(who + 1 + x) % len(SIDS)], PRIOS[x % len(PRIOS)]
    steps: list[Callable[[], object]] = [
        lambda: hub.claim(me, p),
        lambda: hub.send(me, f"message {x}", to="all" if x % 2 else other),
        lambda: hub.claim_milestone(me, f"milestone-{p}"),
        lambda: hub.create_milestone(me, f"Milestone {p}", priority=p, steps=STEPS),
        lambda: hub.heartbeat(me, f"on {p}"),
        lambda: hub.claim(me, p, ttl_s=60),
        lambda: hub.update_step(me, f"milestone-{p}", 1 + x % len(STEPS), STATUSES[x % len(STATUSES)]),
        lambda: hub.release(me, p, done=x % 2 == 0),
        lambda: hub.propose_id(me, f"{me}-{x % 2}"),
        lambda: hub.accept_id(me, f"{other}-{x % 2}"),
        lambda: hub.hello(me, resume=True),
        lambda: hub.hello(me),
        lambda: hub.bye(me),
    ]
    steps[action]()


N_ACTIONS = 13  # the commands act knows


@contextlib.contextmanager
def clones(n: int = 3) -> Iterator[tuple[Path, list[Hub]]]:
    """N clones of one hub made at T0 (the first made it, each other joined it from its log), in a
    temporary folder, each with a session of its own that all of them know (alice on the first, bob on
    the second...); EVHUB_NOW is T0 and is put back afterwards."""
    with tempfile.TemporaryDirectory() as d, fixed_now(at(0)):
        base = Path(d)
        first, _ = Hub.init(base / "c0")
        first.become_clone(0)
        for k in range(1, n):
            _place.join(base / f"c{k}", first.log_bytes(), k)
        hubs = [first, *(Hub(base / f"c{k}") for k in range(1, n))]
        for k, h in enumerate(hubs):
            h.hello(SIDS[k])
        merge_everyone(hubs)
        yield base, hubs
        for h in hubs:
            h.flush()  # before the folder goes: nothing is left for the exit to render


def events(hub: Hub) -> list[ev.AnyEvent]:
    """HUB's log, in its order."""
    return list(hub.events())


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under FOLDER (the events' folder aside): relative path -> content."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "events" not in p.relative_to(folder).parts}


def rendered(hub: Hub, out: Path) -> dict[str, bytes]:
    """HUB's views rendered at FIXED into OUT."""
    hub.render(hub.state(), at=FIXED, out=out)
    return tree(out)


def files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ROOT with its content and mtime."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def merge_everyone(hubs: list[Hub]) -> None:
    """Each of HUBS takes every other's log (the last ones take what the first took, so all hold all)."""
    for x in hubs:
        for y in hubs:
            if x is not y:
                x.merge_log(y.log_bytes())


def assert_converged(hubs: list[Hub], out: Path) -> None:
    """HUBS, having merged with one another, hold one history: the same events once each, the same
    state and views, a log that verifies, at most one holder per priority; merging again is a no-op."""
    logs = [events(h) for h in hubs]
    ids = [[e.id for e in log] for log in logs]
    for i, log_ids in enumerate(ids):
        assert len(set(log_ids)) == len(log_ids), f"clone {i} holds an event twice"
        assert set(log_ids) == set(ids[0]), f"clone {i} and clone 0 hold different events"
        assert sorted(e.seq for e in logs[i]) == list(range(1, len(log_ids) + 1)), f"clone {i}'s positions have gaps"
    numbers = [e.number for e in logs[0]]
    assert len(set(numbers)) == len(numbers), "two events share a number"
    for i, h in enumerate(hubs):
        assert positionless(h.state()) == positionless(hubs[0].state()), f"clone {i}'s state differs from clone 0's"
        assert rendered(h, out / str(i)) == rendered(hubs[0], out / "0"), f"clone {i}'s views differ"
        h.flush(force=True)
        assert tree(h.dir) == tree(hubs[0].dir), f"clone {i}'s live views differ"
        report = h.verify()
        assert report["warnings"] == [] and report["views"] == [], report
    claimed = {e.number: e for e in logs[0] if isinstance(e, ev.PriorityClaimed)}
    for priority, claim in hubs[0].state().claims.items():
        # One holder a priority (the state keeps one claim each): the one whose claim gave its token.
        made = claimed.get(claim.token)
        assert made is not None and made.priority == priority, claim
    before = [files(h.root) for h in hubs]
    for x in hubs:
        for y in hubs:
            assert x.merge_log(y.log_bytes()).added == 0
    assert [files(h.root) for h in hubs] == before, "merging what a clone holds changed a file"


def script_of(rnd: random.Random, n: int) -> list[tuple[int, ...]]:
    """N steps: (clone, action, session, x, delay) runs a command on a clone; (into, source) merges
    a clone's log into another's. Drawn from RND: hypothesis's own lists repeat one step too often to
    make many conflicts."""
    return [(rnd.randrange(3), rnd.randrange(3)) if rnd.random() < 0.3 else
            (rnd.randrange(3), rnd.randrange(N_ACTIONS), rnd.randrange(3), rnd.randrange(6), rnd.choice(DELAYS))
            for _ in range(n)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=True), n=st.integers(10, 40))
def test_clones_that_merged_with_one_another_hold_one_history(rnd: random.Random, n: int) -> None:
    script = script_of(rnd, n)
    with clones() as (base, hubs):
        t = 0
        writer: dict[str, int] = {}  # event id -> the clone that wrote it
        for step in script:
            if len(step) == 2:
                into, source = step
                hubs[into].merge_log(hubs[source].log_bytes())
                continue
            k, action, who, x, delay = step
            t += delay
            os.environ["EVHUB_NOW"] = at(t)
            head = hubs[k].store.head()
            with contextlib.suppress(EvhubError):
                act(hubs[k], action, who, x)
            writer |= {e.id: k for e in hubs[k].events(head)}
        for e in events(hubs[0]) + events(hubs[1]) + events(hubs[2]):
            assert e.id not in writer or e.number % CLONES == writer[e.id], f"{e} ends in another clone's index"
        merge_everyone(hubs)
        assert_converged(hubs, base / "views")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=True), n=st.integers(5, 25))
def test_the_merge_is_commutative_associative_and_idempotent(rnd: random.Random, n: int) -> None:
    script = [step for step in script_of(rnd, n) if len(step) == 5]  # the clones apart: no merge
    with clones() as (base, hubs):
        for t, (k, action, who, x, _) in enumerate(script, 1):
            os.environ["EVHUB_NOW"] = at(t)
            with contextlib.suppress(EvhubError):
                act(hubs[k], action, who, x)
        a, b, c = (h.log_bytes() for h in hubs)

        def copy_of_b(name: str) -> Hub:
            _place.join(base / name, b, 1)
            return Hub(base / name)

        ac_then, ca_then, ac_first = copy_of_b("a-then-c"), copy_of_b("c-then-a"), copy_of_b("a-and-c")
        ac_then.merge_log(a)
        ac_then.merge_log(c)
        ca_then.merge_log(c)
        ca_then.merge_log(a)
        hubs[0].merge_log(c)  # A takes C first, then B takes that
        ac_first.merge_log(hubs[0].log_bytes())
        merged = [ac_then, ca_then, ac_first]
        for h in merged[1:]:
            assert {e.id for e in events(h)} == {e.id for e in events(ac_then)}
            assert positionless(h.state()) == positionless(ac_then.state())
            assert rendered(h, base / "out" / h.root.name) == rendered(ac_then, base / "out" / "first")
        for h in merged:
            twice = files(h.root)
            assert h.merge_log(a).added == 0
            assert h.merge_log(c).added == 0
            assert files(h.root) == twice, "merging a log a second time changed a file"


def test_a_merge_takes_each_event_once_and_says_how_many_it_knew() -> None:
    with clones(2) as (_, (a, b)):
        held = len(events(a))
        a.send("alice", "hi")
        b.send("bob", "hello")
        first = b.merge_log(a.log_bytes())
        assert first == (1, held)  # alice's message; what both held since they last merged
        assert b.merge_log(a.log_bytes()) == (0, held + 1)
        assert len(events(b)) == held + 2
        assert [m.text for m in b.last_messages(2)] == ["hi", "hello"]  # clone 0's number ends lower


def test_the_log_of_an_unrelated_hub_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with fixed_now(at(0)):
        ours, _ = Hub.init(tmp_path / "ours")
        ours.become_clone(0)
        ours.hello("alice")
        theirs, _ = Hub.init(tmp_path / "theirs")
        theirs.hello("bob")
        before = ours.log_bytes()
        with pytest.raises(UnrelatedHub, match="another hub"):
            ours.merge_log(theirs.log_bytes(), "theirs.jsonl")
        assert ours.log_bytes() == before
        assert list(ours.state().sessions) == ["alice"]


def test_a_copy_made_by_import_that_went_on_apart_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with fixed_now(at(0)):
        ours, _ = Hub.init(tmp_path / "ours")
        ours.hello("alice")
        exported = tmp_path / "backup.jsonl"
        exported.write_bytes(ours.log_bytes())
        ok(run("import", exported, tmp_path / "copy", env={"EVHUB_NOW": at(0)}))
        copy = Hub(tmp_path / "copy")
        copy.hello("bob")  # numbered by its position, as ours numbers its own: the two cannot be told apart
        ours.hello("carol")
        for into, other in ((ours, copy), (copy, ours)):
            before = into.log_bytes()
            with pytest.raises(BadInput, match="went on apart"):
                into.merge_log(other.log_bytes())
            assert into.log_bytes() == before


def test_a_hub_that_never_synced_writes_no_number() -> None:
    with tempfile.TemporaryDirectory() as d, fixed_now(at(0)):
        hub, _ = Hub.init(d)
        hub.hello("alice")
        hub.claim("alice", "api")
        assert hub.send("alice", "hi") == 4
        lines = hub.log_bytes().splitlines()
        assert len(lines) == 4 and not any(b'"num"' in line for line in lines)
        assert [e.number for e in hub.events()] == [1, 2, 3, 4]


def test_a_message_a_merge_brings_is_unread_for_its_recipient() -> None:
    with clones(2) as (_, (a, b)):
        a.send("alice", "from clone 0", to="bob")
        b.send("alice", "from clone 1", to="bob")
        assert [m.text for m in b.inbox("bob")] == ["from clone 1"]  # bob has read up to its number
        b.merge_log(a.log_bytes())
        # Written apart, it was never shown to bob: its lower number says nothing of whether bob read it.
        assert [m.text for m in b.inbox("bob", peek=True)] == ["from clone 0"]


# Readers of a hub's history, each giving the priorities claimed (the claims below: api and ui).
def replay_now(hub: Hub, out: Path) -> object:
    return sorted(hub.replay(out=out).claims)


def replay_then(hub: Hub, out: Path) -> object:
    return sorted(hub.replay(at=at(0), out=out).claims)


def why(hub: Hub, out: Path) -> object:
    return sorted(row["priority"] for p in PRIOS for row in hub.why(p))


def timeline(hub: Hub, out: Path) -> object:
    from evhub._timeline import history

    return sorted(history(hub.events())["priorities"])


def watch_then(hub: Hub, out: Path) -> object:
    from evhub._watch import snapshot

    return sorted(snapshot(hub, at(0)).claims)


@pytest.mark.parametrize("read", [replay_now, replay_then, why, timeline, watch_then])
def test_the_history_of_a_clone_that_merged_is_read_in_the_fold_order(read: Callable[[Hub, Path], object],
                                                                        tmp_path: Path) -> None:
    with clones(2) as (_, (a, b)):
        a.claim("alice", "api")
        b.claim("bob", "ui")
        b.merge_log(a.log_bytes())  # alice's claim sorts before bob's, and sits after it in b's log
        assert read(b, tmp_path / "out") == ["api", "ui"]


def test_a_watch_follows_a_merge() -> None:
    from evhub._watch import Follower

    with clones(2) as (_, (a, b)):
        a.claim("alice", "api")
        b.claim("bob", "ui")
        follower = Follower(b)
        b.merge_log(a.log_bytes())
        follower.read_at = -math.inf  # due to read the log now
        follower.poll()
        assert follower.state.claims.keys() == {"api", "ui"}


def test_a_hub_that_merged_a_clones_log_writes_only_once_it_is_a_clone(tmp_path: Path) -> None:
    with fixed_now(at(0)):
        ours, _ = Hub.init(tmp_path / "ours")
        ours.hello("alice")
        _place.join(tmp_path / "clone", ours.log_bytes(), 1)  # as a clone made from an export of ours
        clone = Hub(tmp_path / "clone")
        clone.hello("bob")
        ours.merge_log(clone.log_bytes())  # what `evhub merge FILE` does in a hub that never synced
        before = ours.log_bytes()
        # Numbered by its position, its next event could take a number its clones gave already.
        with pytest.raises(Conflict, match="evhub sync"):
            ours.send("alice", "hi")
        assert ours.log_bytes() == before
        ours.become_clone(0)
        seen = max(e.number for e in ours.events())
        assert ours.send("alice", "hi") > seen  # a later event outnumbers everything its writer knew
        assert clone.merge_log(ours.log_bytes()).added == 1


def test_a_hub_that_another_handle_made_a_clone_numbers_its_next_write_as_that_clone(tmp_path: Path) -> None:
    # A long-lived Hub (an MCP server) must see a first sync that another process made since its last write.
    with fixed_now(at(0)):
        ours, _ = Hub.init(tmp_path / "ours")
        ours.hello("alice")
        # A clone file another hub left here counts for nothing: numbered by position, not a clone yet.
        _place.write_clone(ours.events_dir, _place.CloneOf(hub="another hub", clone=2))
        assert ours.send("alice", "before") == 3
        Hub(tmp_path / "ours").become_clone(7)  # replaces it
        assert ours.send("alice", "after") % CLONES == 7
        Hub(tmp_path / "ours").become_clone(4)  # a clone keeps its index
        assert ours.send("alice", "later") % CLONES == 7


def test_two_clones_that_merged_each_other_have_one_state() -> None:
    with clones(2) as (_, (a, b)):
        assert positionless(a.state()) == positionless(b.state())


def test_a_claim_made_under_an_id_renamed_on_another_clone_is_held_by_its_session() -> None:
    with clones(2) as (_, (a, b)):
        os.environ["EVHUB_NOW"] = at(400)  # alice and bob silent past the hub's 300 s
        a.propose_id("alice", "alice-1")  # no other live session to ask: agreed at once
        os.environ["EVHUB_NOW"] = at(401)
        b.claim("alice", "api")  # on the other clone alice is still alice
        a.merge_log(b.log_bytes())
        state = a.state()
        assert state.claims["api"].session in state.sessions
        os.environ["EVHUB_NOW"] = at(1000)
        a.hello("bob", resume=True)
        assert a.claim("bob", "api").took_over_from == "alice-1"
