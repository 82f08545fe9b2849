"""`evhub verify`: read every line of the log and check it against the read model."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec

from . import _events as ev
from ._cache import SnapshotStale, load_snapshot
from ._errors import CorruptLog
from ._progress import Progress
from ._readmodel import ReadModel
from ._state import State, fold
from ._store import JsonlStore, Store, _plain_run, lines_of

WARNINGS_SHOWN = 20
_ID = attrgetter("id")


class _RepeatedId(Exception):
    """A block added an id that was there already: check again line by line to name the line."""


def verify(store: Store, readmodel: ReadModel, label: str = "verify") -> dict[str, Any]:
    """Check that every line of STORE is an event, seq runs 1..N, ids are unique and READMODEL
    agrees with a full fold.  Raises CorruptLog at the first problem; returns the warnings."""
    try:
        return _verify(store, readmodel, label, by_block=True)
    except _RepeatedId:
        return _verify(store, readmodel, label, by_block=False)


def _verify(store: Store, readmodel: ReadModel, label: str, by_block: bool) -> dict[str, Any]:
    state = State()
    ids: set[str] = set()
    warnings: list[str] = []
    unknown = 0
    number = 0  # lines checked so far
    pending: list[ev.AnyEvent] = []  # a write of several events whose last one is still to come
    # A JSONL log's marks are bytes, as verify's offsets are; a PostgreSQL log's are seqs.
    by_bytes = isinstance(store, JsonlStore)
    progress = Progress(label, store.size())
    for offset, block in store.blocks(0):
        progress.update(offset if by_bytes else number, number)
        events = ev.decode_block(block)
        if (by_block and events is not None and not pending and len(events) == block.count(b"\n")
                and _plain_run(events, state.seq) and ev.is_canonical(events, block) and _add_ids(events, ids)):
            # The common block: whole known events in order with new ids, checked a block at a time.
            number += len(events)
            fold(events, state)
            state.stored()  # the messages table is checked by count below, not kept in memory
            continue
        for line in lines_of(offset, block):
            raw = line.raw
            number += 1
            where = f"line {number} (byte {line.offset})"
            try:
                e = ev.decode(raw)
            except CorruptLog as err:
                raise CorruptLog(f"{where}: {err}") from err
            expected = state.seq + len(pending) + 1
            if e.seq != expected:
                raise CorruptLog(f"{where}: seq {e.seq} where {expected} was expected")
            if e.id in ids:
                raise CorruptLog(f"{where}: id {e.id} appears twice")
            ids.add(e.id)
            extra = ev.unknown_fields(raw, e)
            if isinstance(e, ev.UnknownEvent) or extra:
                unknown += 1
                if unknown <= WARNINGS_SHOWN:
                    what = f"unknown type {e.type}" if isinstance(e, ev.UnknownEvent) else f"unknown fields {extra}"
                    warnings.append(f"{where}: {what} (from a newer evhub?): kept, not folded")
            # A write of several events counts only once its last event (the one without `more`) is there.
            pending.append(e)
            if e.more is not True:
                fold(pending, state)
                state.stored()
                pending = []
    progress.done()
    if unknown > WARNINGS_SHOWN:
        warnings.append(f"... {unknown - WARNINGS_SHOWN} more lines with unknown types or fields")
    if pending:
        warnings.append(
            f"the last {len(pending)} events are a write that did not finish; the next write sets them aside"
        )
    if store.torn_tail:
        warnings.append(
            f"{len(store.torn_tail)} bytes after the last event are an unfinished write; "
            "the next write sets them aside"
        )
    _check_read_model(readmodel, store, state, warnings)
    return {"events": state.seq + len(pending), "warnings": warnings, "unknown": unknown}


def _add_ids(events: list[ev.AnyEvent], ids: set[str]) -> bool:
    """Add the ids of EVENTS to IDS; _RepeatedId when one was there already or comes twice."""
    before = len(ids)
    ids.update(map(_ID, events))
    if len(ids) - before != len(events):
        raise _RepeatedId
    return True


def _check_read_model(readmodel: ReadModel, store: Store, state: State, warnings: list[str]) -> None:
    """The read model, caught up on the log, must equal the full fold, and hold every message."""
    try:
        loaded = load_snapshot(readmodel, store)
    except SnapshotStale:
        loaded = None
        warnings.append("the read model is behind a rewritten log; the next command rebuilds it")
    if loaded is None:
        return
    cached_state, checkpoint = loaded
    if checkpoint.seq > state.seq:
        warnings.append("the read model is behind a rewritten log; the next command rebuilds it")
        return
    fold(store.read(checkpoint.seq), cached_state)
    held = readmodel.message_count() + len(cached_state.new_messages)
    cached_state.stored()
    if held != state.message_count or msgspec.msgpack.encode(cached_state) != msgspec.msgpack.encode(state):
        raise CorruptLog("the read model disagrees with a full fold of the log: run `evhub replay`")
