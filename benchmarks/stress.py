"""evhub stress: the reliability checks of issue 3 at scale, in one table.

    python -m benchmarks.stress            # 200 race rounds, 4 x 25,000 appends, 100 SIGKILLs, 40 clock skews,
                                           # 4 x 2,000 messages past a follower and a repair (~10 min)
    python -m benchmarks.stress --quick    # 20 race rounds, 4 x 1,000 appends, 15 SIGKILLs, 4 clock skews,
                                           # 4 x 100 messages past a follower and a repair (~1 min)

Prints one markdown table (check | scale | result | expected) on stdout, progress on stderr, and
exits 1 when any check fails.  Every hub lives in a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from evhub import Hub
from evhub import _events as ev
from evhub._errors import Conflict, CorruptLog, EvhubError, HubBusy
from evhub._pgstore import StoreSettings
from evhub._store import JsonlStore
from evhub._values import format_ts

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "events" / "samples" / "three-sessions-day.jsonl"
RACERS = 8
WRITERS = 4
BARRIER_TIMEOUT_S = 120.0
BATCH = 32


@dataclass
class Row:
    check: str
    scale: str
    result: str
    expected: str
    ok: bool


def progress(text: str) -> None:
    sys.stderr.write(f"[stress] {text}\n")
    sys.stderr.flush()


def log_path(root: Path) -> Path:
    return root / "SESSIONS" / "events" / "log.jsonl"


def parse_log(path: Path) -> tuple[list[ev.AnyEvent], int, bytes]:
    """The events of the log's whole lines, how many whole lines did not parse, and the bytes after
    the last newline."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    events: list[ev.AnyEvent] = []
    bad = 0
    for raw in data[:cut].splitlines(keepends=True):
        try:
            events.append(ev.decode(raw))
        except CorruptLog:
            bad += 1
    return events, bad, data[cut:]


def fsync_note() -> str:
    off = os.environ.get("EVHUB_FSYNC", "1") in ("0", "false", "no", "off")
    return "fsync off: EVHUB_FSYNC=0" if off else "fsync on"


def remove_tree(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def seq_faults(events: Sequence[ev.AnyEvent]) -> int:
    """Seqs missing from 1..max, plus seqs that appear more than once."""
    seqs = Counter(e.seq for e in events)
    top = max(seqs, default=0)
    return sum(1 for s in range(1, top + 1) if s not in seqs) + sum(n - 1 for n in seqs.values() if n > 1)


# -- claim and hello races ------------------------------------------------------------------------


def race_worker(root: str, sid: str, rounds: int, barrier: Any, results: Any) -> None:
    """One racer: each round waits at the barrier with the others, then claims race-R (or says hello
    as hello-R) through the Python API, and reports what happened."""
    hub = Hub(root)
    for kind in ("claim", "hello"):
        for r in range(rounds):
            barrier.wait(BARRIER_TIMEOUT_S)
            try:
                if kind == "claim":
                    hub.claim(sid, f"race-{r}")
                else:
                    hub.hello(f"hello-{r}")
                outcome, text = "won", ""
            except Conflict as e:
                outcome, text = "conflict", str(e)
            except EvhubError as e:
                outcome, text = "error", f"{type(e).__name__}: {e}"
            results.put((kind, r, sid, outcome, text))


def hub_with_sessions(root: Path, prefix: str, count: int) -> tuple[Path, list[str]]:
    """A new hub at ROOT where sessions PREFIX-1 .. PREFIX-COUNT have said hello."""
    hub, _ = Hub.init(root)
    sessions = [f"{prefix}-{n}" for n in range(1, count + 1)]
    for sid in sessions:
        hub.hello(sid)
    return root, sessions


def check_races(tmp: Path, rounds: int) -> list[Row]:
    root, racers = hub_with_sessions(tmp / "races", "racer", RACERS)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(RACERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_worker, args=(str(root), sid, rounds, barrier, results)) for sid in racers]
    for p in procs:
        p.start()
    got: list[tuple[str, int, str, str, str]] = []
    try:
        for _ in range(2 * rounds * RACERS):
            got.append(results.get(timeout=BARRIER_TIMEOUT_S))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    events, bad, _ = parse_log(log_path(root))
    claimed = Counter(e.priority for e in events if isinstance(e, ev.PriorityClaimed))
    registered = Counter(e.session for e in events if isinstance(e, ev.SessionRegistered))
    rows = []
    for kind, what, in_log in (("claim", "race-{}", claimed), ("hello", "hello-{}", registered)):
        mine = [g for g in got if g[0] == kind]
        winners = Counter(g[1] for g in mine if g[3] == "won")
        per_round = [winners.get(r, 0) for r in range(rounds)]
        logged = [in_log.get(what.format(r), 0) for r in range(rounds)]
        winner_of = {g[1]: g[2] for g in mine if g[3] == "won"}
        losers = [g for g in mine if g[3] == "conflict"]
        if kind == "claim":
            named = sum(1 for g in losers if f"held by {winner_of.get(g[1])} " in g[4])
        else:
            named = sum(1 for g in losers if f"session {what.format(g[1])} is alive" in g[4])
        errors = [g for g in mine if g[3] == "error"]
        for g in errors[:3]:
            progress(f"{kind} race error: {g}")
        lo, hi = min(per_round, default=0), max(per_round, default=0)
        ok = (len(mine) == rounds * RACERS and lo == hi == 1 and min(logged) == max(logged) == 1
              and len(losers) == named == rounds * (RACERS - 1) and not errors and bad == 0)
        title = "claim race" if kind == "claim" else "hello race"
        action = "`claim` one fresh priority" if kind == "claim" else "`hello` one fresh id"
        rows.append(Row(
            title,
            f"{rounds} rounds × {RACERS} processes, each round: {action}",
            f"winners per round: min {lo}, max {hi}; in the log: min {min(logged)}, max {max(logged)}; "
            f"losers refused naming the {'holder' if kind == 'claim' else 'live id'}: {named} of {len(losers)}; "
            f"errors {len(errors)}",
            f"exactly 1 winner every round; {rounds * (RACERS - 1)} refusals; errors 0",
            ok,
        ))
    return rows


# -- concurrent appends ---------------------------------------------------------------------------


def append_worker(root: str, sid: str, count: int, barrier: Any, results: Any) -> None:
    """One writer: COUNT heartbeats with statuses SID-0, SID-1, ...; a `hub busy` refusal (nothing
    written) is retried; other errors are reported."""
    hub = Hub(root)
    busy = 0
    failed: list[tuple[int, str]] = []
    slowest = 0.0
    barrier.wait(BARRIER_TIMEOUT_S)
    for i in range(count):
        while True:
            start = time.perf_counter()
            try:
                hub.heartbeat(sid, status=f"{sid}-{i}")
            except HubBusy:
                busy += 1
                continue
            except EvhubError as e:
                failed.append((i, f"{type(e).__name__}: {e}"))
            finally:
                slowest = max(slowest, time.perf_counter() - start)
            break
    results.put((sid, busy, failed, slowest))


def check_appends(tmp: Path, count: int) -> Row:
    root, writers = hub_with_sessions(tmp / "appends", "writer", WRITERS)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=append_worker, args=(str(root), sid, count, barrier, results)) for sid in writers]
    for p in procs:
        p.start()
    barrier.wait(BARRIER_TIMEOUT_S)
    start = time.perf_counter()
    got = []
    try:
        for _ in writers:
            got.append(results.get(timeout=3600))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    elapsed = time.perf_counter() - start
    busy = sum(g[1] for g in got)
    slowest = max((g[3] for g in got), default=0.0)
    failed = {(g[0], i) for g in got for i, _ in g[2]}
    for g in got:
        for item in g[2][:3]:
            progress(f"append error {g[0]}: {item}")
    events, bad, tail = parse_log(log_path(root))
    seen = Counter((e.session, e.status) for e in events if isinstance(e, ev.Heartbeat))
    lost = doubled = 0
    for sid in writers:
        for i in range(count):
            n = seen.get((sid, f"{sid}-{i}"), 0)
            if n == 0 and (sid, i) not in failed:
                lost += 1
            doubled += max(0, n - 1)
    gaps = seq_faults(events)
    try:
        verified = Hub(root).verify()
        verify = "ok" if not verified["warnings"] else f"warnings: {verified['warnings'][:2]}"
    except EvhubError as e:
        verify = f"failed: {e}"
    total = WRITERS * count
    ok = (lost == doubled == gaps == bad == 0 and not failed and not tail and verify == "ok"
          and len(got) == WRITERS and len(events) == total + WRITERS + 1)
    return Row(
        "concurrent appends",
        f"{WRITERS} processes × {count:,} `hub.heartbeat` ({fsync_note()})",
        f"{len(events):,} events in {elapsed:.0f}s ({total / elapsed:,.0f} events/s); lost {lost}, doubled {doubled}, "
        f"gaps {gaps}; unparsed lines {bad + (1 if tail else 0)}; failed calls {len(failed)} "
        f"(`hub busy` after the 10s lock wait, retried: {busy}; slowest call {slowest:.1f}s); verify {verify}",
        "lost 0, doubled 0, gaps 0, unparsed 0, failed 0, verify ok",
        ok,
    )


# -- SIGKILL of a busy writer ---------------------------------------------------------------------

# Once a call has returned, the seq:id of each of its events goes to stdout in one short os.write
# (whole or not at all): those are acknowledged events.  Calls alternate between one heartbeat and
# BATCH 60 KiB heartbeats appended in one write (about 2 MB), long enough for some kills to land in
# the middle of it.
WRITER = """
import os, sys
from evhub import Hub
from evhub import _decide as cmd
hub, sid, big = Hub(sys.argv[1]), sys.argv[2], "x" * 60 * 1024
i = 0
while True:
    i += 1
    n, status = (1, f"busy {i}") if i % 2 else (int(sys.argv[3]), big)
    events = hub.execute(*[cmd.Heartbeat(session=sid, status=status) for _ in range(n)])
    os.write(1, (" ".join(f"{e.seq}:{e.id}" for e in events) + "\\n").encode())
"""


def quarantined(root: Path) -> dict[str, bytes]:
    folder = root / "SESSIONS" / "events" / "quarantine"
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in folder.glob("*.bin")}


def check_sigkills(tmp: Path, kills: int, rng: random.Random) -> Row:
    acknowledged = lost = doubled = verify_failures = torn_seen = torn_quarantined = partial = 0
    problems: list[str] = []
    for k in range(kills):
        root = tmp / f"hub-{k}"  # a fresh hub a kill: the big writes would grow one log past what we can afford
        hub, _ = Hub.init(root)
        hub.hello("writer")
        hub.hello("next")
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), "writer", str(BATCH)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the writer is busy: its first call has returned
        if first:
            time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate()
        if not first or proc.returncode != -signal.SIGKILL:
            problems.append(f"kill {k}: writer exited {proc.returncode} after {len(first)} bytes of acks: "
                            f"{err.decode(errors='replace')[-300:]}")
        calls = (first + rest).decode().splitlines()
        acks = [item.split(":") for line in calls for item in line.split()]
        # The call cut by the kill (call number len(calls) + 1) must be in the log wholly or not at all.
        cut_size = 1 if (len(calls) + 1) % 2 else BATCH
        last_acked = max((int(seq) for seq, _ in acks), default=0)
        acknowledged += len(acks)
        _, bad, _ = parse_log(log_path(root))
        # What readers see: whole events only; a torn line or an unfinished write of several events is torn.
        store = JsonlStore(log_path(root))
        events, tail = list(store.read(0)), store.torn_tail
        where = Counter(e.id for e in events)
        by_seq = {e.seq: e.id for e in events}
        for seq, eid in acks:
            if where[eid] == 0 or by_seq.get(int(seq)) != eid:
                lost += 1
            doubled += max(0, where[eid] - 1)
        if bad or seq_faults(events):
            problems.append(f"kill {k}: {bad} unparsed lines, {seq_faults(events)} seq faults")
        unacked = sum(1 for e in events if e.seq > last_acked and isinstance(e, ev.Heartbeat))
        if unacked not in (0, cut_size):
            partial += 1
            problems.append(f"kill {k}: {unacked} of the {cut_size} events of the cut call are in the log")
        if tail:
            torn_seen += 1
        try:
            Hub(root).heartbeat("next")  # the next write: sets a torn tail aside
            if tail and list(quarantined(root).values()) == [tail]:
                torn_quarantined += 1
            # Once set aside, the cut call is in the log file itself wholly or not at all.
            on_disk = sum(1 for e in parse_log(log_path(root))[0]
                          if e.seq > last_acked and isinstance(e, ev.Heartbeat) and e.session != "next")
            if on_disk not in (0, cut_size):
                partial += 1
                problems.append(f"kill {k}: after the next write {on_disk} of {cut_size} events of the cut call")
            result = Hub(root).verify()
            if result["warnings"]:
                raise CorruptLog(f"warnings: {result['warnings']}")
        except EvhubError as e:
            verify_failures += 1
            problems.append(f"kill {k}: {type(e).__name__}: {e}")
        remove_tree(root)
    for p in problems[:5]:
        progress(p)
    ok = lost == doubled == verify_failures == 0 and torn_seen == torn_quarantined and not problems
    return Row(
        "SIGKILL of a busy writer",
        f"{kills} SIGKILLs of a writer process (Python API, {fsync_note()}), each 0–300 ms after its first "
        "acknowledged append",
        f"acknowledged events {acknowledged:,}: lost {lost}, doubled {doubled}; verify failures {verify_failures} "
        f"(after the next write); torn tails seen {torn_seen}, quarantined {torn_quarantined}; "
        f"calls cut by the kill found partly in the log {partial}",
        "lost 0, doubled 0, verify failures 0, every torn tail quarantined, partly 0",
        ok,
    )


# -- a torn last event ----------------------------------------------------------------------------


def check_torn_tail(tmp: Path) -> Row:
    data = SAMPLE.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    last = data[start:]
    base = data[:start]
    whole = base.count(b"\n")
    failures: list[str] = []
    for cut in range(len(last)):
        root = tmp / f"torn-{cut}"
        path = log_path(root)
        path.parent.mkdir(parents=True)
        torn = last[:cut]
        path.write_bytes(base + torn)
        # All but the newline is a whole event: read, and completed by the next write, never set aside.
        newline_lost = cut == len(last) - 1
        kept, torn = (base + last, b"") if newline_lost else (base, torn)
        try:
            store = JsonlStore(path)
            read = list(store.read(0))
            state = Hub(root).state()  # a reading command: must not take the torn bytes as an event
            if len(read) != whole + newline_lost or state.seq != len(read) or store.torn_tail != torn:
                failures.append(f"cut {cut}: read {len(read)} events, state at {state.seq}, "
                                f"expected {whole + newline_lost}")
                continue
            Hub(root).hello("probe")  # the next write
            after = path.read_bytes()
            moved = list(quarantined(root).values())
            if not after.startswith(kept) or after[len(kept):].count(b"\n") != 1 or not after.endswith(b"\n"):
                failures.append(f"cut {cut}: the log after the next write is not the whole events plus one")
            elif moved != ([torn] if torn else []):
                failures.append(f"cut {cut}: quarantined {len(moved)} files, not the {len(torn)} torn bytes")
            elif Hub(root).verify()["warnings"]:
                failures.append(f"cut {cut}: verify warned")
        except EvhubError as e:
            failures.append(f"cut {cut}: {type(e).__name__}: {e}")
        finally:
            remove_tree(root)
    for f in failures[:5]:
        progress(f"torn tail: {f}")
    return Row(
        "torn tail",
        f"every byte offset (0–{len(last) - 1}) of the last event ({len(last)} bytes) of "
        f"`{SAMPLE.relative_to(REPO)}`",
        f"offsets tried {len(last)}, failures {len(failures)} (an extra event read, the event whole but for its "
        "newline not read or not completed, torn bytes not quarantined or not whole, verify failed)",
        f"offsets tried {len(last)}, failures 0",
        not failures,
    )


# -- damage at every line ------------------------------------------------------------------------

FAR = 10**15  # a seq no log of this size can hold


def damage_kinds(lines: list[bytes], i: int) -> dict[str, list[bytes]]:
    """Line I (from 0) of LINES damaged in each way a hand, an editor or a disk can damage it."""
    line = lines[i]
    kinds = {
        "deleted": [*lines[:i], *lines[i + 1:]],
        "duplicated": [*lines[:i + 1], *lines[i:]],
        "truncated": [*lines[:i], line[: len(line) // 2] + b"\n", *lines[i + 1:]],
        "newline lost": [*lines[:i], b"".join([line[:-1], *lines[i + 1:]])],
        "garbage inserted": [*lines[:i], b"garbage\n", *lines[i:]],
        "seq far out of range": [*lines[:i], line.replace(b'"seq":%d,' % (i + 1), b'"seq":%d,' % FAR, 1),
                                 *lines[i + 1:]],
    }
    if i + 1 < len(lines):
        kinds["swapped with the next"] = [*lines[:i], lines[i + 1], line, *lines[i + 2:]]
    return kinds


def check_damage(tmp: Path, quick: bool) -> Row:
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    count = len(lines)
    assert not any(b'"more":true' in x for x in lines)  # so the events before line i are exactly i
    tried = sorted({0, 1, count // 2, count - 2, count - 1}) if quick else range(count)
    cases = 0
    failures: list[str] = []
    for i in tried:
        for kind, damaged in damage_kinds(lines, i).items():
            cases += 1
            root = tmp / f"damage-{i}-{kind.replace(' ', '-')}"
            path = log_path(root)
            path.parent.mkdir(parents=True)
            path.write_bytes(b"".join(damaged))
            # The last line deleted, or cut (a write that did not finish), leaves a shorter whole log; the
            # last line without its newline is whole.  A line lost its newline is whole, and so is the next.
            at_end = i == count - 1 and kind in ("deleted", "truncated", "newline lost")
            before = count if (at_end and kind == "newline lost") else i + (kind == "duplicated")
            intact = {n for n, x in enumerate(lines) if x in damaged or (kind == "newline lost" and n in (i, i + 1))}
            try:
                hub = Hub(root)
                seq = hub.state().seq
                warned = any(f"line {before + 1} " in w and "evhub repair" in w for w in hub.warnings)
                if seq != before or (hub.damage is None) != at_end or warned == at_end:
                    failures.append(f"{kind} line {i + 1}: read {seq} events (expected {before}), "
                                    f"damage {'not ' if hub.damage is None else ''}flagged")
                    continue
                Hub(root).repair()
                Hub(root).verify()
                writer = Hub(root)
                writer.hello("probe")
                token = writer.claim("probe", "after-damage").token  # a fencing token: a seq never handed out before
                writer.flush()
                after = path.read_bytes().splitlines(keepends=True)
                lost = [n for n in intact if n >= len(after) - 2 or after[n] != lines[n]]
                if lost:
                    failures.append(f"{kind} line {i + 1}: repair lost intact events {sorted(lost)[:3]}")
                elif token <= max((n + 1 for n in intact), default=0) or token != len(after):
                    failures.append(f"{kind} line {i + 1}: token {token}, {len(after)} events")
            except EvhubError as e:
                failures.append(f"{kind} line {i + 1}: {type(e).__name__}: {e}")
            finally:
                remove_tree(root)
    for f in failures[:5]:
        progress(f"damage: {f}")
    which = "every line" if not quick else f"lines {', '.join(str(i + 1) for i in tried)}"
    return Row(
        "damage at every line",
        f"{which} of `{SAMPLE.relative_to(REPO)}` ({count} lines) × 7 kinds: deleted, duplicated, swapped with the "
        "next, truncated, newline lost, garbage inserted, seq far out of range",
        f"cases {cases}, failures {len(failures)} (reads not exactly the events before the damaged line or not "
        "warned, an intact event lost by repair, a seq handed out again)",
        f"cases {cases}, failures 0",
        not failures,
    )


# -- the bad-input catalogue ----------------------------------------------------------------------

TOO_LONG = "x" * (64 * 1024 + 1)

# (what, argv after `evhub --hub HUB`, extra environment).  An argv starting with "-" is run as it
# stands, without `--hub HUB`; "{missing}" is a folder that does not exist.
Catalogue = list[tuple[str, list[str | bytes], dict[str, str]]]


def catalogue() -> Catalogue:
    s: dict[str, str] = {"EVHUB_SESSION": "alice"}
    c: Catalogue = []
    for what, bad in [("empty id", ""), ("65-character id", "a" * 65), ("id with /", "a/b"), ("id ..", ".."),
                      ("id ../x", "../escape"), ("id with a space", "has space"), ("upper-case id", "Alice"),
                      ("non-ASCII id", "café"), ("id starting with .", ".hidden"), ("id a..b", "a..b")]:
        c.append((f"hello: {what}", ["hello", bad], {}))
    c.append(("hello: non-UTF-8 id", ["hello", b"\xff\xfe"], {}))
    c += [
        ("claim: priority ../../etc/passwd", ["claim", "../../etc/passwd"], s),
        ("claim: priority with /", ["claim", "a/b"], s),
        ("claim: empty priority", ["claim", ""], s),
        ("claim: upper-case priority", ["claim", "P1"], s),
        ("claim: non-UTF-8 priority", ["claim", b"p\xc3\x28"], s),
        ("heartbeat: session with a space", ["heartbeat", "-s", "Bad Session"], {}),
        ("heartbeat: session ../alice", ["heartbeat", "-s", "../alice"], {}),
        ("heartbeat: unknown session", ["heartbeat", "-s", "nobody"], {}),
        ("msg send: to a/b", ["msg", "send", "hi", "--to", "a/b"], s),
        ("handshake propose: id with a space", ["handshake", "propose", "Bob Smith"], s),
        ("milestone create: id ../x", ["milestone", "create", "T", "--id", "../x"], s),
        ("milestone show: id ../m1", ["milestone", "show", "../m1"], {}),
        ("why: priority ../p1", ["why", "../p1"], {}),
        ("hello: id of a live session", ["hello", "alice"], {}),
        ("step: unknown status", ["milestone", "step", "m1", "1", "finished"], s),
        ("step: upper-case status", ["milestone", "step", "m1", "1", "DONE"], s),
        ("step: empty status", ["milestone", "step", "m1", "1", ""], s),
        ("step: step 0", ["milestone", "step", "m1", "0", "done"], s),
        ("step: step -1", ["milestone", "step", "m1", "--", "-1", "done"], s),
        ("step: past the end", ["milestone", "step", "m1", "3", "done"], s),
        ("step: huge step", ["milestone", "step", "m1", "99999999999999999999", "done"], s),
        ("step: unknown milestone", ["milestone", "step", "nope", "1", "done"], s),
        ("step: stale token", ["milestone", "step", "m1", "1", "done", "--token", "999"], s),
        ("claim --ttl 5x", ["claim", "p2", "--ttl", "5x"], s),
        ("claim --ttl -5m", ["claim", "p2", "--ttl=-5m"], s),
        ("claim --ttl 99999999d", ["claim", "p2", "--ttl", "99999999d"], s),
        ("claim --ttl 0", ["claim", "p2", "--ttl", "0"], s),
        ("claim --ttl 1.5h", ["claim", "p2", "--ttl", "1.5h"], s),
        ("init --alive-ttl 5x", ["init", "--alive-ttl", "5x"], {}),
        ("log --since 5x", ["log", "--since", "5x"], {}),
        ("replay --at garbage", ["replay", "--at", "not-a-time"], {}),
        ("EVHUB_NOW=yesterday", ["heartbeat"], {**s, "EVHUB_NOW": "yesterday"}),
        ("EVHUB_NOW month 13", ["heartbeat"], {**s, "EVHUB_NOW": "2026-13-45T00:00:00Z"}),
        ("EVHUB_NOW hour 25", ["claim", "p3"], {**s, "EVHUB_NOW": "2026-11-25T25:00:00Z"}),
        ("EVHUB_LOCK_TIMEOUT=abc", ["heartbeat"], {**s, "EVHUB_LOCK_TIMEOUT": "abc"}),
        ("msg send: 64 KiB + 1 text", ["msg", "send", TOO_LONG], s),
        ("note: 64 KiB + 1 text", ["note", TOO_LONG], s),
        ("focus: 64 KiB + 1 text", ["focus", TOO_LONG], s),
        ("heartbeat --status: 64 KiB + 1", ["heartbeat", "--status", TOO_LONG], s),
        ("hello --about: 64 KiB + 1", ["hello", "dave", "--about", TOO_LONG], {}),
        ("release: another's claim, no --force", ["release", "p1"], {"EVHUB_SESSION": "bob"}),
        ("save --mode bogus", ["save", "--mode", "bogus"], s),
        ("sql: a write", ["sql", "delete from sessions"], {}),
        ("missing hub: --hub", ["-", "--hub", "{missing}", "status"], {}),
        ("missing hub: --hub, a write", ["-", "--hub", "{missing}", "heartbeat"], s),
        ("missing hub: EVHUB_HUB", ["-", "claim", "p1"], {**s, "EVHUB_HUB": "{missing}"}),
        ("missing hub: none above the cwd", ["-", "status"], {}),
    ]
    return c


def setup_catalogue_hub(root: Path) -> None:
    hub, _ = Hub.init(root)
    hub.hello("alice")
    hub.hello("bob")
    hub.claim("alice", "p1")
    hub.create_milestone("alice", "M one", milestone="m1", steps=["a", "b"])
    hub.claim_milestone("alice", "m1")


def tree(folder: Path, skip: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if skip not in p.parents and p != skip}


def check_bad_input(tmp: Path, evhub: str) -> Row:
    root = tmp / "catalogue"
    setup_catalogue_hub(root)
    missing = tmp / "missing-hub"
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("EVHUB_")}
    log = log_path(root)
    outside_before = tree(tmp, root / "SESSIONS")
    tried = good = changes = 0
    bad: list[str] = []
    for what, argv, extra in catalogue():
        env = {**base_env, **{k: v.replace("{missing}", str(missing)) for k, v in extra.items()}}
        args: list[str | bytes] = [a.replace("{missing}", str(missing)) if isinstance(a, str) else a for a in argv]
        args = args[1:] if args[:1] == ["-"] else ["--hub", str(root), *args]
        before = hashlib.sha256(log.read_bytes()).digest()
        done = subprocess.run([evhub, *args], capture_output=True, env=env, cwd=cwd, timeout=60)
        tried += 1
        lines = done.stderr.decode(errors="replace").splitlines()
        one_error = done.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and not done.stdout
        if one_error:
            good += 1
        else:
            shown = lines[:3] if lines else done.stdout.decode(errors="replace").splitlines()[:2]
            bad.append(f"{what}: exit {done.returncode}, {shown}")
        if hashlib.sha256(log.read_bytes()).digest() != before:
            changes += 1
            bad.append(f"{what}: the log changed")
    outside = tree(tmp, root / "SESSIONS") - outside_before
    for b in bad[:10]:
        progress(f"bad input: {b}")
    return Row(
        "bad-input catalogue",
        f"{tried} hostile inputs through the installed `evhub` (ids, statuses, steps, durations, EVHUB_NOW, "
        "64 KiB + 1 text, missing hub)",
        f"inputs tried {tried}; non-zero exit with one `error:` line {good} of {tried}; log changes {changes}; "
        f"new files outside SESSIONS/ {len(outside)}",
        f"one `error:` line {tried} of {tried}; log changes 0; new files outside 0",
        good == tried and changes == 0 and not outside,
    )


# -- clock skew -----------------------------------------------------------------------------------

SKEW_MINUTES = 20  # clocks up to this far apart: four times the alive ttl


def real_plus(minutes: int) -> str:
    return format_ts(datetime.now(UTC) + timedelta(minutes=minutes))


def check_clock_skew(tmp: Path, evhub: str, rounds: int, rng: random.Random) -> list[Row]:
    """Two writers whose clocks differ by up to SKEW_MINUTES: each round one claims a fresh priority and
    heartbeats, then the other tries to take it. On JSONL the clocks are EVHUB_NOW (a stray one); on
    PostgreSQL they are the machines' own clocks (faketime), and the server's clock decides."""
    rows = [skew_row(tmp / "jsonl", evhub, rounds, rng, None)]
    try:
        from tests.pgserver import Cluster, bindir
    except ImportError:
        return rows
    data, port = os.environ.get("EVHUB_TEST_PGDATA"), os.environ.get("EVHUB_TEST_PGPORT")
    if data and port:
        rows.append(skew_row(tmp / "postgresql", evhub, rounds, rng, Cluster(Path(data), int(port))))
    elif bindir() is not None:
        cluster = Cluster.temporary()
        try:
            rows.append(skew_row(tmp / "postgresql", evhub, rounds, rng, cluster))
        finally:
            cluster.remove()
    return rows


def skew_row(root: Path, evhub: str, rounds: int, rng: random.Random, cluster: Any) -> Row:
    settings = None
    if cluster is not None:
        dsn_file = root.parent / "pg-dsn"
        dsn_file.write_text(cluster.dsn + "\n")
        settings = StoreSettings(f"skew_{os.getpid()}", dsn_file)
    hub, _ = Hub.init(root, store=settings)
    hub.hello("alice")
    hub.hello("bob")
    hub.store.close()
    machines = cluster is not None and shutil.which("faketime") is not None
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("EVHUB_")}

    def on(minutes: int, sid: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**base_env, "EVHUB_SESSION": sid}
        argv = [evhub, "--hub", str(root), *args]
        if machines:
            argv = ["faketime", "-f", f"{minutes:+d}m", *argv]
        else:
            env["EVHUB_NOW"] = real_plus(minutes)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    wrong = named = ahead = errors = 0
    for r in range(rounds):
        holder, taker = ("alice", "bob") if r % 2 == 0 else ("bob", "alice")
        # A holder's clock that EVHUB_NOW sets ahead is refused before it claims: it holds nothing to take.
        mine = rng.randint(-SKEW_MINUTES, SKEW_MINUTES if machines else 0)
        theirs = rng.choice([m for m in range(-SKEW_MINUTES, SKEW_MINUTES + 1) if m != mine])
        for step in (("claim", f"p-{r}"), ("heartbeat",)):
            if on(mine, holder, *step).returncode != 0:
                errors += 1
        took = on(theirs, taker, "claim", f"p-{r}")
        if took.returncode == 0:
            wrong += 1
        elif took.returncode == 3 and f"held by {holder}" in took.stderr:
            named += 1
        elif took.returncode == 1 and "ahead of the real clock" in took.stderr:
            ahead += 1
        else:
            errors += 1
            progress(f"clock skew: {took.stderr.strip()}")
    times = [e.ts for e in Hub(root).events()]
    in_order = times == sorted(times)
    try:
        Hub(root).verify()
        verified = "verify ok"
    except EvhubError as e:
        verified = f"verify failed: {e}"
    kind = "postgresql" if cluster is not None else "jsonl"
    clocks = ("the machines' clocks (faketime) up to ±{m} min apart, the server's clock deciding" if machines
              else "EVHUB_NOW up to {m} min behind (holder) or ±{m} min (taker)").format(m=SKEW_MINUTES)
    return Row(
        f"clock skew ({kind})",
        f"{rounds} rounds × 2 writers, {clocks}: one claims and heartbeats, the other claims the same priority",
        f"wrong takeovers {wrong}; refused naming the holder {named}, refused as ahead of the real clock {ahead}; "
        f"other errors {errors}; log times in order: {'yes' if in_order else 'NO'}; {verified}",
        "wrong takeovers 0; other errors 0; log times in order; verify ok",
        wrong == 0 and errors == 0 and in_order and verified == "verify ok",
    )


# -- a follower running through a repair ---------------------------------------------------------


def message_worker(root: str, sid: str, count: int, barrier: Any, results: Any) -> None:
    """One writer: COUNT messages, each retried on `hub busy` (a repair holds the lock a moment) and, as an
    agent would after running `evhub repair`, on a refusal to write past the damaged line (a writer that
    must fold past it refuses until the repair)."""
    hub = Hub(root)
    failed = refused = 0
    barrier.wait(BARRIER_TIMEOUT_S)
    for i in range(count):
        while True:
            try:
                hub.send(sid, f"{sid} {i}")
            except HubBusy:
                continue
            except CorruptLog:
                refused += 1
                time.sleep(0.01)  # the repair runs right after the damage
                continue
            except EvhubError:
                failed += 1
            break
    results.put((failed, refused))


def damage_a_middle_line(root: Path) -> int:
    """Under the hub lock (writers wait), a message line in the middle of the log overwritten with bytes that
    are not JSON; its seq."""
    hub = Hub(root)
    with hub._lock():
        lines = log_path(root).read_bytes().splitlines(keepends=True)
        n = next(i for i in range(len(lines) // 2, len(lines)) if b'"message_posted"' in lines[i])
        seq = ev.decode(lines[n]).seq
        lines[n] = b"#" * (len(lines[n]) - 1) + b"\n"
        log_path(root).write_bytes(b"".join(lines))
    return seq


def check_follow_through_repair(tmp: Path, evhub: str, count: int) -> Row:
    """`evhub log --follow` and the watch follower run while WRITERS processes send COUNT messages each; half
    way, a line is damaged and `evhub repair` rewrites the log; the writers go on to the end."""
    from evhub._state import State, fold
    from evhub._watch import Follower

    root, sessions = hub_with_sessions(tmp / "hub", "f", WRITERS)
    follow = subprocess.Popen([evhub, "log", "--follow"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    printed: list[tuple[int, str]] = []
    reader = threading.Thread(target=lambda: printed.extend(
        (int(line.split()[0][1:]), line.split()[2]) for line in follow.stdout or ()), daemon=True)
    reader.start()
    watcher = Follower(Hub(root))
    fed: list[int] = [e.seq for e in watcher.feed]
    errors: list[str] = []

    def poll() -> None:
        try:
            watcher.poll()
        except EvhubError as e:
            if "damaged" not in str(e) and "not JSON" not in str(e):
                errors.append(f"{type(e).__name__}: {e}")  # the damaged log itself may be named until repaired
        fed.extend(e.seq for e in watcher.feed if e.seq > (fed[-1] if fed else 0))

    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    writers = [ctx.Process(target=message_worker, args=(str(root), sid, count, barrier, results)) for sid in sessions]
    for w in writers:
        w.start()
    while Hub(root).open_store().head() < WRITERS + 1 + WRITERS * count // 2:
        poll()
        time.sleep(0.05)
    lost_seq = damage_a_middle_line(root)
    repair = subprocess.run([evhub, "repair"], cwd=root, capture_output=True, text=True)
    for w in writers:
        w.join()
    outcomes = [results.get() for _ in writers]
    failed, refused = sum(f for f, _ in outcomes), sum(r for _, r in outcomes)
    final = list(JsonlStore(log_path(root)).read(0))
    lost = {e.seq for e in final if isinstance(e, ev.EventLost)}
    deadline = time.monotonic() + 60
    # The follower may have printed the last event before the repair: it says the lost one at its next
    # poll, so it is waited for too (interrupting it sooner would blame it for the harness's haste).
    while (not printed or printed[-1][0] < len(final) or watcher.state.seq < len(final)
           or not lost <= {seq for seq, kind in printed if kind == "event_lost"}) and time.monotonic() < deadline:
        poll()
        time.sleep(0.05)
    follow.send_signal(signal.SIGINT)
    err = follow.communicate(timeout=30)[1]
    reader.join(timeout=10)

    kinds = {e.seq: str(ev.to_dict(e)["type"]) for e in final}
    told = [(seq, kind) for n, (seq, kind) in enumerate(printed)
            if kind == "event_lost" and seq in lost and any(s >= seq for s, _ in printed[:n])]
    rest = [p for p in printed if p not in told]
    shown = Counter(seq for seq, _ in rest)
    missing = sum(1 for seq in kinds if shown[seq] == 0)
    doubled = sum(1 for n in shown.values() if n > 1)
    disorder = sum(1 for a, b in zip(rest, rest[1:], strict=False) if b[0] <= a[0])
    unsaid = len(lost - {seq for seq, kind in printed if kind == "event_lost"})
    full = fold(final, State())
    full.stored()
    watch_ok = msgspec.msgpack.encode(watcher.state) == msgspec.msgpack.encode(full)
    fed_disorder = sum(1 for a, b in zip(fed, fed[1:], strict=False) if b <= a)
    traces = err.count("Traceback")
    ok = (repair.returncode == 0 and lost == {lost_seq} and failed == 0 and missing == doubled == disorder == unsaid
          == 0 and watch_ok and fed_disorder == 0 and not errors and traces == 0)
    return Row(
        "a follower running through a repair",
        f"`evhub log --follow` and a watch follower while {WRITERS} processes × {count:,} `msg send`; half way a "
        "message line is overwritten with bytes that are not JSON and `evhub repair` rewrites the log",
        f"final log {len(final):,} events, {len(lost)} event_lost; log --follow: missing {missing}, twice {doubled}, "
        f"out of order {disorder}, lost events not said {unsaid}; watch follower: state "
        f"{'equals' if watch_ok else 'differs from'} a full fold, feed out of order {fed_disorder}, errors "
        f"{len(errors)}; tracebacks {traces}; failed calls {failed} (writes refused while damaged, then retried: "
        f"{refused})",
        "1 event_lost; missing 0, twice 0, out of order 0, not said 0; state equals a full fold; feed out of order "
        "0, errors 0; tracebacks 0; failed calls 0",
        ok,
    )


# -- the table ------------------------------------------------------------------------------------


def table(rows: Sequence[Row]) -> str:
    lines = ["| check | scale | result | expected |", "|---|---|---|---|"]
    lines += [f"| {r.check} | {r.scale} | {r.result} | {r.expected} |" for r in rows]
    return "\n".join(lines)


def find_evhub() -> str:
    beside = Path(sys.executable).parent / "evhub"
    if beside.is_file():
        return str(beside)
    raise SystemExit(f"the evhub command is not installed beside {sys.executable}: pip install -e .")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stress", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, events and kills (under a minute)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the kill moments (default: random)")
    args = parser.parse_args(argv)
    rounds, appends, kills, skews = (20, 1_000, 15, 4) if args.quick else (200, 25_000, 100, 40)
    follows = 100 if args.quick else 2_000
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    evhub = find_evhub()
    rows: list[Row] = []
    started = time.perf_counter()
    steps: list[tuple[str, Callable[[Path], list[Row] | Row]]] = [
        ("claim and hello races", lambda tmp: check_races(tmp, rounds)),
        ("concurrent appends", lambda tmp: check_appends(tmp, appends)),
        (f"SIGKILLs (seed {seed})", lambda tmp: check_sigkills(tmp, kills, rng)),
        ("torn tail", check_torn_tail),
        ("damage at every line", lambda tmp: check_damage(tmp, args.quick)),
        ("bad-input catalogue", lambda tmp: check_bad_input(tmp, evhub)),
        ("clock skew", lambda tmp: check_clock_skew(tmp, evhub, skews, rng)),
        ("follower through a repair", lambda tmp: check_follow_through_repair(tmp, evhub, follows)),
    ]
    with tempfile.TemporaryDirectory(prefix="evhub-stress-") as tmp:
        for name, step in steps:
            t = time.perf_counter()
            here = Path(tmp) / name.split()[0].lower()
            here.mkdir()
            got = step(here)
            new = got if isinstance(got, list) else [got]
            rows += new
            verdict = "ok" if all(r.ok for r in new) else "FAILED"
            progress(f"{name}: {verdict} in {time.perf_counter() - t:.1f}s")
    progress(f"all checks in {time.perf_counter() - started:.0f}s")
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
