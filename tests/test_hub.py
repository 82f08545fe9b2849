"""The Python API end to end, on real files: layout, finding a hub, the disposable read model,
replay, the lock (with real processes), why and verify."""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from clock import at, wait_until
from command import SEED_SHIMS as SHIMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import HubStore

from evhub import BadInput, Conflict, CorruptLog, EvhubError, Hub, HubBusy, HubNotFound, NotFound, StorageError, _place
from evhub import _decide as d
from evhub import _events as ev
from evhub._errors import LogRewound
from evhub._readmodel import TEXTS_AHEAD
from evhub._state import State, fold
from evhub._values import new_id

# What a refused command may raise in a random scenario; anything else is a bug.
REFUSED = (Conflict, NotFound, BadInput)


@contextlib.contextmanager
def clock() -> Iterator[Callable[[float], None]]:
    """set(t) fixes EVHUB_NOW at T0 + t seconds; the old value is put back afterwards."""
    old = os.environ.get("EVHUB_NOW")

    def set_now(t: float) -> None:
        os.environ["EVHUB_NOW"] = at(t)

    try:
        yield set_now
    finally:
        if old is None:
            os.environ.pop("EVHUB_NOW", None)
        else:
            os.environ["EVHUB_NOW"] = old


@pytest.fixture
def set_now() -> Iterator[Callable[[float], None]]:
    with clock() as set_now:
        yield set_now


def views(sessions: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under SESSIONS/ but events/: relative path -> (content, mode)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(sessions):
        rel = Path(dirpath).relative_to(sessions)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d != "events"]
        for name in filenames:
            p = Path(dirpath) / name
            out[(rel / name).as_posix()] = (p.read_bytes(), stat.S_IMODE(p.lstat().st_mode))
    return out


def everything(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ROOT with its content and mtime."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def folded(hub: Hub) -> Any:
    """The state a full fold of the log gives, as plain data."""
    return plain(fold(list(hub.events())))


def plain(state: State) -> Any:
    """STATE as plain data, without the messages it has not handed to a read model yet (a fold
    from the start holds all of them; a state loaded from the read model holds only the newest)."""
    doc = msgspec.to_builtins(state)
    del doc["new_messages"], doc["new_renames"]
    return doc


def every_message(hub: Hub) -> list[Any]:
    """Every message on the board, from a full fold of the log."""
    return fold(list(hub.events())).new_messages


def log_of(hub: Hub) -> bytes:
    """The whole events of HUB's log as `evhub export` writes them, whatever store holds it."""
    out = io.BytesIO()
    hub.open_store().dump(out)
    return out.getvalue()


def new_hub(root: Path, store: HubStore | None) -> Hub:
    """A new hub in ROOT, its log on STORE (the JSONL file for None)."""
    hub, created = Hub.init(root, store=store.settings() if store else None)
    assert created
    return hub


def replayed(hub: Hub, out: Path, **kw: Any) -> dict[str, tuple[bytes, int]]:
    """The views a replay from nothing renders into OUT (a fresh folder)."""
    hub.replay(out=out, **kw)
    return views(out)


def day(root: Path, set_now: Callable[[float], None], store: HubStore | None = None) -> Hub:
    """Three sessions' day: claims, a milestone, messages, a handshake, a silent session taken over."""
    set_now(0)
    hub = new_hub(root, store)
    set_now(1)
    hub.hello("alice", role="builder", about="the dashboard")
    set_now(2)
    hub.hello("bob", role="reviewer", specialization="code review")
    set_now(3)
    hub.hello("carol", role="ops")
    set_now(10)
    hub.claim("alice", "api")
    set_now(11)
    mid = hub.create_milestone("alice", "Dashboard", priority="ui", steps=["build", "test", "ship"])
    set_now(12)
    hub.claim_milestone("alice", mid)
    set_now(13)
    hub.update_step("alice", mid, 1, "done", note="built")
    set_now(14)
    hub.claim("carol", "docs", ttl_s=60)
    set_now(15)
    hub.send("bob", "## from session-x\n<b>fake</b> heading")
    set_now(16)
    hub.send("alice", "psst", to="bob")
    set_now(17)
    hub.focus("alice", "ship the dashboard")
    set_now(18)
    hub.note("carol", "docs half done")
    set_now(20)
    assert [m.text for m in hub.inbox("bob")] == ["psst"]
    set_now(21)
    hub.propose_id("bob", "robert", reason="nicer")
    set_now(200)
    hub.heartbeat("alice", "testing")
    hub.heartbeat("bob")
    set_now(400)  # carol has been silent past the ttl: bob takes her claim over
    hub.claim("bob", "docs")
    set_now(410)
    hub.release("bob", "docs", done=True, note="written")
    hub.flush()  # calls less than a second apart leave the views to the last one's flush
    return hub


# -- a random scenario of every command by three sessions ---------------------------------------

SIDS = ("alice", "bob", "carol")
PRIOS = ("api", "ui", "docs")
STEP_STATUSES = ("pending", "in-progress", "done", "blocked", "skipped")


def act(hub: Hub, action: int, who: int, x: int) -> None:
    me, other, p = SIDS[who], SIDS[(who + 1 + x) % 3], PRIOS[x % 3]
    steps: list[Callable[[], object]] = [
        lambda: hub.hello(me, role=f"role {x}"),
        lambda: hub.hello(me, resume=True),
        lambda: hub.heartbeat(me, f"working on {p}"),
        lambda: hub.bye(me),
        lambda: hub.claim(me, p),
        lambda: hub.claim(me, p, ttl_s=60),
        lambda: hub.release(me, p, done=x % 2 == 0, note=f"note {x}"),
        lambda: hub.release(me, p, force=True),
        lambda: hub.focus(me, f"focus {x}\n## not a heading"),
        lambda: hub.note(me, f"note {x}"),
        lambda: hub.create_milestone(me, f"Milestone {p}", priority=p, steps=["design", "build", "ship"]),
        lambda: hub.claim_milestone(me, f"milestone-{p}"),
        lambda: hub.update_step(me, f"milestone-{p}", 1 + x % 3, STEP_STATUSES[x % 5]),
        lambda: hub.send(me, f"message {x}", to="all" if x % 2 else other),
        lambda: hub.inbox(me),
        lambda: hub.inbox(me, peek=True),
        lambda: hub.propose_id(me, f"{me}-{x % 2}"),
        lambda: hub.accept_id(me, f"{other}-{x % 2}"),
        lambda: hub.reject_id(me, f"{other}-{x % 2}", reason="no"),
        lambda: hub.save(me, note=f"saved {x}" if x % 2 else ""),
    ]
    steps[action % len(steps)]()


N_ACTIONS = 20
DELAYS = (1, 1, 2, 5, 30, 200, 400)  # mostly busy; now and then a session falls silent


def run_and_compare(hub: Hub, out_base: Path, set_now: Callable[[float], None],
                    script: list[tuple[int, int, int, int]]) -> list[tuple[int, float, dict[str, Any]]]:
    """Run SCRIPT; after every command that succeeds, the views equal a replay from nothing.
    A refused command leaves the log byte for byte as it was.  Returns (seq, time, views) after
    every command that appended."""
    hub.publish_every = 0  # views after every call, as every CLI command leaves them
    t = 0.0
    history = []
    for i, (action, who, x, delay) in enumerate(script):
        t += delay
        set_now(t)
        log_before = log_of(hub)
        head_before = hub.store.head()
        try:
            act(hub, action, who, x)
        except REFUSED:
            assert log_of(hub) == log_before, f"a refused command wrote: {script[: i + 1]}"
            continue
        now_views = views(hub.dir)
        assert now_views == replayed(hub, out_base / str(i)), f"views differ after {script[: i + 1]}"
        head = hub.store.head()
        if head != head_before:
            history.append((head, t, now_views))
    return history


# -- init --------------------------------------------------------------------------------------------


def test_init_creates_the_layout(tmp_path: Path) -> None:
    hub, created = Hub.init(tmp_path, alive_ttl_s=120)
    assert created
    assert os.listdir(tmp_path) == ["SESSIONS"], "init writes nothing outside SESSIONS/"
    events = tmp_path / "SESSIONS" / "events"
    [line] = (events / "log.jsonl").read_bytes().splitlines(keepends=True)
    first = ev.decode(line)
    assert isinstance(first, ev.HubCreated) and first.seq == 1 and first.alive_ttl_s == 120
    assert first.ts.endswith("Z") and len(first.ts) == len("2026-11-25T12:00:00.000000Z")
    assert (events / "readmodel.sqlite3").is_file()
    files = views(hub.dir)
    for name in ("README.md", "CURRENT_STATE.md", "REGISTRY.json", "MESSAGES.md", *SHIMS):
        assert name in files, name
    for shim in SHIMS:
        assert files[shim][1] & 0o111, f"{shim} is not executable"
    msgspec.json.decode(files["REGISTRY.json"][0])

    # git ignores the read model and the lock, and keeps the log
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", "SESSIONS/events/readmodel.sqlite3",
         "SESSIONS/events/readmodel.sqlite3-journal", "SESSIONS/events/lock", "SESSIONS/events/log.jsonl"],
        capture_output=True, text=True,
    ).stdout.split()
    assert ignored == ["SESSIONS/events/readmodel.sqlite3", "SESSIONS/events/readmodel.sqlite3-journal",
                       "SESSIONS/events/lock"]


def test_init_makes_missing_folders(tmp_path: Path) -> None:
    hub, created = Hub.init(tmp_path / "a" / "b")
    assert created and hub.log_path == tmp_path / "a" / "b" / "SESSIONS" / "events" / "log.jsonl"
    assert hub.state().seq == 1


def test_init_on_an_existing_hub_changes_nothing(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    day(tmp_path, set_now, store)
    set_now(500)
    before = everything(tmp_path)
    hub, created = Hub.init(tmp_path, alive_ttl_s=60)
    assert not created
    assert hub.root == tmp_path
    assert everything(tmp_path) == before
    assert hub.state().alive_ttl_s == 300


# -- finding a hub --------------------------------------------------------------------------------


@pytest.fixture
def nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An outer hub with a hub inside it, and no EVHUB_HUB."""
    monkeypatch.delenv("EVHUB_HUB", raising=False)
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "work" / "inner"
    Hub.init(outer)
    Hub.init(inner)
    (inner / "src" / "deep").mkdir(parents=True)
    (outer / "docs").mkdir()
    return outer, inner


def test_find_by_explicit_path(nested: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    outer, inner = nested
    monkeypatch.chdir(inner / "src")
    monkeypatch.setenv("EVHUB_HUB", str(inner))
    assert Hub.find(outer).root == outer  # explicit beats the environment and the cwd
    assert Hub.find(outer / "SESSIONS").root == outer
    assert Hub.find(str(outer)).root == outer


def test_find_by_environment(nested: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    outer, inner = nested
    monkeypatch.chdir(inner / "src")
    monkeypatch.setenv("EVHUB_HUB", str(outer))
    assert Hub.find().root == outer  # the environment beats the cwd


def test_find_walks_up_to_the_nearest_hub(nested: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    outer, inner = nested
    monkeypatch.chdir(inner / "src" / "deep")
    assert Hub.find().root == inner
    monkeypatch.chdir(inner / "SESSIONS" / "events")
    assert Hub.find().root == inner
    monkeypatch.chdir(outer / "docs")
    assert Hub.find().root == outer
    monkeypatch.chdir(outer / "work")
    assert Hub.find().root == outer


def test_no_hub_is_hub_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVHUB_HUB", raising=False)
    if any((p / "SESSIONS" / "events" / "log.jsonl").exists() for p in tmp_path.parents):
        pytest.skip("a hub above the temporary folder")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubNotFound):
        Hub.find()
    with pytest.raises(HubNotFound):
        Hub.find(tmp_path / "nowhere")
    # a hand-kept SESSIONS/ folder (the seed) is not a hub
    (tmp_path / "SESSIONS" / "HEARTBEATS").mkdir(parents=True)
    (tmp_path / "SESSIONS" / "events").mkdir()
    with pytest.raises(HubNotFound):
        Hub.find()
    with pytest.raises(HubNotFound):
        Hub.find(tmp_path)
    # a wrong EVHUB_HUB is reported, not quietly replaced by the hub around the cwd
    Hub.init(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "real")
    monkeypatch.setenv("EVHUB_HUB", str(tmp_path / "nowhere"))
    with pytest.raises(HubNotFound) as info:
        Hub.find()
    assert "nowhere" in str(info.value)
    assert info.value.exit_code == 1
    with pytest.raises(HubNotFound):
        Hub(tmp_path / "nowhere").heartbeat("alice")


# -- the read model is disposable ------------------------------------------------------------------


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for s in statements:
            conn.execute(s)
    finally:
        conn.close()


def _replace_db(path: Path) -> None:
    path.unlink()
    _sql(path, "CREATE TABLE meta (x)", "CREATE TABLE other (y)", "INSERT INTO other VALUES (1)")


DAMAGE: dict[str, Callable[[Path], object]] = {
    "deleted": lambda p: p.unlink(),
    "emptied": lambda p: p.write_bytes(b""),
    "truncated": lambda p: os.truncate(p, p.stat().st_size // 2),
    "first-page-only": lambda p: os.truncate(p, 4096),
    "garbage": lambda p: p.write_bytes(random.Random(1).randbytes(p.stat().st_size)),
    "garbage-after-header": lambda p: p.write_bytes(p.read_bytes()[:100] + b"\xa5" * 20000),
    "text": lambda p: p.write_text("not a database\n" * 100),
    "another-database": _replace_db,
    "another-version": lambda p: _sql(p, "UPDATE meta SET value = '999' WHERE key = 'schema'"),
    "wrong-checkpoint": lambda p: _sql(p, "UPDATE meta SET value = value - 7 WHERE key = 'offset'"),
    "checkpoint-ahead": lambda p: _sql(p, "UPDATE meta SET value = value + 1000 WHERE key = 'offset'"),
    "no-snapshot": lambda p: _sql(p, "DELETE FROM snapshot"),
    "garbage-snapshot": lambda p: _sql(p, "UPDATE snapshot SET state = x'00ff00ff'"),
    "garbage-journal": lambda p: Path(f"{p}-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + b"x" * 600),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_read_model_is_rebuilt_by_the_next_call(
    tmp_path: Path, set_now: Callable[[float], None], damage: str, store: HubStore
) -> None:
    hub = day(tmp_path, set_now, store)
    set_now(420)
    expected = folded(hub)
    DAMAGE[damage](hub.readmodel.path)
    fresh = Hub(tmp_path)
    assert plain(fresh.state()) == expected
    cached = fresh.readmodel.load()
    assert cached is not None, "the read model was not rebuilt"
    assert plain(cached[0]) == expected and cached[1].seq == expected["seq"]
    assert views(hub.dir) == replayed(fresh, tmp_path / "out")
    # and the hub goes on working from it
    Hub(tmp_path).heartbeat("alice", "after repair")
    assert Hub(tmp_path).verify()["warnings"] == []
    assert Hub(tmp_path).state().sessions["alice"].status == "after repair"


@pytest.mark.parametrize("damage", ["deleted", "garbage", "another-version"])
def test_a_damaged_read_model_is_rebuilt_by_a_write(
    tmp_path: Path, set_now: Callable[[float], None], damage: str, store: HubStore
) -> None:
    hub = day(tmp_path, set_now, store)
    set_now(420)
    DAMAGE[damage](hub.readmodel.path)
    Hub(tmp_path).note("alice", "written on a broken cache")
    expected = folded(hub)
    assert expected["sessions"]["alice"]["notes"][-1]["text"] == "written on a broken cache"
    cached = Hub(tmp_path).readmodel.load()
    assert cached is not None and plain(cached[0]) == expected
    assert Hub(tmp_path).verify()["warnings"] == []


def test_a_read_model_left_behind_catches_up(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    set_now(0)
    hub = new_hub(tmp_path, store)
    hub.hello("alice")
    hub.claim("alice", "api")
    old = hub.readmodel.path.read_bytes()
    for i in range(5):
        hub.note("alice", f"note {i}")
    hub.release("alice", "api", done=True)
    hub.readmodel.path.write_bytes(old)  # a read model from a few events ago, e.g. restored from backup
    assert plain(Hub(tmp_path).state()) == folded(hub)
    cached = Hub(tmp_path).readmodel.load()
    assert cached is not None and cached[1].seq == hub.store.head()


def test_the_queryable_tables_show_the_log_whenever_they_are_queried(
    tmp_path: Path, set_now: Callable[[float], None]
) -> None:
    # Commands leave the tables (only a query reads them); a query brings them to the log first.
    set_now(0)
    hub = new_hub(tmp_path, None)
    hub.hello("alice")
    hub.claim("alice", "api")
    claims = "SELECT priority, session, token FROM claims"
    assert hub.sql(claims) == [{"priority": "api", "session": "alice", "token": 3}]
    set_now(1)
    other = Hub(tmp_path)  # another process's commands
    other.release("alice", "api", done=True)
    other.claim("alice", "ui")
    other.heartbeat("alice", "busy")
    assert hub.sql(claims) == [{"priority": "ui", "session": "alice", "token": 5}]
    assert hub.sql(claims) == Hub(tmp_path).sql(claims), "asked again: the same rows"
    assert hub.sql("SELECT status FROM sessions") == [{"status": "busy"}]


def test_a_query_of_the_messages_reads_their_texts_from_the_log_hundreds_at_a_time(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    # The read model keeps no copy of the texts: `evhub sql` reads them from the log, which on PostgreSQL
    # is a round trip a read, so not one a row.
    set_now(0)
    hub = new_hub(tmp_path, store)
    hub.hello("alice")
    texts = [f"note {n}" for n in range(1, 1_201)]
    hub.execute(*[d.SendMessage(session="alice", text=t) for t in texts])
    hub.flush()
    reads: list[int] = []
    real = hub.store.events_at
    hub.store.events_at = lambda seqs: (reads.append(len(seqs)), real(seqs))[1]  # type: ignore[method-assign]
    def read_by(query: str) -> tuple[list[str], int]:
        reads.clear()
        return [r["text"] for r in hub.sql(query)], len(reads)

    few = len(texts) // (TEXTS_AHEAD // 2) + 1  # a read for each half window of rows a scan passes
    assert read_by("SELECT seq, text FROM messages ORDER BY seq") == (texts, few)
    assert read_by("SELECT text FROM messages ORDER BY seq DESC") == (texts[::-1], few)
    # Two scans the opposite ways at once: each keeps a window of its own.
    both = hub.sql("SELECT a.text AS up, b.text AS down FROM messages a JOIN messages b ON b.seq = "
                   "(SELECT max(seq) FROM messages) + (SELECT min(seq) FROM messages) - a.seq ORDER BY a.seq")
    assert [(r["up"], r["down"]) for r in both] == list(zip(texts, texts[::-1], strict=True))
    assert len(reads) <= 3 * few, reads
    assert read_by("SELECT text FROM messages WHERE text LIKE '%00' ORDER BY seq")[0] == [
        f"note {n}" for n in range(100, 1_201, 100)]
    assert read_by("SELECT text FROM messages ORDER BY seq DESC LIMIT 2") == (["note 1200", "note 1199"], 1)
    # A read model placing a message where the log holds another says so, whichever read found it.
    with sqlite3.connect(hub.readmodel.path) as db:
        db.execute("UPDATE messages SET at = at + 1 WHERE seq = (SELECT max(seq) - 10 FROM messages)")
    db.close()
    with pytest.raises(StorageError, match="evhub replay"):
        hub.sql("SELECT text FROM messages")


def test_an_inbox_reads_from_the_log_only_the_texts_it_shows(tmp_path: Path, set_now: Callable[[float], None]) -> None:
    # A newcomer is not handed the hub's history: the texts of the broadcasts it passes over are not read
    # (thousands, on an old hub), so even a damaged line of one does not fail its inbox.
    set_now(0)
    hub = new_hub(tmp_path, None)
    hub.hello("alice")
    hub.hello("carol")
    hub.send("alice", "old news for all")
    hub.hello("bob")
    hub.send("alice", "for bob", to="bob")
    hub.flush()
    data = hub.log_path.read_bytes()
    at = data.index(b'{"type":"message_posted"')
    hub.log_path.write_bytes(data[:at] + b"[" + data[at + 1:])  # the old broadcast's line is no event now
    assert [m.text for m in Hub(tmp_path).inbox("bob")] == ["for bob"]
    with pytest.raises(CorruptLog):
        Hub(tmp_path).inbox("carol")  # carol is owed it: its text is read from the log, and cannot be
    # Nor does it fail a query that does not show it, though the text it shows is read beside it.
    assert Hub(tmp_path).sql("SELECT text FROM messages WHERE \"to\" = 'bob'") == [{"text": "for bob"}]
    with pytest.raises(CorruptLog):
        Hub(tmp_path).sql("SELECT text FROM messages")


def _other_log(tmp_path: Path, set_now: Callable[[float], None]) -> bytes:
    set_now(0)
    other, _ = Hub.init(tmp_path / "other")
    other.hello("zed", role="elsewhere")
    other.claim("zed", "web")
    for i in range(30):
        other.note("zed", f"a longer history {i}")
    return other.log_path.read_bytes()


def _forked_log(tmp_path: Path, set_now: Callable[[float], None], log: bytes, keep: int) -> bytes:
    fork = tmp_path / "fork"
    (fork / "SESSIONS" / "events").mkdir(parents=True)
    lines = log.splitlines(keepends=True)
    (fork / "SESSIONS" / "events" / "log.jsonl").write_bytes(b"".join(lines[:keep]))
    set_now(405)
    hub = Hub(fork)
    hub.hello("dave")
    hub.claim("dave", "api")
    hub.send("dave", "I forked the history")
    return hub.log_path.read_bytes()


@pytest.mark.parametrize("replacement", ["another-hub", "forked", "shorter", "same-line-lengths"])
def test_a_log_replaced_by_a_different_log_is_refused_until_repair_puts_back_what_the_hub_had_seen(
    tmp_path: Path, set_now: Callable[[float], None], replacement: str
) -> None:
    root = tmp_path / "hub"
    hub = day(root, set_now)
    set_now(420)
    seen = plain(hub.state())  # the read model is at the head of the first log
    log = hub.log_path.read_bytes()
    lines = log.splitlines(keepends=True)
    if replacement == "another-hub":
        new = _other_log(tmp_path, set_now)
    elif replacement == "forked":
        new = _forked_log(tmp_path, set_now, log, keep=10)
    elif replacement == "shorter":
        new = b"".join(lines[:12])
    else:  # another history whose every line has the same length as before
        new = b"".join(line.replace(ev.decode(line).id.encode(), new_id().encode()) for line in lines)
        new = new.replace(b'"alice"', b'"alize"').replace(b'"bob"', b'"rob"')
        assert len(new) == len(log) and new != log
    hub.log_path.write_bytes(new)
    set_now(420)
    with pytest.raises(LogRewound, match=f"rewound or replaced: the hub had seen {len(lines)} events"):
        Hub(root).heartbeat("alice", "on a replaced log")
    assert hub.log_path.read_bytes() == new, "nothing is appended to a log that went behind the hub"
    reader = Hub(root)
    assert plain(reader.state()) == seen, "reads answer from what the hub had seen"
    assert any("rewound or replaced" in w for w in reader.warnings)
    historian = Hub(root)
    assert [e.seq for e in historian.events()] == [ev.decode(line).seq for line in new.splitlines()]
    assert any("rewound or replaced" in w for w in historian.warnings), "history from such a log says so"
    repaired = Hub(root).repair()
    assert repaired["repaired"] and repaired["restored"]
    assert hub.log_path.read_bytes() == log, "every event the hub had seen is back"
    assert (hub.events_dir / repaired["backup"]).read_bytes() == new, "and the replacement is kept aside"
    fresh = Hub(root)
    assert plain(fresh.state()) == seen and fresh.verify()["warnings"] == []
    assert views(fresh.dir) == replayed(fresh, tmp_path / "out")
    assert Hub(root).heartbeat("alice", "after repair")[0].seq == len(lines) + 1


# -- replay -------------------------------------------------------------------------------------------


def test_replay_after_deleting_every_view_and_the_read_model_is_byte_identical(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    hub = day(tmp_path, set_now, store)
    set_now(420)
    hub.state()
    before = views(hub.dir)
    assert {"HEARTBEATS/alice.json", "PRIORITIES/api.lock", "MILESTONES/dashboard.json",
            "DISCOVERY/carol-HELLO.md", "HANDSHAKES/bob.json"} <= set(before)
    assert "HEARTBEATS/carol.json" not in before, "a silent session keeps no heartbeat file"
    log = log_of(hub)

    for p in hub.dir.iterdir():
        if p.name != "events":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    hub.readmodel.path.unlink()
    assert views(hub.dir) == {}
    state = Hub(tmp_path).replay()
    assert views(hub.dir) == before
    assert plain(state) == folded(hub)
    assert log_of(hub) == log, "replay never writes the log"
    cached = hub.readmodel.load()
    assert cached is not None and plain(cached[0]) == folded(hub)

    # replay renders over hand edits (a copy of each is kept) and removes files that are no view
    (hub.dir / "CURRENT_STATE.md").write_text("edited by hand\n")
    (hub.dir / "HEARTBEATS" / "ghost.json").write_text("{}")
    (hub.dir / "PRIORITIES" / "api.lock").unlink()
    (hub.dir / "quick-status.sh").chmod(0o644)
    Hub(tmp_path).replay()
    assert views(hub.dir) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(
    st.tuples(st.integers(0, N_ACTIONS - 1), st.integers(0, 2), st.integers(0, 5), st.sampled_from(DELAYS)),
    min_size=1, max_size=25,
))
def test_replay_from_scratch_equals_the_incrementally_kept_views(
    script: list[tuple[int, int, int, int]], store: HubStore
) -> None:
    with tempfile.TemporaryDirectory() as d, clock() as set_now:
        set_now(0)
        hub = new_hub(Path(d) / "hub", store)
        for sid in SIDS[:2]:
            hub.hello(sid)
        run_and_compare(hub, Path(d) / "out", set_now, script)


def test_a_long_random_day_replays_exactly_now_and_at_every_past_moment(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    rng = random.Random(2026)
    script = [(rng.randrange(N_ACTIONS), rng.randrange(3), rng.randrange(6), rng.choice(DELAYS))
              for _ in range(250)]
    set_now(0)
    hub = new_hub(tmp_path / "hub", store)
    history = run_and_compare(hub, tmp_path / "out", set_now, script)
    assert len(history) > 60, "too few commands succeeded to test anything"
    kinds = collections.Counter(e.type if isinstance(e, ev.UnknownEvent) else e.__struct_config__.tag
                                for e in hub.events())
    assert len(kinds) >= 12, kinds
    live = views(hub.dir)
    log = log_of(hub)
    # the past: replay(upto=SEQ) and replay(at=TIME) render what the views were then
    for n, (seq, t, then) in enumerate(history[:: max(1, len(history) // 25)]):
        assert replayed(hub, tmp_path / "upto" / str(n), upto=seq) == then, f"upto {seq}"
        assert replayed(hub, tmp_path / "at" / str(n), at=at(t)) == then, f"at {at(t)}"
    assert views(hub.dir) == live, "replay into another folder touched SESSIONS/"
    assert log_of(hub) == log


# -- a writer killed while it holds the lock (the lock itself: test_lock.py) ------------------------

BUSY_WRITER = textwrap.dedent(
    """
    import sys
    from evhub import Hub
    hub = Hub(sys.argv[1])
    i = 0
    while True:
        hub.heartbeat("alice", f"beat-{sys.argv[2]}-{i}")
        print(f"beat-{sys.argv[2]}-{i}", flush=True)
        i += 1
    """
)


def test_a_writer_killed_at_any_moment_never_blocks_and_loses_nothing_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: HubStore
) -> None:
    hub = new_hub(tmp_path / "hub", store)
    hub.hello("alice")
    rng = random.Random(7)
    acked: list[str] = []
    for rnd in range(4):
        out = tmp_path / f"acks-{rnd}"
        with open(out, "wb") as f:
            writer = subprocess.Popen([sys.executable, "-c", BUSY_WRITER, str(hub.root), str(rnd)], stdout=f)
        wait_until("the writer to write", functools.partial(_writing, writer, out), timeout=30)
        time.sleep(rng.uniform(0, 0.2))  # then killed at a random moment of its run
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        acked += out.read_text().split()
        monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", "0.5")
        Hub(hub.root).heartbeat("alice", f"after-{rnd}")  # never blocked by the dead writer
        monkeypatch.delenv("EVHUB_LOCK_TIMEOUT")
    report = Hub(hub.root).verify()
    assert report["warnings"] == []
    statuses = collections.Counter(e.status for e in hub.events() if isinstance(e, ev.Heartbeat))
    assert acked and all(statuses[s] == 1 for s in acked), "an acknowledged event was lost or doubled"
    assert all(statuses[f"after-{rnd}"] == 1 for rnd in range(4))
    assert [e.seq for e in hub.events()] == list(range(1, report["events"] + 1))
    # A view being written when the kill came is left as a temporary file; that it is cleaned up is
    # test_a_half_written_view_left_by_a_killed_writer_is_removed's subject, so it is not judged here.
    left = {k: v for k, v in views(hub.dir).items() if not _is_temp(k)}
    assert left == replayed(Hub(hub.root), tmp_path / "out")


def _writing(writer: subprocess.Popen[bytes], out: Path) -> bool:
    """Whether WRITER has acknowledged an event in OUT yet (it must not have died first)."""
    assert writer.poll() is None, "the writer died before it wrote"
    return out.stat().st_size > 0


def _is_temp(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(".tmp")


def test_a_half_written_view_left_by_a_killed_writer_is_removed(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    """A writer killed between creating a view's temporary file and renaming it leaves that file
    (seen with SIGKILL in the test above); the next render must not keep it forever."""
    hub = day(tmp_path, set_now, store)
    set_now(420)
    hub.state()
    clean = views(hub.dir)
    leftovers = [".REGISTRY.json.k3j4h5q1.tmp", ".CURRENT_STATE.md.a8d7f6e5.tmp",
                 "scripts/.claim-priority.sh.zz91mm2x.tmp", "HEARTBEATS/.alice.json.p0o9i8u7.tmp"]
    for rel in leftovers:
        (hub.dir / rel).write_bytes(b"")
    Hub(tmp_path).heartbeat("alice", "after a crash")
    assert not [rel for rel in views(hub.dir) if _is_temp(rel)]
    for rel in leftovers:
        (hub.dir / rel).write_bytes(b"{half")
    Hub(tmp_path).replay()
    assert not [rel for rel in views(hub.dir) if _is_temp(rel)]
    assert set(views(hub.dir)) == set(clean)


def test_mail_follows_a_rename_in_the_read_model_but_not_to_a_newcomer_under_the_old_name(
    tmp_path: Path, store: HubStore
) -> None:
    hub = new_hub(tmp_path, store)
    hub.hello("session-1")
    hub.hello("bob")
    hub.send("bob", "before the rename", to="session-1")
    hub.state()  # the read model now holds that message under its old recipient
    hub.propose_id("session-1", "alice")
    hub.accept_id("bob", "alice")
    hub.hello("session-1")  # a newcomer takes up the old name
    hub.send("bob", "to the newcomer", to="session-1")

    def unread(h: Hub) -> dict[str, list[str]]:
        return {sid: [m.text for m in h.unread(sid)[1]] for sid in ("alice", "session-1")}

    expected = {"alice": ["before the rename"], "session-1": ["to the newcomer"]}
    assert unread(hub) == expected
    assert hub.last_messages(10) == every_message(hub)
    hub.readmodel.discard()  # and the same when the read model is built from nothing
    assert unread(Hub(tmp_path)) == expected
    assert Hub(tmp_path).last_messages(10) == every_message(hub)


# -- publishing the read model and the views ----------------------------------------------------


def test_a_burst_of_calls_leaves_the_views_to_flush_but_every_event_is_in_the_log(
    tmp_path: Path, store: HubStore
) -> None:
    new_hub(tmp_path, store)
    hub = Hub(tmp_path, publish_every=3600)
    hub.hello("alice")  # a Hub's first call refreshes the views at once
    assert (hub.dir / "DISCOVERY" / "alice-HELLO.md").exists()
    hub.claim("alice", "api")
    hub.send("alice", "on it")
    assert not (hub.dir / "PRIORITIES" / "api.lock").exists(), "refreshed within the interval"
    assert [type(e) for e in Hub(tmp_path).events(2)] == [ev.PriorityClaimed, ev.MessagePosted]
    hub.flush()
    assert (hub.dir / "PRIORITIES" / "api.lock").exists()
    assert "on it" in (hub.dir / "MESSAGES.md").read_text()
    assert views(hub.dir) == replayed(hub, tmp_path / "out")


def test_a_reading_call_refreshes_the_views_at_once(tmp_path: Path, store: HubStore) -> None:
    new_hub(tmp_path, store)
    hub = Hub(tmp_path, publish_every=3600)
    hub.hello("alice")
    hub.claim("alice", "api")
    assert hub.state().claims["api"].session == "alice"
    assert (hub.dir / "PRIORITIES" / "api.lock").exists()


def test_the_views_left_for_later_are_refreshed_when_the_process_exits(tmp_path: Path, store: HubStore) -> None:
    new_hub(tmp_path, store)
    script = textwrap.dedent(f"""
        from evhub import Hub
        hub = Hub({str(tmp_path)!r}, publish_every=3600)
        hub.hello("alice")
        hub.claim("alice", "api")
        hub.send("alice", "bye for now")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    hub = Hub(tmp_path)
    assert (hub.dir / "PRIORITIES" / "api.lock").exists()
    assert "bye for now" in (hub.dir / "MESSAGES.md").read_text()
    cached = hub.readmodel.load()
    assert cached is not None and cached[1].seq == 4
    assert views(hub.dir) == replayed(hub, tmp_path / "out")


# -- why and verify --------------------------------------------------------------------------------


def test_why_tells_the_history_of_one_priority(
    tmp_path: Path, set_now: Callable[[float], None], store: HubStore
) -> None:
    hub = day(tmp_path, set_now, store)
    rows = hub.why("docs")
    assert [(r["type"], r["session"]) for r in rows] == [
        ("priority_claimed", "carol"),
        ("priority_claimed", "bob"),
        ("priority_released", "bob"),
    ]
    assert rows[0]["ttl_s"] == 60 and rows[0]["took_over_from"] is None
    assert rows[1]["took_over_from"] == "carol"
    assert rows[1]["ts"] == at(400)
    assert rows[2]["done"] is True and rows[2]["note"] == "written"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    # a refused claim is no part of the history
    set_now(420)
    hub.claim("alice", "docs")
    with pytest.raises(Conflict):
        hub.claim("bob", "docs")
    assert [r["session"] for r in hub.why("docs")][-1] == "alice"
    assert len(hub.why("docs")) == 4
    ui = hub.why("ui")  # claimed through its milestone
    assert [(r["type"], r["session"]) for r in ui] == [("priority_claimed", "alice")]
    with pytest.raises(NotFound):
        hub.why("never-claimed")
    with pytest.raises(BadInput):
        hub.why("Not/AnId")


def _small_hub(root: Path, store: HubStore | None = None) -> tuple[Hub, list[bytes]]:
    hub = new_hub(root, store)
    hub.hello("alice", role="builder")
    for i in range(4):
        hub.heartbeat("alice", f"beat {i}")
    return hub, log_of(hub).splitlines(keepends=True)


def test_verify_a_sound_log(tmp_path: Path, store: HubStore) -> None:
    hub, lines = _small_hub(tmp_path, store)
    assert hub.verify() == {"events": 6, "warnings": [], "unknown": 0, "views": []}


def _expect_corrupt(hub: Hub, line: int, offset: int, *words: str) -> None:
    with pytest.raises(CorruptLog) as info:
        hub.verify()
    text = str(info.value)
    assert f"line {line} " in text and f"byte {offset})" in text, text
    for w in words:
        assert w in text, text
    assert info.value.exit_code == 4


def test_verify_finds_a_gap(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    hub.log_path.write_bytes(b"".join(lines[:2] + lines[3:]))
    _expect_corrupt(hub, 3, len(lines[0]) + len(lines[1]), "seq 4", "3 was expected")


def test_verify_finds_a_duplicate_id(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    first, fifth = ev.decode(lines[1]).id, ev.decode(lines[4]).id
    lines[4] = lines[4].replace(fifth.encode(), first.encode())
    hub.log_path.write_bytes(b"".join(lines))
    _expect_corrupt(hub, 5, sum(len(x) for x in lines[:4]), first, "twice")


def test_verify_finds_a_repeated_event(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    hub.log_path.write_bytes(b"".join(lines[:4] + lines[3:]))  # one line written twice
    _expect_corrupt(hub, 5, sum(len(x) for x in lines[:4]))


@pytest.mark.parametrize("bad", [b"{garbage\n", b"\x00\x00\x00\n", b'{"type":"heartbeat"}\n'])
def test_a_damaged_line_is_found_reads_answer_before_it_and_writes_refuse(tmp_path: Path, bad: bytes) -> None:
    hub, lines = _small_hub(tmp_path)
    lines[2] = bad
    damaged = b"".join(lines)
    hub.log_path.write_bytes(damaged)
    _expect_corrupt(hub, 3, len(lines[0]) + len(lines[1]))
    fresh = Hub(tmp_path)
    assert fresh.state().seq == 2  # the whole events before it
    assert any("line 3" in w for w in fresh.warnings)
    with pytest.raises(CorruptLog) as info:
        Hub(tmp_path).heartbeat("alice")
    assert "repair" in str(info.value)
    assert hub.log_path.read_bytes() == damaged


def test_unknown_types_and_fields_are_warnings_only(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    ts = ev.decode(lines[-1]).ts
    future = [
        msgspec.json.encode({"type": "mood_set", "seq": 7, "id": new_id(), "ts": ts, "session": "alice",
                             "mood": "happy"}) + b"\n",
        msgspec.json.encode({"type": "heartbeat", "seq": 8, "id": new_id(), "ts": ts, "session": "alice",
                             "status": "ok", "cpu": 0.5}) + b"\n",
    ]
    with open(hub.log_path, "ab") as f:
        f.write(b"".join(future))
    report = Hub(tmp_path).verify()
    assert report["events"] == 8 and report["unknown"] == 2
    text = "\n".join(report["warnings"])
    assert "line 7" in text and "mood_set" in text
    assert "line 8" in text and "cpu" in text
    state = Hub(tmp_path).state()
    assert state.seq == 8 and state.sessions["alice"].status == "ok" and state.unknown_events == 1
    Hub(tmp_path).heartbeat("alice", "still fine")
    assert Hub(tmp_path).verify()["events"] == 9
    assert hub.log_path.read_bytes().splitlines(keepends=True)[6:8] == future, "unknown events are kept"


def test_a_known_event_with_an_unknown_field_alone_in_its_block_is_a_warning(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    ts = ev.decode(lines[-1]).ts
    newer = msgspec.json.encode({"type": "heartbeat", "seq": 7, "id": new_id(), "ts": ts, "session": "alice",
                                 "status": "ok", "cpu": 0.5}) + b"\n"
    with open(hub.log_path, "ab") as f:
        f.write(newer)
    report = Hub(tmp_path).verify()
    assert report["events"] == 7 and report["unknown"] == 1
    assert "line 7" in report["warnings"][0] and "cpu" in report["warnings"][0]


def test_verify_finds_a_read_model_that_disagrees_with_the_log(tmp_path: Path) -> None:
    hub, lines = _small_hub(tmp_path)
    hub.state()
    # history rewritten in place, same length: the checkpoint still matches, the fold does not
    lines[1] = lines[1].replace(b'"role":"builder"', b'"role":"breaker"')
    hub.log_path.write_bytes(b"".join(lines))
    with pytest.raises(CorruptLog) as info:
        Hub(tmp_path).verify()
    assert "read model" in str(info.value)
    Hub(tmp_path).replay()
    assert Hub(tmp_path).verify()["warnings"] == []
    assert Hub(tmp_path).state().sessions["alice"].role == "breaker"


def test_every_error_is_an_evhub_error() -> None:
    for cls in (BadInput, Conflict, CorruptLog, HubBusy, HubNotFound, NotFound, StorageError):
        assert issubclass(cls, EvhubError)
    assert (CorruptLog.exit_code, Conflict.exit_code, HubBusy.exit_code) == (4, 3, 1)


INIT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from evhub import Hub
    from evhub._pgstore import StoreSettings
    go = sys.argv[2]
    store = StoreSettings(sys.argv[3], Path(sys.argv[4])) if len(sys.argv) > 3 else None
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    hub, created = Hub.init(sys.argv[1], store=store)
    print("created" if created else "existed")
    """
)


def test_racing_inits_make_one_hub_and_only_one_says_it_made_it(tmp_path: Path, store: HubStore) -> None:
    """Four processes in one folder; on PostgreSQL, also four machines (folders) on one schema."""
    go = tmp_path / "go"
    settings = store.settings()
    on_pg = [settings.schema, str(settings.dsn_file)] if settings else []
    roots = [tmp_path / "hub"] * 4 + ([tmp_path / f"machine-{n}" for n in range(4)] if settings else [])
    procs = [subprocess.Popen([sys.executable, "-c", INIT, str(root), str(go), *on_pg], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for root in roots]
    for p in procs:  # every one started, its imports done, and watching for the go file
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.readline() == "ready\n", p.stderr.read()
    go.touch()
    said = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        said.append(out.strip())
    assert sorted(said) == ["created"] + ["existed"] * (len(roots) - 1)
    events = list(Hub(roots[-1]).events())
    assert [e.type if isinstance(e, ev.UnknownEvent) else e.__struct_config__.tag for e in events] == [
        "hub_created"
    ]


def test_a_log_that_a_racing_init_makes_while_it_is_looked_for_is_a_log(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving behind a rare failure of the racing-inits test: the log appears between two
    looks at it, and was called 'not a file'."""
    log = tmp_path / "log.jsonl"
    real_is_file = Path.is_file

    def created_just_after(path: Path) -> bool:
        answer = real_is_file(path)
        log.touch()  # the other init's write lands here
        return answer

    monkeypatch.setattr(Path, "is_file", created_just_after)
    assert _place._present(log) in (False, True)  # either look is right; an error is not


def test_init_over_an_empty_log_left_by_a_crash_makes_the_hub(tmp_path: Path) -> None:
    log = tmp_path / "SESSIONS" / "events" / "log.jsonl"
    log.parent.mkdir(parents=True)
    log.touch()  # a crash between creating the log and writing its first event
    hub, created = Hub.init(tmp_path)
    assert created
    assert [e.seq for e in hub.events()] == [1]
    assert isinstance(next(iter(hub.events())), ev.HubCreated)
