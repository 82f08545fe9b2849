"""A hub on PostgreSQL under faults, with real processes and a real server: several machines racing
on one schema, the server restarted under running writers, a connection dropped between COMMIT and
its reply, and a follower whose notifications go missing.

"Machines" are hub folders initialised with the same schema: each has its own read model and views,
and they share the one log.  Tests that stop a server make a private cluster; the rest use the shared
one (never restarted).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from clock import at, wait_until
from command import (
    EVHUB,
    GATED_EVHUB,
    at_gate,
    checked_log,
    clean_env,
    collected,
    error_line,
    gated,
    ok,
    open_gates,
    release,
    run,
)
from pgserver import Cluster
from psycopg import sql
from stores import HubStore, free_port

from evhub import Hub
from evhub import _events as ev
from evhub._values import new_id

# -- helpers ---------------------------------------------------------------------------------------------


@contextmanager
def api(root: Path, now: str) -> Iterator[Hub]:
    """The Python API on the hub in ROOT, its clock at NOW; its views refreshed and its connection closed after."""
    saved = os.environ.get("EVHUB_NOW")
    os.environ["EVHUB_NOW"] = now
    hub = Hub(root)
    try:
        yield hub
        hub.flush()
    finally:
        hub.store.close()
        if saved is None:
            os.environ.pop("EVHUB_NOW", None)
        else:
            os.environ["EVHUB_NOW"] = saved


def machines(tmp_path: Path, count: int, store_file: Path, schema: str) -> list[Path]:
    """COUNT hub folders sharing the log in SCHEMA: the first `evhub init` creates the hub, the others join it."""
    roots = []
    for n in range(count):
        root = tmp_path / f"machine-{n}"
        root.mkdir()
        said = ok(run("init", root, "--store-file", store_file, "--schema", schema, env={"EVHUB_NOW": at(0)})).stdout
        assert ("created a hub" in said) == (n == 0), said
        roots.append(root)
    return roots


def register(root: Path, *sessions: str) -> None:
    """SESSIONS said hello on the machine in ROOT (through the API: quicker than a process each)."""
    with api(root, at(1)) as hub:
        for sid in sessions:
            hub.hello(sid)


def shared_machines(tmp_path: Path, store: HubStore, count: int) -> list[Path]:
    """COUNT machines on a fresh schema of the shared test cluster."""
    settings = store.settings()
    assert settings is not None and store.dsn_file is not None
    return machines(tmp_path, count, store.dsn_file, settings.schema)


def schema_of(root: Path) -> str:
    return str(json.loads((root / "SESSIONS" / "events" / "store.json").read_text())["schema"])


def exported(root: Path) -> bytes:
    return ok(run("export", cwd=root)).stdout.encode()


def verified(root: Path, events: int) -> None:
    assert ok(run("verify", cwd=root, env={"EVHUB_NOW": at(1000)})).stdout.startswith(f"ok: {events} events")


def views(root: Path) -> dict[str, bytes | str]:
    """Every rendered view under ROOT/SESSIONS (its bytes, or a folder's or a link's mark), without events/."""
    sessions = root / "SESSIONS"
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(sessions):
        if Path(dirpath) == sessions:
            dirnames.remove("events")
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(sessions).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            else:
                out[rel] = "a folder" if p.is_dir() else p.read_bytes()
    return out


def heartbeats(docs: list[dict[str, Any]]) -> Counter[str]:
    """How many times each heartbeat status is in the log."""
    return Counter(d["status"] for d in docs if d["type"] == "heartbeat")




# -- 1. several machines race and converge -----------------------------------------------------------------


def test_eight_claims_from_four_machines_one_wins_and_every_machine_renders_the_same_views(
    tmp_path: Path, pg_store: HubStore
) -> None:
    roots = shared_machines(tmp_path, pg_store, 4)
    racers = [(root, f"s{m}{k}") for m, root in enumerate(roots) for k in range(2)]
    for root, sid in racers:  # every session registered, each on its own machine, before the race
        register(root, sid)

    done = release([gated(GATED_EVHUB, ["claim", "p"], root, {"EVHUB_NOW": at(2), "EVHUB_SESSION": sid})
                    for root, sid in racers])

    assert sorted(p.returncode for p in done) == [0] + [3] * 7, [(p.returncode, p.stderr) for p in done]
    [winner] = [sid for (_, sid), p in zip(racers, done, strict=True) if p.returncode == 0]
    for p in done:
        if p.returncode == 3:
            assert f"p is held by {winner}" in error_line(p, 3)
    logs = [exported(root) for root in roots]
    assert logs[1:] == logs[:1] * 3  # one log, whichever machine reads it
    docs = checked_log(roots[0])
    claimed = [d for d in docs if d["type"] == "priority_claimed"]
    assert [(d["session"], d["priority"]) for d in claimed] == [(winner, "p")]
    assert len(docs) == 1 + 8 + 1

    for root in roots:
        ok(run("status", cwd=root, env={"EVHUB_NOW": at(30)}))
    rendered = [views(root) for root in roots]
    assert f"- `p`: {winner}, token 10,".encode() in rendered[0]["CURRENT_STATE.md"]
    for n, other in enumerate(rendered[1:], 1):
        differ = sorted(k for k in rendered[0].keys() | other.keys() if rendered[0].get(k) != other.get(k))
        assert differ == [], f"machine-{n} renders differently from machine-0: {differ}"
    verified(roots[3], len(docs))


API_WRITER = textwrap.dedent(
    """
    import sys, time
    from evhub import Hub
    from evhub import _decide as cmd
    hub = Hub(".")
    print('ready', flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[2])):
        [event] = hub.execute(cmd.Heartbeat(session=sys.argv[1], status=f"{sys.argv[1]} {n}"))
        print(event.seq, flush=True)
        time.sleep(0.01)
    """
)


def test_machines_appending_at_once_lose_and_double_nothing(tmp_path: Path, pg_store: HubStore) -> None:
    roots = shared_machines(tmp_path, pg_store, 4)
    per_api, per_cli = 25, 3
    for m, root in enumerate(roots):
        register(root, f"api{m}", f"cli{m}")
    acked: dict[str, int] = {}  # status -> the seq its writer was told
    failures: list[str] = []
    lock = threading.Lock()

    def cli_writer(root: Path, sid: str) -> None:
        for n in range(per_cli):
            p = run("heartbeat", "--status", f"{sid} {n}", "--json", cwd=root,
                    env={"EVHUB_NOW": at(2), "EVHUB_SESSION": sid})
            with lock:
                if p.returncode == 0:
                    [acked[f"{sid} {n}"]] = json.loads(p.stdout)["events"]
                else:
                    failures.append(p.stderr)

    apis = [gated(API_WRITER, [f"api{m}", str(per_api)], root, {"EVHUB_NOW": at(2), "EVHUB_FSYNC": "0"})
            for m, root in enumerate(roots)]
    at_gate(apis)
    clis = [threading.Thread(target=cli_writer, args=(root, f"cli{m}")) for m, root in enumerate(roots)]
    open_gates(apis)
    for t in clis:
        t.start()
    for m, done in enumerate(collected(apis)):
        assert done.returncode == 0, done.stderr
        for n, told in enumerate(done.stdout.split()):
            acked[f"api{m} {n}"] = int(told)
    for t in clis:
        t.join()

    assert failures == []
    assert len(acked) == len(roots) * (per_api + per_cli)
    docs = checked_log(roots[0])
    assert len(docs) == 1 + 2 * len(roots) + len(acked)  # nothing doubled, nothing extra
    assert heartbeats(docs) == Counter(acked.keys())  # every acknowledged status once, and nothing else
    for status, seq in acked.items():  # each at the seq its writer was told
        assert (docs[seq - 1]["type"], docs[seq - 1]["status"]) == ("heartbeat", status)
    writers = [d["session"] for d in docs if d["type"] == "heartbeat" and d["session"].startswith("api")]
    switches = sum(a != b for a, b in zip(writers, writers[1:], strict=False))
    assert switches >= 2 * len(roots), f"the API writers hardly overlapped: {writers}"
    verified(roots[2], len(docs))


def test_eight_machines_appending_flat_out_take_turns_and_none_gives_up(tmp_path: Path, pg_store: HubStore) -> None:
    """Writers on separate machines with no pause between calls: each command holds the hub's lock from
    catch-up to append, so none keeps losing the race to the head until it gives up (Conflict)."""
    roots = shared_machines(tmp_path, pg_store, 8)
    per_writer = 40
    for m, root in enumerate(roots):
        register(root, f"w{m}")
    writer = API_WRITER.replace("time.sleep(0.01)", "pass")
    procs = [gated(writer, [f"w{m}", str(per_writer)], root, {"EVHUB_NOW": at(2), "EVHUB_FSYNC": "0"})
             for m, root in enumerate(roots)]
    for done in release(procs):
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.split()) == per_writer
    docs = checked_log(roots[0])
    assert len(docs) == 1 + len(roots) + len(roots) * per_writer
    assert heartbeats(docs) == Counter(f"w{m} {n}" for m in range(len(roots)) for n in range(per_writer))


# -- 2. the server restarted under running writers ---------------------------------------------------------

STORE_MESSAGE = re.compile(
    r"^error: (cannot reach the PostgreSQL store at|cannot append to the PostgreSQL store at"
    r"|lost the PostgreSQL store at) 127\.0\.0\.1:(\d+)/postgres schema \w+: .+$"
)


@pytest.fixture
def private_cluster(pg_cluster: Cluster) -> Iterator[Cluster]:
    """A cluster of this test's own, free to stop and start (needs pg_cluster only for its skip or fail)."""
    cluster = Cluster.temporary(free_port())
    try:
        yield cluster
    finally:
        cluster.remove()


class Writer(threading.Thread):
    """One machine's `evhub heartbeat` loop: each op retried until it exits 0, each try with its own status."""

    def __init__(self, root: Path, sid: str, env: Mapping[str, str]) -> None:
        super().__init__(daemon=True)
        self.root, self.sid, self.env = root, sid, dict(env)
        self.acked: list[str] = []  # statuses whose command exited 0
        self.spans: list[tuple[float, float]] = []  # when each acknowledged command started and ended
        self.failed: list[tuple[str, subprocess.CompletedProcess[str]]] = []  # (status, the failed command)
        self.stop = threading.Event()
        self.stuck = ""

    def run(self) -> None:
        op = 0
        while not self.stop.is_set():
            deadline = time.monotonic() + 30
            for attempt in range(1000):
                status = f"{self.sid} op {op} try {attempt}"
                began = time.monotonic()
                p = run("heartbeat", "--status", status, cwd=self.root,
                        env={"EVHUB_NOW": at(10), "EVHUB_SESSION": self.sid, **self.env})
                if p.returncode == 0:
                    self.acked.append(status)
                    self.spans.append((began, time.monotonic()))
                    break
                self.failed.append((status, p))
                if time.monotonic() > deadline:
                    self.stuck = f"{status}: {p.stderr}"
                    return
                time.sleep(0.1)
            op += 1


def test_writers_ride_out_a_server_restart_and_every_acknowledged_event_is_in_the_log_once(
    tmp_path: Path, private_cluster: Cluster
) -> None:
    store_file = tmp_path / "store.dsn"
    store_file.write_text(private_cluster.dsn + "\n")
    roots = machines(tmp_path, 3, store_file, "restarted")
    for n, root in enumerate(roots):
        register(root, f"w-{n}")
    # Two machines give up on an unreachable server after half a second; the third keeps the default (10 s).
    writers = [Writer(root, f"w-{n}", {"EVHUB_PG_RETRY_S": "0.5"} if n < 2 else {}) for n, root in enumerate(roots)]
    for w in writers:
        w.start()
    try:
        wait_until("two ops from each writer", lambda: all(len(w.acked) >= 2 for w in writers))
        private_cluster.stop()
        stopped = time.monotonic()
        wait_until("a writer to fail while the server is down", lambda: any(w.failed for w in writers[:2]))
        time.sleep(max(0.0, stopped + 1.5 - time.monotonic()))
        private_cluster.start()
        private_cluster.wait_ready()
        restarted = time.monotonic()
        after = [len(w.acked) for w in writers]
        wait_until("two more ops from each writer", lambda: all(len(w.acked) >= n + 2 for w, n in
                                                                 zip(writers, after, strict=True)), timeout=40)
    finally:
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=60)
    assert [w.stuck for w in writers] == ["", "", ""]

    failures = [(status, p) for w in writers for status, p in w.failed]
    assert failures, "no command failed while the server was down: the fault was not exercised"
    for _, p in failures:  # each failure is one clear line naming the store it could not reach
        line = error_line(p, 1)
        found = STORE_MESSAGE.match(line)
        assert found is not None and int(found[2]) == private_cluster.port, line
    assert writers[2].failed == [], "a command with the default retry time failed across a short restart"
    assert any(began < stopped + 0.5 and ended > restarted for began, ended in writers[2].spans), \
        "no command of the patient writer was waiting while the server was down"

    docs = checked_log(roots[0])
    beats = heartbeats(docs)
    acked = [s for w in writers for s in w.acked]
    assert {s: beats[s] for s in acked} == dict.fromkeys(acked, 1)  # every acknowledged op once, none doubled
    for status, p in failures:
        # A failure that says nothing was written wrote nothing; only a write whose reply was lost may be there.
        assert beats[status] <= ("lost the PostgreSQL store" in p.stderr), (status, p.stderr)
    assert set(beats) <= set(acked) | {s for s, _ in failures}  # and nothing else
    assert len(docs) == 1 + 3 + sum(beats.values())
    verified(roots[1], len(docs))


# -- 3. a connection dropped between COMMIT and its reply ----------------------------------------------------

UNTYPED_REQUESTS = {80877102, 80877103, 80877104}  # CancelRequest, SSLRequest, GSSENCRequest: no type byte
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


def hang_up(s: socket.socket) -> None:
    """Close S, waking any thread blocked on it."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected, or already shut
    s.close()


COMMITTED = b"C\x00\x00\x00\x0bCOMMIT\x00"  # CommandComplete of a COMMIT
APPENDED = b"C\x00\x00\x00\x0dSELECT 1\x00"  # CommandComplete of the append function's call


def commits(message: bytes) -> bool:
    """Whether a client's MESSAGE ends a transaction that writes: COMMIT, or the append function."""
    if message[:1] == b"Q":
        return message[5:].rstrip(b"\0").strip().upper() == b"COMMIT"
    return message[:1] == b"P" and b".append(" in message


class CommitDropper:
    """A TCP proxy in front of a PostgreSQL server. It forwards bytes both ways; when armed, the next
    commit a client asks for goes through to the server, whose reply is read and thrown away, and the
    client's connection is closed instead: the commit happened, the client cannot know.  A commit is
    a COMMIT (a simple-query 'Q' message) or a call of the hub's append function (a 'P' message, in
    autocommit its own transaction).  Then it disarms, passing every later connection untouched.
    With LATE_S, it hangs up on the client first and hands the commit to the server LATE_S seconds
    later (a slow link, a stalled disk: the client sees its connection die while its commit is still
    on the way)."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.armed = False
        self.late_s = 0.0
        self.commits = 0  # COMMIT messages seen from clients
        self.dropped = 0  # connections closed after the server committed, before the client heard so
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable&gssencmode=disable"

    def close(self) -> None:
        with self._lock:
            for s in [self.listener, *self._sockets]:
                hang_up(s)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.server_port))
            with self._lock:
                self._sockets += [client, server]
            swallow = threading.Event()  # set when the server's next reply must not reach the client
            threading.Thread(target=self._upstream, args=(client, server, swallow), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, swallow), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, swallow: threading.Event) -> None:
        """Client to server, a whole message at a time, looking at each."""
        buf, typed = b"", False
        try:
            while data := client.recv(65536):
                buf += data
                while True:
                    if not typed:  # the startup phase: length, then a request code or the protocol version
                        if len(buf) < 8 or len(buf) < int.from_bytes(buf[:4], "big"):
                            break
                        size = int.from_bytes(buf[:4], "big")
                        typed = int.from_bytes(buf[4:8], "big") not in UNTYPED_REQUESTS
                    else:
                        if len(buf) < 5 or len(buf) < 1 + int.from_bytes(buf[1:5], "big"):
                            break
                        size = 1 + int.from_bytes(buf[1:5], "big")
                    message, buf = buf[:size], buf[size:]
                    if typed and commits(message):
                        with self._lock:
                            self.commits += 1
                            if self.armed:
                                self.armed = False
                                swallow.set()  # before the server can answer
                        if swallow.is_set() and self.late_s:
                            hang_up(client)
                            time.sleep(self.late_s)
                    server.sendall(message)
        except OSError:
            pass
        finally:
            if not swallow.is_set():  # the client left: so does the server's side (else _downstream hangs up)
                hang_up(server)

    def _downstream(self, server: socket.socket, client: socket.socket, swallow: threading.Event) -> None:
        """Server to client, as it comes, until a swallowed reply ends (ReadyForQuery): then hang up."""
        kept = b""
        try:
            while data := server.recv(65536):
                if not swallow.is_set():
                    client.sendall(data)
                    continue
                kept += data  # the client asked for a commit and waits: all of this is the reply to it
                if READY_FOR_QUERY in kept:
                    if COMMITTED in kept or APPENDED in kept:  # CommandComplete: the server did commit
                        with self._lock:
                            self.dropped += 1
                    break
        except OSError:
            pass
        finally:
            hang_up(client)
            hang_up(server)


@pytest.fixture
def dropper(pg_cluster: Cluster) -> Iterator[CommitDropper]:
    proxy = CommitDropper(pg_cluster.port)
    try:
        yield proxy
    finally:
        proxy.close()


def test_an_append_whose_commit_reply_is_lost_is_found_by_its_id_not_written_twice(
    tmp_path: Path, pg_store: HubStore, dropper: CommitDropper, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_file = tmp_path / "via-proxy.dsn"
    store_file.write_text(dropper.dsn + "\n")
    settings = pg_store.settings()
    assert settings is not None
    [root] = machines(tmp_path, 1, store_file, settings.schema)  # the hub reaches its server through the proxy
    register(root, "alice")
    assert dropper.commits >= 2 and dropper.dropped == 0  # traffic passes, COMMITs are recognised

    def through_a_dropped_commit(action: Callable[[], object]) -> None:
        dropped = dropper.dropped
        dropper.armed = True
        action()
        assert not dropper.armed and dropper.dropped == dropped + 1, "the proxy dropped no connection"

    env = {"EVHUB_NOW": at(5), "EVHUB_SESSION": "alice"}
    through_a_dropped_commit(lambda: ok(run("claim", "p", cwd=root, env=env)))
    through_a_dropped_commit(lambda: ok(run("heartbeat", "--status", "cli beat", cwd=root, env=env)))
    monkeypatch.setenv("EVHUB_NOW", at(6))
    hub = Hub(root)
    try:
        through_a_dropped_commit(lambda: hub.heartbeat("alice", "api beat"))
        assert hub.state().claims["p"].session == "alice"  # the same Hub goes on working
    finally:
        hub.store.close()

    docs = checked_log(root)
    assert [(d["type"], d.get("priority"), d.get("status")) for d in docs[2:]] == [
        ("priority_claimed", "p", None), ("heartbeat", None, "cli beat"), ("heartbeat", None, "api beat")
    ]
    assert pg_store.cluster is not None
    with psycopg.connect(pg_store.cluster.dsn) as conn:  # straight to the server, past the proxy
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(settings.schema, "events"))
                             ).fetchone()
    assert count == (len(docs),)
    verified(root, len(docs))


# -- 4. a follower that misses notifications -------------------------------------------------------------------


class Follow:
    """`evhub log --follow --json` running in ROOT, its lines gathered by a thread."""

    def __init__(self, root: Path) -> None:
        # Ctrl-C stops it even when pytest itself was started ignoring SIGINT (as `nohup` or `cmd &` do).
        self.proc = subprocess.Popen([EVHUB, "log", "--follow", "--json"], cwd=root, env=clean_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def shows(self, status: str, within: float) -> float:
        """Seconds until the follower printed the heartbeat with STATUS; fails after WITHIN."""
        began = time.monotonic()
        while not any(d.get("status") == status for d in self.seen):
            left = began + within - time.monotonic()
            try:
                self.seen.append(json.loads(self.lines.get(timeout=max(0.0, left))))
            except queue.Empty:
                raise AssertionError(f"the follower did not show {status!r} within {within} s: {self.seen}") from None
        return time.monotonic() - began

    def stop(self) -> str:
        """Interrupt it (as Ctrl-C does); what it wrote to stderr."""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@contextmanager
def following(root: Path) -> Iterator[Follow]:
    follow = Follow(root)
    try:
        yield follow
    finally:
        follow.stop()


def listeners(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    """The server processes LISTENing for appends to SCHEMA's hub."""
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' AND query LIKE %s",
                        (f"%evhub.{schema}%",)).fetchall()
    return [int(pid) for (pid,) in rows]


def test_a_follower_shows_appends_from_another_machine_even_without_a_notification(
    tmp_path: Path, pg_store: HubStore
) -> None:
    a, b = shared_machines(tmp_path, pg_store, 2)
    register(b, "bob")
    schema = schema_of(a)
    assert pg_store.cluster is not None
    beat = {"EVHUB_NOW": at(5), "EVHUB_SESSION": "bob"}
    with following(a) as follow, psycopg.connect(pg_store.cluster.dsn, autocommit=True) as conn:
        wait_until("the follower to listen", lambda: len(listeners(conn, schema)) == 1)
        ok(run("heartbeat", "--status", "from b", cwd=b, env=beat))
        follow.shows("from b", within=5)

        # A careless client adds a row without NOTIFY: the follower reads again on its own within ~2 s.
        [(head,)] = conn.execute(sql.SQL("SELECT max(seq) FROM {}").format(sql.Identifier(schema, "events")))
        quiet = ev.Heartbeat(seq=head + 1, id=new_id(), ts=at(6), session="bob", status="no notify")
        conn.execute(sql.SQL("INSERT INTO {} (seq, id, line) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema, "events")), (quiet.seq, quiet.id, ev.encode(quiet)[:-1].decode()))
        follow.shows("no notify", within=3.5)

        # Its LISTEN connection killed, it still shows later appends, and listens again.
        [killed] = listeners(conn, schema)
        assert conn.execute("SELECT pg_terminate_backend(%s)", (killed,)).fetchone() == (True,)
        ok(run("heartbeat", "--status", "after the kill", cwd=b, env={**beat, "EVHUB_NOW": at(7)}))
        follow.shows("after the kill", within=5)
        wait_until("the follower to listen again", lambda: listeners(conn, schema) not in ([], [killed]), timeout=10)
        ok(run("heartbeat", "--status", "listened again", cwd=b, env={**beat, "EVHUB_NOW": at(8)}))
        follow.shows("listened again", within=5)
        assert follow.proc.poll() is None
    assert [d["seq"] for d in follow.seen] == list(range(1, len(follow.seen) + 1))  # every event once, in order
    docs = checked_log(a)
    assert [d.get("status") for d in docs[2:]] == ["from b", "no notify", "after the kill", "listened again"]
    assert follow.seen == docs
    verified(a, len(docs))


def test_a_commit_that_lands_after_its_connection_died_is_not_written_twice(
    tmp_path: Path, pg_store: HubStore, dropper: CommitDropper
) -> None:
    store_file = tmp_path / "via-proxy.dsn"
    store_file.write_text(dropper.dsn + "\n")
    settings = pg_store.settings()
    assert settings is not None
    [root] = machines(tmp_path, 1, store_file, settings.schema)
    register(root, "alice")
    dropper.armed, dropper.late_s = True, 1.0
    ok(run("heartbeat", "--status", "once", cwd=root, env={"EVHUB_NOW": at(5), "EVHUB_SESSION": "alice"}))
    assert dropper.dropped == 1  # the commit did land, after the client had lost its connection
    assert heartbeats(checked_log(root))["once"] == 1
