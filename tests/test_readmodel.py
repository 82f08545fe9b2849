"""The read model (evhub/_readmodel.py) on a real SQLite file: a saved state loads back as it was, a
database that is missing, damaged or from another version loads as nothing and is rebuilt by the next
save, links planted in its place are never written through, a write based on more than the database
holds is refused (ReadModelBehind), and the messages table answers the inbox's queries.

How a hub rebuilds it from the log when it is damaged is test_hub.py's subject (the read model is
disposable); this module holds the read model itself to its contract."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from clock import at
from command import ok, run
from histories import Sim
from logs import bye_hub

from evhub import _decide as d
from evhub import _events as ev
from evhub._readmodel import Checkpoint, ReadModel, ReadModelBehind
from evhub._state import Message, State
from evhub._store import JsonlStore


def a_day() -> Sim:
    """Two sessions, a claim, and mail: to all, to one, and to a session that is then renamed."""
    sim = Sim()
    for cmd in (d.Hello(session="alice", role="builder"), d.Hello(session="session-1"),
                d.ClaimPriority(session="alice", priority="api"),
                d.SendMessage(session="alice", text="api is mine"),
                d.SendMessage(session="alice", text="psst", to="session-1"),
                d.ProposeId(session="session-1", proposed="bob"), d.AcceptId(session="alice", proposed="bob"),
                d.SendMessage(session="bob", text="thanks", to="alice")):
        sim.tick(1)
        sim.do(cmd)
    return sim


def checkpoint(state: State) -> Checkpoint:
    return Checkpoint.after(state.seq, 100 * state.seq, b'{"seq":%d}\n' % state.seq)


def plain(state: State) -> object:
    return msgspec.to_builtins(state)


def log_of(sim: Sim, model: ReadModel) -> JsonlStore:
    """A JSONL log beside MODEL holding SIM's events: where the read model reads the messages' texts."""
    path = model.path.parent / "log.jsonl"
    path.write_bytes(b"".join(ev.encode(e) for e in sim.events))
    return JsonlStore(path, fsync=False)


def saved(tmp_path: Path) -> tuple[ReadModel, State]:
    """A read model holding a_day()'s state; that state, as it stands after being stored."""
    model = ReadModel(tmp_path / "readmodel.sqlite3")
    state = a_day().state
    model.save(state, checkpoint(state), base=0)
    return model, state


def test_a_saved_state_loads_back_as_it_was_with_its_checkpoint(tmp_path: Path) -> None:
    model, state = saved(tmp_path)
    loaded = ReadModel(model.path).load()
    assert loaded is not None
    assert plain(loaded[0]) == plain(state) and loaded[0].claims["api"].session == "alice"
    assert loaded[1] == checkpoint(state) and loaded[1].matches(b'{"seq":%d}\n' % state.seq)
    assert not loaded[1].matches(b'{"seq":0}\n')


def test_the_messages_table_holds_every_message_and_answers_the_inbox_queries(tmp_path: Path) -> None:
    model, state = saved(tmp_path)
    assert state.new_messages == [], "saving moved the new messages into the table"
    assert model.message_count() == state.message_count == 3
    log = log_of(a_day(), model)
    everything = model.messages(log)
    assert [(m.sender, m.to, m.text) for m in everything] == [
        ("alice", "all", "api is mine"),
        ("alice", "bob", "psst"),  # to session-1 when sent: the rename carried it to bob
        ("bob", "alice", "thanks"),
    ]
    assert all(isinstance(m, Message) for m in everything)
    assert [m.text for m in model.messages(log, to="bob")] == ["api is mine", "psst"]
    assert [m.text for m in model.messages(log, to="alice")] == ["api is mine", "thanks"]
    assert [m.text for m in model.messages(log, after=everything[0].seq)] == ["psst", "thanks"]
    assert [m.text for m in model.messages(log, last=2)] == ["psst", "thanks"], "the last ones, oldest first"
    assert [m.text for m in model.messages(log, after=everything[0].seq, to="alice", last=5)] == ["thanks"]
    # The last ones of those KEEP keeps (as a hub without a read model answers), not the kept ones of the last.
    from_alice = [m.text for m in model.messages(log, last=1, keep=lambda m: m.sender == "alice")]
    assert from_alice == ["psst"]


def test_a_later_save_adds_to_the_messages_and_replaces_the_snapshot(tmp_path: Path) -> None:
    model, _ = saved(tmp_path)
    sim = a_day()
    base = sim.state.seq
    model.save(sim.state, checkpoint(sim.state), base=0)  # the same state again: nothing doubled
    sim.tick(1)
    sim.do(d.SendMessage(session="alice", text="one more"))
    sim.do(d.Heartbeat(session="alice", status="after"))
    model.save(sim.state, checkpoint(sim.state), base=base)
    loaded = model.load()
    assert loaded is not None and plain(loaded[0]) == plain(sim.state)
    assert loaded[0].sessions["alice"].status == "after"
    assert [m.text for m in model.messages(log_of(sim, model))] == ["api is mine", "psst", "thanks", "one more"]


def _write_garbage(p: Path) -> None:
    p.write_bytes(b"\xa5" * 8192)


def _another_version(p: Path) -> None:
    conn = sqlite3.connect(p, isolation_level=None)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    conn.close()


def _another_database(p: Path) -> None:
    p.unlink()
    conn = sqlite3.connect(p, isolation_level=None)
    conn.execute("CREATE TABLE meta (x)")
    conn.close()


BROKEN = {
    "missing": lambda p: p.unlink(),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: os.truncate(p, p.stat().st_size // 2),
    "garbage": _write_garbage,
    "text": lambda p: p.write_text("not a database\n" * 100),
    "another version": _another_version,
    "another database": _another_database,
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_missing_damaged_or_foreign_database_loads_as_nothing_and_the_next_save_rebuilds_it(
    tmp_path: Path, broken: str
) -> None:
    model, state = saved(tmp_path)
    BROKEN[broken](model.path)
    assert model.load() is None
    fresh = a_day().state  # the caller folds the log again, from the start
    model.save(fresh, checkpoint(fresh), base=0)
    loaded = model.load()
    assert loaded is not None and plain(loaded[0]) == plain(state) and loaded[1] == checkpoint(state)
    assert model.message_count() == 3


@pytest.mark.parametrize("planted", ["", "-journal"])
def test_a_link_planted_in_place_of_the_database_is_never_written_through(tmp_path: Path, planted: str) -> None:
    (tmp_path / "hub").mkdir()
    model, _ = saved(tmp_path / "hub")
    victim = tmp_path / "victim.sqlite3"
    _, other = saved(tmp_path)  # a real read model outside the hub, for the link to be tempting
    os.replace(tmp_path / "readmodel.sqlite3", victim)
    before = victim.read_bytes()
    link = Path(f"{model.path}{planted}")
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    assert model.load() is None, "a planted link is read as no read model"
    state = a_day().state
    model.save(state, checkpoint(state), base=0)
    assert victim.read_bytes() == before
    assert not model.path.is_symlink() and not Path(f"{model.path}-journal").is_symlink()
    loaded = model.load()
    assert loaded is not None and plain(loaded[0]) == plain(other)


def test_a_write_based_on_more_than_the_database_holds_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    # e.g. the file was restored from an older copy while a Hub held a state loaded from the newer one
    model, state = saved(tmp_path)
    before = model.path.read_bytes()
    sim = a_day()
    sim.tick(1)
    sim.do(d.SendMessage(session="alice", text="after the copy"))
    with pytest.raises(ReadModelBehind):
        model.save(sim.state, checkpoint(sim.state), base=state.seq + 1)
    assert model.path.read_bytes() == before
    log = log_of(sim, model)
    assert [m.text for m in model.messages(log)] == ["api is mine", "psst", "thanks"]
    model.save(sim.state, checkpoint(sim.state), base=state.seq)  # based on what it holds: taken
    assert [m.text for m in model.messages(log)][-1] == "after the copy"


def test_discard_removes_the_database_and_its_journal(tmp_path: Path) -> None:
    model, _ = saved(tmp_path)
    journal = Path(f"{model.path}-journal")
    journal.write_bytes(b"left by a crash")
    model.discard()
    assert not model.path.exists() and not journal.exists()
    assert model.load() is None
    model.discard()  # nothing there: nothing to do


class SavedMeanwhile(sqlite3.Connection):
    """A connection to the read model that, once the checkpoint has been read from it, lets a real `evhub`
    process append and save the read model before the connection is used again or closed."""

    root: Path
    pending = False
    saved = False

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self._another_process_saves()
        cursor = super().execute(sql, parameters)
        SavedMeanwhile.pending = "meta" in sql and not SavedMeanwhile.saved
        return cursor

    def close(self) -> None:
        self._another_process_saves()
        super().close()

    def _another_process_saves(self) -> None:
        if SavedMeanwhile.pending:
            SavedMeanwhile.pending, SavedMeanwhile.saved = False, True
            ok(run("msg", "send", "saved meanwhile", cwd=self.root,
                   env={"EVHUB_NOW": at(20), "EVHUB_SESSION": "alice"}))


class ReadWhileSaved(ReadModel):
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, factory=SavedMeanwhile)


def test_a_snapshot_another_process_saves_while_it_loads_is_read_whole(tmp_path: Path) -> None:
    """A load reads a state and the checkpoint it was saved at together: another process saving between the
    two reads (verify and watch load without the hub lock) gave a state ahead of its checkpoint."""
    hub, _ = bye_hub(tmp_path)
    ok(run("hello", "alice", cwd=tmp_path, env={"EVHUB_NOW": at(10)}))
    SavedMeanwhile.root = tmp_path
    loaded = ReadWhileSaved(hub.readmodel.path).load()
    assert SavedMeanwhile.saved and loaded is not None
    state, cp = loaded
    assert state.seq == cp.seq
    assert ReadModel(hub.readmodel.path).load() is not None
