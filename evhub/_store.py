"""The log store: a small interface (head, read after a position, append at an expected
position) and its JSONL implementation, the hub's only source of truth."""

from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, NamedTuple

from . import _events as ev
from ._errors import CorruptLog, ExpectedPositionError, StorageError
from ._values import file_stamp

CHUNK = 64 * 1024


class Store(ABC):
    """An append-only sequence of events numbered 1, 2, 3 ... without gaps.

    A store also has marks: where in it an event ends, in its own unit (a byte offset of the JSONL
    file, a seq in PostgreSQL). `position` is the (seq, mark) its last read or write reached, and
    `last_line(mark)` the line of the event ending there, so a cached state can be checked against
    the store before it is trusted."""

    position: tuple[int, int]

    @abstractmethod
    def head(self) -> int:
        """The seq of the last event (0 for an empty store)."""

    def read(self, after: int = 0) -> Iterator[ev.AnyEvent]:
        """Every event with seq > AFTER, in order."""
        for events in self.read_blocks(after):
            yield from events

    @abstractmethod
    def read_blocks(self, after: int = 0) -> Iterator[list[ev.AnyEvent]]:
        """The events with seq > AFTER, a list at a time (folds take whole lists); sets position."""

    @abstractmethod
    def append(self, events: Sequence[ev.Event], expected: int) -> None:
        """Append EVENTS (numbered expected+1, ...) if the head is EXPECTED, else ExpectedPositionError."""

    @abstractmethod
    def seek(self, seq: int, mark: int) -> None:
        """Start the next read after SEQ at MARK (a checkpoint the caller has checked)."""

    @abstractmethod
    def last_line(self, mark: int) -> bytes:
        """The log line of the event that ends at MARK (empty when there is none)."""

    @abstractmethod
    def seen_line(self, mark: int) -> bytes:
        """last_line(MARK), from memory when this store just read or wrote it."""

    @abstractmethod
    def size(self) -> int:
        """How far the store reaches, in marks (for progress bars)."""

    @abstractmethod
    def blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, block of whole lines) from byte START of the log as `evhub export` writes it."""

    def lines(self, start: int = 0) -> Iterator[LogLine]:
        """Every whole line from byte START on."""
        for offset, block in self.blocks(start):
            yield from lines_of(offset, block)

    torn_tail: bytes  # what the last blocks() found after the last whole line: a write that did not finish
    scanned_to: int  # the byte after the last whole line the last blocks() gave

    @abstractmethod
    def dump(self, out: IO[bytes]) -> int:
        """Write every event's line as stored, in order, to OUT; how many."""

    @abstractmethod
    def load(self, lines: Sequence[bytes], events: Sequence[ev.AnyEvent]) -> None:
        """Put LINES (a whole log, EVENTS decoded from them) into this empty store, byte for byte."""

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


def check_numbering(events: Sequence[ev.Event], expected: int) -> None:
    """ExpectedPositionError unless EVENTS are numbered expected+1, expected+2, ..."""
    for n, e in enumerate(events, expected + 1):
        if e.seq != n:
            raise ExpectedPositionError(f"event seq {e.seq} does not follow {n - 1}")


def run_of(events: Sequence[ev.AnyEvent], last: int) -> bool:
    """Whether EVENTS number last+1, last+2 ... without a gap."""
    return [e.seq for e in events] == list(range(last + 1, last + 1 + len(events)))


class LogLine(NamedTuple):
    """One whole line of the log and the byte it starts at."""

    offset: int
    raw: bytes


def _whole_lines(block: bytes) -> list[bytes]:
    """The lines of BLOCK, each with its newline. Only a newline ends a line of the log:
    bytes.splitlines would also cut at a stray carriage return and misplace every offset after it."""
    return [line + b"\n" for line in block.split(b"\n")[:-1]]


def lines_of(offset: int, block: bytes) -> Iterator[LogLine]:
    """The lines of BLOCK, which starts at byte OFFSET of the log."""
    pos = offset
    for raw in _whole_lines(block):
        yield LogLine(pos, raw)
        pos += len(raw)


def _line_start(block: bytes, index: int) -> int:
    """The offset in BLOCK of its line number INDEX (from 0)."""
    pos = 0
    for _ in range(index):
        pos = block.index(b"\n", pos) + 1
    return pos


def _plain_run(events: list[ev.AnyEvent], last: int) -> bool:
    """Whether EVENTS number last+1, last+2 ... and none of them has `more` (one pass over the list)."""
    return [e.seq for e in events if e.more is not True] == list(range(last + 1, last + 1 + len(events)))


class JsonlStore(Store):
    """The log as a JSONL file. Appends must be made under the hub lock.

    It remembers the seq and byte offset it last reached, so reading the tail after a
    checkpoint never scans the whole file.  Bytes after the last whole event (a write that
    did not finish) are never taken as an event; the next append sets them aside.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self.position = (0, 0)  # (seq, byte offset just past that event's line)
        self.torn_tail = b""  # bytes past the last whole event, as the last read found them
        self.scanned_to = 0  # the offset after the last whole line the last full scan saw
        self._fd: int | None = None  # the log, kept open between calls
        self._fd_key: tuple[int, int, int] | None = None  # (our pid, device, inode) it was opened as
        self._seen_last: tuple[int, bytes] = (0, b"")  # the last line this store read or wrote, and its end

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def seek(self, seq: int, mark: int) -> None:
        self.position = (seq, mark)

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
        offset, rest = start, b""
        while True:
            try:
                chunk = os.pread(fd, CHUNK, offset + len(rest))
            except OSError as e:
                raise StorageError(f"cannot read the log {self.path}: {e.strerror}") from e
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                block = data[:cut]
                self._seen_last = (offset + cut, block[block.rfind(b"\n", 0, -1) + 1:])
                yield offset, block
                offset += cut
        self.torn_tail = rest
        self.scanned_to = offset

    def head(self) -> int:
        for _ in self.read(self.position[0]):
            pass
        return self.position[0]

    def read_blocks(self, after: int = 0) -> Iterator[list[ev.AnyEvent]]:
        """The events with seq > AFTER, a list per block of the file (replay folds whole lists)."""
        if not 0 < self.position[0] <= after:
            self.position = (0, 0)
        last, start = self.position
        torn = b""
        batch: list[ev.AnyEvent] = []  # a multi-event write whose last event has not been read yet
        batch_start = start
        for offset, block in self.blocks(start):
            events = ev.decode_block(block)
            end = offset + len(block)
            damaged = None
            if events is not None and len(events) != block.count(b"\n"):
                events = None  # a blank line, or two values on one line: not one event a line
            if events is None:
                events, torn, damaged = self._decode_located(offset, block)
                # A last line that is not a whole event is a torn write, never an event.
                end -= len(torn)
            if not batch and _plain_run(events, last):
                # The common block: seq runs on without a gap and no write spans lines.
                if events:
                    last = events[-1].seq
                    yield events if events[0].seq > after else [e for e in events if e.seq > after]
            else:
                done: list[ev.AnyEvent] = []
                for i, e in enumerate(events):
                    if e.seq != last + 1:
                        raise CorruptLog(f"{self.path}: seq {e.seq} follows seq {last}: a gap or a repeat "
                                         "(`evhub verify` names the line)")
                    last = e.seq
                    if e.more is True:
                        if not batch:
                            batch_start = offset + _line_start(block, i)
                        batch.append(e)
                        continue
                    done += (f for f in (*batch, e) if f.seq > after)
                    batch = []
                if done:
                    yield done
            if damaged is not None:
                raise damaged  # after the whole events before it, so readers can answer from them
            if batch:
                self.position = (batch[0].seq - 1, batch_start)
            elif events:
                self.position = (events[-1].seq, end)
        if batch:
            # A write of several events that did not finish: none of it is an event.
            torn = self._read_range(batch_start, self.scanned_to)
        self.torn_tail = torn + self.torn_tail

    def _decode_located(
        self, offset: int, block: bytes
    ) -> tuple[list[ev.AnyEvent], bytes, CorruptLog | None]:
        """Decode line by line: the events before a bad line, and the bad line as torn bytes when it
        ends the file, else as a CorruptLog naming its place."""
        out: list[ev.AnyEvent] = []
        pos = 0
        for raw in _whole_lines(block):
            try:
                out.append(ev.decode(raw))
            except CorruptLog as e:
                if pos + len(raw) == len(block) and self.size() == offset + len(block):
                    return out, raw, None
                number = self._line_number(offset + pos)
                damaged = CorruptLog(f"{self.path}: line {number} (byte {offset + pos}): {e}")
                damaged.__cause__ = e
                return out, b"", damaged
            pos += len(raw)
        return out, b"", None

    def seen_line(self, offset: int) -> bytes:
        # No check that the file still holds it: last_line is that check.
        end, line = self._seen_last
        return line if end == offset else self.last_line(offset)

    def last_line(self, offset: int) -> bytes:
        # Empty at 0, or when OFFSET is past the end.
        size = 4096
        while offset:
            start = max(0, offset - size)
            data = self._read_range(start, offset)
            if len(data) != offset - start:
                return b""
            cut = data.rfind(b"\n", 0, len(data) - 1)
            if cut >= 0 or start == 0:
                return data[cut + 1:]
            size *= 4
        return b""

    def _read_range(self, start: int, end: int) -> bytes:
        fd = self._file()
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

    def append(self, events: Sequence[ev.Event], expected: int) -> None:
        head = self.head()
        if head != expected:
            raise ExpectedPositionError(f"the log moved: expected head {expected}, found {head}")
        check_numbering(events, expected)
        if not events:
            return
        for e in events[:-1]:
            e.more = True
        data = b"".join(ev.encode(e) for e in events)
        end = self.position[1]
        if self.torn_tail:
            self._quarantine(end, self.torn_tail)
        fd = self._file(create=True)
        assert fd is not None
        self._write_at(fd, end, data)
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
        self.position = (events[-1].seq if events else 0, len(data))

    poll_s = 0.2

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)  # a file gives no wake-up worth its cost: followers poll it, cheaply
        return True

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
            if self.fsync:
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
    """The lines of a whole exported log and their events; CorruptLog naming the first line that is
    not an event, or breaks the seq run, repeats an id, or does not start a hub."""
    if data and not data.endswith(b"\n"):
        raise CorruptLog(f"{name}: the last line has no newline: not a whole log")
    lines = _whole_lines(data)
    events = ev.decode_block(data) if data else []
    if events is None or len(events) != len(lines):
        events = []
        for number, raw in enumerate(lines, 1):
            try:
                events.append(ev.decode(raw))
            except CorruptLog as e:
                raise CorruptLog(f"{name}: line {number}: {e}") from e
    if not events or not isinstance(events[0], ev.HubCreated):
        raise CorruptLog(f"{name}: a log starts with a hub_created event")
    if not run_of(events, 0):
        number = next(n for n, e in enumerate(events, 1) if e.seq != n)
        raise CorruptLog(f"{name}: line {number}: seq {events[number - 1].seq} where {number} was expected")
    if len({e.id for e in events}) != len(events):
        seen: set[str] = set()
        for number, event in enumerate(events, 1):
            if event.id in seen:
                raise CorruptLog(f"{name}: line {number}: id {event.id} appears twice")
            seen.add(event.id)
    if events[-1].more is True:
        raise CorruptLog(f"{name}: ends in a write that did not finish")
    return lines, events


def set_aside(folder: Path, name: str, data: bytes, note: str) -> str:
    """Write DATA to FOLDER/NAME.bin and NOTE to NAME.txt beside it, never over an earlier pair
    (with EVHUB_NOW fixed, two names can share a time); returns the .bin file's name."""
    try:
        folder.mkdir(exist_ok=True)
        base, n = name, 1
        while (folder / f"{name}.bin").exists():
            n += 1
            name = f"{base}-{n}"
        (folder / f"{name}.bin").write_bytes(data)
        (folder / f"{name}.txt").write_text(note + "\n")
    except OSError as e:
        raise StorageError(f"cannot set aside {len(data)} bytes in {folder}: {e.strerror}") from e
    return f"{name}.bin"
