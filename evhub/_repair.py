"""`evhub repair`: make a damaged log verify again without deleting anything.

The log is copied aside first.  Lines that are not whole events, and duplicates, move to
SESSIONS/events/quarantine/ with a note; each seq left missing gets an `event_lost`
placeholder, so seq stays gap-free and every later event keeps its seq (and so its fencing
token).  The new log replaces the old one by an atomic rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import _events as ev
from ._errors import CorruptLog, StorageError
from ._progress import Progress
from ._store import JsonlStore, LogLine, set_aside
from ._values import file_stamp, new_id


def repair(log_path: Path) -> dict[str, Any]:
    """Rewrite the log at LOG_PATH as its readable events. The caller holds the hub lock."""
    store = JsonlStore(log_path)
    folder = log_path.parent
    stamp = file_stamp()
    quarantine = folder / "quarantine"
    # With EVHUB_NOW fixed, two repairs share a stamp: never write over an earlier backup.
    base, n = stamp, 1
    while (folder / f"{log_path.name}.before-repair-{stamp}").exists():
        n += 1
        stamp = f"{base}-{n}"
    kept: list[bytes] = []
    moved: list[str] = []
    lost = 0
    ids: set[str] = set()
    expected = 1
    lines = 0
    unfinished: list[tuple[int, LogLine]] = []

    def put_aside(raw: bytes, number: int, offset: int, why: str) -> None:
        note = (f"{len(raw)} bytes from line {number} (byte {offset}) of {log_path.name}, "
                f"set aside by evhub repair: {why}")
        moved.append(f"quarantine/{set_aside(quarantine, f'{stamp}-line-{number}', raw, note)}")

    progress = Progress("repair", store.size())
    for number, line in enumerate(store.lines(0), 1):
        lines = number
        progress.update(line.offset, number)
        try:
            event = ev.decode(line.raw)
        except CorruptLog as e:
            put_aside(line.raw, number, line.offset, f"not an event ({e})")
            continue
        if event.seq < expected or event.id in ids:
            put_aside(line.raw, number, line.offset, f"seq {event.seq} or id {event.id} seen before")
            continue
        for seq in range(expected, event.seq):
            placeholder = ev.EventLost(seq=seq, id=new_id(), ts=event.ts,
                                       reason=f"seq {seq} was missing or unreadable; see {quarantine.name}/")
            kept.append(ev.encode(placeholder))
            lost += 1
        kept.append(line.raw)
        unfinished = unfinished + [(number, line)] if event.more is True else []
        ids.add(event.id)
        expected = event.seq + 1
    progress.done()
    # The events of a write that did not finish (its last line has `more`) are one torn write.
    for number, line in unfinished:
        kept.pop()
        put_aside(line.raw, number, line.offset, "part of a write of several events that did not finish")
        expected -= 1
    if store.torn_tail:
        put_aside(store.torn_tail, lines + 1, store.scanned_to, "an unfinished write")
    if not moved and not lost:
        return {"repaired": False, "events": expected - 1, "set_aside": [], "lost": 0, "backup": None}
    backup = folder / f"{log_path.name}.before-repair-{stamp}"
    fresh = folder / f".{log_path.name}.repair-{stamp}"
    try:
        shutil.copyfile(log_path, backup, follow_symlinks=False)
        with open(fresh, "wb") as f:
            f.write(b"".join(kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(fresh, log_path)
    except OSError as e:
        raise StorageError(f"cannot rewrite the log: {e.strerror}; the log is unchanged") from e
    return {"repaired": True, "events": expected - 1, "set_aside": moved, "lost": lost,
            "backup": backup.name}
