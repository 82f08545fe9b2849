"""The read model: a disposable SQLite cache of the folded state, with the log checkpoint it
was folded to.  It is rebuilt whenever it is missing, unreadable, from another version, or
does not match the log; it is written only under the hub lock.

It uses the rollback journal, not WAL, so SQLite 3.40's WAL-reset bug cannot bite.
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import NamedTuple

import msgspec

from ._errors import StorageError
from ._state import State

SCHEMA_VERSION = "1"

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
CREATE TABLE messages (seq INTEGER PRIMARY KEY, ts TEXT, sender TEXT, "to" TEXT, text TEXT);
"""


class Checkpoint(NamedTuple):
    """Where in the log the cached state stands: seq, the byte offset after it, and a
    fingerprint of the line before that offset, so a rewritten log is noticed."""

    seq: int
    offset: int
    line_len: int
    line_crc: int

    @classmethod
    def after(cls, seq: int, offset: int, last_line: bytes) -> Checkpoint:
        return cls(seq, offset, len(last_line), zlib.crc32(last_line))

    def matches(self, last_line: bytes) -> bool:
        return len(last_line) == self.line_len and zlib.crc32(last_line) == self.line_crc


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
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                row = conn.execute("SELECT state FROM snapshot WHERE id = 1").fetchone()
            finally:
                conn.close()
            if meta.get("schema") != SCHEMA_VERSION or row is None:
                return None
            state = msgspec.msgpack.decode(row[0], type=State)
            checkpoint = Checkpoint(*(int(meta[k]) for k in ("seq", "offset", "line_len", "line_crc")))
        except (sqlite3.Error, msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError):
            return None
        return state, checkpoint

    def save(self, state: State, checkpoint: Checkpoint) -> None:
        """Store STATE at CHECKPOINT, creating the database when needed."""
        if self._planted_links():
            self.discard()  # SQLite follows links: remove them, so the cache is never written outside the hub
        try:
            self._save(state, checkpoint)
        except sqlite3.DatabaseError:
            # Unreadable or from another version: it is only a cache, so start it again.
            self.discard()
            try:
                self._save(state, checkpoint)
            except sqlite3.Error as e:
                raise StorageError(f"cannot write the read model {self.path}: {e}") from e
        except sqlite3.Error as e:
            raise StorageError(f"cannot write the read model {self.path}: {e}") from e

    def _planted_links(self) -> bool:
        return any(Path(f"{self.path}{suffix}").is_symlink() for suffix in ("", "-journal"))

    def discard(self) -> None:
        for suffix in ("", "-journal"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as e:
                raise StorageError(f"cannot remove the read model {self.path}: {e.strerror}") from e

    def _save(self, state: State, cp: Checkpoint) -> None:
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
            _write_tables(conn, state)
            meta = {"schema": SCHEMA_VERSION, **cp._asdict()}
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in meta.items()],
            )
            conn.execute(
                "INSERT OR REPLACE INTO snapshot (id, state) VALUES (1, ?)", (msgspec.msgpack.encode(state),)
            )
            conn.execute("COMMIT")
        finally:
            conn.close()


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
    last = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
    conn.executemany(
        'INSERT INTO messages (seq, ts, sender, "to", text) VALUES (?, ?, ?, ?, ?)',
        [(m.seq, m.ts, m.sender, m.to, m.text) for m in st.messages if m.seq > last],
    )
