"""evhub benchmarks: each figure beside a floor measured in the same run, on the same data.

    python -m benchmarks            # hubs of 1k, 100k and 1M events (about ten minutes on 2 cores)
    python -m benchmarks --quick    # hubs of 1k, 5k and 20k events, fewer repeats (under a minute)

Every figure is a whole process (as an agent pays it) unless it says otherwise, and so is every
floor.  Prints one markdown table on stdout (figure, evhub's median with min–max, the floor's
median with min–max, the ratio, the target of issue 4 and whether it is met); progress goes to
stderr.  The generated hubs live in a temporary folder removed at the end of the run.

The PostgreSQL rows (issue 7) run on a throwaway cluster the run starts and removes
(tests/pgserver.py, so run this from the repository's root); without a PostgreSQL server
installed they print as skipped.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evhub import Hub
from evhub import _decide as cmd
from evhub import _events as ev
from evhub._agents import AGENTS
from evhub._pgstore import StoreSettings
from evhub._progress import Progress
from evhub._values import format_ts

SESSIONS = [f"session-{n}" for n in range(1, 51)]
PRIORITIES = [f"p{n}" for n in range(1, 201)]
ALIVE_TTL_S = 300
SPACING_S = 3  # seconds between two synthetic events: 50 sessions, each seen every ~150 s, so most are alive
MILESTONE = "m1"
# The mix, in percent of all events.  The first hello of each session counts as a hello.
MIX = {"heartbeat": 70, "message": 10, "claim": 8, "release": 7, "step": 3, "hello": 2}
WORDS = ("the deploy dashboard api tests migration schema review blocked done waiting for your branch "
         "merge rebase fixed flaky timeout metrics frontend backend token claim release step please check "
         "again after lunch build green red pipeline").split()
EVHUB_DIR = Path(ev.__file__).parent
READ_MODEL = Path("SESSIONS") / "events" / "readmodel.sqlite3"
LOG = Path("SESSIONS") / "events" / "log.jsonl"


# -- the synthetic hub -------------------------------------------------------------------------------


def mix_counts(count: int) -> dict[str, int]:
    """How many events of each kind a log of COUNT events holds: the issue's mix, exactly up to rounding.

    Besides the mix the log holds its hub_created and one milestone_created (the milestone the step
    updates work on), taken from the heartbeats; every session's first hello counts as a hello, so a
    log too small for 2% to cover 50 sessions has 50 hellos."""
    counts = {kind: round(count * pct / 100) for kind, pct in MIX.items() if kind != "heartbeat"}
    counts["hello"] = max(counts["hello"], len(SESSIONS))
    counts["heartbeat"] = count - 2 - sum(counts.values())
    if counts["heartbeat"] < 0:
        raise ValueError(f"a synthetic log needs at least {count - counts['heartbeat']} events")
    return counts


def _message_text(rng: random.Random) -> str:
    size = rng.randint(150, 250)
    words: list[str] = []
    length = -1
    while length < size:
        words.append(rng.choice(WORDS))
        length += len(words[-1]) + 1
    text = " ".join(words)[: size - 1]
    return text[:-1] + "s." if text.endswith(" ") else text + "."  # exactly SIZE bytes


def synthetic_log(path: Path, count: int, seed: int = 7, end: datetime | None = None) -> dict[str, int]:
    """Write a valid hub log of COUNT events in the issue's mix to PATH; return the count of each kind.

    Events are SPACING_S apart and the last one is at END (default: now), so a command run right
    after sees most of the 50 sessions alive.  Every event is one evhub itself would accept at its
    time: a claim is of a free priority, a refresh by its holder, or a takeover of a dead holder's
    claim (with took_over_from); a release is by the holder; a hello of a known session resumes it;
    step updates are on a milestone nobody holds.  seq runs 1..COUNT, ids are unique."""
    rng = random.Random(seed)
    counts = mix_counts(count)
    end_s = (end or datetime.now(UTC)).timestamp()
    start_s = int(end_s) - (count - 1) * SPACING_S
    holders: dict[str, str] = {}
    last_seen: dict[str, float] = {}
    written = dict.fromkeys(MIX, 0)

    def ts(seq: int) -> str:
        return format_ts(datetime.fromtimestamp(start_s + (seq - 1) * SPACING_S, UTC))

    def ident(seq: int) -> str:  # ULID-shaped: 26 characters of Crockford base 32 (hex is a subset)
        return f"{(start_s + seq * SPACING_S) * 1000:012X}{seq:014X}"

    body = [kind for kind, n in counts.items() for _ in range(n - (len(SESSIONS) if kind == "hello" else 0))]
    rng.shuffle(body)
    swapped = 0  # releases written as claims while nothing was held; later claims are written as releases
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(ev.encode(ev.HubCreated(seq=1, id=ident(1), ts=ts(1), alive_ttl_s=ALIVE_TTL_S)))
        seq = 1
        for n, sid in enumerate(SESSIONS):
            seq += 1
            f.write(ev.encode(ev.SessionRegistered(seq=seq, id=ident(seq), ts=ts(seq), session=sid,
                                                   role=("backend", "frontend", "tests")[n % 3],
                                                   specialization=f"area {n}")))
            last_seen[sid] = start_s + (seq - 1) * SPACING_S
            written["hello"] += 1
        seq += 1
        f.write(ev.encode(ev.MilestoneCreated(seq=seq, id=ident(seq), ts=ts(seq), session=SESSIONS[0],
                                              milestone=MILESTONE, title="Benchmark milestone",
                                              priority=MILESTONE, steps=[f"step {n}" for n in range(1, 9)])))
        bar = Progress("generating", count, shown_from=50_000)  # counted in events; on a terminal's stderr only
        for kind in body:
            seq += 1
            now = start_s + (seq - 1) * SPACING_S
            sid = rng.choice(SESSIONS)
            if kind == "release" and not holders:
                kind, swapped = "claim", swapped + 1
            elif kind == "claim" and swapped and holders:
                kind, swapped = "release", swapped - 1
            eid, ets = ident(seq), ts(seq)
            event: ev.Event
            if kind == "claim":
                priority = rng.choice(PRIORITIES)
                holder = holders.get(priority)
                took_over = None
                if holder is not None and now - last_seen[holder] <= ALIVE_TTL_S:
                    sid = holder  # a refresh: only the holder may claim a priority held by a live session
                elif holder is not None:
                    while sid == holder:
                        sid = rng.choice(SESSIONS)
                    took_over = holder  # the holder is dead: a takeover
                holders[priority] = sid
                event = ev.PriorityClaimed(seq=seq, id=eid, ts=ets, session=sid, priority=priority,
                                           took_over_from=took_over)
            elif kind == "release":
                priority = rng.choice(list(holders))
                sid = holders.pop(priority)
                event = ev.PriorityReleased(seq=seq, id=eid, ts=ets, session=sid, priority=priority,
                                            done=rng.random() < 0.5)
            elif kind == "message":
                to = "all" if rng.random() < 0.7 else rng.choice(SESSIONS)
                event = ev.MessagePosted(session=sid, to=to, text=_message_text(rng), seq=seq, id=eid, ts=ets)
            elif kind == "step":
                event = ev.StepUpdated(session=sid, milestone=MILESTONE, step=rng.randint(1, 8),
                                       status=rng.choice(("in-progress", "done", "blocked")), seq=seq, id=eid, ts=ets)
            elif kind == "hello":
                event = ev.SessionRegistered(session=sid, resume=True, seq=seq, id=eid, ts=ets)
            else:
                event = ev.Heartbeat(session=sid, status=rng.choice(("", "working", f"on {rng.choice(PRIORITIES)}")),
                                     seq=seq, id=eid, ts=ets)
            last_seen[sid] = now
            written[kind] += 1
            f.write(ev.encode(event))
            if seq % 4096 == 0:
                bar.update(seq, seq)
    bar.done()
    return written


# -- scripts written beside the hubs: the floors ------------------------------------------------------

# The decode floor loads evhub's event types without the package's __init__ (which imports the whole
# hub): msgspec and the event types, nothing else.
DECODE_FLOOR = """
import sys, types
pkg = types.ModuleType("evhub"); pkg.__path__ = [{evhub_dir!r}]; sys.modules["evhub"] = pkg
import msgspec
from evhub import _events as ev
decoder = msgspec.json.Decoder(ev.KnownEvent)
rest = b""
n = 0
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(64 * 1024):
        data = rest + chunk
        cut = data.rfind(b"\\n") + 1
        n += len(decoder.decode_lines(data[:cut]))
        rest = data[cut:]
print(n)
"""

TRIVIAL_TYPER = """
import typer

app = typer.Typer()


@app.command()
def ok() -> None:
    print("ok")


app()
"""

# The physical floor's parts: evhub's heartbeat line from msgspec alone, and its append under flock
# (fsync as evhub does).
FLOOR_PARTS = """
import fcntl, os, sys, time
import msgspec

class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat", kw_only=True, gc=False):
    seq: int
    id: str
    ts: str
    session: str
    status: str = ""

def append(path, seq, session, status=""):
    line = msgspec.json.encode(Heartbeat(seq=seq, id="0" * 26, ts=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                                         session=session, status=status)) + b"\\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, line)
    if os.environ.get("EVHUB_FSYNC", "1") not in ("0", "false", "no", "off"):
        os.fsync(fd)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
"""

# The physical floor of one command: encode one event, append it.
APPEND_ONE = FLOOR_PARTS + """
append(sys.argv[1], 1, "session-1")
"""

# The MCP floor: a server on the same SDK whose one tool does the physical floor's work.
MCP_FLOOR = FLOOR_PARTS + """
from typing import Any
from mcp.server.mcpserver import MCPServer

server = MCPServer("floor", log_level="WARNING")
seq = 0

@server.tool()
def heartbeat(session: str | None = None, status: str = "") -> dict[str, Any]:
    \"\"\"Append one heartbeat.\"\"\"
    global seq
    seq += 1
    append(sys.argv[1], seq, session or "session-1", status)
    return {"seq": seq}

server.run("stdio")
"""

# Every worker says it is ready (a file named after it), waits for the go file, then starts its clock:
# all the workers of a race, evhub's and the floor's, start together.
GATE = """open(go + "." + sid, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
start = time.time()
"""

# One of the concurrent writers (on a JSONL hub, or on PostgreSQL).  Both sides wait for a `go` file
# after their imports, stop at COUNT events or the deadline, and print how many events they wrote and
# when they started and finished.
APPEND_EVHUB = """
import json, os, sys, time
from evhub import Hub, HubBusy
root, sid, count, go, limit_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
hub = Hub(root)
hub.state()  # opened and caught up before the clock starts, as the floors open their files or connect first
""" + GATE + """deadline = start + limit_s
done = 0
while done < count and time.time() < deadline:
    try:
        hub.heartbeat(sid, status=f"{sid}-{done}")
    except HubBusy:
        continue
    done += 1
hub.flush()  # the views and read model it left for later count too
print(json.dumps({"done": done, "start": start, "end": time.time()}))
"""

APPEND_FLOOR = """
import fcntl, json, os, sys, time
log, lines_file, go, sid, sync = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
with open(lines_file, "rb") as f:
    lines = f.read().splitlines(keepends=True)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
""" + GATE + """for line in lines:
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, line)
    if sync:
        os.fsync(fd)
    fcntl.flock(fd, fcntl.LOCK_UN)
print(json.dumps({"done": len(lines), "start": start, "end": time.time()}))
"""

# evhub's store alone: PgStore.append of one heartbeat per call, with no local lock, catch-up or read
# model (the caller numbers the events).  For the README's account of where the time goes.
PG_APPEND_STORE = """
import json, os, sys, time
from evhub import _events as ev
from evhub._pgstore import PgStore
from evhub._values import new_id, now
dsn, schema, sid, go, limit_s = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
store = PgStore(dsn, schema)
head = store.head()
""" + GATE + """deadline = start + limit_s
done = 0
while time.time() < deadline:
    store.append([ev.Heartbeat(seq=head + 1, id=new_id(), ts=now(), session=sid, status=f"{sid}-{done}")], head)
    head += 1
    done += 1
print(json.dumps({"done": done, "start": start, "end": time.time()}))
"""

# The floor: one connection inserting the very rows (seq, id, line) evhub wrote, each in its own
# transaction (autocommit off only inside `transaction()`, as evhub's own connection does).
PG_APPEND_FLOOR = """
import json, os, sys, time
import psycopg
dsn, table, rows_file, go, sid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
with open(rows_file) as f:
    rows = json.load(f)
conn = psycopg.connect(dsn, autocommit=True)
query = "INSERT INTO " + table + " (seq, id, line) VALUES (%s, %s, %s)"
conn.execute("SELECT 1")
""" + GATE + """for row in rows:
    with conn.transaction():
        conn.execute(query, row)
print(json.dumps({"done": len(rows), "start": start, "end": time.time()}))
"""

UNCOUNTED = 10**12  # a writer's event count that only the deadline ends
PG_SCHEMA = "evhub_bench"
PG_FLOOR_TABLE = f"{PG_SCHEMA}.floor_table"
PG_WRITERS = 8
PG_ONE = "1 process, `hub.heartbeat` (Python API) on a PostgreSQL hub"
PG_MANY = f"{PG_WRITERS} processes at once, `hub.heartbeat` (Python API) on one PostgreSQL hub, each its own session"
PG_FLOOR = "1 connection: BEGIN; INSERT of the same row (seq, id, line); COMMIT, same cluster, synchronous_commit on"
PG_MANY_FLOOR = "the same 1-connection INSERT floor"
PG_MACHINES = (f"{PG_WRITERS} machines ({PG_WRITERS} hub folders on one schema), `hub.heartbeat` (Python API) at once, "
               "each its own session")


# Runs one command in a fresh child and prints its peak RSS in KiB.
PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


# -- measuring ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    """Repeated measurements of one thing: seconds, events/s or KiB."""

    values: list[float]
    capped: str = ""  # why fewer repeats than asked, when so

    @property
    def median(self) -> float:
        return statistics.median(self.values)


@dataclass
class Row:
    figure: str
    evhub: Figure
    floor_name: str
    floor: Figure
    unit: str  # "s", "events/s" or "KiB"
    target: str  # "≤ 2.0×", "≥ 0.8×" or "reported"
    skipped: str = ""  # why the row could not be measured here (no PostgreSQL server), when so

    @property
    def ratio(self) -> float:
        return self.evhub.median / self.floor.median

    def verdict(self) -> str:
        if self.target == "reported":
            return "reported (no target)"
        bound = float(self.target[2:-1])
        by = self.ratio / bound if self.target.startswith("≤") else bound / self.ratio
        return f"{self.target}: met" if by <= 1 else f"{self.target}: missed by {by:.2f}×"


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], object], repeats: int, budget_s: float, before: Callable[[], object] | None = None
          ) -> Figure:
    """Seconds of up to REPEATS runs of FN (BEFORE runs untimed ahead of each); stops early, after at
    least one run, once the runs so far took BUDGET_S, and says so."""
    times: list[float] = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if sum(times) >= budget_s and len(times) < repeats:
            return Figure(times, f"{len(times)} of {repeats} repeats: capped at {budget_s:.0f} s")
    return Figure(times)


def run(command: Sequence[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return done.stdout


@dataclass
class Bench:
    tmp: Path
    repeats: int
    budget_s: float
    env: dict[str, str] = field(default_factory=lambda: {**os.environ, "EVHUB_SESSION": "session-1"})

    def script(self, name: str, text: str) -> Path:
        path = self.tmp / name
        if not path.exists():
            path.write_text(text)
        return path

    def evhub(self, hub: Path, *args: str) -> list[str]:
        exe = Path(sys.executable).with_name("evhub")
        prefix = [str(exe)] if exe.exists() else [sys.executable, "-m", "evhub"]
        return [*prefix, "--hub", str(hub), *args]

    def decode_floor(self, hub: Path) -> list[str]:
        return [sys.executable, str(self.script("decode_floor.py", DECODE_FLOOR.format(evhub_dir=str(EVHUB_DIR)))),
                str(hub / LOG)]

    def time(self, command: list[str], repeats: int | None = None, before: Callable[[], object] | None = None,
             env: dict[str, str] | None = None) -> Figure:
        return timed(lambda: run(command, env or self.env), repeats or self.repeats, self.budget_s, before)

    def paired(self, command: list[str], floor: list[str]) -> tuple[Figure, Figure]:
        """COMMAND and FLOOR timed in turns (the floor first), so that a shared machine's load of the moment
        falls on both alike; stops as `timed` does once COMMAND's runs took the budget."""
        ours, theirs = Figure([]), Figure([])
        for _ in range(self.repeats):
            theirs.values += self.time(floor, repeats=1).values
            ours.values += self.time(command, repeats=1).values
            if sum(ours.values) >= self.budget_s and len(ours.values) < self.repeats:
                capped = f"{len(ours.values)} of {self.repeats} repeats: capped at {self.budget_s:.0f} s"
                ours.capped = theirs.capped = capped
                break
        return ours, theirs

    def peak_rss(self, command: list[str]) -> Figure:
        wrapper = [sys.executable, str(self.script("peak_rss.py", PEAK_RSS)), *command]
        values: list[float] = []
        spent = 0.0
        for _ in range(self.repeats):
            start = time.perf_counter()
            values.append(float(run(wrapper, self.env).split()[-1]))
            spent += time.perf_counter() - start
            if spent >= self.budget_s and len(values) < self.repeats:
                return Figure(values, f"{len(values)} of {self.repeats} repeats: capped at {self.budget_s:.0f} s")
        return Figure(values)

    def appends(self, count: int, fsync: bool, deadline_s: float) -> tuple[Figure, Figure]:
        """Events/s of 4 processes appending through the Python API, then of 4 processes writing the
        same lines with flock + write (+ fsync); one run of each."""
        tag = "fsync" if fsync else "nofsync"
        root = self.tmp / f"appends-{tag}"
        shutil.rmtree(root, ignore_errors=True)
        hub, _ = Hub.init(root)
        writers = [f"writer-{n}" for n in range(1, 5)]
        for sid in writers:
            hub.hello(sid)
        env = {**self.env, "EVHUB_FSYNC": "1" if fsync else "0"}
        worker = self.script("append_evhub.py", APPEND_EVHUB)
        argv = [[sys.executable, str(worker), str(root), sid, str(count), "{go}", str(deadline_s)] for sid in writers]
        evhub_rate, done = self._race(argv, env)
        lines: dict[str, list[bytes]] = {sid: [] for sid in writers}
        with open(root / LOG, "rb") as f:
            for raw in f:
                event = ev.decode(raw)
                if isinstance(event, ev.Heartbeat) and event.session in lines:
                    lines[event.session].append(raw)
        floor_log = self.tmp / f"floor-{tag}.jsonl"
        floor_log.unlink(missing_ok=True)
        commands = []
        for sid in writers:
            path = self.tmp / f"lines-{tag}-{sid}"
            path.write_bytes(b"".join(lines[sid]))
            commands.append([sys.executable, str(self.script("append_floor.py", APPEND_FLOOR)), str(floor_log),
                             str(path), "{go}", sid, "1" if fsync else "0"])
        floor_rate, floor_done = self._race(commands, env)
        assert floor_done == done, (floor_done, done)
        capped = "" if done == count * 4 else f"stopped at {deadline_s:.0f} s: {done:,} of {count * 4:,} events"
        return Figure([evhub_rate], capped), Figure([floor_rate])

    def _race(self, commands: list[list[str]], env: dict[str, str]) -> tuple[float, int]:
        go = self.tmp / f"go-{time.monotonic_ns()}"
        procs = [subprocess.Popen([str(go) if a == "{go}" else a for a in c], stdout=subprocess.PIPE, text=True,
                                  env=env) for c in commands]
        while sum(1 for p in self.tmp.glob(go.name + ".*")) < len(commands):
            if any(p.poll() not in (None, 0) for p in procs):
                raise SystemExit("an append worker failed")
            time.sleep(0.005)
        go.touch()
        results = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"an append worker failed ({p.returncode})")
            results.append(json.loads(out))
        done = sum(r["done"] for r in results)
        elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
        return done / elapsed, done


# -- agents: the hook and the MCP server --------------------------------------------------------------

HOOK_PAST_S = 100  # how long before the run the hook rows' agents last beat: every one's heartbeat is due
PHYSICAL_FLOOR = "a script: msgspec encode of one event, append under flock, fsync"
MCP_FLOOR_NAME = ("the same client calling a minimal MCP server (same SDK) whose tool appends one event under "
                  "flock, fsync")
MCP_WARMUP = 3  # calls before the timed ones: the first call of a server pays for its imports


def hook_rows(bench: Bench, size: int, series: int, repeats: int) -> tuple[list[Row], Path]:
    """`evhub hook` on a PostToolUse, in a new hub of SIZE events: throttled (nothing to push), with a
    heartbeat due, with messages waiting; each against the physical floor, timed interleaved with the
    throttled calls (SERIES of each).  Every figure is checked to be what it says: the throttled calls
    write nothing, each due call writes its heartbeat, each call with messages pushes them.  Returns the
    hub too, for the MCP row."""
    root = bench.tmp / f"hook-{size}"
    progress(f"hook: a hub of {size:,} events whose agents last beat {HOOK_PAST_S} s ago")
    # The log ends before the agents' beats: a write is never stamped earlier than the log's last event.
    synthetic_log(root / LOG, size, end=datetime.now(UTC) - timedelta(seconds=HOOK_PAST_S + 20))
    run(bench.evhub(root, "status"))
    throttled_agent, waiting_agent = "bench-throttled", "bench-messages"
    due_agents = [f"bench-due-{n}" for n in range(repeats)]
    given = os.environ.get("EVHUB_NOW")
    os.environ["EVHUB_NOW"] = format_ts(datetime.now(UTC) - timedelta(seconds=HOOK_PAST_S))
    try:
        hub = Hub(root)
        role = AGENTS["claude"].role
        sids = {agent: hub.join_agent("claude", agent, role=role) for agent in [throttled_agent, waiting_agent,
                                                                                  *due_agents]}
        for sid in sids.values():
            hub.heartbeat(sid, "working")
            hub.inbox(sid)  # the broadcasts a newcomer finds unread are pushed in its first call, not in a row's
        hub.flush()
    finally:
        if given is None:
            del os.environ["EVHUB_NOW"]
        else:
            os.environ["EVHUB_NOW"] = given
    command = bench.evhub(root, "hook")
    floor_command = [sys.executable, str(bench.script("append_one.py", APPEND_ONE)),
                     str(bench.tmp / "hook-floor.jsonl")]

    def hook(agent: str, pushes: bool) -> float:
        stdin = json.dumps({"session_id": agent, "hook_event_name": "PostToolUse", "cwd": str(root),
                            "tool_name": "Bash", "tool_input": {"command": "pytest -q"}}).encode()
        start = time.perf_counter()
        done = subprocess.run(command, input=stdin, capture_output=True, env=bench.env)
        elapsed = time.perf_counter() - start
        if done.returncode or done.stderr or bool(done.stdout) != pushes:
            raise SystemExit(f"`evhub hook` for {agent} did not do what its row says (exit {done.returncode}, "
                             f"stdout {done.stdout[:200]!r}): {done.stderr.decode()}")
        return elapsed

    def log_size() -> int:
        return (root / LOG).stat().st_size

    progress(f"hook: {series} throttled calls, each beside the physical floor")
    hook(throttled_agent, False)  # its beat is due: it beats, and leaves the stamp the next calls answer from
    before = log_size()
    throttled, floor = Figure([]), Figure([])
    began = time.monotonic()
    for _ in range(series):
        start = time.perf_counter()
        run(floor_command, bench.env)
        floor.values.append(time.perf_counter() - start)
        throttled.values.append(hook(throttled_agent, False))
        if time.monotonic() - began > 20 and len(throttled.values) < series:
            throttled.capped = f"{len(throttled.values)} of {series} calls: stopped at 20 s, before a beat is due"
            break
    if log_size() != before:
        raise SystemExit("a throttled `evhub hook` wrote to the log")
    progress(f"hook: {repeats} calls with a heartbeat due, {repeats} with messages waiting")
    due = Figure([hook(agent, False) for agent in due_agents])
    beats = [e for e in Hub(root).events(after=0) if isinstance(e, ev.Heartbeat) and e.session in
             {sids[a] for a in due_agents}]
    if len(beats) != 2 * repeats:  # the one from the set-up, and the one each call was due
        raise SystemExit(f"{len(beats) - repeats} of {repeats} `evhub hook` calls with a heartbeat due beat")
    waiting = Figure([])
    for n in range(repeats):
        hub.heartbeat(sids[waiting_agent], "working")  # so only the messages are its news
        for m in range(3):
            hub.send("session-1", f"message {m} of round {n}: " + "x" * 150, to=sids[waiting_agent])
        hub.flush()
        waiting.values.append(hook(waiting_agent, True))
    hub.store.close()
    name = f"`evhub hook` PostToolUse, {size:,} events"
    return [Row(f"{name}, throttled (nothing to push)", throttled, PHYSICAL_FLOOR, floor, "s", "≤ 1.5×"),
            Row(f"{name}, heartbeat due", due, PHYSICAL_FLOOR, floor, "s", "reported"),
            Row(f"{name}, 3 messages waiting", waiting, PHYSICAL_FLOOR, floor, "s", "reported")], root


def mcp_row(bench: Bench, root: Path, size: int, calls: int) -> Row:
    """The per-call time of the `heartbeat` tool in a running `evhub mcp`, driven by the MCP SDK's
    client over stdio, against the same client calling the same tool on MCP_FLOOR; calls alternate
    between the two servers, both open at once."""
    import anyio
    from mcp import StdioServerParameters

    evhub_argv = bench.evhub(root, "mcp")
    servers = [StdioServerParameters(command=evhub_argv[0], args=evhub_argv[1:], cwd=str(root), env=bench.env),
               StdioServerParameters(command=sys.executable, env=bench.env, cwd=str(root),
                                     args=[str(bench.script("mcp_floor.py", MCP_FLOOR)),
                                           str(bench.tmp / "mcp-floor.jsonl")])]
    figures = (Figure([]), Figure([]))

    async def main() -> None:
        async with two_sessions(servers) as clients:
            for n in range(MCP_WARMUP + calls):
                for client, figure in zip(clients, figures, strict=True):
                    start = time.perf_counter()
                    result: Any = await client.call_tool("heartbeat", {"session": "session-1", "status": "working"})
                    elapsed = time.perf_counter() - start
                    if result.is_error:
                        raise SystemExit(f"the MCP heartbeat failed: {result.content}")
                    if n >= MCP_WARMUP:
                        figure.values.append(elapsed)

    progress(f"MCP: {calls} heartbeat calls to `evhub mcp` and to the floor server, alternating")
    anyio.run(main)
    return Row(f"MCP `heartbeat` tool call in a running `evhub mcp`, per call, {size:,} events", figures[0],
               MCP_FLOOR_NAME, figures[1], "s", "reported")


MCP_CROWD = 1_000  # the others' live sessions, each holding one claim, in the crowded hub of the claim rows
MCP_START = "`evhub mcp` start to the first answered tool call (`heartbeat`), a whole server process"
@contextlib.asynccontextmanager
async def two_sessions(servers: Sequence[Any]) -> AsyncIterator[tuple[Any, Any]]:
    """Initialized MCP client sessions with the two SERVERS (StdioServerParameters), open together."""
    from mcp import ClientSession, stdio_client

    async with stdio_client(servers[0]) as (r1, w1), ClientSession(r1, w1) as first, \
            stdio_client(servers[1]) as (r2, w2), ClientSession(r2, w2) as second:
        for client in (first, second):
            await client.initialize()
        yield first, second


MCP_START_FLOOR = "`python -c 'import mcp'` in the same venv"


def mcp_start_row(bench: Bench, root: Path, size: int) -> Row:
    """From spawning `evhub mcp` on ROOT to the answer of its first tool call, through the SDK's stdio
    client (initialize, then `heartbeat`), against a process that only imports the SDK; the two
    alternate, so both see the same moment of a shared machine."""
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    evhub_argv = bench.evhub(root, "mcp")
    params = StdioServerParameters(command=evhub_argv[0], args=evhub_argv[1:], cwd=str(root), env=bench.env)
    floor_command = [sys.executable, "-c", "import mcp"]

    async def first_call() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            result: Any = await client.call_tool("heartbeat", {"session": "session-1", "status": "starting"})
            if result.is_error:
                raise SystemExit(f"the first MCP heartbeat failed: {result.content}")
            times.append(time.perf_counter() - start)  # answered: the server's exit is not waited for

    progress(f"MCP: {bench.repeats} starts of `evhub mcp` to its first answer, each beside `import mcp`")
    times: list[float] = []
    floor = Figure([])
    for _ in range(bench.repeats):
        start = time.perf_counter()
        run(floor_command, bench.env)
        floor.values.append(time.perf_counter() - start)
        start = time.perf_counter()
        anyio.run(first_call)
    return Row(f"{MCP_START}, {size:,} events", Figure(times), MCP_START_FLOOR, floor, "s", "≤ 1.5×")


def crowded_hubs(bench: Bench) -> tuple[Path, Path]:
    """Two new hubs where session-1 works: one where MCP_CROWD other live sessions each hold a claim,
    and one with nobody else."""
    roots = bench.tmp / "mcp-crowd", bench.tmp / "mcp-alone"
    others = [f"agent-{n}" for n in range(1, MCP_CROWD + 1)]
    for root, crowd in zip(roots, (others, []), strict=True):
        hub, _ = Hub.init(root)
        hub.execute(cmd.Hello(session="session-1"), *[cmd.Hello(session=sid) for sid in crowd],
                    *[cmd.ClaimPriority(session=sid, priority=f"task-{sid}") for sid in crowd])
        hub.flush()
        state = hub.state()
        if len(state.claims) != len(crowd) or sum(state.is_alive(s, format_ts(datetime.now(UTC)))
                                                  for s in state.sessions) != len(crowd) + 1:
            raise SystemExit(f"the hub {root.name} does not hold {len(crowd)} live claims")
        hub.store.close()
    return roots


def populated_hub(root: Path, crowd: int) -> Path:
    """A new hub where session-1 and CROWD other live sessions work, each other one holding a claim and
    owning a milestone (two steps), its views rendered."""
    hub, _ = Hub.init(root)
    commands: list[Any] = [cmd.Hello(session="session-1")]
    for n in range(1, crowd + 1):
        sid = f"agent-{n}"
        commands += [cmd.Hello(session=sid), cmd.ClaimPriority(session=sid, priority=f"task-{n}"),
                     cmd.CreateMilestone(session=sid, title=f"work {n}", milestone=f"m-{n}", steps=("build", "ship")),
                     cmd.ClaimMilestone(session=sid, milestone=f"m-{n}")]
    hub.execute(*commands)
    hub.flush()
    state = hub.state()
    if len(state.live_sessions(format_ts(datetime.now(UTC)))) != crowd + 1 or len(state.milestones) != crowd:
        raise SystemExit(f"the hub {root.name} does not hold {crowd} live sessions with a claim and a milestone")
    hub.store.close()
    return root


def population_row(bench: Bench, crowd: int, few: int) -> Row:
    """`evhub heartbeat` (whole process) on a hub of CROWD live sessions each holding a claim and a
    milestone, in turns with the same on a hub of FEW; both hubs are made just before, so every session
    is alive throughout."""
    progress(f"heartbeat on hubs of {crowd:,} and {few:,} live sessions, each with a claim and a milestone")
    big = populated_hub(bench.tmp / f"people-{crowd}", crowd)
    small = populated_hub(bench.tmp / f"people-{few}", few)
    ours, floor = bench.paired(bench.evhub(big, "heartbeat"), bench.evhub(small, "heartbeat"))
    return Row(f"`evhub heartbeat` on a hub of {crowd:,} live sessions, each holding a claim and a milestone", ours,
               f"the same on a hub of {few:,}", floor, "s", "≤ 1.3×")


def storage_row(bench: Bench, messages: int) -> Row:
    """How much the read model grows for MESSAGES messages (150–250 bytes of text each, sent through the API
    and published), beside how much the log grows for them: measured over the second MESSAGES sent, so
    what every hub holds from the start (its schema, its snapshot's kept messages) is not counted."""
    progress(f"read model and log growth for {messages:,} messages")
    root = bench.tmp / "storage"
    hub, _ = Hub.init(root)
    hub.hello("session-1")
    rng = random.Random(7)
    sizes = []
    for _ in range(2):
        for _ in range(messages):
            words = (f"word{rng.randrange(10_000)}" for _ in range(rng.randrange(17, 28)))
            hub.send("session-1", " ".join(words))  # 150-250 bytes, as in the synthetic hubs
        hub.flush()
        sizes.append((hub.readmodel.path.stat().st_size, (root / LOG).stat().st_size))
    hub.store.close()
    (model0, log0), (model1, log1) = sizes
    return Row(f"read model growth for {messages:,} messages", Figure([float(model1 - model0)]),
               f"log growth for the same {messages:,} messages", Figure([float(log1 - log0)]), "bytes", "≤ 0.5×")


def mcp_claim_rows(bench: Bench, calls: int) -> list[Row]:
    """`claim` and `status` through a running `evhub mcp` on a hub where MCP_CROWD other live sessions
    hold a claim each, against the same calls on a hub with nobody else; the two servers run at once
    and the calls alternate, the claims first, then the statuses.  Each claim is of a free priority,
    released (untimed) before the next, so session-1 holds none when it claims."""
    import anyio
    from mcp import ClientSession, StdioServerParameters

    progress(f"MCP: two hubs, one where {MCP_CROWD:,} other live sessions hold a claim each")
    roots = crowded_hubs(bench)
    params = [StdioServerParameters(command=argv[0], args=argv[1:], cwd=str(root), env=bench.env)
              for root in roots for argv in [bench.evhub(root, "mcp")]]
    claims, statuses = (Figure([]), Figure([])), (Figure([]), Figure([]))

    async def call(client: ClientSession, tool: str, arguments: dict[str, Any]) -> Any:
        start = time.perf_counter()
        result: Any = await client.call_tool(tool, arguments)
        elapsed = time.perf_counter() - start
        if result.is_error:
            raise SystemExit(f"the MCP {tool} failed: {result.content}")
        return elapsed, result.structured_content

    async def main() -> None:
        async with two_sessions(params) as clients:
            crowd = clients[0]
            for n in range(MCP_WARMUP + calls):
                for i, client in enumerate(clients):
                    claimed, _ = await call(client, "claim", {"priority": "bench-claim", "session": "session-1"})
                    await call(client, "release", {"priority": "bench-claim", "session": "session-1"})
                    if n >= MCP_WARMUP:
                        claims[i].values.append(claimed)
            for n in range(MCP_WARMUP + calls):
                for i, client in enumerate(clients):
                    looked, doc = await call(client, "status", {})
                    if doc["counts"]["claims"] != (MCP_CROWD if client is crowd else 0):
                        raise SystemExit(f"`status` counts {doc['counts']['claims']} claims, not what its row says")
                    if n >= MCP_WARMUP:
                        statuses[i].values.append(looked)

    progress(f"MCP: {calls} claim and status calls to each, alternating")
    anyio.run(main)
    held = f"{MCP_CROWD:,} active claims held by others"
    return [Row(f"MCP `claim` tool call in a running `evhub mcp`, {held}", claims[0],
                "the same with none (session-1 alone on its hub)", claims[1], "s", "≤ 1.2×"),
            Row(f"MCP `status` tool call in a running `evhub mcp`, {held}", statuses[0],
                "the same with none (session-1 alone on its hub)", statuses[1], "s", "≤ 1.2×")]


# -- PostgreSQL --------------------------------------------------------------------------------------


def pg_rows(bench: Bench, rounds: int, round_s: float) -> list[Row]:
    """The three PostgreSQL rows, on a throwaway cluster this run starts and removes: one process
    appending through the Hub API, then PG_WRITERS at once in one hub folder, then PG_WRITERS
    "machines" at once, each in its own hub folder on the same schema; each against one connection's
    bare INSERT of the same rows; all skipped when no PostgreSQL server (or psycopg) is installed."""
    rates = "events/s"

    def skipped(why: str) -> list[Row]:
        return [Row(name, Figure([]), floor_name, Figure([]), rates, "≥ 0.5×", f"skipped: {why}")
                for name, floor_name in ((PG_ONE, PG_FLOOR), (PG_MANY, PG_MANY_FLOOR), (PG_MACHINES, PG_MANY_FLOOR))]
    try:
        import psycopg

        from tests.pgserver import Cluster, bindir
    except ImportError as e:
        return skipped(f"{e.name or 'psycopg'} is not installed")
    if bindir() is None:
        return skipped("no PostgreSQL server")
    progress("PostgreSQL: starting a throwaway cluster")
    try:
        cluster = Cluster.temporary()
    except RuntimeError as e:
        progress(f"PostgreSQL: {e}")
        return skipped("the PostgreSQL server did not start")
    try:
        dsn_file = bench.tmp / "pg-dsn"
        dsn_file.write_text(cluster.dsn + "\n")
        root = bench.tmp / "pg-hub"
        hub, _ = Hub.init(root, store=StoreSettings(PG_SCHEMA, dsn_file))
        writers = [f"writer-{n}" for n in range(1, PG_WRITERS + 1)]
        for sid in writers:
            hub.hello(sid)
        hub.flush()
        hub.store.close()
        # The machines: each its own folder, joined to the same schema by a second init, and its own
        # session registered from there.
        machines: list[tuple[Path, str]] = []
        for n in range(1, PG_WRITERS + 1):
            folder, sid = bench.tmp / f"pg-machine-{n}", f"machine-{n}"
            joined, made = Hub.init(folder, store=StoreSettings(PG_SCHEMA, dsn_file))
            assert not made, folder  # joined the hub the first init made
            joined.hello(sid)
            joined.flush()
            joined.store.close()
            machines.append((folder, sid))
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            # The events table's own columns and constraints (its triggers fire on UPDATE and DELETE only).
            conn.execute(f"CREATE TABLE {PG_FLOOR_TABLE} (seq bigint PRIMARY KEY CHECK (seq > 0), "
                         "id text NOT NULL UNIQUE, line text NOT NULL)")
            settings = conn.execute("SELECT current_setting('synchronous_commit'), current_setting('fsync')"
                                    ).fetchone()
            assert settings == ("on", "on"), settings

            def head() -> int:
                row = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {PG_SCHEMA}.events").fetchone()
                return int(row[0]) if row else 0

            def evhub_round(writers: list[tuple[Path, str]]) -> tuple[float, dict[str, list[tuple[int, str, str]]]]:
                """Events/s of WRITERS (hub folder, session) appending at once for ROUND_S, and the rows
                each one wrote."""
                before = head()
                worker = bench.script("append_evhub.py", APPEND_EVHUB)  # the JSONL row's writer, no count
                rate, done = bench._race([[sys.executable, str(worker), str(folder), sid, str(UNCOUNTED), "{go}",
                                           str(round_s)] for folder, sid in writers], bench.env)
                written: dict[str, list[tuple[int, str, str]]] = {sid: [] for _, sid in writers}
                for seq, eid, line in conn.execute(f"SELECT seq, id, line FROM {PG_SCHEMA}.events WHERE seq > %s "
                                                   "ORDER BY seq", (before,)):
                    event = ev.decode(line.encode() + b"\n")
                    if isinstance(event, ev.Heartbeat) and event.session in written:
                        written[event.session].append((seq, eid, line))
                assert sum(map(len, written.values())) == done, (done, {k: len(v) for k, v in written.items()})
                return rate, written

            def floor_round(written: dict[str, list[tuple[int, str, str]]]) -> float:
                """Events/s of one connection a writer inserting the rows that writer wrote, at once."""
                commands = []
                for sid, rows in written.items():
                    path = bench.tmp / f"pg-rows-{sid}.json"
                    path.write_text(json.dumps(rows))
                    commands.append([sys.executable, str(bench.script("pg_append_floor.py", PG_APPEND_FLOOR)),
                                     cluster.dsn, PG_FLOOR_TABLE, str(path), "{go}", sid])
                return bench._race(commands, bench.env)[0]

            def store_round() -> float:
                worker = bench.script("pg_append_store.py", PG_APPEND_STORE)
                return bench._race([[sys.executable, str(worker), cluster.dsn, PG_SCHEMA, "writer-1", "{go}",
                                     str(round_s)]], bench.env)[0]

            one, floor, store = Figure([]), Figure([]), Figure([])
            progress(f"PostgreSQL: {rounds} rounds of {round_s:g} s: 1 process through the API, its INSERT floor, "
                     "PgStore.append alone")
            for _ in range(rounds):  # interleaved, so a noisy moment hits every figure alike
                rate, written = evhub_round([(root, writers[0])])
                one.values.append(rate)
                floor.values.append(floor_round(written))
                store.values.append(store_round())
            progress(f"PostgreSQL: {rounds} rounds of {round_s:g} s: {PG_WRITERS} processes through the API, and "
                     f"{PG_WRITERS} connections inserting the same rows")
            many, many_floor = Figure([]), Figure([])
            for _ in range(rounds):
                rate, written = evhub_round([(root, sid) for sid in writers])
                many.values.append(rate)
                many_floor.values.append(floor_round(written))
            progress(f"PostgreSQL: {rounds} rounds of {round_s:g} s: {PG_WRITERS} machines (a folder each) through "
                     f"the API, and {PG_WRITERS} connections inserting the same rows")
            spread, spread_floor = Figure([]), Figure([])
            for _ in range(rounds):
                rate, written = evhub_round(machines)
                assert all(written.values()), {k: len(v) for k, v in written.items()}  # every machine had turns
                spread.values.append(rate)
                spread_floor.values.append(floor_round(written))
            # The whole log, at the end: seq 1..N without a gap, no id twice.
            tally = conn.execute(f"SELECT count(*), min(seq), max(seq), count(DISTINCT id) FROM {PG_SCHEMA}.events"
                                 ).fetchone()
            assert tally is not None and tally[0] == tally[2] == tally[3] and tally[1] == 1, tally
        progress(f"PostgreSQL medians, events/s: API 1 process {one.median:,.0f}, PgStore.append alone "
                 f"{store.median:,.0f}, INSERT floor {floor.median:,.0f}; API {PG_WRITERS} processes "
                 f"{many.median:,.0f}, {PG_WRITERS} connections inserting {many_floor.median:,.0f}; API "
                 f"{PG_WRITERS} machines {spread.median:,.0f}, {PG_WRITERS} connections inserting "
                 f"{spread_floor.median:,.0f}")

        def paired(a: Figure, b: Figure) -> str:  # each round against the floor measured beside it
            return ", ".join(f"{x / y:.2f}" for x, y in zip(a.values, b.values, strict=True))
        progress(f"PostgreSQL, each round ÷ its own floor: API 1 process {paired(one, floor)}; PgStore.append "
                 f"alone {paired(store, floor)}; API {PG_WRITERS} processes ÷ {PG_WRITERS} connections "
                 f"{paired(many, many_floor)}; API {PG_WRITERS} machines ÷ {PG_WRITERS} connections "
                 f"{paired(spread, spread_floor)}")
    finally:
        cluster.remove()
    how = f"{rounds} rounds of {round_s:g} s"
    return [Row(f"{PG_ONE}, {how}", one, PG_FLOOR, floor, rates, "≥ 0.5×"),
            Row(f"{PG_MANY}, {how}", many, PG_MANY_FLOOR, floor, rates, "≥ 0.5×"),
            Row(f"{PG_MACHINES}, {how}", spread, PG_MANY_FLOOR, floor, rates, "≥ 0.5×")]


# -- the table ---------------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.2f} ms"  # an MCP call: a few milliseconds
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "KiB":
        return f"{value / 1024:,.0f} MiB"
    if unit == "bytes":
        return f"{value / 1024:,.0f} KiB"
    return f"{value:,.0f} events/s"


def cell(f: Figure, unit: str) -> str:
    spread = f"{fmt(min(f.values), unit)}–{fmt(max(f.values), unit)}" if len(f.values) > 1 else "one run"
    text = f"{fmt(f.median, unit)} ({spread}, n={len(f.values)})"
    return text + (f"; {f.capped}" if f.capped else "")


def ratio(value: float) -> str:
    """Two decimals, or three significant digits for a ratio below 0.1 (0.00× would say nothing)."""
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.2g}×" if value >= 1e-4 else f"{value:.1e}×"


def table(rows: list[Row]) -> str:
    out = ["| figure | evhub median (min–max) | floor | floor median (min–max) | ratio | target |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        if r.skipped:
            out.append(f"| {r.figure} | {r.skipped} | {r.floor_name} | {r.skipped} | – | {r.target}: {r.skipped} |")
            continue
        out.append(f"| {r.figure} | {cell(r.evhub, r.unit)} | {r.floor_name} | {cell(r.floor, r.unit)} | "
                   f"{ratio(r.ratio)} | {r.verdict()} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller hubs and fewer repeats (under a minute)")
    args = parser.parse_args()
    if args.quick:
        small, mid, big, repeats, budget_s, appends, appends_s = 1_000, 5_000, 20_000, 3, 5.0, 1_000, 8.0
        pg_rounds, pg_round_s = 3, 1.0
        hook_series, hook_repeats, mcp_calls, crowd_calls, people = 8, 3, 20, 20, 1_000
    else:
        small, mid, big, repeats, budget_s, appends, appends_s = 1_000, 100_000, 1_000_000, 5, 40.0, 25_000, 60.0
        pg_rounds, pg_round_s = 5, 4.0
        hook_series, hook_repeats, mcp_calls, crowd_calls, people = 40, 10, 200, 50, 5_000
    began = time.perf_counter()
    # Timed as installed: `pip install .` byte-compiles evhub, while an editable install run with
    # PYTHONDONTWRITEBYTECODE=1 (as on these machines) compiles every module again at each start.
    compileall.compile_dir(EVHUB_DIR, quiet=1)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="evhub-bench-") as tmp_name:
        bench = Bench(Path(tmp_name), repeats, budget_s)
        hubs: dict[int, Path] = {}
        for size in (small, mid, big):
            root = bench.tmp / f"hub-{size}"
            progress(f"generating a hub of {size:,} events")
            counts = synthetic_log(root / LOG, size)
            progress(f"  mix: {', '.join(f'{k} {v:,}' for k, v in counts.items())}; building its read model")
            run(bench.evhub(root, "status"))  # the first command builds the read model and the views
            hubs[size] = root
        B, M = f"{big:,} events", f"{mid:,} events"
        decode = "msgspec decode of the same log into the event types, 64 KiB chunks"
        progress("replay and its decode floor")
        replay, floor = bench.paired(bench.evhub(hubs[big], "replay"), bench.decode_floor(hubs[big]))
        rows.append(Row(f"`evhub replay`, {B}", replay, f"{decode}, timed in turns with it", floor, "s", "≤ 2.0×"))
        mid_replay, mid_floor = bench.paired(bench.evhub(hubs[mid], "replay"), bench.decode_floor(hubs[mid]))
        rows.append(Row(f"`evhub replay`, {M}", mid_replay, f"{decode.replace('the same log', f'the {M} log')}, timed "
                        "in turns with it", mid_floor, "s", "≤ 2.0×"))
        progress("status")
        small_status = bench.time(bench.evhub(hubs[small], "status"))
        for size in (big, mid):
            rows.append(Row(f"`evhub status`, {size:,} events", bench.time(bench.evhub(hubs[size], "status")),
                            f"`evhub status`, {small:,} events", small_status, "s", "≤ 1.1×"))
        progress("one command each: heartbeat, claim, msg send, and their floors")
        trivial = bench.time([sys.executable, str(bench.script("trivial_typer.py", TRIVIAL_TYPER))])
        scratch = bench.tmp / "append-one.jsonl"
        physical = bench.time([sys.executable, str(bench.script("append_one.py", APPEND_ONE)), str(scratch)])
        commands: list[tuple[str, Figure]] = []
        for name, argv in (("heartbeat", ["heartbeat"]), ("claim", ["claim", "bench-claim"]),
                           ("msg send", ["msg", "send", "x" * 200])):
            commands.append((name, bench.time(bench.evhub(hubs[big], *argv))))
        for name, figure in commands:
            rows.append(Row(f"`evhub {name}`, {B}", figure, "a trivial typer command in a script (prints ok)",
                            trivial, "s", "≤ 1.3×"))
        for name, figure in commands:
            rows.append(Row(f"`evhub {name}`, {B}", figure, "a script: msgspec encode of one event, append under "
                            "flock, fsync", physical, "s", "reported"))
        for fsync in (True, False):
            progress(f"4 processes × {appends:,} appends, fsync {'on' if fsync else 'off'} (at most {appends_s:.0f} s)")
            got, floor_rate = bench.appends(appends, fsync, appends_s)
            how = "fsync on" if fsync else "EVHUB_FSYNC=0"
            rows.append(Row(f"4 processes × {appends:,} `hub.heartbeat` (Python API, a new hub), {how}", got,
                            f"4 processes: flock + write{' + fsync' if fsync else ''} of the same lines", floor_rate,
                            "events/s", "≥ 0.8×" if fsync else "≥ 0.5×"))
        progress("peak RSS of replay")
        rows.append(Row(f"peak RSS of `evhub replay`, {B}", bench.peak_rss(bench.evhub(hubs[big], "replay")),
                        "peak RSS of the decode floor", bench.peak_rss(bench.decode_floor(hubs[big])), "KiB",
                        "≤ 4.0×"))
        progress("log --type claim --session X, verify")
        rows.append(Row(f"`evhub log --type claim --session session-7`, {B}",
                        bench.time(bench.evhub(hubs[big], "log", "--type", "claim", "--session", "session-7")),
                        "the decode floor", floor, "s", "≤ 1.5×"))
        verify, verify_floor = bench.paired(bench.evhub(hubs[big], "verify"), bench.decode_floor(hubs[big]))
        rows.append(Row(f"`evhub verify`, {B}", verify, "the decode floor, timed in turns with it", verify_floor, "s",
                        "≤ 2.0×"))
        progress("first command after the read model is deleted")
        read_model = hubs[big] / READ_MODEL
        rows.append(Row(f"`evhub status` just after deleting the read model, {B}",
                        bench.time(bench.evhub(hubs[big], "status"), before=lambda: read_model.unlink(missing_ok=True)),
                        "the replay row", replay, "s", "≤ 1.2×"))
        agent_rows, hook_hub = hook_rows(bench, mid, hook_series, hook_repeats)
        rows += agent_rows
        rows.append(mcp_row(bench, hook_hub, mid, mcp_calls))
        rows.append(mcp_start_row(bench, hook_hub, mid))
        rows += mcp_claim_rows(bench, crowd_calls)
        rows.append(population_row(bench, people, 50))
        rows.append(storage_row(bench, 1_000))
        rows += pg_rows(bench, pg_rounds, pg_round_s)
    progress(f"done in {time.perf_counter() - began:.0f} s")
    print(table(rows))


if __name__ == "__main__":
    main()
