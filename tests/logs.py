"""A small JSONL hub with a known log, and that log damaged in each way verify and repair know.

`bye_hub(root)` makes, through the Python API at T0, a hub of 7 events whose last three are one write
(`bye` with two claims: lines 5 and 6 carry "more": true, line 7 closes the write). `DAMAGE` turns its
lines into a damaged log: what verify must say about it and what repair must do with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from clock import at, fixed_now

from evhub import Hub


def bye_hub(root: Path) -> tuple[Hub, list[bytes]]:
    """A JSONL hub in ROOT of 7 events, the last three one write; its log's lines."""
    with fixed_now(at(0)):
        hub, _ = Hub.init(root)
        hub.hello("alice")
        hub.claim("alice", "p")
        hub.claim("alice", "q")
        hub.bye("alice")  # releases p and q, then leaves: one write of three events
    lines = hub.log_path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 7 and [b'"more":true' in x for x in lines] == [False] * 4 + [True, True, False]
    return hub, lines


class Damage(NamedTuple):
    lines: list[bytes]  # the damaged log
    error: str | None  # what verify's error names (None: the log still verifies, with WARNING)
    warning: str | None
    lost: set[int]  # the seqs repair marks event_lost
    set_aside: list[bytes]  # the lines repair moves to quarantine/
    events: int  # the events the repaired log holds


def damaged(kind: str, lines: list[bytes]) -> Damage:
    before = lambda n: sum(map(len, lines[: n - 1]))  # noqa: E731 - the byte offset of line N
    if kind == "damaged middle line":
        bad = lines[2][:40] + b"\n"
        return Damage([*lines[:2], bad, *lines[3:]], f"line 3 (byte {before(3)})", None, {3}, [bad], 7)
    if kind == "seq gap":
        return Damage([*lines[:2], *lines[3:]], f"line 3 (byte {before(3)}): seq 4 where 3 was expected", None,
                      {3}, [], 7)
    if kind == "repeated id":  # line 4 given line 3's id
        again = lines[3].replace(_id(lines[3]), _id(lines[2]))
        return Damage([*lines[:3], again, *lines[4:]], f"line 4 (byte {before(4)}): id {_id(lines[2]).decode()} "
                      "appears twice", None, {4}, [again], 7)
    if kind == "torn tail":
        torn = lines[6][:-30]
        return Damage([*lines[:6], torn], None, f"{len(torn)} bytes after the last event are an unfinished write",
                      set(), [lines[4], lines[5], torn], 4)
    assert kind == "unfinished write"  # the write's closing event never came
    return Damage(lines[:6], None, "the last 2 events are a write that did not finish", set(),
                  [lines[4], lines[5]], 4)


def _id(line: bytes) -> bytes:
    return str(json.loads(line)["id"]).encode()


KINDS = ["damaged middle line", "seq gap", "repeated id", "torn tail", "unfinished write"]
