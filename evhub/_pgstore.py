"""The log store on PostgreSQL, for a hub shared by several machines.

One table per hub, `<schema>.events (seq, id, line)`, holds each event's log line exactly as the
JSONL store would write it, so a hub moves between the two byte for byte.  An append is one call of
the schema's `append` function: it takes a transaction-scoped advisory lock, checks the expected
head and inserts, so commits happen in seq order, positions stay gap-free and a reader never sees
seq N+1 before N.  A command also holds the same lock at session level from its catch-up to its
append (`locked`), so machines take turns instead of deciding on a head another is moving.  The
unique event id makes an append whose reply was lost safe to check and retry.  A NOTIFY per append
wakes followers; they read the table itself, so a missed notification only delays them.

The connection string comes from EVHUB_STORE, else from the hub's store settings: the string init
was given, kept there without its password (libpq reads that from ~/.pgpass, PGPASSFILE, PGPASSWORD
or a service file), or the path of a file the user names.  It is never written into the log or the views.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec

from . import _events as ev
from ._errors import (
    BadInput,
    Conflict,
    CorruptLog,
    EvhubError,
    ExpectedPositionError,
    HubBusy,
    HubNotFound,
    StorageError,
)
from ._integrity import Damage, LogCheck, LogLine
from ._lock import lock_timeout
from ._progress import Progress
from ._store import ESCAPE, Checkpoint, Store, chain, check_numbering
from ._values import env_number, format_ts

if TYPE_CHECKING:
    import psycopg

STORE_FILE = "store.json"  # in SESSIONS/events/: which PostgreSQL schema holds this hub's log
PAGE = 20_000  # events fetched per round trip when reading
MOVED = "EV001"  # the SQLSTATE of an append whose expected head is not the log's head
SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
T = TypeVar("T")


class _Texts(list[str]):
    """A text[] parameter, sent in binary by a dumper of our own (see _register_dumpers)."""


class _Seqs(list[int]):
    """A bigint[] parameter, sent in binary by a dumper of our own."""


def _register_dumpers(conn: psycopg.Connection[Any]) -> None:
    """Dumpers for the append's arrays, which know their element type: psycopg's own inspect each list's
    elements and depth at every call (a command's parameters took 55 µs with them, 15 µs with these)."""
    import struct

    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    header, length, seq = struct.Struct("!iiiii"), struct.Struct("!i"), struct.Struct("!iq")

    class TextsDumper(Dumper):
        format = Format.BINARY
        oid = 1009  # text[]

        def dump(self, obj: Any) -> bytes:
            encoding = self.connection.info.encoding if self.connection is not None else "utf-8"
            parts = [header.pack(1, 0, 25, len(obj), 1)]  # one dimension, no nulls, of text (oid 25)
            for text in obj:
                data = text.encode(encoding)
                parts += (length.pack(len(data)), data)
            return b"".join(parts)

    class SeqsDumper(Dumper):
        format = Format.BINARY
        oid = 1016  # bigint[]

        def dump(self, obj: Any) -> bytes:
            return header.pack(1, 0, 20, len(obj), 1) + b"".join(seq.pack(8, n) for n in obj)  # of bigint (oid 20)

    conn.adapters.register_dumper(_Texts, TextsDumper)
    conn.adapters.register_dumper(_Seqs, SeqsDumper)


def is_dsn(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def _retry_s() -> float:
    """How long a command keeps trying to reach the server before it fails (a restart takes seconds)."""
    return env_number("EVHUB_PG_RETRY_S", 10.0, 3600)


def check_schema(name: str) -> str:
    if not SCHEMA_RE.fullmatch(name):
        raise BadInput(f"bad schema name {name!r}: use lower-case letters, digits and _ (at most 63)")
    return name


class StoreSettings:
    """Where a PostgreSQL hub's log is: the schema, and where the connection string comes from: the one
    given (--store, EVHUB_STORE), else the one init kept (never with a password), else a named file's."""

    def __init__(self, schema: str, dsn_file: Path | None = None, dsn: str | None = None,
                 kept: str | None = None) -> None:
        self.schema = check_schema(schema)
        self.dsn_file = dsn_file
        self.given = dsn  # from the command line: used, and kept without its password unless a file is named
        self.kept = kept
        if dsn is not None and not is_dsn(dsn):
            raise BadInput("--store takes a postgresql:// connection string")

    @classmethod
    def read(cls, events_dir: Path) -> StoreSettings | None:
        """The settings kept in EVENTS_DIR, or None for a hub whose log is the JSONL file."""
        path = events_dir / STORE_FILE
        try:
            doc = msgspec.json.decode(path.read_bytes())
            dsn_file, kept = doc.get("dsn_file"), doc.get("dsn")
            return cls(str(doc["schema"]), Path(dsn_file) if dsn_file else None,
                       kept=str(kept) if kept else None)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}") from e
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError) as e:
            raise StorageError(f"{path} is not evhub's store settings: {e}") from e

    def keep(self) -> None:
        """Decide what write() keeps, before init makes anything (a string whose password cannot be taken out
        is refused here): the named file's path, else the connection string this init uses, without its
        password (libpq finds that in its own places: see password_dropped)."""
        if self.dsn_file is None:
            self.kept = without_password(self.dsn())

    def write(self, events_dir: Path) -> None:
        """Keep the settings in EVENTS_DIR, as keep() decided."""
        doc = {"store": "postgresql", "schema": self.schema,
               "dsn_file": str(self.dsn_file) if self.dsn_file else None, "dsn": self.kept}
        tmp = events_dir / f".{STORE_FILE}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n")
            tmp.replace(events_dir / STORE_FILE)  # racing inits never show a half-written file
        except OSError as e:
            raise StorageError(f"cannot write {events_dir / STORE_FILE}: {e.strerror}") from e

    def password_dropped(self) -> bool:
        """Whether the connection string write() kept is the one used without its password."""
        return self.kept is not None and self.kept != self.dsn()

    def dsn(self) -> str:
        """The connection string: the one given, else EVHUB_STORE, else the one kept, else the named file's."""
        given = self.given or os.environ.get("EVHUB_STORE", "")
        if given:
            if not is_dsn(given):
                raise BadInput("EVHUB_STORE must be a postgresql:// connection string")
            return given
        if self.kept is not None:
            return self.kept
        if self.dsn_file is None:
            raise BadInput(f"this hub's log is on PostgreSQL (schema {self.schema}): set EVHUB_STORE to the "
                           "connection string")
        try:
            text = self.dsn_file.read_text().strip()
        except OSError as e:
            raise StorageError(f"cannot read the connection string from {self.dsn_file}: {e.strerror}") from e
        if not is_dsn(text):
            raise BadInput(f"{self.dsn_file} does not hold a postgresql:// connection string")
        return text

    def open(self) -> PgStore:
        return PgStore(self.dsn(), self.schema)


# Where libpq looks for a password left out of the connection string, as init and errors tell the user.
PASSWORD_PLACES = "~/.pgpass (or the file PGPASSFILE names), PGPASSWORD, or a service file (?service=NAME)"


# libpq's words when the server wants a password it was not given, or refused the one it was.
_PASSWORD_REFUSED_RE = re.compile(r"no password supplied|password authentication failed")


def without_password(dsn: str) -> str:
    """DSN without its password (a URL's `user:password@`, a `password=` parameter), the rest as written;
    BadInput when libpq would still read a password from it (a password holding an unescaped ? or @)."""
    from psycopg.conninfo import conninfo_to_dict

    scheme, _, rest = dsn.partition("://")
    head, q, query = rest.partition("?")
    userinfo, at, hosts = head.rpartition("@")
    if at:
        head = f"{userinfo.partition(':')[0]}@{hosts}"
    params = [p for p in query.split("&") if p.partition("=")[0].lower() != "password"] if q else []
    kept = f"{scheme}://{head}" + (f"?{'&'.join(params)}" if params else "")
    try:
        before, after = conninfo_to_dict(dsn), conninfo_to_dict(kept)
    except Exception as e:  # the parser's message may quote the string: shown without its password
        raise BadInput(f"the PostgreSQL connection string is malformed: {redact(_reason(e), dsn)}") from None
    before.pop("password", None)
    if after != before:
        raise BadInput("cannot take the password out of the PostgreSQL connection string: give it without one "
                       f"and put the password in {PASSWORD_PLACES}")
    return kept


# A password in a connection string or a message quoting one: a URL's `user:password@` (up to the last @,
# as a malformed URL may hold more) and a `password=` value (quoted, or up to a space or the next & of a URL).
_URL_PASSWORD_RE = re.compile(r"(?P<keep>://[^:/?#@\s]*:)[^\s]*@")
_KEY_PASSWORD_RE = re.compile(r"(?P<keep>password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)", re.IGNORECASE)


def redact(text: str, dsn: str) -> str:
    """TEXT (a message about DSN, or DSN itself) without DSN's password in any form, however malformed
    DSN is: a parser's message may quote only the token it choked on, so each candidate password is
    taken out of TEXT wherever it is, as written and percent-decoded."""
    from urllib.parse import unquote

    secrets = {m[0][len(m["keep"]):] for m in _KEY_PASSWORD_RE.finditer(dsn)}
    _, sep, rest = dsn.partition("://")
    _, colon, password = rest.rpartition("@")[0].partition(":")
    if sep and colon:
        secrets.add(password)
    secrets |= {unquote(s) for s in secrets} | {s.strip("'") for s in secrets}
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD_RE.sub(r"\g<keep>***@", text)
    return _KEY_PASSWORD_RE.sub(r"\g<keep>***", text)


def _where(dsn: str) -> str:
    """host:port/db of DSN, for messages (never the password); BadInput when DSN cannot be parsed."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(dsn)
    except Exception as e:  # the parser's message may quote the string: shown without its password
        raise BadInput(f"the PostgreSQL connection string is malformed: {redact(_reason(e), dsn)}") from None
    host = str(info.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(info.get("port") or os.environ.get("PGPORT") or "5432")
    db = str(info.get("dbname") or os.environ.get("PGDATABASE") or "")
    return f"{host}:{port}/{db}"


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class PgStore(Store):
    """The log as rows of `<schema>.events`; several processes and machines append at once."""

    name = "postgresql"

    def __init__(self, dsn: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        self._pg = psycopg
        self.dsn = dsn
        self.schema = check_schema(schema)
        self.where = f"{_where(dsn)} schema {schema}"
        self.position = (0, 0)  # (seq, seq): a PostgreSQL log's marks are seqs
        self.torn_tail = b""  # a transaction is whole or absent: never a torn write
        self.scanned_to = 0  # the byte, in the exported file, after the last line blocks() gave
        self.reached = 0  # the seq the last read got to
        self._blocks_end = (0, 0)  # (byte, seq) where the last blocks() call ended
        self._seen_last: tuple[int, bytes] = (0, b"")
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_pid = 0
        self._listener: psycopg.Connection[Any] | None = None
        self._holding: psycopg.Connection[Any] | None = None  # the connection holding the session lock (locked())
        self._want_turn = False  # inside locked(), before the lock is taken
        self._server_time: datetime | None = None  # the server's clock, as of the last read
        self.channel = f"evhub.{schema}"
        self._lock_key = zlib.crc32(f"evhub:{schema}".encode())  # one advisory lock per hub
        table = sql.Identifier(schema, "events")
        self._q_head = sql.SQL("SELECT coalesce(max(seq), 0) FROM {}").format(table)
        self._prefetched: tuple[int, tuple[Any, ...]] | None = None  # (after, the page after it) from last_line
        self._q_ids = sql.SQL("SELECT seq, id FROM {} WHERE id = ANY(%b) ORDER BY seq").format(table)
        self._q_at = sql.SQL("SELECT seq, line FROM {} WHERE seq = ANY(%b)").format(table)
        self._q_copy = sql.SQL("COPY {} (seq, id, line) FROM STDIN").format(table)
        # The columns of whatever is named <schema>.events (NULL: nothing is), so an application's own
        # table of that name is refused, not taken for a hub's. A query of the catalog, not to_regclass:
        # that reads a cache a racing init's commit may not have reached.
        self._q_columns = sql.SQL(
            "SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = {} AND c.relname = 'events' AND a.attnum > 0 AND NOT a.attisdropped"
        ).format(sql.Literal(schema))
        self._ddl = sql.SQL("""
            CREATE SCHEMA IF NOT EXISTS {schema};
            CREATE TABLE {table} (
                seq bigint PRIMARY KEY CHECK (seq > 0),
                id text NOT NULL UNIQUE,
                line text NOT NULL
            );
            CREATE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the evhub log is append-only: % refused', TG_OP; END $$;
            CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
            CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
            -- One append in one statement, so one round trip (its own transaction in autocommit).
            CREATE FUNCTION {schema}.append(expected bigint, seqs bigint[], ids text[], lines text[],
                                            unlock boolean) RETURNS void LANGUAGE plpgsql AS $$
            DECLARE head bigint;
            BEGIN
                PERFORM pg_advisory_xact_lock({key});
                SELECT coalesce(max(seq), 0) INTO head FROM {table};
                IF head <> expected THEN
                    RAISE EXCEPTION 'the log moved: expected head %, found %', expected, head
                        USING ERRCODE = '{moved}';
                END IF;
                INSERT INTO {table} (seq, id, line) SELECT * FROM unnest(seqs, ids, lines);
                PERFORM pg_notify({channel}, seqs[array_upper(seqs, 1)]::text);
                IF unlock THEN  -- the session lock of the caller's command: the transaction's lock holds on
                    PERFORM pg_advisory_unlock({key});
                END IF;
            END $$;
            -- Every read: the line of seq AFTER (a catch-up checks its kept state against it) and a page of
            -- the events after it as one value (far fewer Python objects than a row each), one round trip.
            -- With TAKE_LOCK it is a command's turn: the session lock first, and the query a statement of
            -- its own, so it sees the last holder's append.
            CREATE FUNCTION {schema}.read_after(after bigint, lim integer, take_lock boolean)
            RETURNS TABLE (kept text, block bytea, n bigint, last bigint) LANGUAGE plpgsql AS $$
            BEGIN
                IF take_lock THEN
                    PERFORM pg_advisory_lock({key});
                END IF;
                RETURN QUERY SELECT (SELECT e.line FROM {table} e WHERE e.seq = after),
                    convert_to(string_agg(p.line || E'\\n', '' ORDER BY p.seq), 'UTF8'), count(*), max(p.seq)
                    FROM (SELECT e.seq, e.line FROM {table} e WHERE e.seq > after ORDER BY e.seq LIMIT lim) p;
            END $$;
        """).format(schema=sql.Identifier(schema), table=table, key=sql.Literal(self._lock_key),
                    channel=sql.Literal(self.channel), moved=sql.SQL(MOVED))
        self._q_append = sql.SQL("SELECT {}.append(%s, %b, %b, %b, %s)").format(sql.Identifier(schema))
        # A search: the rows after a seq that hold every term or a \u escape, with where each starts in
        # the export (summed on the server, so only those rows cross the network), then where it ends.
        self._q_search = sql.SQL("""
            SELECT line, at FROM (
                SELECT line, sum(octet_length(line) + 1) OVER (ORDER BY seq) - octet_length(line) - 1 AS at
                FROM {table} WHERE seq > %(after)s) r
            WHERE strpos(line, %(escape)s) > 0
               OR NOT EXISTS (SELECT 1 FROM unnest(%(terms)s::text[]) t WHERE strpos(r.line, t) = 0)
            ORDER BY at""").format(table=table)
        self._q_end = sql.SQL("SELECT coalesce(max(seq), %s), coalesce(sum(octet_length(line) + 1), 0) "
                              "FROM {} WHERE seq > %s").format(table)
        # The server's clock decides every write's time: read with the catch-up, after the lock, for free.
        self._q_read = sql.SQL("SELECT kept, block, n, last, clock_timestamp() FROM {}.read_after(%s, %s, %s)").format(
            sql.Identifier(schema))

    # -- connections ------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return self._pg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="evhub")

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, kept between calls; a new one after a failure or in a forked child."""
        if self._conn is None or self._conn.closed or self._conn_pid != os.getpid():
            self._conn = None
            conn = self._connect()
            _register_dumpers(conn)
            # Every wait for the hub's lock is bounded, as the file lock's is (HubBusy past it); and the
            # server probes a silent client, so a machine that vanished holding the lock loses it in ~16s.
            conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('tcp_keepalives_idle', '10', false),"
                         " set_config('tcp_keepalives_interval', '2', false),"
                         " set_config('tcp_keepalives_count', '3', false)", (f"{int(lock_timeout() * 1000)}ms",))
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def locked(self) -> Iterator[None]:
        # A session lock, so machines take turns to catch up, decide and append, rather than decide
        # on a head that another is moving and decide again (under load, again and again). Each
        # append still checks its expected head under the transaction's lock: this only saves work.
        # The lock is taken by the block's first query, the catch-up (turn), saving a round trip.
        self._want_turn = True
        try:
            yield
        finally:
            # An append lets go of it in its own statement; a command that appended nothing, here. A
            # dead session's locks the server let go of already.
            conn, self._want_turn, self._holding = self._holding, False, None
            if conn is not None and conn is self._conn and not conn.closed:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
                except self._pg.Error:
                    self._drop()

    def _take_turn(self) -> None:
        """Take the session lock a locked() block asked for, when its first query is not a catch-up."""
        if self._want_turn:
            self._want_turn = False
            self._holding = self._retrying(
                lambda c: c.execute("SELECT pg_advisory_lock(%s)", (self._lock_key,)).connection)

    def _drop(self) -> None:
        if self._conn is not None and self._conn_pid == os.getpid():
            try:
                self._conn.close()
            except Exception:  # closing a broken connection can itself fail; it is gone either way
                pass
        self._conn = None
        self._holding = None  # the session lock went with the session

    def close(self) -> None:
        self._drop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _retrying(self, work: Callable[[psycopg.Connection[Any]], T], deadline: float | None = None,
                  failed: str | None = None) -> T:
        """WORK on the connection, tried again on a new one while the server cannot be reached (for
        work that is safe to repeat) until DEADLINE, then StorageError saying FAILED; what the server
        refuses is translated by _refused."""
        deadline = time.monotonic() + _retry_s() if deadline is None else deadline
        delay = 0.1
        while True:
            try:
                return work(self._connection())
            except self._pg.errors.LockNotAvailable as e:
                raise self._refused(e) from e
            except self._pg.OperationalError as e:
                self._drop()
                if _PASSWORD_REFUSED_RE.search(str(e)):  # not a server away for a moment: waiting cannot help
                    raise StorageError(f"the PostgreSQL store at {self.where} wants a password: put it in "
                                       f"{PASSWORD_PLACES} ({self._reason(e)})") from e
                if time.monotonic() + delay > deadline:
                    raise StorageError(f"{failed or f'cannot reach the PostgreSQL store at {self.where}'}: "
                                       f"{self._reason(e)}") from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except self._pg.Error as e:
                raise self._refused(e) from e

    def _refused(self, e: psycopg.Error) -> EvhubError:
        """The evhub error for what the server refused (a lost connection is retried instead)."""
        errors = self._pg.errors
        if isinstance(e, errors.LockNotAvailable):
            return HubBusy(f"the hub's lock in {self.where} stayed held by another machine for {lock_timeout():g}s "
                           "(raise EVHUB_LOCK_TIMEOUT to wait longer)")
        if isinstance(e, (errors.UndefinedTable, errors.UndefinedFunction)):
            return HubNotFound(f"no evhub log in {self.where}: run `evhub init --store ...` first")
        if e.sqlstate == MOVED:
            return ExpectedPositionError(e.diag.message_primary or "the log moved")
        if isinstance(e, errors.UniqueViolation):
            return ExpectedPositionError("the log already holds one of these seqs or ids")
        return StorageError(f"the PostgreSQL store at {self.where} refused: {self._reason(e)}")

    def _reason(self, e: BaseException) -> str:
        """What E says, for a message: its first line, never the password of this store's connection string."""
        return redact(_reason(e), self.dsn)

    # -- setting up -------------------------------------------------------------------------------

    def create(self) -> None:
        """Make the hub's schema, table and append-only triggers unless they exist (then only
        SELECT and INSERT are needed, so a restricted role can join an existing hub)."""
        def made(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(self._q_columns).fetchone()
            columns = None if row is None else row[0]
            if columns is not None and not {"seq", "id", "line"} <= set(columns):  # a later evhub may add some
                raise Conflict(f"{self.schema}.events exists and is not an evhub log: choose another --schema")
            return columns is not None

        def work(conn: psycopg.Connection[Any]) -> None:
            if made(conn):
                return
            with conn.transaction():  # all of it or none: a failed init leaves nothing in the database
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                if not made(conn):  # another init may have won
                    conn.execute(self._ddl)
        self._retrying(work)

    # -- the store interface ----------------------------------------------------------------------

    def head(self) -> int:
        self._take_turn()
        row = self._retrying(lambda conn: conn.execute(self._q_head).fetchone())
        assert row is not None
        return int(row[0])

    def _pages(self, after: int) -> Iterator[tuple[bytes, int]]:
        """(block of lines, how many) for the events after seq AFTER, a page at a time."""
        self._take_turn()
        last = after

        def page(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            return conn.execute(self._q_read, (last, PAGE, False)).fetchone()
        while True:
            prefetched, self._prefetched = self._prefetched, None
            if prefetched is not None and prefetched[0] == last:
                row: tuple[Any, ...] | None = prefetched[1]  # read just now by last_line
            else:
                row = self._retrying(page)  # noqa: B023 (called at once, in this round)
            if row is None or not row[2]:
                if row is not None:
                    self._server_time = row[4]
                return
            block, count, last, self._server_time = bytes(row[1]), int(row[2]), int(row[3]), row[4]
            self.reached = last
            yield block, count
            if count < PAGE:
                return

    def read_blocks(self, after: int = 0) -> Iterator[list[ev.AnyEvent]]:
        check = LogCheck(after, None)
        for block, _ in self._pages(after):
            events, damage = check.block(0, block)
            if events:
                last = events[-1].seq
                self.position = (last, last)
                # The line of the last event counted: the page's last, unless a write runs on past it.
                self._seen_last = (0, b"") if check.pending or damage else (last, block[block.rfind(b"\n", 0, -1) + 1:])
                yield events
            if damage is not None:
                raise self._corrupt(check, damage)  # after the events before it, so readers can answer from them
        # A transaction commits whole: a write's rows are all there, whatever `more` they carry.
        if check.pending:
            self.position = (check.last, check.last)
            self._seen_last = (0, b"")
            yield check.pending

    def events_at(self, seqs: Sequence[int]) -> dict[int, ev.AnyEvent]:
        if not seqs:
            return {}
        self._take_turn()
        rows = self._retrying(lambda conn: conn.execute(self._q_at, (list(seqs),)).fetchall())
        return {int(seq): ev.decode(str(line).encode()) for seq, line in rows}

    def _checked(self, check: LogCheck, block: bytes) -> list[ev.AnyEvent]:
        """The events of BLOCK (a page of rows) that count, else CorruptLog naming the row that is not a
        whole event, or the gap."""
        events, damage = check.block(0, block)
        if damage is not None:
            raise self._corrupt(check, damage)
        return events

    def _corrupt(self, check: LogCheck, damage: Damage) -> CorruptLog:
        if damage.event is None:
            return CorruptLog(f"{self.where}: the row after seq {check.last} is not a whole event: {damage.reason}")
        return CorruptLog(f"{self.where}: the row after seq {check.last}: {damage.reason} "
                          "(a gap or a repeat in the table)")

    def _last_line(self, mark: int) -> bytes:
        if mark <= 0:
            return b""
        take, self._want_turn = self._want_turn, False
        row, conn = self._retrying(lambda c: (c.execute(self._q_read, (mark, PAGE, take)).fetchone(), c))
        if take:
            self._holding = conn
        assert row is not None
        self._prefetched = (mark, row)
        self._server_time = row[4]
        return b"" if row[0] is None else str(row[0]).encode() + b"\n"

    def clock(self) -> str:
        """The server's time, as the catch-up just read it, else asked for."""
        taken, self._server_time = self._server_time, None
        if taken is None:
            self._take_turn()
            row = self._retrying(lambda conn: conn.execute("SELECT clock_timestamp()").fetchone())
            assert row is not None
            taken = row[0]
        return format_ts(taken)

    def size(self) -> int:
        """The number of events (the unit of a PostgreSQL log's marks)."""
        return self.head()

    def append(self, events: Sequence[ev.Event], expected: int, *, chained: bool = False) -> None:
        check_numbering(events, expected)
        if not chained:
            chain(events)  # the same lines the JSONL store writes, so a moved hub stays byte-identical
        rows = [(e.seq, e.id, ev.encode(e)[:-1].decode()) for e in events]
        self._write(rows, expected, [e.id for e in events])

    def load(self, lines: Sequence[bytes], events: Sequence[ev.AnyEvent]) -> None:
        """Put LINES (the whole log, EVENTS decoded from them) into this empty store, byte for byte."""
        rows = [(e.seq, e.id, raw[:-1].decode()) for e, raw in zip(events, lines, strict=True)]
        self._write(rows, 0, [e.id for e in events], copy=True)

    def _write(self, rows: list[tuple[int, str, str]], expected: int, ids: list[str], copy: bool = False) -> None:
        """Insert ROWS in one transaction if the head is EXPECTED. When the connection fails, the
        commit may or may not have happened: look for our own ids before trying again."""
        if not rows:
            if self.head() != expected:
                raise ExpectedPositionError(f"the log moved: expected head {expected}, found {self.head()}")
            return
        self._take_turn()
        deadline = time.monotonic() + _retry_s()
        delay = 0.1
        while True:
            connected = False
            try:
                conn = self._connection()
                connected = True
                if copy:
                    self._copy(conn, rows, expected)
                else:
                    unlock = self._holding is conn
                    seqs, ids_, lines = zip(*rows, strict=True)
                    conn.execute(self._q_append, (expected, _Seqs(seqs), _Texts(ids_), _Texts(lines), unlock))
                    if unlock:
                        self._holding = None
                break
            except self._pg.errors.LockNotAvailable as e:
                raise self._refused(e) from e
            except self._pg.OperationalError as e:
                self._drop()
                if connected and self._made(ids, deadline):
                    break
                if time.monotonic() + delay > deadline:
                    raise StorageError(f"cannot append to the PostgreSQL store at {self.where}: {self._reason(e)} "
                                       "(nothing was written)") from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except self._pg.Error as e:
                raise self._refused(e) from e
        last = rows[-1][0]
        self.position = (last, last)
        self._seen_last = (last, rows[-1][2].encode() + b"\n")

    def _copy(self, conn: psycopg.Connection[Any], rows: list[tuple[int, str, str]], expected: int) -> None:
        """ROWS copied in (fast for a whole imported log), under the same lock and head check as append."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            head_row = conn.execute(self._q_head).fetchone()
            if head_row is None or int(head_row[0]) != expected:
                raise ExpectedPositionError(f"the log moved: expected head {expected}")
            with conn.cursor() as cur, cur.copy(self._q_copy) as sink:
                for row in rows:
                    sink.write_row(row)
            conn.execute("SELECT pg_notify(%s, %s)", (self.channel, str(rows[-1][0])))

    def _made(self, ids: list[str], deadline: float) -> bool:
        """Whether the write of IDS committed, asked of the server once it answers again; StorageError
        when it does not answer by DEADLINE, since the outcome is then unknown.

        The dead connection's transaction may still be alive on the server, its COMMIT in flight:
        the hub's advisory lock is taken first, so the answer comes after that transaction ended."""
        def ask(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            try:
                with conn.transaction():
                    wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{wait_ms}ms",))
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    return conn.execute(self._q_ids, (ids,)).fetchall()
            except self._pg.errors.LockNotAvailable as e:
                raise StorageError(f"lost the PostgreSQL store at {self.where} while committing, and the write was "
                                   "still unfinished there after the retry time (run `evhub log` to see)") from e
        found = self._retrying(ask, deadline, f"lost the PostgreSQL store at {self.where} while committing, and "
                                              "could not ask whether the write was made (run `evhub log` to see)")
        if found and len(found) != len(ids):
            raise CorruptLog(f"{self.where}: only part of one write is in the table")
        return bool(found)

    # -- beyond the interface ---------------------------------------------------------------------

    def blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        # Where the last call ended is remembered, so a follower asking from there reads only the new rows.
        offset, after = self._blocks_end if self._blocks_end[0] <= start else (0, 0)
        for block, count in self._pages(after):
            end = offset + len(block)
            if end > start:
                yield (offset, block) if offset >= start else (start, block[start - offset:])
            offset, after = end, after + count
            self._blocks_end = (offset, after)
        self.scanned_to = offset

    def search(self, needles: Sequence[bytes], start: int = 0) -> Iterator[LogLine]:
        """Answered in SQL, from the start or from where the last search or blocks() ended (elsewhere, by
        scanning the rows)."""
        if not needles or (start and start != self._blocks_end[0]):
            yield from super().search(needles, start)
            return
        base, after = self._blocks_end if start else (0, 0)
        terms = [n.decode() for n in needles]

        def ask(conn: psycopg.Connection[Any]) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
            found = conn.execute(self._q_search, {"after": after, "escape": ESCAPE.decode(), "terms": terms})
            return found.fetchall(), conn.execute(self._q_end, (after, after)).fetchone()
        rows, end = self._retrying(ask)
        assert end is not None
        last, size = int(end[0]), int(end[1])
        self._blocks_end = (base + size, last)
        self.scanned_to = self.reached = base + size
        for line, at in rows:
            yield LogLine(base + int(at), line.encode() + b"\n")

    def holds(self, line: LogLine) -> bool:
        return True  # rows are committed whole and never rewritten: repair cannot rewrite them either

    def dump(self, out: IO[bytes]) -> int:
        count = 0
        check = LogCheck()
        for block, n in self._pages(0):
            self._checked(check, block)
            out.write(block)
            count += n
        return count

    def newest(self, count: int) -> list[ev.AnyEvent]:
        return list(self.read(max(0, self.head() - count)))

    def repair(self, seen: Checkpoint | None = None) -> dict[str, Any]:
        """Rows are committed whole and never changed: the only damage is a row some other client
        inserted, which an append-only log cannot take out.  So repair checks, and names such a row."""
        check = LogCheck()
        progress = Progress("repair", self.size())
        try:
            for block, _ in self._pages(0):
                self._checked(check, block)
                progress.update(self.reached, check.last)
            progress.done()
        except CorruptLog as e:
            raise CorruptLog(f"{e}; a log on PostgreSQL is append-only, so repair cannot rewrite it: "
                             "the database owner must remove that row") from e
        return {"repaired": False, "events": check.last, "set_aside": [], "lost": 0, "backup": None,
                "restored": False}

    poll_s = 2.0  # a missed notification (a dropped listener, a row inserted by hand) is found this late at most

    def wait(self, timeout: float) -> bool:
        try:
            if self._listener is None or self._listener.closed:
                from psycopg import sql

                self._listener = self._connect()
                self._listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                return True  # what was appended before LISTEN woke nobody: read now
            return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except self._pg.OperationalError:
            # The server went away: wake the caller, whose read says so or finds it back.
            self._listener = None
            time.sleep(min(timeout, 0.5))
            return True
