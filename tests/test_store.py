"""The store interface, as a conformance suite every store must pass, and the JSONL store's own promises.

`StoreConformance` is not collected itself (no `Test` prefix); each store subclasses it with a
`make_store(root)`: `TestJsonlStore` and `TestPgStore` here, each followed by its store's own promises.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from clock import T0, fixed_now
from command import error_line, finished, run, started
from hypothesis import given, settings
from hypothesis import strategies as st
from stores import HubStore, free_port

from evhub import BadInput, CorruptLog, Hub, StorageError
from evhub import _events as ev
from evhub._errors import ExpectedPositionError
from evhub._pgstore import PgStore, StoreSettings, without_password
from evhub._store import JsonlStore, Store
from evhub._values import format_ts, new_id

# One sample of every event type, every field set away from its default, text that needs escaping.
TEMPLATES: list[tuple[type[ev.Event], dict[str, Any]]] = [
    (ev.HubCreated, {"alive_ttl_s": 120}),
    (ev.SessionRegistered, {"session": "alice", "role": "builder", "specialization": "ui",
                            "about": "the dashboard \u2713", "resume": True}),
    (ev.Heartbeat, {"session": "alice", "status": "compiling"}),
    (ev.SessionLeft, {"session": "bob"}),
    (ev.IdProposed, {"session": "bob", "proposed": "robert", "reason": "nicer"}),
    (ev.IdAccepted, {"session": "alice", "proposed": "robert", "reason": "fine"}),
    (ev.IdRejected, {"session": "carol", "proposed": "robert", "reason": "taken"}),
    (ev.PriorityClaimed, {"session": "alice", "priority": "api", "ttl_s": 600, "took_over_from": "bob"}),
    (ev.PriorityReleased, {"session": "alice", "priority": "api", "done": True, "note": "shipped",
                           "forced": True}),
    (ev.FocusSet, {"session": "alice", "text": 'line one\nline two "quoted"\r\n\ttab'}),
    (ev.NoteAdded, {"session": "alice", "text": "\u65e5\u672c\u8a9e, emoji \U0001f389, back\\slash, \x00nul"}),
    (ev.MilestoneCreated, {"session": "alice", "milestone": "dash", "title": "Dashboard", "priority": "api",
                           "steps": ["build", "test", "ship"]}),
    (ev.MilestoneClaimed, {"session": "alice", "milestone": "dash"}),
    (ev.StepUpdated, {"session": "alice", "milestone": "dash", "step": 2, "status": "blocked",
                      "note": "waiting"}),
    (ev.MessagePosted, {"session": "bob", "to": "alice", "text": '{"not": "an event"}\n}'}),
    (ev.MessagesRead, {"session": "alice", "upto": 3}),
    (ev.EventLost, {"reason": "seq 17 was missing or unreadable; see quarantine/"}),
    (ev.AgentAttached, {"session": "alice", "agent": "claude", "agent_session": "9f1c2b7e-4a5d-4c1e"}),
    (ev.StepsAdded, {"session": "alice", "milestone": "dash", "steps": ["docs", "announce, then rest"],
                     "origin": "MILESTONES/dash.json"}),
]


def make_event(seq: int, kind: int | None = None, **override: Any) -> ev.Event:
    """Event number SEQ: the sample of type KIND (default: cycling through every type)."""
    cls, fields = TEMPLATES[(seq - 1 if kind is None else kind) % len(TEMPLATES)]
    ts = format_ts(T0 + timedelta(seconds=seq, microseconds=seq))
    return cls(seq=seq, id=new_id(), ts=ts, **{**fields, **override})


def make_events(first: int, count: int) -> list[ev.Event]:
    return [make_event(n) for n in range(first, first + count)]


def test_the_samples_cover_every_event_type() -> None:
    assert {cls for cls, _ in TEMPLATES} == set(ev.EVENT_TYPES.values())


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from evhub import Hub
    root, session, k, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    fresh = sys.argv[5] == "fresh"
    open(os.path.join(os.path.dirname(go), "ready-" + session), "w").close()
    while not os.path.exists(go):
        time.sleep(0.002)
    hub = Hub.find(root)
    for i in range(k):
        if fresh:
            hub = Hub.find(root)
        hub.heartbeat(session, f"{session}-{i}")
        print(f"{session}-{i}", flush=True)  # acknowledged: the call returned
    """
)


class StoreConformance:
    """What every Store promises.  Subclasses say how to make one.

    `make_store(root)` returns the store that a hub rooted at ROOT uses; called twice with the same
    ROOT it returns two handles on the same store (as two processes would have).
    """

    def make_store(self, root: Path) -> Store:
        raise NotImplementedError

    def init_hub(self, root: Path) -> Hub:
        """A new hub at ROOT whose events live in make_store(ROOT)."""
        hub, created = Hub.init(root)
        assert created
        return hub

    def hub_env(self, root: Path) -> dict[str, str]:
        """Extra environment a process needs so that Hub.find(ROOT) uses this store."""
        return {}

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return self.make_store(tmp_path)

    # -- sequential behaviour -----------------------------------------------------------------

    def test_an_empty_store_has_head_zero_and_no_events(self, store: Store) -> None:
        assert store.head() == 0
        assert list(store.read(0)) == []
        assert list(store.read(5)) == []

    def test_append_at_the_expected_position_moves_the_head(self, store: Store) -> None:
        first = make_events(1, 3)
        store.append(first, 0)
        assert store.head() == 3
        more = make_events(4, 2)
        store.append(more, 3)
        assert store.head() == 5
        assert list(store.read(0)) == first + more

    def test_an_empty_append_changes_nothing(self, store: Store) -> None:
        store.append([], 0)
        assert store.head() == 0
        store.append(make_events(1, 2), 0)
        store.append([], 2)
        assert [e.seq for e in store.read(0)] == [1, 2]

    @pytest.mark.parametrize("expected", [0, 1, 2, 4, 100])
    def test_a_wrong_expected_position_is_refused_and_writes_nothing(self, store: Store, expected: int) -> None:
        before = make_events(1, 3)
        store.append(before, 0)
        with pytest.raises(ExpectedPositionError):
            store.append([make_event(expected + 1)], expected)
        assert store.head() == 3
        assert list(store.read(0)) == before
        # and the store still takes the right append afterwards
        after = make_event(4)
        store.append([after], 3)
        assert list(store.read(0)) == [*before, after]

    def test_a_wrong_expected_position_on_an_empty_store_writes_nothing(self, store: Store) -> None:
        with pytest.raises(ExpectedPositionError):
            store.append(make_events(2, 2), 1)
        assert store.head() == 0
        assert list(store.read(0)) == []

    @pytest.mark.parametrize("seqs", [[3], [2, 4], [2, 3, 3], [1], [0]])
    def test_events_not_numbered_from_expected_plus_one_are_refused(self, store: Store, seqs: list[int]) -> None:
        store.append(make_events(1, 1), 0)
        events = [make_event(n) for n in seqs]  # after head 1 they should be numbered 2, 3, ...
        with pytest.raises(ExpectedPositionError):
            store.append(events, 1)
        assert store.head() == 1
        assert [e.seq for e in store.read(0)] == [1]

    def test_read_after_returns_exactly_the_later_events_in_order(self, store: Store) -> None:
        events = make_events(1, 20)
        for start in range(0, 20, 7):  # appended in batches of 7, 7, 6
            store.append(events[start:start + 7], start)
        for after in range(0, 23):
            assert list(store.read(after)) == events[after:], after
        # reading backwards, forwards and again on one handle gives the same answers
        assert list(store.read(15)) == events[15:]
        assert list(store.read(3)) == events[3:]
        assert list(store.read(19)) == events[19:]

    def test_events_are_read_at_any_seqs(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        events = make_events(1, 3000)  # about 600 KB: a bisection's steps, not a block
        for start in range(0, 3000, 500):
            store.append(events[start:start + 500], start)
        wanted = [1, 2, 777, 1500, 1501, 2999, 3000, 1500]  # far apart, and next to one another
        assert store.events_at(wanted) == {seq: events[seq - 1] for seq in wanted}
        many = [*range(5, 3000, 7), *range(2000, 2100)]  # an inbox of hundreds: read on, not bisected each
        assert store.events_at(many) == {seq: events[seq - 1] for seq in many}
        assert store.events_at([0, 3001, 10**9]) == {}, "seqs the log does not hold are left out"
        assert store.events_at([]) == {}
        assert self.make_store(tmp_path).events_at([2500]) == {2500: events[2499]}, "a new handle too"

    def test_every_event_type_round_trips(self, store: Store) -> None:
        events = [make_event(n, kind=n - 1) for n in range(1, len(TEMPLATES) + 1)]
        store.append(events, 0)
        back = list(store.read(0))
        assert back == events
        assert [type(e) for e in back] == [type(e) for e in events]

    def test_a_second_handle_sees_what_the_first_wrote(self, tmp_path: Path) -> None:
        a, b = self.make_store(tmp_path), self.make_store(tmp_path)
        assert a.head() == 0 and b.head() == 0
        first = make_events(1, 3)
        a.append(first, 0)
        assert b.head() == 3
        assert list(b.read(1)) == first[1:]
        second = make_event(4)
        b.append([second], 3)
        assert a.head() == 4
        assert list(a.read(2)) == [*first[2:], second]

    def test_a_stale_handle_cannot_append(self, tmp_path: Path) -> None:
        a, b = self.make_store(tmp_path), self.make_store(tmp_path)
        a.append(make_events(1, 2), 0)
        assert b.head() == 2
        winner = make_event(3)
        a.append([winner], 2)
        with pytest.raises(ExpectedPositionError):
            b.append([make_event(3)], 2)
        assert [e.id for e in self.make_store(tmp_path).read(0)][-1] == winner.id
        assert self.make_store(tmp_path).head() == 3

    def test_an_append_retried_after_it_was_made_is_refused_not_doubled(self, store: Store) -> None:
        """The reply to an append can be lost after it was made: trying the same events again never doubles them."""
        store.append(make_events(1, 2), 0)
        batch = make_events(3, 2)
        store.append(batch, 2)
        with pytest.raises(ExpectedPositionError):
            store.append(batch, 2)
        assert list(store.read(0))[2:] == batch
        assert store.head() == 4

    def test_appended_batches_read_back_whole_and_in_order(self) -> None:
        # The property is made afresh for each store class: hypothesis refuses one test function
        # run by several classes (its examples database would mix them).
        @settings(max_examples=25, deadline=None)
        @given(
            batches=st.lists(
                st.lists(st.tuples(st.integers(0, len(TEMPLATES) - 1), st.text(max_size=30)), max_size=4),
                max_size=6,
            ),
            after=st.integers(0, 30),
        )
        def read_back(batches: list[list[tuple[int, str]]], after: int) -> None:
            with tempfile.TemporaryDirectory() as d:
                store = self.make_store(Path(d))
                written: list[ev.Event] = []
                for batch in batches:
                    events: list[ev.Event] = []
                    for kind, text in batch:
                        e = make_event(len(written) + len(events) + 1, kind)
                        if hasattr(e, "text"):
                            e.text = text  # type: ignore[attr-defined]
                        events.append(e)
                    store.append(events, len(written))
                    written += events
                    assert store.head() == len(written)
                assert list(store.read(0)) == written
                assert list(store.read(after)) == written[after:]
                assert list(self.make_store(Path(d)).read(after)) == written[after:]

        read_back()

    # -- concurrency, with real processes -------------------------------------------------------

    def test_concurrent_writers_lose_and_double_nothing(self, tmp_path: Path) -> None:
        """N processes each append K heartbeats through the Hub API while this process reads."""
        n, k = 4, 40
        root = tmp_path / "hub"
        hub = self.init_hub(root)
        sessions = [f"w{i}" for i in range(n)]
        for sid in sessions:
            hub.hello(sid)
        setup = 1 + n
        go = tmp_path / "go"
        env = {**os.environ, **self.hub_env(root), "EVHUB_LOCK_TIMEOUT": "60"}
        env.pop("EVHUB_NOW", None)
        procs = []
        outs = []
        for i, sid in enumerate(sessions):
            out = tmp_path / f"{sid}.out"
            outs.append(out)
            with open(out, "wb") as fo, open(tmp_path / f"{sid}.err", "wb") as fe:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", WRITER, str(root), sid, str(k), str(go), "fresh" if i % 2 else "reuse"],
                    stdout=fo, stderr=fe, env=env,
                ))
        try:
            deadline = time.monotonic() + 60
            while not all((tmp_path / f"ready-{sid}").exists() for sid in sessions):
                assert time.monotonic() < deadline, "writers did not start"
                time.sleep(0.01)
            go.touch()  # every writer starts at once

            # A reader that never takes the lock: it must see whole events, in order, without gaps.
            reader = self.make_store(root)
            seen: list[ev.AnyEvent] = []
            full_reads = 0
            while any(p.poll() is None for p in procs):
                for e in reader.read(len(seen)):
                    assert e.seq == len(seen) + 1, f"gap or repeat: {e.seq} after {len(seen)}"
                    seen.append(e)
                if full_reads < 50:
                    full = list(self.make_store(root).read(0))
                    assert [e.seq for e in full] == list(range(1, len(full) + 1))
                    full_reads += 1
                time.sleep(0.003)
            for p in procs:
                p.wait(timeout=60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for sid, p in zip(sessions, procs, strict=True):
            assert p.returncode == 0, (tmp_path / f"{sid}.err").read_text()

        final = list(self.make_store(root).read(0))
        assert [e.seq for e in final] == list(range(1, setup + n * k + 1))
        assert len({e.id for e in final}) == len(final)
        assert final[: len(seen)] == seen, "the reader saw events that are not in the final log"
        assert len(seen) > setup, "the reader never saw a write in progress"

        beats = [e for e in final if isinstance(e, ev.Heartbeat)]
        counts = collections.Counter(e.status for e in beats)
        for sid, out in zip(sessions, outs, strict=True):
            acked = out.read_text().split()
            assert acked == [f"{sid}-{i}" for i in range(k)]
            assert all(counts[status] == 1 for status in acked), "an acknowledged event is missing or doubled"
            mine = [e.status for e in beats if e.session == sid]
            assert mine == acked, "one writer's events are out of order"
        assert len(beats) == n * k
        report = Hub.find(root).verify()
        assert report["events"] == setup + n * k
        assert report["warnings"] == []


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


class TestJsonlStore(StoreConformance):
    def make_store(self, root: Path) -> JsonlStore:
        path = root / "SESSIONS" / "events" / "log.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return JsonlStore(path)

    @staticmethod
    def log_of(root: Path) -> Path:
        return root / "SESSIONS" / "events" / "log.jsonl"

    # -- a torn tail: the last write did not finish ---------------------------------------------

    @settings(max_examples=4, deadline=None)
    @given(prior=st.integers(0, 3), text=st.text(max_size=20))
    def test_a_torn_tail_at_every_byte_offset_is_never_an_event_and_is_quarantined(
        self, prior: int, text: str
    ) -> None:
        # A fixed clock: every cut is set aside at the same offset at the same moment, none over another.
        with fixed_now("2026-11-25T12:00:00Z"):
            self._torn_tail_at_every_byte_offset(prior, text)

    def _torn_tail_at_every_byte_offset(self, prior: int, text: str) -> None:
        events = make_events(1, prior)
        whole = b"".join(ev.encode(e) for e in events)
        line = ev.encode(make_event(prior + 1, kind=10, text=text))  # a note: multi-byte text cut anywhere
        # No newline: cut inside the line (a line whole but for its newline is an event: see test_damage.py).
        cuts = [line[:k] for k in range(1, len(line) - 1)]
        cuts += [line[:k] + b"\n" for k in range(1, len(line) - 1, 5)]  # cut, then a newline: still not whole
        with tempfile.TemporaryDirectory() as d:
            path = self.log_of(Path(d))
            path.parent.mkdir(parents=True)
            aside = path.parent / "quarantine"
            for torn in cuts:
                path.write_bytes(whole + torn)
                store = JsonlStore(path, fsync=False)
                assert store.head() == prior, torn
                assert list(store.read(0)) == events
                assert path.read_bytes() == whole + torn, "reading must not change the log"

                before = set(os.listdir(aside)) if aside.exists() else set()
                new = make_event(prior + 1, kind=2)
                JsonlStore(path, fsync=False).append([new], prior)
                assert path.read_bytes() == whole + ev.encode(new)
                assert list(JsonlStore(path).read(0)) == [*events, new]

                added = sorted(set(os.listdir(aside)) - before)
                assert len(added) == 2 and added[0].endswith(".bin") and added[1].endswith(".txt"), added
                assert (aside / added[0]).read_bytes() == torn
                note = (aside / added[1]).read_text()
                assert "log.jsonl" in note and f"byte {len(whole)}" in note and f"{len(torn)} bytes" in note

    def test_a_write_of_several_events_cut_anywhere_is_read_wholly_or_not_at_all(self, tmp_path: Path) -> None:
        # `bye` with three claims is one write of four events: a kill may cut it at any byte.
        path = self.log_of(tmp_path)
        path.parent.mkdir(parents=True)
        before = make_events(1, 2)
        JsonlStore(path, fsync=False).append(before, 0)
        whole = path.read_bytes()
        batch = [make_event(n, kind=8, priority=f"p{n}") for n in (3, 4, 5)] + [make_event(6, kind=3)]
        JsonlStore(path, fsync=False).append(batch, 2)
        written = path.read_bytes()[len(whole):]
        assert [ev.decode(x).more for x in written.splitlines()] == [True, True, True, msgspec.UNSET]
        assert JsonlStore(path).head() == 6
        for cut in range(1, len(written) - 1):  # all but the last newline is the whole write (see test_damage.py)
            path.write_bytes(whole + written[:cut])
            store = JsonlStore(path, fsync=False)
            assert list(store.read(0)) == before, f"cut at {cut}: part of a write was read"
            assert store.torn_tail == written[:cut]
        JsonlStore(path, fsync=False).append([make_event(3, kind=2)], 2)  # the next write sets it all aside
        assert [e.seq for e in JsonlStore(path).read(0)] == [1, 2, 3]
        assert written[:cut] in _files(path.parent / "quarantine").values()

    def test_only_a_newline_ends_a_line(self, tmp_path: Path) -> None:
        # A carriage return is JSON white space: line 2 stays one whole event, and the damage on line 4
        # is named at its own line and byte.
        path = self.log_of(tmp_path)
        path.parent.mkdir(parents=True)
        lines = [ev.encode(e) for e in make_events(1, 5)]
        lines[1] = lines[1].replace(b',"id"', b',\r"id"', 1)
        lines[3] = b"garbage\n"
        path.write_bytes(b"".join(lines))
        got = []
        with pytest.raises(CorruptLog, match=rf"line 4 \(byte {sum(map(len, lines[:3]))}\)"):
            for e in JsonlStore(path).read(0):
                got.append(e.seq)
        assert got == [1, 2, 3]

    def test_a_torn_tail_is_quarantined_by_the_next_hub_command(self, tmp_path: Path) -> None:
        hub, _ = Hub.init(tmp_path)
        hub.hello("alice")
        log = hub.log_path
        good = log.read_bytes()
        torn = ev.encode(make_event(3, kind=2, session="alice"))[:-9]
        log.write_bytes(good + torn)
        assert Hub(tmp_path).state().seq == 2  # a reader answers from the whole events
        assert log.read_bytes() == good + torn  # and leaves the log alone
        assert "unfinished write" in " ".join(Hub(tmp_path).verify()["warnings"])
        Hub(tmp_path).heartbeat("alice", "back")
        lines = log.read_bytes().splitlines(keepends=True)
        assert b"".join(lines[:2]) == good and len(lines) == 3
        assert ev.decode(lines[2]).seq == 3
        assert torn in _files(log.parent / "quarantine").values()
        assert Hub(tmp_path).verify() == {"events": 3, "warnings": [], "unknown": 0, "views": []}

    # -- a damaged line in the middle ----------------------------------------------------------

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda line: b"x" * (len(line) - 1) + b"\n", id="garbage"),
            pytest.param(lambda line: line[: len(line) // 2] + b"\n", id="truncated"),
            pytest.param(lambda line: b"\x00" * (len(line) - 1) + b"\n", id="zeros"),
            pytest.param(lambda line: b'{"hello": 1}\n', id="json-not-an-event"),
            pytest.param(lambda line: re.sub(rb'"seq":(\d+)', rb'"seq":"\1"', line), id="wrong-type"),
            pytest.param(lambda line: line[:-2] + b"\xff\xfe}\n", id="not-utf8"),
            pytest.param(lambda line: b"\n", id="blank"),
            pytest.param(lambda line: b"   \n", id="spaces"),
            pytest.param(lambda line: line[:-1] + line, id="two-values-on-one-line"),
        ],
    )
    @pytest.mark.parametrize("total,bad", [(6, 3), (6, 5), (1200, 700)])
    def test_a_damaged_middle_line_is_corrupt_log_naming_line_and_byte(
        self, tmp_path: Path, damage: Any, total: int, bad: int
    ) -> None:
        self.make_store(tmp_path)
        events = make_events(1, total)
        path = self.log_of(tmp_path)
        # One event a write, as one command each: an event is read only once its whole write is there.
        path.write_bytes(b"".join(ev.encode(e) for e in events))
        lines = path.read_bytes().splitlines(keepends=True)
        offset = sum(len(x) for x in lines[: bad - 1])
        lines[bad - 1] = damage(lines[bad - 1])
        damaged = b"".join(lines)
        path.write_bytes(damaged)
        assert offset > 64 * 1024 or total < 100  # the big case crosses the read block size

        reader = JsonlStore(path).read(0)
        got = []
        with pytest.raises(CorruptLog) as info:
            for e in reader:
                got.append(e)
        assert f"line {bad} " in str(info.value) and f"byte {offset})" in str(info.value)
        assert got == events[: bad - 1]  # every whole event before it, so readers can answer from them
        with pytest.raises(CorruptLog):
            JsonlStore(path).head()
        with pytest.raises(CorruptLog):
            JsonlStore(path).append([make_event(total + 1)], total)
        assert path.read_bytes() == damaged, "a write must never go past a damaged line"
        assert not (path.parent / "quarantine").exists()

    def test_events_are_read_at_seqs_past_a_damaged_line_and_the_damaged_one_is_corrupt_log(
        self, tmp_path: Path
    ) -> None:
        store = self.make_store(tmp_path)
        events = make_events(1, 1200)
        path = self.log_of(tmp_path)
        lines = b"".join(ev.encode(e) for e in events).splitlines(keepends=True)
        lines[699] = lines[699][:40] + b"\n"  # seq 700 keeps its start, and is no event
        lines[99] = b"garbage\n"  # seq 100 names no seq at all: the bisection cannot tell where it is
        path.write_bytes(b"".join(lines))
        wanted = [1, 99, 101, 699, 701, 1200]
        assert store.events_at(wanted) == {seq: events[seq - 1] for seq in wanted}
        with pytest.raises(CorruptLog):
            store.events_at([700])
        assert store.events_at([100]) == {}

    # -- the log is never followed out of the hub ------------------------------------------------

    def test_a_symlinked_log_is_refused(self, tmp_path: Path) -> None:
        elsewhere = tmp_path / "elsewhere.jsonl"
        JsonlStore(elsewhere).append(make_events(1, 2), 0)
        before = elsewhere.read_bytes()
        path = self.log_of(tmp_path / "hub")
        path.parent.mkdir(parents=True)
        path.symlink_to(elsewhere)
        with pytest.raises(StorageError):
            list(JsonlStore(path).read(0))
        with pytest.raises(StorageError):
            JsonlStore(path).head()
        with pytest.raises(StorageError):
            JsonlStore(path).append([make_event(3)], 2)
        assert elsewhere.read_bytes() == before

    def test_a_dangling_symlinked_log_is_never_created_through(self, tmp_path: Path) -> None:
        target = tmp_path / "planted.jsonl"
        path = self.log_of(tmp_path / "hub")
        path.parent.mkdir(parents=True)
        path.symlink_to(target)
        with pytest.raises(StorageError):
            JsonlStore(path).append(make_events(1, 1), 0)
        assert not target.exists()
        assert path.is_symlink()

    # -- a write that fails leaves the log as it was -----------------------------------------------

    def test_a_write_past_the_file_size_limit_leaves_the_log_unchanged(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.append(make_events(1, 3), 0)
        path = self.log_of(tmp_path)
        before = path.read_bytes()
        script = textwrap.dedent(
            """
            import resource, signal, sys
            from pathlib import Path
            from evhub import StorageError
            from evhub import _events as ev
            from evhub._store import JsonlStore
            path = Path(sys.argv[1])
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = path.stat().st_size + 200
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            batch = [ev.Heartbeat(seq=n, id=f"X{n}", ts="2026-11-25T12:00:00.000000Z", session="a",
                                  status="x" * 60) for n in range(4, 14)]
            try:
                JsonlStore(path).append(batch, 3)
            except StorageError as e:
                print("refused:", e)
            """
        )
        done = subprocess.run([sys.executable, "-c", script, str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("refused: cannot append to the log"), done.stdout
        assert path.read_bytes() == before
        more = make_events(4, 10)
        JsonlStore(path).append(more, 3)
        assert [e.seq for e in JsonlStore(path).read(0)] == list(range(1, 14))



@pytest.mark.parametrize(("given", "kept"), [
    ("postgresql://evo:S3cret@db:5432/team", "postgresql://evo@db:5432/team"),
    ("postgresql://evo@db/team?password=S3cret&sslmode=require", "postgresql://evo@db/team?sslmode=require"),
    ("postgresql://evo:S3c%40ret@db/team?password=S3cret", "postgresql://evo@db/team"),
    ("postgresql://evo@db/team", "postgresql://evo@db/team"),
    ("postgresql://?service=team", "postgresql://?service=team"),
])
def test_a_connection_string_is_kept_without_its_password(given: str, kept: str) -> None:
    assert without_password(given) == kept


@pytest.mark.parametrize("given", ["postgresql://evo:S3c@ret@db/team", "postgresql://evo:S3c?ret@db/team",
                                   "postgresql://evo:S3cret@[::1/team"])
def test_a_password_that_cannot_be_taken_out_is_refused_without_showing_it(given: str) -> None:
    with pytest.raises(BadInput) as refused:
        without_password(given)
    assert "S3c" not in str(refused.value)


class TestPgStore(StoreConformance):
    """The same promises from the PostgreSQL store (one schema per hub root), then what only a server has."""

    schemas: dict[Path, StoreSettings] = {}
    pg: HubStore

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _cluster(cls, pg_store: HubStore) -> None:
        cls.pg = pg_store

    def settings_for(self, root: Path) -> StoreSettings:
        if root not in self.schemas:
            settings = self.pg.settings()
            assert settings is not None
            self.schemas[root] = settings
        return self.schemas[root]

    def make_store(self, root: Path) -> PgStore:
        store = self.settings_for(root).open()
        store.create()
        return store

    def init_hub(self, root: Path) -> Hub:
        hub, created = Hub.init(root, store=self.settings_for(root))
        assert created
        return hub

    def sql(self, root: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """QUERY run as the cluster's superuser, on the schema of ROOT's store."""
        import psycopg

        assert self.pg.cluster is not None
        with psycopg.connect(self.pg.cluster.dsn, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.settings_for(root).schema}")
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def test_the_log_is_append_only_even_for_its_owner(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.append(make_events(1, 3), 0)
        import psycopg

        for query in ("UPDATE events SET line = 'x' WHERE seq = 2", "DELETE FROM events WHERE seq = 3",
                      "TRUNCATE events"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                self.sql(tmp_path, query)
        assert [e.seq for e in self.make_store(tmp_path).read(0)] == [1, 2, 3]

    def test_a_role_that_may_only_insert_and_select_runs_a_hub(self, tmp_path: Path) -> None:
        """The README's grants, for a role that is no superuser and owns nothing."""
        import psycopg

        owner = tmp_path / "owner"
        hub = self.init_hub(owner)
        hub.hello("alice")
        schema = self.settings_for(owner).schema
        role = f"{schema}_app"
        self.sql(owner, f"CREATE ROLE {role} LOGIN")
        self.sql(owner, f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        self.sql(owner, f"GRANT SELECT, INSERT ON {schema}.events TO {role}")
        assert self.pg.cluster is not None
        dsn = self.pg.cluster.dsn.replace("postgres@", f"{role}@")
        (tmp_path / "app.dsn").write_text(dsn + "\n")
        # Another machine joins the hub as that role, and works.
        other = Hub.init(tmp_path / "app", store=StoreSettings(schema, tmp_path / "app.dsn"))[0]
        other.hello("bob")
        assert other.claim("bob", "api").token > 0
        assert [s for s in Hub(owner).state().sessions] == ["alice", "bob"]
        with psycopg.connect(dsn, autocommit=True) as conn:
            for query in (f"UPDATE {schema}.events SET line = 'x'", f"DELETE FROM {schema}.events",
                          f"TRUNCATE {schema}.events", f"DROP TABLE {schema}.events"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(query)
        assert Hub(owner).verify()["events"] == 4

    def test_a_search_answered_in_sql_finds_what_the_scan_of_every_row_finds(self, tmp_path: Path) -> None:
        """Only candidate rows cross the network, at the offsets the export gives them, from the start and
        then from where the last search ended (as `log --follow` asks)."""
        store = self.make_store(tmp_path)
        store.append(make_events(1, 2 * len(TEMPLATES)), 0)
        needle_sets = [[b'"heartbeat"'], [b'"priority_claimed"', b'"alice"'], [b'"alice"'], [b'"nobody"']]
        for needles in needle_sets:
            scanned = list(Store.search(self.make_store(tmp_path), needles))
            found = list(store.search(needles))
            assert found == scanned and found, needles  # every set matches something, if only an escaped line
            assert store.scanned_to == sum(len(ev.encode(e)) for e in store.read(0))
        assert any(b"\\u" in line.raw for line in found), "the escape rule was exercised"
        head, end = store.head(), store.scanned_to
        store.append(make_events(head + 1, 5), head)
        later = list(store.search([b'"alice"'], end))
        assert later == [line for line in Store.search(self.make_store(tmp_path), [b'"alice"']) if line.offset >= end]
        assert later and all(ev.decode(line.raw).seq > head for line in later)

    def test_a_row_a_careless_client_left_is_named_not_skipped(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.append(make_events(1, 2), 0)
        self.sql(tmp_path, "INSERT INTO events (seq, id, line) VALUES (3, 'bad', '{\"type\": 7')")
        got = []
        with pytest.raises(CorruptLog, match="the row after seq 2 is not a whole event"):
            for e in self.make_store(tmp_path).read(0):
                got.append(e.seq)
        assert got == [1, 2], "every event before the row, so readers can answer from them"
        self.sql(tmp_path, "INSERT INTO events (seq, id, line) VALUES (5, 'gap', %s)",
                 ev.encode(make_event(5))[:-1].decode())
        with pytest.raises(CorruptLog, match="the row after seq 3: seq 5 where 4 was expected"):
            list(self.make_store(tmp_path).read(3))

    def test_repair_checks_a_sound_log_and_cannot_rewrite_a_damaged_one(self, tmp_path: Path) -> None:
        hub = self.init_hub(tmp_path)
        hub.hello("alice")
        assert Hub(tmp_path).repair() == {"repaired": False, "events": 2, "set_aside": [], "lost": 0, "backup": None,
                                         "restored": False}
        self.sql(tmp_path, "INSERT INTO events (seq, id, line) VALUES (3, 'bad', 'not json')")
        with pytest.raises(CorruptLog, match="append-only, so repair cannot rewrite it"):
            Hub(tmp_path).repair()
        with pytest.raises(CorruptLog, match="the row after seq 2"):
            Hub(tmp_path).heartbeat("alice")

    def test_an_append_wakes_a_waiting_follower(self, tmp_path: Path) -> None:
        writer, follower = self.make_store(tmp_path), self.make_store(tmp_path)
        follower.wait(0)  # starts listening
        assert follower.wait(0.3) is False, "woke with nothing appended"
        threading.Timer(0.2, lambda: writer.append(make_events(1, 1), 0)).start()
        assert follower.wait(60) is True, "the append did not wake the follower"
        assert follower.head() == 1

    def test_two_schemas_are_two_hubs(self, tmp_path: Path) -> None:
        a, b = self.make_store(tmp_path / "a"), self.make_store(tmp_path / "b")
        a.append(make_events(1, 3), 0)
        assert b.head() == 0
        b.append(make_events(1, 1), 0)
        assert a.head() == 3 and b.head() == 1

    def test_an_unreachable_server_is_one_clear_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EVHUB_PG_RETRY_S", "0.3")
        store = PgStore(f"postgresql://postgres:secret@127.0.0.1:{free_port()}/postgres", "nowhere")
        with pytest.raises(StorageError, match="cannot reach the PostgreSQL store at 127.0.0.1") as caught:
            store.head()
        assert "secret" not in str(caught.value)
        with pytest.raises(StorageError, match="nothing was written"):
            store.append(make_events(1, 1), 0)

    def test_a_password_is_never_shown_however_malformed_the_connection_string(self, tmp_path: Path) -> None:
        assert self.pg.cluster is not None
        server = f"127.0.0.1:{self.pg.cluster.port}"
        dsns = [
            "postgresql://evo:S3cretPW@[::1/team",  # an unbalanced bracket: the parser quotes the whole string
            "postgresql://evo:S3c%zzretPW@localhost/team",  # a bad escape: it quotes only the password
            f"postgresql://{server}/postgres?password=S3c%zzret",
            f"postgresql://{server}/postgres?user=evo&password=S3cretPW",  # well formed: the server refuses evo
            f"postgresql://evo:S3cretPW@{server}/postgres",
            f"postgresql://postgres:S3cretPW@127.0.0.1:{free_port()}/postgres",  # no server there
        ]
        hub = self.init_hub(tmp_path / "hub")
        schema = self.settings_for(tmp_path / "hub").schema
        new, dsn_file = [tmp_path / f"new{n}" for n in range(3)], tmp_path / "dsn"
        for dsn in dsns:
            dsn_file.write_text(dsn + "\n")
            calls = [(["init", new[0], "--schema", schema, "--store", dsn], None),
                     (["init", new[1], "--schema", schema, "--store-file", dsn_file], None),
                     (["init", new[2], "--schema", schema, "--json"], dsn),
                     (["where"], dsn), (["status"], dsn), (["log", "--json"], dsn)]
            # Each call fails (or, `where`, only reads), so the six run side by side, each init to its own folder.
            procs = [started(*argv, env={"EVHUB_PG_RETRY_S": "0", **({"EVHUB_STORE": store} if store else {})},
                             cwd=hub.root) for argv, store in calls]
            for (argv, _), said in zip(calls, map(finished, procs), strict=True):
                assert "S3c" not in said.stdout + said.stderr, (argv, said)
                if argv[0] != "where":  # which names the server, and asks it nothing
                    assert said.returncode == 1 and len(said.stderr.splitlines()) == 1, (argv, said)
                    if "--json" in argv:  # under --json the error is a JSON line
                        assert json.loads(said.stderr)["exit"] == 1, (argv, said)
                    else:
                        assert said.stderr.startswith("error: "), (argv, said)
            assert not any(folder.exists() for folder in new)

    def test_a_hub_made_with_a_password_keeps_the_string_without_it_and_libpq_finds_it(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The role must give its password (the rest of the cluster trusts), so each command that works
        got it from where libpq looks: here PGPASSFILE; no command needs EVHUB_STORE after init."""
        assert self.pg.cluster is not None
        monkeypatch.delenv("PGPASSWORD", raising=False)
        dsn = self.pg.cluster.password_role("evhub_pw_test", "S3cretPW")
        root, schema = tmp_path / "hub", self.settings_for(tmp_path / "hub").schema
        with_password = dsn.replace("evhub_pw_test@", "evhub_pw_test:S3cretPW@") + "?connect_timeout=5"
        made = run("init", root, "--store", with_password, "--schema", schema)
        assert made.returncode == 0 and "S3c" not in made.stdout + made.stderr, made
        assert made.stderr.splitlines() == ["the password is not kept with the connection string: put it in "
                                            "~/.pgpass (or the file PGPASSFILE names), PGPASSWORD, or a service "
                                            "file (?service=NAME)"]
        kept = (root / "SESSIONS" / "events" / "store.json").read_text()
        assert "S3c" not in kept and msgspec.json.decode(kept)["dsn"] == f"{dsn}?connect_timeout=5"
        passfile = tmp_path / "pgpass"
        no_file = {"PGPASSFILE": str(passfile)}
        refused = error_line(run("status", env=no_file, cwd=root), 1)
        assert "wants a password: put it in ~/.pgpass" in refused and "no password supplied" in refused, refused
        passfile.write_text(f"127.0.0.1:{self.pg.cluster.port}:postgres:evhub_pw_test:S3cretPW\n")
        passfile.chmod(0o600)
        assert run("hello", "alice", env=no_file, cwd=root).returncode == 0
        assert run("claim", "api", "-s", "alice", env=no_file, cwd=root).stdout == "claimed api (token 3)\n"
        # EVHUB_STORE, when set, still wins over the kept string.
        port = free_port()
        where = run("where", env={"EVHUB_STORE": f"postgresql://nobody@localhost:{port}/other"}, cwd=root)
        assert f"log: localhost:{port}/other schema {schema}\n" in where.stdout, where

    def test_init_on_a_schema_whose_events_table_is_the_applications_refuses_and_leaves_nothing(
            self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        subprocess.run(["git", "init", "-q", root], check=True)
        schema = self.settings_for(root).schema
        self.sql(root, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.events (id serial PRIMARY KEY, name text);"
                       f"INSERT INTO {schema}.events (name) VALUES ('signup')")
        catalog = ("SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = %s::regnamespace), "
                   "(SELECT count(*) FROM pg_class WHERE relnamespace = %s::regnamespace)")
        before = self.sql(root, catalog, schema, schema)
        assert self.pg.dsn_file is not None
        for _ in range(2):  # the second init is refused alike: the first left nothing that says "a hub is here"
            said = run("init", "--store-file", self.pg.dsn_file, "--schema", schema, cwd=root)
            assert said.returncode == 3 and said.stderr.splitlines() == [
                f"error: {schema}.events exists and is not an evhub log: choose another --schema"], said.stderr
            assert not (root / "SESSIONS").exists() and not (root / ".git" / "evhub").exists()
        assert "no hub here" in run("status", cwd=root).stderr
        assert self.sql(root, "SELECT id, name FROM events") == [(1, "signup")]
        assert self.sql(root, catalog, schema, schema) == before

    def test_an_init_that_fails_on_the_way_leaves_no_settings_saying_a_hub_is_here(self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        subprocess.run(["git", "init", "-q", root], check=True)
        schema = self.settings_for(root).schema
        assert self.pg.dsn_file is not None
        init = ["init", "--store-file", self.pg.dsn_file, "--schema", schema]
        lock = root / ".git" / "evhub" / "lock"
        lock.parent.mkdir()
        lock.symlink_to(tmp_path / "elsewhere")  # the hub's lock cannot be taken: init fails after the server part
        assert run(*init, cwd=root).returncode == 1
        assert not (root / ".git" / "evhub" / "store.json").exists()
        assert "no hub here" in run("status", cwd=root).stderr
        lock.unlink()
        assert "created a hub" in run(*init, cwd=root).stdout
        assert run("status", cwd=root).returncode == 0
