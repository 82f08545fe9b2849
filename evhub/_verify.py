"""`evhub verify`: read every line of the log and check it against the read model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from . import _events as ev
from ._errors import CorruptLog
from ._state import State, fold
from ._store import JsonlStore

if TYPE_CHECKING:
    from ._hub import Hub

WARNINGS_SHOWN = 20


def verify(hub: Hub) -> dict[str, Any]:
    """Check that every line is an event, seq runs 1..N, ids are unique and the read model
    agrees with a full fold.  Raises CorruptLog at the first problem; returns the warnings."""
    store = JsonlStore(hub.log_path)
    state = State()
    ids: set[str] = set()
    warnings: list[str] = []
    unknown = 0
    expected = 1
    pending: list[ev.AnyEvent] = []
    for number, line in enumerate(store.lines(0), 1):
        where = f"line {number} (byte {line.offset})"
        try:
            e = ev.decode(line.raw)
        except CorruptLog as err:
            raise CorruptLog(f"{where}: {err}") from err
        if e.seq != expected:
            raise CorruptLog(f"{where}: seq {e.seq} where {expected} was expected")
        if e.id in ids:
            raise CorruptLog(f"{where}: id {e.id} appears twice")
        ids.add(e.id)
        extra = ev.unknown_fields(line.raw, e)
        if isinstance(e, ev.UnknownEvent) or extra:
            unknown += 1
            if unknown <= WARNINGS_SHOWN:
                what = f"unknown type {e.type}" if isinstance(e, ev.UnknownEvent) else f"unknown fields {extra}"
                warnings.append(f"{where}: {what} (from a newer evhub?): kept, not folded")
        # A write of several events counts only once its last event (the one without `more`) is there.
        pending.append(e)
        if e.more is not True:
            fold(pending, state)
            pending = []
        expected += 1
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
    cached = hub.readmodel.load()
    if cached is not None:
        cached_state, checkpoint = cached
        if checkpoint.seq <= state.seq and hub._checkpoint_holds(checkpoint):
            store.seek(checkpoint.seq, checkpoint.offset)
            fold(store.read(checkpoint.seq), cached_state)
            if msgspec.msgpack.encode(cached_state) != msgspec.msgpack.encode(state):
                raise CorruptLog("the read model disagrees with a full fold of the log: run `evhub replay`")
        else:
            warnings.append("the read model is behind a rewritten log; the next command rebuilds it")
    return {"events": state.seq, "warnings": warnings, "unknown": unknown}
