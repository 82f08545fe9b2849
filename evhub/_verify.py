"""`evhub verify`: read every line of the log and check it against the read model; and the views
against what evhub last wrote from it."""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile
from pathlib import Path
from typing import Any

import msgspec

from ._cache import SnapshotStale, load_snapshot, rewound, still_holds
from ._errors import CorruptLog
from ._handedits import Record, describe, find_edits
from ._integrity import LogCheck
from ._order import fold_in_order
from ._progress import Progress
from ._readmodel import ReadModel
from ._state import OutOfOrder, State, fold
from ._store import Checkpoint, Store
from ._values import future_limit

Snapshot = tuple[State, Checkpoint, int] | SnapshotStale | None  # the read model's state, checkpoint and messages

WARNINGS_SHOWN = 20


def verify(store: Store, readmodel: ReadModel, label: str = "verify") -> dict[str, Any]:
    """Check that every line of STORE counts (_integrity's rule, with ids unique across the log)
    and that READMODEL agrees with a full fold.  Raises CorruptLog at the first problem; returns
    the warnings."""
    # The read model first: writers append meanwhile, so the full fold read after it reaches at least its
    # seq, and the two are compared at the fold's seq.
    snapshot = _snapshot(readmodel, store)
    state = State()
    warnings: list[str] = []
    check = LogCheck(ids=set(), strict=True, latest=future_limit(store.clock()))
    progress = Progress(label, store.size())
    merged = False  # a merge put the log out of the fold's order: it is folded again, sorted, once checked
    for offset, block in store.blocks(0):
        progress.update(store.reached, check.number or 0)
        events, damage = check.block(offset, block)
        if not merged:
            try:
                fold(events, state)
            except OutOfOrder:
                merged = True
        state.stored()  # the messages table is checked by count below, not kept in memory
        if damage is not None:
            raise CorruptLog(f"{damage.where()}: {damage.reason}")
    progress.done()
    if merged:
        state = fold_in_order(store, each=State.stored)
    for number, offset, what in check.unknown[:WARNINGS_SHOWN]:
        warnings.append(f"line {number} (byte {offset}): {what} (from a newer evhub?): kept, not folded")
    if len(check.unknown) > WARNINGS_SHOWN:
        warnings.append(f"... {len(check.unknown) - WARNINGS_SHOWN} more lines with unknown types or fields")
    if check.pending:
        warnings.append(
            f"the last {len(check.pending)} events are a write that did not finish; the next write sets them aside"
        )
    if store.torn_tail:
        warnings.append(
            f"{len(store.torn_tail)} bytes after the last event are an unfinished write; "
            "the next write sets them aside"
        )
    _check_read_model(snapshot, store, state, warnings)
    return {"events": check.last, "warnings": warnings, "unknown": len(check.unknown)}


def _snapshot(readmodel: ReadModel, store: Store) -> Snapshot:
    """The read model's state and checkpoint (STORE then stands there) and how many messages it held up
    to that checkpoint (a writer may store later ones before they are counted); the SnapshotStale it
    raised, judged after the log's lines; None when there is no read model."""
    try:
        loaded = load_snapshot(readmodel, store)
    except SnapshotStale as stale:
        return stale
    return None if loaded is None else (*loaded, readmodel.message_count(upto=loaded[0].number))


def _check_read_model(snapshot: Snapshot, store: Store, state: State, warnings: list[str]) -> None:
    """The read model, caught up on the log to the full fold's seq, must equal the full fold, and hold
    every message."""
    if isinstance(snapshot, SnapshotStale):
        if not still_holds(store, snapshot.checkpoint):
            raise rewound(store, snapshot) from None  # the lines are whole, but some the hub had seen are gone
        warnings.append("the read model's checkpoint is damaged; the next command rebuilds it")
        return
    if snapshot is None:
        return
    cached_state, checkpoint, messages = snapshot
    if checkpoint.seq > state.seq:
        warnings.append("the read model is behind a rewritten log; the next command rebuilds it")
        return
    try:
        fold(takewhile(lambda e: e.seq <= state.seq, store.read(checkpoint.seq)), cached_state)
    except OutOfOrder:
        warnings.append("the read model stands before a merge that brought older events; the next command "
                        "folds the log again")
        return
    held = messages + len(cached_state.new_messages)
    cached_state.stored()
    if held != state.message_count or msgspec.msgpack.encode(cached_state) != msgspec.msgpack.encode(state):
        raise CorruptLog("the read model disagrees with a full fold of the log: run `evhub replay`")


def check_views(record: Record, folders: list[Path], label: Callable[[Path, str], str]) -> list[dict[str, str]]:
    """Each file of FOLDERS that differs from what evhub last wrote there from the log (by RECORD): its
    LABEL and how it differs. A folder evhub has not written yet is not checked."""
    from ._render import VIEW_DIRS

    return [
        {"file": label(folder, edit.rel), "differs": describe(edit)}
        for folder in folders if (seen := record.files(folder)) is not None
        for edit in find_edits(folder, dict(seen), VIEW_DIRS)  # a copy: verify changes nothing
    ]
