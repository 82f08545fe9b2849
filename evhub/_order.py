"""The order a hub's events are folded in, the same on every clone, and the union of two clones' logs.

A log is append-only and its `seq` is a position in this clone's file: clones that exchange events (by
`evhub sync` or `evhub merge`) hold them at different positions. So the fold does not follow positions
but numbers (`Event.number`):

- A hub that never synced numbers its events by their seqs (no `num` is written).
- From its first sync a hub is a clone with an index k (0..CLONES-1), and each event it writes gets
  the smallest number above every number it knows that ends in k (num % CLONES == k): Lamport numbers
  in disjoint classes. Two clones never hand out one number (nor one fencing token), and an event always
  outnumbers everything its writer knew, so nothing sorts before what it was decided on.
- The fold takes whole writes (one command's events, chained by `more`) by the time of their first event,
  then its number. A write is stamped no earlier than anything its writer knew, and numbered above it, so
  nothing sorts before what it was decided on; of writes made apart, the earlier by the clocks comes first.
  Clones that hold the same events fold them in the same order, whatever order they arrived in.

A log whose writes arrived in that order (every hub that never merged, and a clone whose merges only
brought newer events) folds in one pass; otherwise the fold meets a write that sorts before one it
folded (OutOfOrder), and the log is folded again, sorted (fold_in_order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import msgspec

from . import _events as ev
from ._errors import BadInput, CorruptLog, UnrelatedHub
from ._state import OutOfOrder, State, fold
from ._store import Store

CHUNK = 4096  # events folded at once from a sorted log, between two calls of the caller's EACH


def writes(events: Iterable[ev.AnyEvent]) -> list[list[ev.AnyEvent]]:
    """EVENTS cut into writes: each event with `more` continues into the next."""
    out: list[list[ev.AnyEvent]] = []
    current: list[ev.AnyEvent] = []
    for e in events:
        current.append(e)
        if e.more is not True:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def in_order(events: Iterable[ev.AnyEvent]) -> list[ev.AnyEvent]:
    """EVENTS in the fold's order: whole writes, by the time and number of their first event."""
    return [e for write in sorted(writes(events), key=_when) for e in write]


def _when(write: list[ev.AnyEvent]) -> tuple[str, int]:
    return write[0].ts, write[0].number


def fold_in_order(store: Store, each: Callable[[State], None] | None = None) -> State:
    """Every event of STORE folded in the fold's order, calling EACH with the state after every CHUNK
    events; the state's seq is then the log's last position, where a read of its tail starts."""
    state = State()
    events = in_order(store.read(0))
    for start in range(0, len(events), CHUNK):
        fold(events[start:start + CHUNK], state)
        if each is not None:
            each(state)
    state.seq = store.position[0]
    return state


def fold_log(store: Store) -> State:
    """The state after every event of STORE: in one pass while its writes come in order, else sorted."""
    try:
        return fold(store.read(0))
    except OutOfOrder:
        return fold_in_order(store)


def events_in_order(store: Store) -> Iterator[ev.AnyEvent]:
    """Every event of STORE in the fold's order: streamed from a hub that never synced (its log holds no
    `num`), sorted in memory otherwise."""
    if next(store.search([b'"num":']), None) is None:
        return store.read(0)
    return iter(in_order(store.read(0)))


def union(state: State, known: set[str], theirs: Sequence[ev.AnyEvent], name: str) -> list[ev.Event]:
    """The events of THEIRS (another clone's whole log, read from NAME) that a hub at STATE, holding the
    events whose ids are KNOWN, lacks: whole writes in the fold's order, given this log's next seqs.
    UnrelatedHub when THEIRS is another hub's log."""
    first = theirs[0]
    if first.id != state.hub_id:
        raise UnrelatedHub(f"{name} is the log of another hub (made {first.ts}, id {first.id}); this hub was "
                           f"made {state.created} (id {state.hub_id}): only clones of one hub merge")
    new: list[list[ev.AnyEvent]] = []
    for write in writes(theirs):
        held = sum(e.id in known for e in write)
        if held == len(write):
            continue
        if held:
            raise CorruptLog(f"{name}: a write there holds events this hub holds and events it lacks")
        for e in write:
            if isinstance(e, ev.UnknownEvent):
                raise BadInput(f"{name}: event {e.number} is of type {e.type}, unknown to this evhub: "
                               "upgrade evhub to merge it")
            if e.num is msgspec.UNSET:
                raise BadInput(f"{name}: event {e.seq} ({e.id}) is not in this hub and is numbered by its position: "
                               "that log is a copy of this hub that went on apart, not a clone (clones are made "
                               "by `evhub sync`); its events cannot be numbered apart from these")
        new.append(write)
    new.sort(key=_when)
    out: list[ev.Event] = []
    for seq, e in enumerate((e for write in new for e in write), state.seq + 1):
        assert not isinstance(e, ev.UnknownEvent)
        e.seq = seq
        out.append(e)
    return out


__all__ = ["OutOfOrder", "events_in_order", "fold_in_order", "fold_log", "in_order", "union", "writes"]
