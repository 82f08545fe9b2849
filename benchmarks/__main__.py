"""evhub benchmarks: each figure beside a floor measured in the same run, on the same data.

    python -m benchmarks            # 1k and 100k events
    python -m benchmarks --quick    # 1k and 10k events, fewer repeats (under a minute)

Prints one markdown table: figure, evhub's median (spread), the floor's median, the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from evhub import Hub
from evhub import _events as ev
from evhub._values import format_ts, parse_ts

SESSIONS = [f"session-{n}" for n in range(1, 51)]
PRIORITIES = [f"p{n}" for n in range(1, 201)]
START = parse_ts("2026-01-01T00:00:00Z")


def synthetic_log(path: Path, count: int, seed: int = 7) -> None:
    """A hub's log of COUNT events in a realistic mix: mostly heartbeats, some messages and claims."""
    rng = random.Random(seed)
    holders: dict[str, str] = {}
    mix = [("heartbeat", 70), ("message", 10), ("claim", 8), ("release", 7), ("step", 3), ("hello", 2)]
    kinds = [k for k, w in mix for _ in range(w)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        def ts(seq: int) -> str:
            return format_ts(START.fromtimestamp(START.timestamp() + seq * 3, START.tzinfo))

        f.write(ev.encode(ev.HubCreated(seq=1, id=f"e{1:025d}", ts=ts(1))))
        seq = 1
        for sid in SESSIONS:
            seq += 1
            f.write(ev.encode(ev.SessionRegistered(seq=seq, id=f"e{seq:025d}", ts=ts(seq), session=sid)))
        seq += 1
        f.write(ev.encode(ev.MilestoneCreated(seq=seq, id=f"e{seq:025d}", ts=ts(seq), session=SESSIONS[0],
                                              milestone="m1", title="Benchmark", priority="m1",
                                              steps=[f"step {n}" for n in range(1, 9)])))
        while seq < count:
            seq += 1
            sid = rng.choice(SESSIONS)
            base = {"seq": seq, "id": f"e{seq:025d}", "ts": ts(seq), "session": sid}
            kind = rng.choice(kinds)
            free = [p for p in rng.sample(PRIORITIES, 5) if p not in holders]
            event: ev.Event
            if kind == "claim" and free:
                holders[free[0]] = sid
                event = ev.PriorityClaimed(priority=free[0], **base)
            elif kind == "release" and holders:
                priority = rng.choice(list(holders))
                base["session"] = holders.pop(priority)
                event = ev.PriorityReleased(priority=priority, done=rng.random() < 0.5, **base)
            elif kind == "message":
                event = ev.MessagePosted(text="x" * rng.randint(150, 250), **base)
            elif kind == "step":
                event = ev.StepUpdated(milestone="m1", step=rng.randint(1, 8), status="in-progress", **base)
            elif kind == "hello":
                event = ev.SessionRegistered(resume=True, **base)
            else:
                event = ev.Heartbeat(status="working", **base)
            f.write(ev.encode(event))


def decode_floor(path: Path) -> None:
    """The floor: decode the log into the event types in 64 KiB chunks, nothing else."""
    decoder = msgspec.json.Decoder(ev.KnownEvent)
    rest = b""
    with open(path, "rb") as f:
        while chunk := f.read(64 * 1024):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            decoder.decode_lines(data[:cut])
            rest = data[cut:]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median, min and max seconds of REPEATS runs of FN."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def evhub_cmd(hub: Path, *args: str) -> Callable[[], object]:
    command = [sys.executable, "-m", "evhub", "--hub", str(hub), *args]
    env = {**os.environ, "EVHUB_SESSION": "session-1"}
    return lambda: subprocess.run(command, check=True, capture_output=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller hubs and fewer repeats")
    args = parser.parse_args()
    big, repeats = (10_000, 3) if args.quick else (100_000, 5)
    rows: list[tuple[str, tuple[float, float, float], str, tuple[float, float, float]]] = []
    with tempfile.TemporaryDirectory(prefix="evhub-bench-") as tmp:
        hubs = {}
        for size in (1_000, big):
            root = Path(tmp) / f"hub-{size}"
            synthetic_log(root / "SESSIONS" / "events" / "log.jsonl", size)
            Hub.find(root).state()  # build the read model and views once, as any first command would
            hubs[size] = root
        log = hubs[big] / "SESSIONS" / "events" / "log.jsonl"
        floor = timed(lambda: decode_floor(log), repeats)
        rows.append((f"`evhub replay`, {big:,} events", timed(evhub_cmd(hubs[big], "replay"), repeats),
                     "msgspec decode of the same log", floor))
        small_status = timed(evhub_cmd(hubs[1_000], "status"), repeats)
        rows.append((f"`evhub status`, {big:,} events", timed(evhub_cmd(hubs[big], "status"), repeats),
                     "`evhub status`, 1,000 events", small_status))
        heartbeat = evhub_cmd(hubs[big], "heartbeat")
        trivial = timed(lambda: subprocess.run([sys.executable, "-m", "evhub", "--help"], check=True,
                                               capture_output=True), repeats)
        rows.append((f"`evhub heartbeat`, {big:,} events", timed(heartbeat, repeats), "`evhub --help`", trivial))
    print("| figure | evhub median (min–max) | floor | floor median (min–max) | ratio |")
    print("|---|---|---|---|---|")
    for name, (med, lo, hi), floor_name, (fmed, flo, fhi) in rows:
        print(f"| {name} | {med * 1000:.0f} ms ({lo * 1000:.0f}–{hi * 1000:.0f}) | {floor_name} | "
              f"{fmed * 1000:.0f} ms ({flo * 1000:.0f}–{fhi * 1000:.0f}) | {med / fmed:.2f}× |")


if __name__ == "__main__":
    main()
