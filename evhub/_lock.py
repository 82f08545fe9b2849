"""The hub lock: an flock on SESSIONS/events/lock, taken with a bounded wait.

flock is released by the kernel when its holder dies, so a crashed writer never blocks
anyone; the holder's pid is written into the file only to name it in "hub busy" errors.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType

from ._errors import HubBusy, StorageError
from ._values import env_number

DEFAULT_TIMEOUT_S = 10.0


def lock_timeout() -> float:
    """Seconds to wait for the lock: EVHUB_LOCK_TIMEOUT, else 10."""
    return env_number("EVHUB_LOCK_TIMEOUT", DEFAULT_TIMEOUT_S, 3600)


class HubLock:
    """`with lock:` holds the hub exclusively.

    The lock file stays open between uses, so a burst of calls does not open it each time; it is
    opened again when the path names another file (deleted or replaced by hand: locking the old
    one would exclude nobody) and in a forked child, which must not share its parent's lock."""

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._key: tuple[int, int, int] | None = None  # (our pid, device, inode) of the open file
        self._held = False
        self._pid_written = 0

    def __enter__(self) -> HubLock:
        assert not self._held, "the hub lock is not re-entrant"
        timeout = lock_timeout() if self.timeout is None else self.timeout
        while True:
            fd = self._open()
            if not _flock_within(fd, timeout):
                holder = _read_holder(fd)
                self.close()  # also lets go of a lock the kernel granted just as the wait ran out
                raise HubBusy(
                    f"hub busy: the lock is held by {holder} for over {timeout:g}s "
                    "(raise EVHUB_LOCK_TIMEOUT to wait longer)"
                )
            if self._names_our_file():
                break
            self.close()  # deleted or replaced: lock the file that is there now
        if self._key is not None and self._key[0] != self._pid_written:
            # Fixed width, so a shorter pid never leaves digits of a longer one behind.
            os.pwrite(fd, f"{os.getpid():>10}\n".encode(), 0)
            self._pid_written = self._key[0]
        self._held = True
        return self

    def _open(self) -> int:
        if self._fd is not None and self._key is not None and self._key[0] == os.getpid():
            return self._fd  # whether the path still names it is checked once the lock is held
        self.close()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StorageError(f"cannot open the hub lock {self.path}: {e.strerror}") from e
        st = os.fstat(fd)
        self._fd, self._key, self._pid_written = fd, (os.getpid(), st.st_dev, st.st_ino), 0
        return fd

    def _names_our_file(self) -> bool:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (os.getpid(), st.st_dev, st.st_ino) == self._key

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing also lets go of the flock
            self._fd = None
            self._key = None

    def __del__(self) -> None:
        self.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class _Expired(Exception):
    """The wait for the lock ran out."""


def _expire(signum: int, frame: FrameType | None) -> None:
    raise _Expired


def _flock_within(fd: int, timeout: float) -> bool:
    """Take the flock on FD, waiting at most TIMEOUT seconds; False when it stayed held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        if timeout <= 0:
            return False
    if threading.current_thread() is threading.main_thread():
        # A blocking flock is woken by the kernel when the holder lets go, so a waiter is not starved
        # by writers that retake the lock between two polls; a timer signal bounds the wait.
        previous = signal.signal(signal.SIGALRM, _expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        except _Expired:
            return False  # the caller closes FD, which also lets go of a lock taken at the last moment
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    # Signals reach only the main thread: other threads poll.
    deadline = time.monotonic() + timeout
    delay = 0.001
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
    return False


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    if not (pid.isascii() and pid.isdigit()):  # '²' is a digit int() refuses
        return "another process"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "another process"  # the pid recorded is gone: the holder is not an evhub process
    except PermissionError:
        pass
    return f"pid {pid}"
