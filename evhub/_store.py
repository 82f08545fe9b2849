"""The log store: a small interface in seqs (head, read after a seq, the events at given seqs, append at
an expected seq, wait for news, the store's lock) and its JSONL implementation, the hub's only source of truth.

Which lines count is _integrity's rule; how a JSONL file is scanned, cut and mended stays in
JsonlStore.  Outside the store modules no code knows which store it has.
"""

from __future__ import annotations

import errno
import os
import re
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import cached_property
from pathlib import Path
from typing import IO, Any, NamedTuple

from . import _events as ev
from ._errors import CorruptLog, ExpectedPositionError, StorageError
from ._integrity import Damage, LogCheck, LogLine, lines_of, whole_lines
from ._progress import Progress
from ._values import file_stamp, future_limit, new_id, now

CHUNK = 64 * 1024
REPICK_BLOCKS = 64  # every 4 MiB, a search looks again which needle is the rarest
PROBE = 4096  # the bytes a bisection of the log reads at each step
_SEQ = re.compile(rb'"seq":(\d+)')  # evhub writes it first but for the type: a line's seq without decoding it
ESCAPE = b"\\u"  # a line may spell any string with \u escapes, and then holds no needle's plain bytes


class Checkpoint(NamedTuple):
    """Where in a store a read or write stood: the seq, the store's own mark for it (a byte offset
    of a JSONL file, a seq in PostgreSQL), and a fingerprint of the line of that event, so a state
    kept from there is noticed when the log was rewritten."""

    seq: int
    offset: int
    line_len: int
    line_crc: int

    @classmethod
    def after(cls, seq: int, offset: int, last_line: bytes) -> Checkpoint:
        return cls(seq, offset, len(last_line), zlib.crc32(last_line))

    def matches(self, last_line: bytes) -> bool:
        return len(last_line) == self.line_len and zlib.crc32(last_line) == self.line_crc


class Store(ABC):
    """An append-only sequence of events numbered 1, 2, 3 ... without gaps.

    Callers speak in seqs. A read remembers where it got to (`checkpoint`), and `resume` takes a
    checkpoint back after checking that the store still holds what it was taken of, so a cached
    state reads only the tail."""

    name: str  # what keeps the log, for people and --json: "jsonl" or "postgresql"
    where: str | None = None  # where a log kept beyond this machine's files is (server and schema)

    @abstractmethod
    def head(self) -> int:
        """The seq of the last event (0 for an empty store)."""

    def read(self, after: int = 0) -> Iterator[ev.AnyEvent]:
        """Every event with seq > AFTER, in order."""
        for events in self.read_blocks(after):
            yield from events

    @abstractmethod
    def read_blocks(self, after: int = 0) -> Iterator[list[ev.AnyEvent]]:
        """The events with seq > AFTER, a list at a time (folds take whole lists); after a `resume`
        at seq AFTER, from where the checkpoint stands."""

    @abstractmethod
    def events_at(self, seqs: Sequence[int]) -> dict[int, ev.AnyEvent]:
        """The events at SEQS that the store holds, by seq, read wherever they are (a message's text is
        read from the log, not copied into the read model). CorruptLog when one's line is damaged."""

    @abstractmethod
    def append(self, events: Sequence[ev.Event], expected: int, *, chained: bool = False) -> None:
        """Append EVENTS (numbered expected+1, ...) as one write if the head is EXPECTED, else
        ExpectedPositionError. CHAINED: EVENTS are several writes whose `more` is set already (a merge
        keeps another clone's writes as they were), appended at once all the same."""

    position: tuple[int, int]  # (seq, the store's mark after it) that the last read or append reached

    def synced_later(self) -> AbstractContextManager[None]:
        """Appends within it are made durable by sync(), which the caller runs once it let go of the hub
        lock (a store whose commit is its own durability needs nothing)."""
        return nullcontext()

    def sync(self) -> None:  # noqa: B027 (a store whose commit is durable owes nothing)
        """Make durable what was appended within synced_later()."""

    def checkpoint(self) -> Checkpoint:
        """Where the last read or append got to."""
        seq, mark = self.position
        return Checkpoint.after(seq, mark, self._seen_line(mark))

    def resume(self, cp: Checkpoint) -> bool:
        """Whether the store still holds the log checkpoint CP was taken of; if so, reads after
        cp.seq start from it."""
        holds = cp.seq == 0 if cp.offset == 0 else cp.matches(self._last_line(cp.offset))
        if holds:
            self.position = (cp.seq, cp.offset)
        return holds

    def clock(self) -> str | None:
        """The time by the clock that decides this store's writes, when it is not this machine's
        (None): with several machines writing, one clock must decide."""
        return None

    @abstractmethod
    def _last_line(self, mark: int) -> bytes:
        """The line of the event that ends at MARK (empty when there is none)."""

    def _seen_line(self, mark: int) -> bytes:
        """_last_line(MARK), from memory when this store just read or wrote it (no check that the store
        still holds it: resume makes that check)."""
        end, line = self._seen_last
        return line if end == mark else self._last_line(mark)

    _seen_last: tuple[int, bytes]  # the mark and line of the last event this store read or wrote

    @abstractmethod
    def size(self) -> int:
        """How far the store reaches, for progress bars (bytes of a file, events of a table)."""

    reached: int  # how far the last read got, in size()'s unit

    @abstractmethod
    def blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, block of whole lines) from byte START of the log as `evhub export` writes it."""

    def lines(self, start: int = 0) -> Iterator[LogLine]:
        """Every whole line from byte START on."""
        for offset, block in self.blocks(start):
            yield from lines_of(offset, block)

    torn_tail: bytes  # what the last blocks() found after the last whole line: a write that did not finish
    scanned_to: int  # the byte after the last whole line the last blocks() or search() reached

    def search(self, needles: Sequence[bytes], start: int = 0) -> Iterator[LogLine]:
        """The whole lines from byte START that hold every one of NEEDLES or a \\u escape: a superset
        of the lines whose events hold those values (types and ids are written without escapes)."""
        if not needles:
            yield from self.lines(start)
            return
        key = needles[0]
        for n, (offset, block) in enumerate(self.blocks(start)):
            if n % REPICK_BLOCKS == 0 and len(needles) > 1:
                key = min(needles, key=block.count)  # the rarest needle leaves the fewest lines to look at
            for begin, end in _spans(block, key):
                raw = block[begin:end]
                if all(needle in raw for needle in needles) or ESCAPE in raw:
                    yield LogLine(offset + begin, raw)

    def holds(self, line: LogLine) -> bool:
        """Whether LINE is still where it was read: a follower's check that the log was not rewritten under
        it (by a repair)."""
        return next(self.lines(line.offset), None) == line

    @abstractmethod
    def newest(self, count: int) -> list[ev.AnyEvent]:
        """About the last COUNT events that can be read, oldest first (damaged lines left out)."""

    @abstractmethod
    def dump(self, out: IO[bytes]) -> int:
        """Write every event's line as stored, in order, to OUT; how many."""

    @abstractmethod
    def load(self, lines: Sequence[bytes], events: Sequence[ev.AnyEvent]) -> None:
        """Put LINES (a whole log, EVENTS decoded from them) into this empty store, byte for byte."""

    @abstractmethod
    def repair(self, seen: Checkpoint | None = None) -> dict[str, Any]:
        """Set aside what cannot be read so the log verifies again, deleting nothing; the report
        `evhub repair --json` prints. With SEEN (a checkpoint the hub reached that the log no longer
        holds: it was rewound or replaced), first put back every event the hub had seen. The caller
        holds the hub lock."""

    poll_s: float  # how often a follower reads the store when nothing woke it

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Wait until the store may have grown (True) or TIMEOUT seconds pass (False)."""

    def locked(self) -> AbstractContextManager[None]:
        """Held while a command catches up, decides and appends: a store shared beyond this machine's
        file lock serializes writers here (a file needs nothing more)."""
        return nullcontext()

    @abstractmethod
    def close(self) -> None:
        """Let go of files and connections (the store reopens them when used again)."""


def _spans(block: bytes, needle: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line of BLOCK (whole lines) that holds NEEDLE or a \\u escape, in order.
    C-speed searches: a block without either costs no Python step per line."""
    found: list[tuple[int, int]] = []
    kinds = 0
    for one in (needle, ESCAPE) if b"\\" in block else (needle,):
        at = block.find(one)
        kinds += at >= 0
        while at >= 0:
            start = block.rfind(b"\n", 0, at) + 1
            end = block.index(b"\n", at) + 1
            found.append((start, end))
            at = block.find(one, end)
    return sorted(set(found)) if kinds > 1 else found


def chain(events: Sequence[ev.Event]) -> None:
    """Mark EVENTS as one write: each but the last has `more`."""
    for e in events[:-1]:
        e.more = True


def check_numbering(events: Sequence[ev.Event], expected: int) -> None:
    """ExpectedPositionError unless EVENTS are numbered expected+1, expected+2, ..."""
    for n, e in enumerate(events, expected + 1):
        if e.seq != n:
            raise ExpectedPositionError(f"event seq {e.seq} does not follow {n - 1}")


class JsonlStore(Store):
    """The log as a JSONL file. Appends must be made under the hub lock.

    It remembers the seq and byte offset it last reached, so reading the tail after a
    checkpoint never scans the whole file.  Bytes after the last whole event (a write that
    did not finish) are never taken as an event; the next append sets them aside.
    """

    name = "jsonl"

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._later = False  # within synced_later(): appends leave their fsync to sync()
        self._unsynced: int | None = None  # the fd appended to since the last fsync, when sync() owes one
        self.position = (0, 0)  # (seq, byte offset just past that event's line)
        self.torn_tail = b""  # bytes past the last whole event, as the last read found them
        self.scanned_to = 0  # the offset after the last whole line the last full scan saw
        self.reached = 0
        self._fd: int | None = None  # the log, kept open between calls
        self._fd_key: tuple[int, int, int] | None = None  # (our pid, device, inode) it was opened as
        self._seen_last: tuple[int, bytes] = (0, b"")  # the last line this store read or wrote, and its end
        self._copy_fd: int | None = None  # seen.jsonl, kept open between appends
        self._copy_key: tuple[int, int, int] | None = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._close_copy()

    def __del__(self) -> None:
        self.close()

    def _file(self, create: bool = False, check: bool = False) -> int | None:
        """The log's file descriptor (None when there is no log and not CREATE). It is kept open
        between calls; with CHECK (at the start of each scan) it is opened again when the path names
        another file now (a repair, or a hand replaced it), and it always is in a forked child."""
        if self._fd is not None and not check and self._fd_key is not None and self._fd_key[0] == os.getpid():
            return self._fd
        try:
            st = os.stat(self.path, follow_symlinks=False)
            key: tuple[int, int, int] | None = (os.getpid(), st.st_dev, st.st_ino)
        except FileNotFoundError:
            if not create:
                return None
            key = None
        except OSError as e:
            raise StorageError(f"cannot open the log {self.path}: {e.strerror}") from e
        if self._fd is not None and key == self._fd_key:
            return self._fd
        self.close()
        flags = os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            try:
                fd = os.open(self.path, flags | os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
            except OSError as e:
                if create or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                fd = os.open(self.path, flags | os.O_RDONLY)  # a hub we may only read
        except OSError as e:
            raise StorageError(f"cannot open the log {self.path}: {e.strerror}") from e
        st = os.fstat(fd)
        self._fd, self._fd_key = fd, (os.getpid(), st.st_dev, st.st_ino)
        return fd

    def blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, block of whole lines) from byte START on; what follows the last newline is torn_tail."""
        self.torn_tail = b""
        self.scanned_to = start
        fd = self._file(check=True)
        if fd is None:
            return  # a store that was never written to is empty
        offset, size = start, CHUNK
        while True:
            # Each read starts at the line the last block did not finish (read again: a few bytes), so a
            # block is cut from one read, never joined to what was left of the one before.
            try:
                rest = os.pread(fd, size, offset)
            except OSError as e:
                raise StorageError(f"cannot read the log {self.path}: {e.strerror}") from e
            cut = rest.rfind(b"\n") + 1
            if not cut:
                if len(rest) < size:
                    break  # the end of the log
                size *= 2  # a line longer than a block
                continue
            block = rest if cut == len(rest) else rest[:cut]
            self._seen_last = (offset + cut, block[block.rfind(b"\n", 0, -1) + 1:])
            self.reached = offset
            yield offset, block
            offset, size = offset + cut, CHUNK
        if rest and _whole_event(rest):
            # The last event lost only its newline: it is whole, so it is read as the line it was (and the
            # next append writes the newline); otherwise the next writer would set it aside and hand its
            # seq, perhaps a fencing token, out again.
            block = rest + b"\n"
            self._seen_last = (offset + len(block), block)
            self.reached = offset
            yield offset, block
            offset, rest = offset + len(block), b""
        self.torn_tail = rest
        self.scanned_to = self.reached = offset

    def head(self) -> int:
        for _ in self.read(self.position[0]):
            pass
        return self.position[0]

    def read_blocks(self, after: int = 0) -> Iterator[list[ev.AnyEvent]]:
        """The events with seq > AFTER, a list per block of the file (replay folds whole lines)."""
        if not 0 < self.position[0] <= after:
            self.position = (0, 0)
        last, start = self.position
        check = LogCheck(last, 0 if start == 0 else None)
        torn = b""
        for offset, block in self.blocks(start):
            events, damage = check.block(offset, block)
            if events:
                yield events if events[0].seq > after else [e for e in events if e.seq > after]
            if check.pending:
                self.position = (check.counted, check.pending_from)
            elif events:
                self.position = (events[-1].seq, offset + len(block) if damage is None else damage.offset)
            if damage is not None:
                if damage.event is None and damage.offset + len(damage.raw) == self.size() \
                        and not _glued(damage.raw):
                    torn = damage.raw  # the last line, and not a whole event: a write that did not finish
                else:
                    raise self._corrupt(damage)  # after the events before it, so readers can answer from them
        if check.pending:
            # A write of several events that did not finish: none of it is an event.
            torn = self._read_range(check.pending_from, self.scanned_to)
        self.torn_tail = torn + self.torn_tail

    def events_at(self, seqs: Sequence[int]) -> dict[int, ev.AnyEvent]:
        """Read on from each to the next when it is near, found by bisecting the file on the seqs its lines
        begin with when it is far: a few lines are a few reads, thousands one pass over the stretch of log
        that holds them."""
        found: dict[int, ev.AnyEvent] = {}
        end = self.size()
        finder = _SeqFinder(self._read_range, end, _seq_of)
        scan: _SeqFinder | None = None
        for seq in sorted(set(seqs)):
            line = finder.find(seq)
            if line is None:
                # A line whose seq cannot be told without decoding it (damage, a hand-made line) may hide it:
                # the log is read from its start, decoding each line (once for all the seqs not found).
                scan = scan or _SeqFinder(self._read_range, end, _decoded_seq, bisect=False)
                line = scan.find(seq)
            if line is not None:
                found[seq] = ev.decode(line.raw)
        return found

    def _corrupt(self, damage: Damage) -> CorruptLog:
        number = damage.number if damage.number is not None else self._line_number(damage.offset)
        return CorruptLog(f"{self.path}: line {number} (byte {damage.offset}): {damage.reason}")

    def newest(self, count: int) -> list[ev.AnyEvent]:
        """The events in the last COUNT * 128 bytes of the file that count from its first event there on,
        up to a damaged line."""
        start = max(0, self.size() - count * 128)
        found: list[ev.AnyEvent] = []
        check: LogCheck | None = None
        lines = self.lines(start)
        if start:
            next(lines, None)  # the first line may be cut
        for line in lines:
            if check is None:
                try:
                    check = LogCheck(ev.decode(line.raw).seq - 1, None)
                except CorruptLog:
                    continue
            verdict = check.line(line)
            if isinstance(verdict, Damage):
                break
            found += verdict
        return found

    def _last_line(self, offset: int) -> bytes:
        # Empty at 0, or when OFFSET is past the end.
        size = 4096
        while offset:
            start = max(0, offset - size)
            data = self._read_range(start, offset)
            if len(data) == offset - start - 1 and data and not data.endswith(b"\n"):
                data += b"\n"  # the last event lost only its newline: blocks() reads it as if it were there
            if len(data) != offset - start:
                return b""
            cut = data.rfind(b"\n", 0, len(data) - 1)
            if cut >= 0 or start == 0:
                return data[cut + 1:]
            size *= 4
        return b""

    def _read_range(self, start: int, end: int) -> bytes:
        fd = self._file(check=True)  # the file the path names now: resume must see a log replaced by a repair
        if fd is None:
            return b""
        try:
            return os.pread(fd, end - start, start)
        except OSError as e:
            raise StorageError(f"cannot read the log {self.path}: {e.strerror}") from e

    def size(self) -> int:
        """The log's size in bytes (0 when it was never written)."""
        try:
            return os.stat(self.path, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise StorageError(f"cannot read the log {self.path}: {e.strerror}") from e

    def _line_number(self, offset: int) -> int:
        count = 1
        for block_offset, block in self.blocks(0):
            if block_offset >= offset:
                break
            count += block[: offset - block_offset].count(b"\n")
        return count

    def append(self, events: Sequence[ev.Event], expected: int, *, chained: bool = False) -> None:
        head = self.head()
        if head != expected:
            raise ExpectedPositionError(f"the log moved: expected head {expected}, found {head}")
        check_numbering(events, expected)
        if not events:
            return
        if not chained:
            chain(events)
        data = b"".join(ev.encode(e) for e in events)
        end = self.position[1]
        if self.torn_tail:
            self._quarantine(end, self.torn_tail)
        fd = self._file(create=True)
        assert fd is not None
        if end and self._size_of(fd) == end - 1:
            end, data = end - 1, b"\n" + data  # the last event lost only its newline (see blocks): write it first
        self._write_at(fd, end, data)
        self._keep_copy(end, data)
        self._seen_last = (end + len(data), ev.encode(events[-1]))
        self.torn_tail = b""
        self.position = (events[-1].seq, end + len(data))

    def dump(self, out: IO[bytes]) -> int:
        # The file's bytes up to the end of its last whole event: a torn tail is not an event.
        count = sum(len(events) for events in self.read_blocks(0))
        end = self.position[1]
        for offset, block in self.blocks(0):
            if offset >= end:
                break
            out.write(block[: end - offset])
        return count

    def load(self, lines: Sequence[bytes], events: Sequence[ev.AnyEvent]) -> None:
        if self.head() != 0 or self.size() != 0:
            raise ExpectedPositionError(f"{self.path} is not empty: import loads into an empty store")
        data = b"".join(lines)
        fd = self._file(create=True)
        assert fd is not None
        self._write_at(fd, 0, data)
        self._keep_copy(0, data)
        self.position = (events[-1].seq if events else 0, len(data))

    def repair(self, seen: Checkpoint | None = None) -> dict[str, Any]:
        """Rewrite the log as every intact event in seq order, after copying it aside. An intact event is
        a line (or one of several glued by lost newlines) that is an event with an id and a seq not seen
        before and a seq the log can hold; lines out of order are put back in it.  The rest (not events,
        repeats, seqs out of range, a write that did not finish) move to quarantine/ beside the log with
        a note; each seq left missing gets an `event_lost` placeholder, so seq stays gap-free and every
        later event keeps its seq (and so its fencing token).  Time and memory go with the log's size.
        The new log replaces the old one by an atomic rename.  With SEEN, the log is first put back from
        the copy of every line appended (seen.jsonl, beside it), which must hold SEEN."""
        folder = self.path.parent
        stamp = file_stamp()
        # With EVHUB_NOW fixed, two repairs share a stamp: never write over an earlier backup.
        base, n = stamp, 1
        while (folder / f"{self.path.name}.before-repair-{stamp}").exists():
            n += 1
            stamp = f"{base}-{n}"
        backup = folder / f"{self.path.name}.before-repair-{stamp}"
        if seen is not None:
            copy = JsonlStore(self._copy_path, fsync=False)
            if not copy.resume(seen):
                raise CorruptLog(f"the log was rewound or replaced, and {self._copy_path.name} does not hold the "
                                 f"{seen.seq} events the hub had seen either: nothing to restore them from (to "
                                 "take the log as it is, delete the read model)")
            try:
                _copy_whole(self.path, backup)
                _copy_whole(self._copy_path, self.path)
            except OSError as e:
                raise StorageError(f"cannot restore the log: {e.strerror}; the log is unchanged") from e
            self.position = (0, 0)
            result = self.repair()
            return {**result, "repaired": True, "restored": True, "backup": backup.name}
        quarantine = folder / "quarantine"
        moved: list[str] = []

        def put_aside(raw: bytes, number: int, offset: int, why: str) -> None:
            note = (f"{len(raw)} bytes from line {number} (byte {offset}) of {self.path.name}, "
                    f"set aside by evhub repair: {why}")
            moved.append(f"quarantine/{set_aside(quarantine, f'{stamp}-line-{number}', raw, note)}")

        # Every line is placed by its own seq, so lines out of order (swapped by hand) keep their events.
        entries: list[tuple[int, LogLine]] = []  # (line number, line): glued events are lines of one number
        for number, line in enumerate(self.lines(0), 1):
            at = line.offset
            for raw in _glued(line.raw) or [line.raw]:
                entries.append((number, LogLine(at, raw)))
                at += len(raw) - 1
        torn, torn_at = self.torn_tail, self.scanned_to
        # A log of N lines holds seqs up to N, more only where lines went missing: a seq past twice that is
        # damage, never a gap to fill (a seq of 9e18 would be placeholders without end).
        highest = 2 * len(entries) + 1
        latest = future_limit()  # a later time is a clock that ran ahead: it would stop every write
        found: dict[int, tuple[int, LogLine]] = {}
        ts: dict[int, str] = {}
        ids: set[str] = set()
        top = 0  # the highest seq of an event set aside whole: it keeps its seq, as a placeholder
        progress = Progress("repair", self.size())
        for number, line in entries:
            progress.update(line.offset, number)
            try:
                event = ev.decode(line.raw)
            except CorruptLog as err:
                put_aside(line.raw, number, line.offset, f"not an event ({err})")
                continue
            if not 0 < event.seq <= highest:
                why = f"seq {event.seq} is out of range: a log of {len(entries)} lines cannot hold it"
            elif event.id in ids:
                why = f"seen before (id {event.id} appears twice)"
            elif event.seq in found:
                why = f"seen before (seq {event.seq} appears twice)"
            elif latest is not None and event.ts > latest:
                why = f"stamped {event.ts}, ahead of the real clock by more than it may be: a clock ran ahead"
                top = max(top, event.seq)
            else:
                ids.add(event.id)
                found[event.seq], ts[event.seq] = (number, line), event.ts
                continue
            put_aside(line.raw, number, line.offset, why)
        progress.done()
        # Each seq missing below the highest one found (or set aside whole) gets a placeholder, at the time
        # of the event before it, so every later event keeps its seq and no seq is handed out again.
        kept: list[tuple[int, LogLine]] = []  # (line number, or 0 for a placeholder; line) in seq order
        lost, when = 0, ts[min(found)] if found else now()
        for seq in range(1, max(max(found, default=0), top) + 1):
            if seq in found:
                kept.append(found[seq])
                when = ts[seq]
                continue
            placeholder = ev.EventLost(seq=seq, id=new_id(), ts=when,
                                       reason=f"seq {seq} was missing or unreadable; see {quarantine.name}/")
            kept.append((0, LogLine(0, ev.encode(placeholder))))
            lost += 1
        check = LogCheck()
        for _, line in kept:
            verdict = check.line(line)
            assert not isinstance(verdict, Damage), verdict  # seqs 1..N, each once, by construction
        # The events of a write that did not finish (its last line has `more`) are one torn write.
        for number, line in kept[len(kept) - len(check.pending):]:
            put_aside(line.raw, number, line.offset, "part of a write of several events that did not finish")
        del kept[len(kept) - len(check.pending):]
        if torn:
            put_aside(torn, (entries[-1][0] if entries else 0) + 1, torn_at, "an unfinished write")
        if not moved and not lost and [n for n, _ in kept] == list(range(1, len(kept) + 1)):
            return {"repaired": False, "events": check.counted, "set_aside": [], "lost": 0, "backup": None,
                    "restored": False}
        fresh = folder / f".{self.path.name}.repair-{stamp}"
        try:
            _copy_whole(self.path, backup)
            try:
                with open(fresh, "wb") as f:
                    f.write(b"".join(line.raw for _, line in kept))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(fresh, self.path)
            finally:
                fresh.unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"cannot rewrite the log: {e.strerror}; the log is unchanged") from e
        self.position = (0, 0)
        return {"repaired": True, "events": check.counted, "set_aside": moved, "lost": lost,
                "backup": backup.name, "restored": False}

    poll_s = 0.2

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)  # a file gives no wake-up worth its cost: followers poll it, cheaply
        return True

    @cached_property
    def _copy_path(self) -> Path:
        return self.path.with_name("seen.jsonl")

    @cached_property
    def _copy_name(self) -> str:
        return os.fspath(self._copy_path)  # asked at every append: a string, not a Path made again

    @contextmanager
    def synced_later(self) -> Iterator[None]:
        self._later = True
        try:
            yield
        finally:
            self._later = False

    def sync(self) -> None:
        # Group commit: the hub lock is let go before this fsync, so the next writer decides and writes while
        # it runs, and one flush of the file carries every write before it. The next writer sees this write
        # before it is durable, but acknowledges its own only after its own fsync, which makes every earlier
        # line durable too: no acknowledged event ever stands on one that a crash can take away.
        fd, self._unsynced = self._unsynced, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as e:
            raise StorageError(f"cannot make the append to the log {self.path} durable: {e.strerror}; the event "
                               "was written but the disk did not confirm it") from e

    def _keep_copy(self, end: int, data: bytes) -> None:
        """Add DATA, just written at END of the log, to seen.jsonl: a copy of every line the hub appended,
        so a log rewound or replaced by hand loses nothing (`evhub repair` puts it back). A copy that
        does not end where the log did is made again from the log. Not synced: the log is the commit."""
        try:
            fd = self._copy_file()
            size = os.fstat(fd).st_size
            if size == end:
                os.pwrite(fd, data, end)
            else:
                import shutil

                shutil.copyfile(self.path, self._copy_path, follow_symlinks=False)  # the log ends with DATA now
        except OSError:
            # Best effort, after the log's own write: without a copy, the next append makes it again.
            self._close_copy()
            with suppress(OSError):
                self._copy_path.unlink(missing_ok=True)

    def _copy_file(self) -> int:
        """seen.jsonl, kept open between appends (opened again when the path names another file, or in a
        forked child)."""
        try:
            st = os.stat(self._copy_name, follow_symlinks=False)
            key: tuple[int, int, int] | None = (os.getpid(), st.st_dev, st.st_ino)
        except FileNotFoundError:
            key = None
        if self._copy_fd is not None and key == self._copy_key:
            return self._copy_fd
        self._close_copy()
        fd = os.open(self._copy_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        self._copy_fd, self._copy_key = fd, (os.getpid(), st.st_dev, st.st_ino)
        return fd

    def _close_copy(self) -> None:
        if self._copy_fd is not None:
            with suppress(OSError):
                os.close(self._copy_fd)
            self._copy_fd = None

    def _size_of(self, fd: int) -> int:
        try:
            return os.fstat(fd).st_size
        except OSError as e:
            raise StorageError(f"cannot read the log {self.path}: {e.strerror}") from e

    def _write_at(self, fd: int, end: int, data: bytes) -> None:
        """Write DATA at END, cutting off what followed; on failure leave the log as it was."""
        try:
            if os.fstat(fd).st_size != end:
                os.ftruncate(fd, end)  # a torn tail, already set aside
            view = memoryview(data)
            pos = end
            while view:
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
            if self.fsync and self._later:
                self._unsynced = fd
            elif self.fsync:
                os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, end)
            except OSError:
                pass
            raise StorageError(f"cannot append to the log {self.path}: {e.strerror}") from e

    def _quarantine(self, offset: int, data: bytes) -> None:
        """Set aside bytes that are not a whole event, with a note of where they came from."""
        set_aside(
            self.path.parent / "quarantine",
            f"{file_stamp()}-{self.path.name}-at-{offset}",
            data,
            f"{len(data)} bytes moved from {self.path.name} at byte {offset}: a write that did not finish, "
            "so not an event.",
        )


def parse_log(data: bytes, name: str) -> tuple[list[bytes], list[ev.AnyEvent]]:
    """The lines of a whole exported log and their events; CorruptLog naming the first line that
    does not count (_integrity's rule, ids unique across the log), or when it does not start a hub."""
    if data and not data.endswith(b"\n"):
        raise CorruptLog(f"{name}: the last line has no newline: not a whole log")
    check = LogCheck(ids=set())
    events, damage = check.block(0, data)
    if damage is not None:
        raise CorruptLog(f"{name}: line {damage.number}: {damage.reason}")
    if check.pending:
        raise CorruptLog(f"{name}: ends in a write that did not finish")
    if not events or not isinstance(events[0], ev.HubCreated):
        raise CorruptLog(f"{name}: a log starts with a hub_created event")
    return whole_lines(data), events


class _SeqFinder:
    """Finds the lines of a JSONL log (READ(start, end) gives its bytes, END long) by their seqs, asked in
    increasing order: it reads on from the last line it found while the next seq is NEAR, else bisects the
    rest of the file (unless not BISECT). SEQ_OF tells a line's seq (None when it cannot)."""

    NEAR = 512  # lines: reading on through them costs less than the 20 or so reads of a bisection

    def __init__(self, read: Callable[[int, int], bytes], end: int, seq_of: Callable[[bytes], int | None],
                 bisect: bool = True) -> None:
        self.read, self.end, self.seq_of, self.bisect = read, end, seq_of, bisect
        self.offset, self.seq = 0, 0  # the start of the next line to look at, and the seq of the line before it
        self.block: list[LogLine] = []  # the whole lines read last; block[i] starts at self.offset
        self.i = 0
        self.size = PROBE  # the next read's: reading on for long, reads grow to a block

    def find(self, seq: int) -> LogLine | None:
        if self.bisect and seq - self.seq > self.NEAR:
            self._bisect(seq)
        while True:
            if self.i == len(self.block) and not self._read_on():
                return None
            line = self.block[self.i]
            at = self.seq_of(line.raw)
            if at is not None and at > seq:
                return None
            self.i += 1
            self.offset = line.offset + len(line.raw)
            if at is not None:
                self.seq = at
            if at == seq:
                return line

    def _read_on(self) -> bool:
        """Read the whole lines after self.offset; False at the end of the log (or before a torn tail)."""
        while self.offset < self.end:
            data = self.read(self.offset, min(self.end, self.offset + self.size))
            cut = data.rfind(b"\n") + 1
            if not cut and self.offset + len(data) >= self.end:
                return False
            self.size = min(2 * self.size, CHUNK) if cut else 2 * self.size  # a line longer than the read
            if cut:
                self.block, self.i = list(lines_of(self.offset, data[:cut])), 0
                return True
        return False

    def _bisect(self, seq: int) -> None:
        """Move on to a line at or before SEQ's, halving the rest of the file a read at a time. A line whose
        seq cannot be told ends it: the rest is read in turn."""
        lo, hi = self.offset, self.end
        while hi - lo > 4 * PROBE:
            mid = (lo + hi) // 2
            probe = self.read(mid, min(hi, mid + PROBE))
            begin = probe.find(b"\n") + 1
            stop = probe.find(b"\n", begin)
            at = self.seq_of(probe[begin:stop]) if begin and stop > 0 else None
            if at is None:
                break
            if at <= seq:
                lo, self.seq = mid + begin, at - 1
            else:
                hi = mid
        if lo != self.offset:
            self.offset, self.block, self.i, self.size = lo, [], 0, PROBE


def _seq_of(raw: bytes) -> int | None:
    """The seq line RAW names, read without decoding it (None when it names none)."""
    found = _SEQ.search(raw)
    return int(found[1]) if found else None


def _decoded_seq(raw: bytes) -> int | None:
    try:
        return ev.decode(raw).seq
    except CorruptLog:
        return None


def _copy_whole(source: Path, target: Path) -> None:
    """Copy SOURCE to TARGET by way of a temporary name, so TARGET is whole or absent (a disk that fills up
    midway leaves no backup that only looks complete)."""
    import shutil  # off the start-up path: only repair and a copy made again need it

    part = target.with_name(f".{target.name}.part")
    try:
        with open(source, "rb", opener=_nofollow) as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _glued(raw: bytes) -> list[bytes]:
    """The lines of RAW when it is whole events that lost the newlines between them (else none). A quote
    within a JSON string is escaped, so `}{"` occurs in such a line only where one event ends and the
    next begins."""
    parts = raw.rstrip(b"\n").split(b'}{"')
    if len(parts) < 2:
        return []
    lines = [parts[0] + b"}\n", *(b'{"' + p + b"}\n" for p in parts[1:-1]), b'{"' + parts[-1] + b"\n"]
    return lines if all(_whole_event(line) for line in lines) else []


def _whole_event(raw: bytes) -> bool:
    try:
        ev.decode(raw)
    except CorruptLog:
        return False
    return True


def set_aside(folder: Path, name: str, data: bytes, note: str) -> str:
    """Write DATA to FOLDER/NAME.bin and NOTE to NAME.txt beside it, never over an earlier pair
    (with EVHUB_NOW fixed, two names can share a time); returns the .bin file's name.  FOLDER is
    never followed out of the hub: a link planted in its place is refused."""
    try:
        with suppress(FileExistsError):
            os.mkdir(folder)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StorageError(f"cannot set aside {len(data)} bytes in {folder}: it is a link or a file, not a "
                                   "folder, and evhub writes nothing through it (remove it)") from e
            raise
        try:
            base, n = name, 1
            while True:
                try:
                    out = os.open(f"{name}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  0o644, dir_fd=fd)
                    break
                except FileExistsError:
                    n += 1
                    name = f"{base}-{n}"
            with os.fdopen(out, "wb") as f:
                f.write(data)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            with os.fdopen(os.open(f"{name}.txt", flags, 0o644, dir_fd=fd), "w") as f:
                f.write(note + "\n")
        finally:
            os.close(fd)
    except OSError as e:
        raise StorageError(f"cannot set aside {len(data)} bytes in {folder}: {e.strerror}") from e
    return f"{name}.bin"
