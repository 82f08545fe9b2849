"""The read model: a disposable SQLite cache of the folded state, with the log checkpoint it
was folded to.  It is rebuilt whenever it is missing, unreadable, from another version, or
does not match the log; it is written only under the hub lock.

It uses the rollback journal, not WAL, so SQLite 3.40's WAL-reset bug cannot bite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from . import _events as ev
from ._errors import CorruptLog, EvhubError, StorageError
from ._state import Message, State
from ._store import Checkpoint, Store

# 2: the state keeps the last messages only; the table keeps them all; 3: proposals' known_as; 4: numbers across
# clones (messages are keyed by number); 5: a message's text is read from the log (`at`), not copied
SCHEMA_VERSION = "5"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, role TEXT, specialization TEXT, about TEXT, first_seen TEXT,
    last_seen TEXT, status TEXT, left INTEGER, agreement TEXT, aka TEXT, read_upto INTEGER
);
CREATE TABLE claims (
    priority TEXT PRIMARY KEY, session TEXT, token INTEGER, since TEXT, refreshed TEXT,
    ttl_s INTEGER, took_over_from TEXT
);
CREATE TABLE milestones (
    id TEXT PRIMARY KEY, title TEXT, priority TEXT, owner TEXT, created TEXT, created_by TEXT,
    completed TEXT, done INTEGER, total INTEGER
);
CREATE TABLE steps (
    milestone TEXT, n INTEGER, text TEXT, status TEXT, note TEXT, updated TEXT, by TEXT,
    PRIMARY KEY (milestone, n)
);
CREATE TABLE messages (seq INTEGER PRIMARY KEY, ts TEXT, sender TEXT, "to" TEXT, text TEXT, clone INTEGER, at INTEGER);
"""
# What `evhub sql` sees as the messages table: the texts the table does not copy, read from the log.
_MESSAGES_VIEW = """CREATE TEMP VIEW messages AS
SELECT seq, ts, sender, "to", coalesce(text, log_text(at, seq)) AS text, clone FROM main.messages"""


class ReadModelBehind(Exception):
    """The read model holds fewer events than the state's new messages start after (it was deleted
    or restored from a copy): the caller must fold again from what the read model holds."""


class ReadModel:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        # A crash can at worst corrupt a cache that is then rebuilt from the log.
        conn.execute("PRAGMA synchronous = OFF")
        return conn

    def load(self) -> tuple[State, Checkpoint] | None:
        """The cached state and its checkpoint, or None when there is no usable cache."""
        if not self.path.exists() or self._planted_links():
            return None
        try:
            conn = self._connect()
            try:
                # One statement, so a save by another process cannot fall between the state and its checkpoint.
                meta = dict(conn.execute("SELECT key, value FROM meta UNION ALL "
                                         "SELECT '', state FROM snapshot WHERE id = 1").fetchall())
            finally:
                conn.close()
            row = meta.pop("", None)
            if meta.get("schema") != SCHEMA_VERSION or row is None:
                return None
            state = msgspec.msgpack.decode(row, type=State)
            checkpoint = Checkpoint(*(int(meta[k]) for k in ("seq", "offset", "line_len", "line_crc")))
        except (sqlite3.Error, msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError):
            return None
        return state, checkpoint

    def save(self, state: State, checkpoint: Checkpoint, base: int) -> None:
        """Store STATE at CHECKPOINT; its new messages are those after seq BASE."""
        with self.writing(base) as writer:
            writer.finish(state, checkpoint)

    @contextmanager
    def writing(self, base: int) -> Iterator[Writer]:
        """One write transaction, creating the database when needed. BASE is the seq the states
        given to the writer were loaded at: ReadModelBehind when the database holds less."""
        if self._planted_links():
            self.discard()  # SQLite follows links: remove them, so the cache is never written outside the hub
        try:
            try:
                conn = self._begin()
            except sqlite3.DatabaseError:
                # Unreadable or from another version: it is only a cache, so start it again.
                self.discard()
                conn = self._begin()
            try:
                held = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
                if (int(held[0]) if held else 0) < base:
                    raise ReadModelBehind
                yield Writer(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise StorageError(f"cannot write the read model {self.path}: {e}") from e

    def _begin(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            fresh = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0] == 0
            if not fresh:
                schema = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if schema is None or schema[0] != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError("read model from another version")
            conn.execute("BEGIN IMMEDIATE")
            if fresh:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def write_tables(self, state: State) -> None:
        """Bring the queryable tables to STATE unless they show it already (it is the snapshot saved last).
        Only `evhub sql` reads them, so commands leave them: a command costs what it changed, not the hub's size."""
        with self.writing(0) as writer:
            meta = dict(writer.conn.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'line_crc', 'tables')"))
            snapshot = f"{meta.get('seq')}/{meta.get('line_crc')}"  # the tables are marked with what they show
            if meta.get("tables") != snapshot:
                _write_tables(writer.conn, state)
                if meta.get("seq") == str(state.seq):
                    writer.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('tables', ?)", (snapshot,))

    def message_count(self, upto: int | None = None) -> int:
        """How many messages the table holds (those numbered up to UPTO when given)."""
        if upto is None:
            return int(self._query("SELECT count(*) FROM messages", [])[0][0])
        return int(self._query("SELECT count(*) FROM messages WHERE seq <= ?", [upto])[0][0])

    def messages(self, store: Store, after: int = 0, to: str | None = None, last: int | None = None,
                 keep: Callable[[Message], bool] | None = None) -> list[Message]:
        """Messages after seq AFTER, oldest first: those to TO or to all when TO is given, the LAST
        ones when LAST is given, those KEEP keeps when given; their texts read from STORE, the log this read
        model caches (only the kept ones': a newcomer's inbox passes over thousands it will not show)."""
        query = 'SELECT seq, ts, sender, "to", coalesce(text, \'\'), clone, at FROM messages WHERE seq > ?'
        args: list[object] = [after]
        if to is not None:
            query += " AND \"to\" IN ('all', ?)"
            args.append(to)
        query += " ORDER BY seq DESC" if last is not None else " ORDER BY seq"
        if last is not None and keep is None:
            query += " LIMIT ?"
            args.append(last)
        found = [m for m in (Message(*row) for row in self._query(query, args)) if keep is None or keep(m)]
        if last is not None:
            found = found[:last]  # the last ones of those KEEP keeps, as a hub without a read model answers
        texts = log_texts(store, [(m.at, m.seq) for m in found if m.at])
        for m in found:
            if m.at:
                m.text = texts[m.at]
        return found[::-1] if last is not None else found

    def _query(self, query: str, args: list[object]) -> list[Any]:
        try:
            conn = self._connect()
            try:
                return conn.execute(query, args).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise StorageError(f"cannot read the read model {self.path}: {e}") from e

    def _planted_links(self) -> bool:
        return any(Path(f"{self.path}{suffix}").is_symlink() for suffix in ("", "-journal"))

    def discard(self) -> None:
        for suffix in ("", "-journal"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as e:
                raise StorageError(f"cannot remove the read model {self.path}: {e.strerror}") from e


class Writer:
    """Writes to the read model inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def restart(self) -> None:
        """Forget the messages taken so far in this transaction (a fold that starts again, in order)."""
        self.conn.execute("DELETE FROM messages")

    def take(self, state: State) -> None:
        """Move STATE's new messages and renames into the messages table (a replay does this a
        block at a time, so a million events never hold every message in memory)."""
        self.conn.executemany(
            'INSERT OR REPLACE INTO messages (seq, ts, sender, "to", text, clone, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
            [(m.seq, m.ts, m.sender, m.to, None if m.at else m.text, m.clone, m.at) for m in state.new_messages],
        )
        for r in state.new_renames:
            self.conn.execute('UPDATE messages SET "to" = ? WHERE "to" = ? AND seq < ?', (r.new, r.old, r.seq))
            self.conn.execute("UPDATE messages SET sender = ? WHERE sender = ? AND seq < ?", (r.new, r.old, r.seq))
        state.stored()

    def finish(self, state: State, cp: Checkpoint) -> None:
        """Store STATE as the snapshot at CP (the queryable tables are left to write_tables)."""
        self.take(state)
        meta = {"schema": SCHEMA_VERSION, **cp._asdict()}
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, str(v)) for k, v in meta.items()],
        )
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshot (id, state) VALUES (1, ?)", (msgspec.msgpack.encode(state),)
        )


TEXTS_AHEAD = 500  # texts `evhub sql` reads from the log at once: half each side of the row it was asked for


def log_texts(store: Store, places: list[tuple[int, int]]) -> dict[int, str]:
    """The texts of the messages at PLACES, (seq of the event in STORE's log, the message's number), by seq.
    The read model keeps where each message is, not its text: the log holds it already."""
    events = store.events_at([at for at, _ in places])
    texts = {}
    for at, number in places:
        e = events.get(at)
        if not isinstance(e, ev.MessagePosted) or e.number != number:
            raise StorageError(f"the read model places message {number} at seq {at} of the log, which holds no such "
                               "message there: run `evhub replay` to rebuild it")
        texts[at] = e.text
    return texts


def with_log_texts(conn: sqlite3.Connection, store: Store) -> list[EvhubError]:
    """Let queries on CONN read the messages table with its texts, as `evhub sql` shows it. SQLite says
    only that a function failed: why is put in the list returned."""
    failed: list[EvhubError] = []
    # SQLite asks a row at a time. A row missing from both windows reads the texts of the rows around it
    # in one read of the log (on PostgreSQL, one round trip): a scan either way, or two scans at once (a
    # join), reads hundreds a time, not one. The window used least recently gives way.
    windows: list[dict[tuple[int, int], str]] = []  # texts by (seq of the event in the log, message number)
    one_by_one = False  # a damaged line among a window's: read only the rows asked for, as SQLite asks

    def window(number: int) -> dict[tuple[int, int], str]:
        nonlocal one_by_one
        places = conn.execute(
            "SELECT at, seq FROM (SELECT at, seq FROM main.messages WHERE seq >= ? AND text IS NULL AND at > 0 "
            "ORDER BY seq LIMIT ?) UNION ALL SELECT at, seq FROM (SELECT at, seq FROM main.messages "
            "WHERE seq < ? AND text IS NULL AND at > 0 ORDER BY seq DESC LIMIT ?)",
            (number, TEXTS_AHEAD // 2, number, TEXTS_AHEAD // 2)).fetchall()
        try:
            events = store.events_at([place for place, _ in places])
        except CorruptLog:
            one_by_one = True
            return {}
        return {(place, n): e.text for place, n in places
                if isinstance(e := events.get(place), ev.MessagePosted) and e.number == n}

    def log_text(at: int, number: int) -> str:
        try:
            for i, texts in enumerate(windows):
                if (at, number) in texts:
                    windows.append(windows.pop(i))
                    return texts[at, number]
            if not one_by_one:
                windows.append(window(number))
                del windows[:-2]
                if (at, number) in windows[-1]:
                    return windows[-1][at, number]
            return log_texts(store, [(at, number)])[at]  # reads this row alone, or says why it has no text
        except EvhubError as e:
            failed.append(e)
            raise

    conn.create_function("log_text", 2, log_text)
    conn.execute(_MESSAGES_VIEW)
    return failed


def _write_tables(conn: sqlite3.Connection, st: State) -> None:
    """Refresh the queryable tables (for `evhub sql`) from the state."""
    for table in ("sessions", "claims", "milestones", "steps"):
        conn.execute(f"DELETE FROM {table}")
    conn.executemany(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (s.id, s.role, s.specialization, s.about, s.first_seen, s.last_seen, s.status, int(s.left),
             s.agreement, ",".join(s.aka), s.read_upto)
            for s in st.sessions.values()
        ],
    )
    conn.executemany(
        "INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(c.priority, c.session, c.token, c.since, c.refreshed, c.ttl_s, c.took_over_from)
         for c in st.claims.values()],
    )
    conn.executemany(
        "INSERT INTO milestones VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(m.id, m.title, m.priority, m.owner, m.created, m.created_by, m.completed, m.done_count, len(m.steps))
         for m in st.milestones.values()],
    )
    conn.executemany(
        "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(m.id, n, s.text, s.status, s.note, s.updated, s.by)
         for m in st.milestones.values() for n, s in enumerate(m.steps, 1)],
    )
