"""A render after a few events draws only the views those events (and the clock) changed, and leaves the
folder exactly as a whole render of the new state would."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import histories as h
import pytest
from clock import T0, at, fixed_now
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_worktrees import with_worktrees

from evhub import EvhubError, Hub, _render
from evhub import _decide as d
from evhub import _events as ev
from evhub._changed import Changed
from evhub._order import fold_log
from evhub._render import WHOLE, View, redraw, render, write_views
from evhub._state import fold
from evhub._store import Checkpoint
from evhub._values import format_ts, parse_ts, read_time

# Commands whose events Changed follows key by key (no registration, rename or departure).
local_commands = st.one_of(
    st.builds(d.Heartbeat, session=h.sessions, status=h.texts),
    st.builds(d.ClaimPriority, session=h.sessions, priority=h.priorities, ttl_s=h.ttls),
    st.builds(d.ReleasePriority, session=h.sessions, priority=h.priorities, done=st.booleans(), force=st.booleans()),
    st.builds(d.SetFocus, session=h.sessions, text=h.words),
    st.builds(d.AddNote, session=h.sessions, text=h.words),
    st.builds(d.CreateMilestone, session=h.sessions, title=st.sampled_from(h.TITLES),
              steps=st.lists(h.words, min_size=1, max_size=3).map(tuple)),
    st.builds(d.ClaimMilestone, session=h.sessions, milestone=h.milestones, ttl_s=h.ttls),
    st.builds(d.UpdateStep, session=h.sessions, milestone=h.milestones, step=st.integers(1, 3),
              status=st.sampled_from(("in-progress", "done", "blocked"))),
    st.builds(d.SendMessage, session=h.sessions, text=h.words, to=st.just("all") | h.sessions),
    st.builds(d.MarkRead, session=h.sessions, upto=st.integers(0, 60)),
)


def drawn_over(before: dict[str, View], views: dict[str, View], gone: list[str]) -> dict[str, View]:
    """The folder that showed BEFORE, once a render of some entities wrote VIEWS and removed GONE."""
    after = {rel: v for rel, v in before.items() if rel not in gone and not rel.startswith(WHOLE)}
    after.update(views)
    return after


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=h.histories(40), tail=st.lists(st.tuples(h.gaps, local_commands), max_size=8),
       then_gap=h.gaps, now_gap=h.gaps)
def test_drawing_what_the_events_and_the_clock_changed_gives_the_whole_render(
        prefix: list[Any], tail: list[tuple[int, d.Command]], then_gap: int, now_gap: int) -> None:
    base = fold(prefix)
    then = format_ts(max(T0, parse_ts(base.last_ts)) + timedelta(seconds=then_gap))
    sim = h.Sim()
    sim.events, sim.state, sim.now = list(prefix), fold(prefix), parse_ts(base.last_ts)
    changed = Changed()
    changed.restart(Checkpoint(base.seq, 0, 0, 0))
    for gap, command in tail:
        sim.tick(gap)
        changed.add(sim.attempt(command) or [])
    assert not changed.everything
    now = format_ts(sim.now + timedelta(seconds=now_gap))
    only, gone = redraw(sim.state, changed, then, now)
    assert drawn_over(render(base, then), render(sim.state, now, only), gone) == render(sim.state, now)


def test_events_that_no_key_names_make_the_next_render_whole() -> None:
    sim = h.Sim()
    sim.do(d.Hello(session="alice"))
    changed = Changed()
    changed.restart(Checkpoint(2, 0, 0, 0))
    changed.add(sim.do(d.ClaimPriority(session="alice", priority="api")))
    assert (changed.everything, changed.sessions, changed.claims) == (False, {"alice"}, {"api"})
    changed.add(sim.do(d.Hello(session="bob")))  # a registration: of an id taken before, it drops that one's claims
    assert changed.everything
    changed.restart(None)
    assert changed.everything  # counted from nowhere: what the views show is not known


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under FOLDER but events/: relative path -> (content, mode)."""
    out = {}
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = [n for n in dirnames if n != "events"]
        for name in names:
            p = Path(dirpath) / name
            out[p.relative_to(folder).as_posix()] = (p.read_bytes(), stat.S_IMODE(p.lstat().st_mode))
    return out


@pytest.fixture
def only_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The ONLY of every render a Hub made (None for a whole one)."""
    seen: list[Any] = []
    real = _render.render

    def spy(state: Any, now: str, only: Any = None) -> dict[str, View]:
        seen.append(only)
        return real(state, now, only)
    monkeypatch.setattr(_render, "render", spy)
    yield seen


def test_a_heartbeat_in_a_new_process_draws_only_its_sessions_views(tmp_path: Path, only_seen: list[Any]) -> None:
    with fixed_now(at(0)):
        hub, _ = Hub.init(tmp_path)
        for sid in ("alice", "bob", "carol"):
            hub.hello(sid)
        hub.claim("alice", "api")
        hub.claim("bob", "web")
        hub.flush()
    only_seen.clear()
    with fixed_now(at(30)):
        Hub(tmp_path).heartbeat("alice", "testing")
    [only] = only_seen
    assert only == _render.Only({"alice"}, {"api"}, set())
    with fixed_now(at(30)):
        assert files(tmp_path / "SESSIONS") == _whole(tmp_path, at(30))


def _whole(root: Path, moment: str) -> dict[str, tuple[bytes, int]]:
    """The folder a whole render of ROOT's log at MOMENT writes."""
    out = root.parent / f"{root.name}-whole"
    shutil.rmtree(out, ignore_errors=True)
    write_views(out, render(fold_log(Hub(root).open_store()), moment))
    return files(out)


# What happens to a hub between two looks at its folder: a command in a new process (as each CLI command is), one
# by a long-lived Hub that leaves its views for later (as the MCP server's calls do), that Hub's flush, a read.
uses = st.one_of(st.tuples(st.sampled_from(("process", "long-lived")), h.commands | local_commands),
                 st.tuples(st.sampled_from(("flush", "read")), st.none()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(h.gaps | st.sampled_from([-30, -3000]), uses), min_size=1, max_size=12))
def test_a_hub_used_by_processes_and_a_long_lived_hub_shows_what_a_whole_render_shows(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, tuple[str, d.Command | None]]]) -> None:
    root = tmp_path_factory.mktemp("hub")
    elapsed = 3600  # the clock may also go back (gaps of -30 s and -3000 s)
    with fixed_now(at(elapsed)):
        hub, _ = Hub.init(root)
        for sid in h.SESSIONS[:3]:
            hub.hello(sid)
        hub.flush()
        long_lived, left = Hub(root, publish_every=math.inf), False
        long_lived.state()  # its first call draws; every later one leaves its views for a flush
    for gap, (use, command) in steps:
        elapsed += gap
        with fixed_now(at(elapsed)):
            try:
                if use == "process":
                    Hub(root).execute(command)  # type: ignore[arg-type]
                elif use == "long-lived":
                    long_lived.execute(command)  # type: ignore[arg-type]
                    left = True
                    continue  # its views are left for later: nothing to compare yet
                elif use == "flush":
                    if not left:
                        continue  # nothing left for later: a flush draws nothing
                    long_lived.flush()
                    left = False
                else:
                    Hub(root).state()
            except EvhubError:
                continue
            moment = read_time(fold_log(Hub(root).open_store()).last_ts)
            assert files(root / "SESSIONS") == _whole(root, moment)


def test_a_claim_whose_ttl_ran_out_between_two_commands_is_drawn_stale_though_no_event_touched_it(
        tmp_path: Path, only_seen: list[Any]) -> None:
    with fixed_now(at(0)):
        hub, _ = Hub.init(tmp_path)
        hub.hello("alice")
        hub.hello("bob")
        hub.claim("alice", "api", ttl_s=60)
        hub.flush()
    lock = tmp_path / "SESSIONS" / "PRIORITIES" / "api.lock"
    assert json.loads(lock.read_bytes())["stale"] is False
    with fixed_now(at(100)):  # alice is still alive (300 s), her claim's 60 s are over
        Hub(tmp_path).heartbeat("bob")
        assert only_seen[-1] == _render.Only({"bob"}, {"api"}, set())
        assert json.loads(lock.read_bytes())["stale"] is True
        assert files(tmp_path / "SESSIONS") == _whole(tmp_path, at(100))


def test_events_another_process_appended_without_rendering_are_drawn_by_the_next_render(
        tmp_path: Path, only_seen: list[Any]) -> None:
    with fixed_now(at(0)):
        hub, _ = Hub.init(tmp_path)
        for sid in ("alice", "bob", "carol"):
            hub.hello(sid)
        hub.flush()
    with fixed_now(at(10)):
        quiet = Hub(tmp_path, publish_every=3600)
        quiet.heartbeat("bob", "first")  # its first call renders
        quiet.heartbeat("bob", "second")  # the rest wait for its next refresh
        quiet.claim("bob", "web")
    with fixed_now(at(20)):
        Hub(tmp_path).heartbeat("alice")
        assert only_seen[-1] == _render.Only({"alice", "bob"}, {"web"}, set())
        assert json.loads((tmp_path / "SESSIONS" / "HEARTBEATS" / "bob.json").read_bytes())["status"] == "second"
        assert files(tmp_path / "SESSIONS") == _whole(tmp_path, at(20))


def test_every_worktrees_folder_is_drawn_over_as_a_whole_render_would_draw_it(tmp_path: Path) -> None:
    repo, beside, inside = with_worktrees(tmp_path)
    steps = [(beside, 10, "hello", "alice", "alice"), (inside, 20, "hello", "bob", "bob"),
             (repo.top, 30, "claim", "alice", "api"),
             (beside, 40, "heartbeat", "bob"), (inside, 400, "heartbeat", "bob"),  # alice is silent past the ttl
             (repo.top, 410, "release", "alice", "api"), (beside, 420, "claim", "bob", "web")]
    folders = [repo.top, beside, inside]
    for cwd, seconds, command, session, *args in steps:
        if seconds == 410:
            folders.append(repo.add_worktree("../wt3"))  # a folder the hub never drew: drawn whole beside the others
        repo.ok(command, *args, cwd=cwd, session=session, now=at(seconds))
        whole = _whole(repo.top, at(seconds))
        for folder in folders:
            shown = files(folder / "SESSIONS")
            shown.pop(".gitignore", None)  # a view only where git does not track the views
            assert shown == whole, (command, seconds, folder)
    repo.git("worktree", "remove", beside)
    repo.ok("heartbeat", session="bob", now=at(430))
    bases = json.loads((repo.hub_dir / "views-base.json").read_bytes())
    assert sorted(bases) == sorted(str(folder / "SESSIONS") for folder in folders if folder != beside)


def test_a_hand_edit_kept_aside_by_a_command_that_then_failed_is_drawn_over_by_the_next_process(
        tmp_path: Path) -> None:
    with fixed_now(at(0)):
        hub, _ = Hub.init(tmp_path)
        for sid in ("alice", "bob", "carol"):
            hub.hello(sid)
        hub.claim("bob", "web")
        hub.flush()
    hello = tmp_path / "SESSIONS" / "DISCOVERY" / "bob-HELLO.md"
    hello.write_text("# Hello, I'm bob\nMy role: edited by hand\n")  # not understood: kept aside, then drawn over
    with fixed_now(at(10)), pytest.raises(EvhubError):
        Hub(tmp_path).claim("alice", "web")  # refused (bob holds web) after the edit was recorded as seen
    with fixed_now(at(20)):
        Hub(tmp_path).heartbeat("carol")
        assert files(tmp_path / "SESSIONS") == _whole(tmp_path, at(20))


def test_an_id_no_view_was_drawn_for_removes_no_file_anywhere(tmp_path: Path) -> None:
    """A hand-made log may name a session that never registered, by any string: a render removes only files
    evhub wrote."""
    with fixed_now(at(0)):
        hub, _ = Hub.init(tmp_path)
        hub.hello("alice")
        hub.flush()
    victim = tmp_path / "victim.json"
    victim.write_text("precious\n")
    store = hub.open_store()
    head = store.head()
    store.append([ev.Heartbeat(seq=head + 1, id="E-by-hand", ts=at(5), session="../../victim")], head)
    with fixed_now(at(10)):
        Hub(tmp_path).heartbeat("alice")
    assert victim.read_text() == "precious\n"
