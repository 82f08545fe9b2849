"""The fast `log` scan and `why` against the obvious way: decode (and fold) every line, then judge it.

The fast paths look for bytes first and decode only the lines that may match; these tests hold them
to the same answer on logs whose lines are spelled every way JSON allows: evhub's compact form,
white space (`{"type": "priority_claimed", ...}`), \\u escapes in any value, and text that holds the
very bytes the scan looks for.  Blocks are made small so that lines straddle block boundaries.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from clock import at, wait_until
from command import EVHUB, clean_env, ok, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logs import bye_hub, damaged

from evhub import _events as ev
from evhub import _store
from evhub._errors import CorruptLog, NotFound
from evhub._history import LogFilter, follow_lines, matching_lines
from evhub._hub import Hub
from evhub._state import State, evolve
from evhub._store import JsonlStore, LogLine
from evhub._values import new_id

SESSIONS = ["s1", "s2", "s10"]
PRIORITIES = ["p1", "p10", "api"]
NOW = "2026-11-25T12:00:00.000000Z"


def _ts(seq: int) -> str:
    return f"2026-11-25T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000000Z"


def _event(seq: int, kind: str, session: str, priority: str, text: str, resume: bool) -> ev.Event:
    common: dict[str, Any] = {"seq": seq, "id": f"{seq:026d}", "ts": _ts(seq), "session": session}
    if kind == "claim":
        return ev.PriorityClaimed(**common, priority=priority)
    if kind == "release":
        return ev.PriorityReleased(**common, priority=priority, note=text)
    if kind == "hello":
        return ev.SessionRegistered(**common, resume=resume, about=text)
    if kind == "msg":
        return ev.MessagePosted(**common, text=text or "hi", to=priority)
    return ev.Heartbeat(**common, status=text)


def _escaped(value: str) -> str:
    return '"' + "".join(f"\\u{ord(c):04x}" for c in value) + '"'


def _spell(e: ev.Event, style: str) -> bytes:
    """E as one log line: evhub's own bytes, with white space, or with a value written in \\u escapes."""
    if style == "compact":
        return ev.encode(e)
    doc = ev.to_dict(e)
    text = json.dumps(doc)  # ", " and ": " between items
    if style.startswith("escape-"):
        key = style.removeprefix("escape-")
        if key in doc:
            plain = json.dumps({key: doc[key]})[1:-1]
            text = text.replace(plain, json.dumps(key) + ": " + _escaped(str(doc[key])), 1)
    return text.encode() + b"\n"


TEXTS = st.sampled_from(["", "s1", '"s1"', '"priority_claimed"', '"p1"', "a \\u0073 b", "\\", "é\u2713"])
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["claim", "release", "hello", "msg", "beat"]),
        st.sampled_from(SESSIONS),
        st.sampled_from(PRIORITIES),
        TEXTS,
        st.booleans(),
        st.sampled_from(["compact", "compact", "spaced", "escape-type", "escape-session", "escape-priority"]),
    ),
    max_size=40,
)


def _write_log(root: Path, rows: list[tuple[str, str, str, str, bool, str]]) -> Path:
    log = root / "SESSIONS" / "events" / "log.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = [ev.encode(ev.HubCreated(seq=1, id="0" * 26, ts=_ts(1)))]
    lines += [_spell(_event(seq, *row[:5]), row[5]) for seq, row in enumerate(rows, 2)]
    log.write_bytes(b"".join(lines))
    return log


def _naive(log: Path, flt: LogFilter) -> list[LogLine]:
    out, pos = [], 0
    for raw in (line + b"\n" for line in log.read_bytes().split(b"\n")[:-1]):
        if flt.matches(ev.decode(raw)):
            out.append(LogLine(pos, raw))
        pos += len(raw)
    return out


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "CHUNK", 97)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=EVENTS,
    type_=st.sampled_from([None, "claim", "release", "hello", "msg", "heartbeat", "hub_created"]),
    session=st.sampled_from([None, *SESSIONS]),
    since=st.sampled_from([None, _ts(5)]),
    until=st.sampled_from([None, _ts(20)]),
)
def test_log_scan_is_the_naive_filter(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str, str, bool, str]],
    type_: str | None, session: str | None, since: str | None, until: str | None,
) -> None:
    log = _write_log(tmp_path_factory.mktemp("hub"), rows)
    flt = LogFilter.make(session=session, type_=type_, since=since, until=until, now=NOW)
    warnings: list[str] = []
    shown, end = matching_lines(JsonlStore(log), flt, None, warnings)
    assert shown == _naive(log, flt)
    assert end == log.stat().st_size and warnings == []
    assert matching_lines(JsonlStore(log), flt, 2, warnings)[0] == shown[-2:]


def test_spelled_lines_are_found(tmp_path: Path) -> None:
    """The three spellings of one claim are each shown: white space and escapes are not skipped."""
    claim = ev.PriorityClaimed(seq=2, id="0" * 26, ts=_ts(2), session="s1", priority="p1")
    log = _write_log(tmp_path, [])
    lines = [_spell(claim, "spaced"), _spell(claim, "escape-type"), _spell(claim, "escape-session")]
    for seq, line in enumerate(lines, 2):
        log.write_bytes(log.read_bytes() + line.replace(b'"seq": 2', f'"seq": {seq}'.encode()))
    assert b'{"type": "priority_claimed"' in lines[0] and b"\\u0070\\u0072" in lines[1]
    flt = LogFilter.make(session="s1", type_="claim", since=None, until=None, now=NOW)
    shown, _ = matching_lines(JsonlStore(log), flt, None, [])
    assert [line.raw for line in shown] == [line.replace(b'"seq": 2', f'"seq": {seq}'.encode())
                                            for seq, line in enumerate(lines, 2)]


def test_a_damaged_candidate_line_ends_the_list_with_a_warning(tmp_path: Path) -> None:
    log = _write_log(tmp_path, [("claim", "s1", "p1", "", False, "compact")] * 2)
    data = log.read_bytes().splitlines(keepends=True)
    damaged = b'{"type":"priority_claimed","session":"s1",\n'
    log.write_bytes(b"".join([*data[:2], damaged, b'{"type":"heartbeat" not json\n', *data[2:]]))
    flt = LogFilter.make(session="s1", type_="claim", since=None, until=None, now=NOW)
    warnings: list[str] = []
    shown, _ = matching_lines(JsonlStore(log), flt, None, warnings)
    assert [line.raw for line in shown] == [data[1]]
    at = len(data[0]) + len(data[1])
    assert len(warnings) == 1 and warnings[0].startswith(f"the log is damaged at byte {at} (")


class _Waited(Exception):
    """The follower went to wait."""


class _WatchedStore(JsonlStore):
    """A real log store that counts the follower's reads and stops it at its first wait."""

    reads = 0

    def lines(self, start: int = 0) -> Iterator[LogLine]:
        self.reads += 1
        assert self.reads < 100, "the follower reads the log again and again without waiting"
        return super().lines(start)

    def wait(self, timeout: float) -> bool:
        raise _Waited


def test_a_follower_whose_log_is_gone_waits_for_it_rather_than_spin(tmp_path: Path) -> None:
    """Found as `evhub log --follow` processes each burning a core after their hub was deleted."""
    log = _write_log(tmp_path, [("claim", "s1", "p1", "", False, "compact")])
    flt = LogFilter.make(session=None, type_=None, since=None, until=None, now=NOW)
    _, end = matching_lines(JsonlStore(log), flt, None, [])
    with log.open("ab") as f:
        f.write(ev.encode(_event(3, "beat", "s1", "p1", "", False)))
    follow = follow_lines(_WatchedStore(log), flt, end, [])
    assert ev.decode(next(follow).raw).seq == 3
    log.unlink()
    with pytest.raises(_Waited):
        next(follow)


def test_follow_sees_lines_appended_later(tmp_path: Path) -> None:
    log = _write_log(tmp_path, [("claim", "s1", "p1", "", False, "compact")])
    flt = LogFilter.make(session="s1", type_="claim", since=None, until=None, now=NOW)
    _, end = matching_lines(JsonlStore(log), flt, None, [])
    later = _spell(_event(3, "claim", "s1", "p10", "", False), "spaced")
    with log.open("ab") as f:
        f.write(ev.encode(_event(2, "beat", "s1", "p1", "", False)) + later + b'{"type":"priority_cl')
    follow: Iterator[LogLine] = follow_lines(JsonlStore(log), flt, end, [])
    assert next(follow) == LogLine(end + len(ev.encode(_event(2, "beat", "s1", "p1", "", False))), later)


def _why(root: Path, priority: str) -> list[dict[str, Any]] | str:
    try:
        return Hub(root).why(priority)
    except NotFound as e:
        return str(e)


def _changes_one_event_at_a_time(root: Path, priority: str) -> list[tuple[int, str | None]]:
    """The obvious way: fold the log one event at a time and note each event after which PRIORITY's
    claim is another (holder, token), or was claimed again by its holder: (seq, holder after)."""
    state = State()
    out: list[tuple[int, str | None]] = []
    for e in JsonlStore(root / "SESSIONS" / "events" / "log.jsonl").read(0):
        before = state.claims.get(priority)
        held = None if before is None else (before.session, before.token)
        evolve(state, e)
        after = state.claims.get(priority)
        now = None if after is None else (after.session, after.token)
        refreshed = isinstance(e, ev.PriorityClaimed) and e.priority == priority and now is not None
        if now != held or refreshed:
            out.append((e.seq, None if after is None else after.session))
    return out


_HOLDING = {"claimed", "refreshed", "took over", "renamed"}


@settings(max_examples=150, deadline=None)
@given(rows=EVENTS, priority=st.sampled_from(PRIORITIES), torn=st.integers(0, 4))
def test_why_is_what_the_fold_did_to_the_claim(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str, str, bool, str]], priority: str,
    torn: int,
) -> None:
    root = tmp_path_factory.mktemp("hub")
    log = _write_log(root, rows)
    if torn:  # a write cut short: its last lines carry `more`, then maybe half a line or a damaged one
        seq = len(rows) + 2
        batch = [_event(seq, "release", "s1", priority, "", False), _event(seq + 1, "claim", "s2", priority, "", False)]
        for e in batch:
            e.more = True
        tail = b"".join(ev.encode(e) for e in batch[: 1 + (torn > 1)])
        end = {3: b'{"type":"priority_re', 4: b'{"type":"session_registered",\n'}.get(torn, b"")
        log.write_bytes(log.read_bytes() + tail + end)
    expected = _changes_one_event_at_a_time(root, priority)
    rows_or_error = _why(root, priority)
    if not expected:
        assert isinstance(rows_or_error, str) and rows_or_error.startswith(f"{priority} has never been claimed")
        return
    assert isinstance(rows_or_error, list)
    shown = [(r["seq"], r["session"] if r["action"] in _HOLDING else None) for r in rows_or_error]
    assert shown == expected


def test_why_names_a_damaged_line(tmp_path: Path) -> None:
    log = _write_log(tmp_path, [("claim", "s1", "p1", "", False, "compact")] * 2)
    data = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*data[:2], b'{"type":"session_registered",\n', *data[2:]]))
    with pytest.raises(CorruptLog) as caught:
        _why(tmp_path, "p1")
    assert ": line 3 (byte " in str(caught.value)


class Following:
    """`evhub log --follow` running in ROOT, what it prints collected as it comes."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([EVHUB, "log", "--follow"], cwd=root, env=clean_env(), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.readers = [threading.Thread(target=self._collect, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)

    def seqs(self) -> list[int]:
        assert self.proc.poll() is None, "".join(self.errors)  # its stderr, as read so far
        return [int(line.split()[0].lstrip("#")) for line in self.lines]

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        for reader in self.readers:
            reader.join(timeout=30)  # the pipes are closed: each reader ends once it has read the rest
        return "".join(self.errors)


def test_follow_goes_on_through_a_repair(tmp_path: Path) -> None:
    """The follower notices that repair rewrote the log under it and goes on after the last event it
    printed: each new event once, and the event repair replaced with a placeholder said to be lost."""
    hub, lines = bye_hub(tmp_path)
    ok(run("hello", "alice", cwd=tmp_path, env={"EVHUB_NOW": at(10)}))
    follow = Following(tmp_path)
    try:
        wait_until("the follower prints the log", lambda: follow.seqs() == list(range(1, 9)))
        ok(run("msg", "send", "before the damage", cwd=tmp_path, env={"EVHUB_NOW": at(11), "EVHUB_SESSION": "alice"}))
        wait_until("the follower prints the new message", lambda: follow.seqs()[-1:] == [9])
        log = hub.log_path.read_bytes().splitlines(keepends=True)
        hub.log_path.write_bytes(b"".join(damaged("damaged middle line", log).lines))
        assert ok(run("repair", "--json", cwd=tmp_path, env={"EVHUB_NOW": at(12)})).stdout.count('"lost": 1')
        assert len(hub.log_path.read_bytes()) != sum(map(len, log)), "the lines after the damage moved"
        for n in range(1, 9):
            ok(run("msg", "send", f"after the repair {n}", cwd=tmp_path,
                   env={"EVHUB_NOW": at(12 + n), "EVHUB_SESSION": "alice"}))
        wait_until("the follower prints the 8 messages", lambda: follow.seqs()[-8:] == list(range(10, 18)))
        assert follow.seqs() == [*range(1, 10), 3, *range(10, 18)]
        assert "event_lost" in follow.lines[9] and all(f"after the repair {n}" in follow.lines[9 + n]
                                                       for n in range(1, 9))
    finally:
        assert "Traceback" not in follow.stop()


def test_follow_waits_on_a_damaged_line_and_shows_each_event_once(tmp_path: Path) -> None:
    """An event and a line that is not one arrive together: the follower shows the event once and waits on
    the damage (it showed the event again at every poll), then goes on once repair has set the line aside."""
    hub, _ = bye_hub(tmp_path)
    ok(run("hello", "alice", cwd=tmp_path, env={"EVHUB_NOW": at(10)}))
    follow = Following(tmp_path)
    try:
        wait_until("the follower prints the log", lambda: follow.seqs() == list(range(1, 9)))
        by_hand = ev.MessagePosted(seq=9, id=new_id(), ts=at(11), session="alice", text="by hand")
        with hub.log_path.open("ab") as f:
            f.write(ev.encode(by_hand) + b"not an event\n")
        wait_until("the follower prints the event before the damage", lambda: 9 in follow.seqs())
        # Said while it waits, not when it ends (it printed nothing until interrupted), and said once.
        wait_until("the follower says why it waits", lambda: follow.errors)
        assert follow.errors[0].startswith("warning: the log is damaged at byte ")
        assert follow.errors[0].rstrip().endswith("waiting for `evhub repair`")
        assert ok(run("repair", "--json", cwd=tmp_path, env={"EVHUB_NOW": at(12)})).stdout.count('"repaired": true')
        ok(run("msg", "send", "after the repair", cwd=tmp_path, env={"EVHUB_NOW": at(13), "EVHUB_SESSION": "alice"}))
        wait_until("the follower prints the message", lambda: 10 in follow.seqs())
        assert follow.seqs() == list(range(1, 11))
        assert len(follow.errors) == 1, follow.errors
    finally:
        assert "Traceback" not in follow.stop()
