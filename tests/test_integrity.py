"""The log's one rule, checked a block at a time (in C, for replay and verify) and a line at a time (where a
block needs a closer look): both must count the same events and find the same damage, strict or not."""

from __future__ import annotations

from pathlib import Path

import pytest
from logs import bye_hub

from evhub._integrity import Damage, LogCheck, lines_of

TIME = b"2026-01-01T00:00:00.000000Z"


def by_lines(check: LogCheck, block: bytes) -> tuple[list[object], Damage | None]:
    done: list[object] = []
    for line in lines_of(0, block):
        verdict = check.line(line)
        if isinstance(verdict, Damage):
            return done, verdict
        done += verdict
    return done, None


def checkers() -> list[LogCheck]:
    return [LogCheck(), LogCheck(ids=set()), LogCheck(ids=set(), strict=True, latest="2026-06-01T00:00:00.000000Z")]


def odd_logs(lines: list[bytes]) -> dict[str, list[bytes]]:
    """The 7 lines of bye_hub (the last three one write), their times set to TIME, and variants of them."""
    lines = [line.replace(line[(at := line.index(b'"ts":"') + 6):at + len(TIME)], TIME) for line in lines]

    def with_time(n: int, time: bytes) -> list[bytes]:
        return [line.replace(TIME, time) if i == n else line for i, line in enumerate(lines)]

    return {
        "whole, a write of three at the end": lines,
        "a write that does not finish": lines[:6],
        "a write cut before its first": lines[:4],
        "a time a digit short": with_time(2, TIME.replace(b"000000Z", b"00000Z")),
        "a time a digit long, after one short": [*with_time(1, TIME.replace(b"000000Z", b"00000Z"))[:2],
                                                 *with_time(2, TIME.replace(b"000000Z", b"0000000Z"))[2:]],
        "a time with a | in it": with_time(3, TIME.replace(b"T", b"|")),
        "a time in other digits": with_time(3, TIME.replace(b"2026", "٢٠٢٦".encode())),
        "a time later than the latest": with_time(4, TIME.replace(b"2026-01", b"2026-09")),
        "a time not a time": with_time(1, b"yesterday"),
        "a blank line": [*lines[:3], b"\n", *lines[3:]],
        "two events on a line": [*lines[:2], lines[2].rstrip(b"\n") + b" " + lines[3], *lines[4:]],
        "an unknown field": [*lines[:3], lines[3].replace(b'{"type"', b'{"colour":"red","type"'), *lines[4:]],
        "an unknown type": [*lines[:3], lines[3].replace(b'"type":"', b'"type":"x_'), *lines[4:]],
        "a seq twice": [*lines[:3], lines[2], *lines[4:]],
    }


@pytest.mark.parametrize("kind", list(odd_logs([b'{"ts":"' + TIME + b'","type":"x"}\n'] * 7)))
def test_a_block_is_judged_as_its_lines_are(tmp_path: Path, kind: str) -> None:
    _, lines = bye_hub(tmp_path)
    block = b"".join(odd_logs(lines)[kind])
    for whole, one_by_one in zip(checkers(), checkers(), strict=True):
        events, damage = whole.block(0, block)
        expected, expected_damage = by_lines(one_by_one, block)
        assert (events, damage) == (expected, expected_damage), kind
        assert (whole.last, whole.number, whole.counted, whole.pending, whole.ids, whole.unknown) == (
            one_by_one.last, one_by_one.number, one_by_one.counted, one_by_one.pending, one_by_one.ids,
            one_by_one.unknown), kind


def test_a_write_spanning_two_blocks_counts_once_its_last_event_is_read(tmp_path: Path) -> None:
    _, lines = bye_hub(tmp_path)
    check = LogCheck()
    first, damage = check.block(0, b"".join(lines[:5]))  # the write's first event ends this block
    assert damage is None and [e.seq for e in first] == [1, 2, 3, 4] and check.counted == 4
    rest, damage = check.block(len(b"".join(lines[:5])), b"".join(lines[5:]))
    assert damage is None and [e.seq for e in rest] == [5, 6, 7] and check.counted == 7 and not check.pending
