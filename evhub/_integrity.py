"""Which lines of a log count: the one rule, as a pure checker of lines.

A log is lines, one event each, numbered seq 1, 2, 3 ... without a gap or a repeat. A write of
several events marks each of them but its last with `more`: its events count only once its last
event is there, so a write cut short is no event at all. Every reader of log lines asks this
checker: both stores' reads, `import`, `verify` and `repair`. Each decides what damage means to it
(an error naming the line, a torn tail set aside, a warning); none judges a line itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import attrgetter
from typing import NamedTuple

from . import _events as ev
from ._errors import CorruptLog

_ID = attrgetter("id")
_SEQ = attrgetter("seq")
_TS = attrgetter("ts")
# A time as evhub writes it (a four-digit year, fixed width, so that strings sort as times do).
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_SHAPE = b"0000-00-00T00:00:00.000000Z"  # such a time with every digit made 0
_DIGITS = bytes.maketrans(b"123456789", b"000000000")


class LogLine(NamedTuple):
    """One whole line of the log and the byte it starts at (in the log as `evhub export` writes it)."""

    offset: int
    raw: bytes


class Damage(NamedTuple):
    """A line that does not count: not an event, or an event out of its place."""

    number: int | None  # the line's number in the log, from 1 (None when the check began mid-log)
    offset: int
    raw: bytes
    reason: str  # what is wrong, for a person: "not JSON: ...", "seq 4 where 3 was expected", ...
    event: ev.AnyEvent | None  # the event the line holds, when it is one (a gap or a repeat)

    def where(self) -> str:
        return f"line {self.number} (byte {self.offset})"


def whole_lines(block: bytes) -> list[bytes]:
    """The lines of BLOCK, each with its newline. Only a newline ends a line of the log:
    bytes.splitlines would also cut at a stray carriage return and misplace every offset after it."""
    return [line + b"\n" for line in block.split(b"\n")[:-1]]


def lines_of(offset: int, block: bytes) -> Iterator[LogLine]:
    """The lines of BLOCK, which starts at byte OFFSET of the log."""
    pos = offset
    for raw in whole_lines(block):
        yield LogLine(pos, raw)
        pos += len(raw)


class LogCheck:
    """Checks a log's lines in order, from just after seq LAST (line NUMBER, or an unknown line when
    None). With IDS, an id seen before is damage too (a whole-log check); with STRICT, a block is taken
    whole only when its bytes are evhub's own (so `unknown` lists every line a newer evhub wrote), and a
    time not written as evhub writes times, or later than LATEST, is damage."""

    def __init__(self, last: int = 0, number: int | None = 0, *, ids: set[str] | None = None,
                 strict: bool = False, latest: str | None = None) -> None:
        self.last = last  # the seq of the last event checked (pending ones included)
        self.number = number  # lines checked so far
        self.ids = ids
        self.strict = strict
        self.latest = latest  # with STRICT, a later time is damage: a clock ran ahead (_values.future_limit)
        self.pending: list[ev.AnyEvent] = []  # a write of several events whose last one is still to come
        self.pending_from = 0  # the byte where that write starts
        self.unknown: list[tuple[int | None, int, str]] = []  # with STRICT: (number, offset, what) of
        # each line whose type or fields this evhub does not know (kept, and counted, all the same)

    @property
    def counted(self) -> int:
        """The seq of the last event that counts (a write still unfinished does not)."""
        return self.last - len(self.pending)

    def block(self, offset: int, block: bytes) -> tuple[list[ev.AnyEvent], Damage | None]:
        """The events that count among BLOCK's whole lines (it starts at byte OFFSET), up to its first
        damaged line, and that damage.  After damage the checker stands just before the damaged line,
        so a caller may stop there or `skip` it and go on."""
        events = ev.decode_block(block)
        if events and not self.pending and events[-1].more is not True:
            # The common block: one event a line, seq runs on without a gap, and every write ends in it.
            # Checked a block at a time in C (map, set, encode), never a Python step per event.
            first = self.last + 1
            if ((self._evhubs_own(events, block) if self.strict else len(events) == block.count(b"\n"))
                    and list(map(_SEQ, events)) == list(range(first, first + len(events)))
                    and (fresh := self._new_ids(events)) is not None):
                self.last += len(events)
                if self.number is not None:
                    self.number += len(events)
                if self.ids is not None:
                    self.ids |= fresh
                return events, None
        done: list[ev.AnyEvent] = []
        for line in lines_of(offset, block):
            verdict = self.line(line)
            if isinstance(verdict, Damage):
                return done, verdict
            done += verdict
        return done, None

    def line(self, line: LogLine) -> list[ev.AnyEvent] | Damage:
        """Check one line: the events it completes (none while a write of several is unfinished), or
        its damage (and then the checker has not moved)."""
        number = None if self.number is None else self.number + 1
        try:
            e = ev.decode(line.raw)
        except CorruptLog as err:
            return Damage(number, line.offset, line.raw, str(err), None)
        expected = self.last + 1
        if e.seq != expected:
            return Damage(number, line.offset, line.raw, f"seq {e.seq} where {expected} was expected", e)
        if self.strict and not _TIME.fullmatch(e.ts):
            return Damage(number, line.offset, line.raw, f"time {e.ts!r} is not one evhub writes", e)
        if self.strict and self.latest is not None and e.ts > self.latest:
            return Damage(number, line.offset, line.raw, f"time {e.ts} is ahead of the real clock by more than "
                          f"it may be (later than {self.latest}): a clock ran ahead", e)
        if self.ids is not None:
            if e.id in self.ids:
                return Damage(number, line.offset, line.raw, f"id {e.id} appears twice", e)
            self.ids.add(e.id)
        if self.strict:
            extra = ev.unknown_fields(line.raw, e)
            if isinstance(e, ev.UnknownEvent) or extra:
                what = f"unknown type {e.type}" if isinstance(e, ev.UnknownEvent) else f"unknown fields {extra}"
                self.unknown.append((number, line.offset, what))
        self.number, self.last = number, e.seq
        if e.more is True:
            if not self.pending:
                self.pending_from = line.offset
            self.pending.append(e)
            return []
        done, self.pending = [*self.pending, e], []
        return done

    def skip(self, damage: Damage) -> None:
        """Go on past a damaged line, as if it were not there (repair sets it aside)."""
        if self.number is not None:
            self.number += 1

    def _evhubs_own(self, events: list[ev.AnyEvent], block: bytes) -> bool:
        """Whether BLOCK is exactly what this evhub writes for EVENTS (so one event a line), times included.
        The times are checked all at once: joined by a | and their digits made 0, they must be the shape
        joined so (each time its width, as no time holds a |).  This is stricter than _TIME, whose \\d takes
        any script's digits: such a block goes line by line, and _TIME judges it there."""
        if not ev.is_canonical(events, block):
            return False
        times = list(map(_TS, events))
        return ("|".join(times).encode(errors="replace").translate(_DIGITS) == b"|".join([_SHAPE] * len(times))
                and (self.latest is None or max(times) <= self.latest))

    def _new_ids(self, events: list[ev.AnyEvent]) -> set[str] | None:
        """The ids of EVENTS when none was seen before (none at all without IDS), else None."""
        if self.ids is None:
            return set()
        fresh = set(map(_ID, events))
        return fresh if len(fresh) == len(events) and fresh.isdisjoint(self.ids) else None
