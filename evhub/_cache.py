"""The state at the head of the log, loaded the one way evhub loads it: the read model's snapshot
when its checkpoint still matches the log, then the log's tail folded on top.

`load_snapshot` is that rule; `StateCache` keeps the folded state between a Hub's calls (so a call
folds only what was appended since), saves it to the read model and rebuilds the read model from
the whole log.  The Hub, `evhub watch` and `evhub verify` all load through here.
"""

from __future__ import annotations

from . import _events as ev
from ._changed import Changed
from ._errors import CorruptLog, LogRewound, StorageError
from ._order import fold_in_order, fold_log
from ._progress import Progress
from ._readmodel import ReadModel, ReadModelBehind
from ._state import OutOfOrder, State, fold
from ._store import Checkpoint, Store


def load_snapshot(readmodel: ReadModel, store: Store) -> tuple[State, Checkpoint] | None:
    """The read model's state and checkpoint when it still matches STORE, which is then positioned
    to read the events after it; None when there is no read model.  A read model that does not
    match raises SnapshotStale."""
    cached = readmodel.load()
    if cached is None:
        return None
    state, checkpoint = cached
    if not store.resume(checkpoint):
        raise SnapshotStale(checkpoint)
    return state, checkpoint


class SnapshotStale(Exception):
    """The read model's checkpoint is not in the log (the log was rewound or replaced)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(f"the read model stands at seq {checkpoint.seq}, which the log does not hold")
        self.checkpoint = checkpoint


def still_holds(store: Store, cp: Checkpoint) -> bool:
    """Whether STORE holds the event checkpoint CP stands after, wherever in it: a checkpoint whose mark
    alone is wrong (a damaged read model) is no rewound log.  The whole log is read: this is asked only
    when the checkpoint did not hold where it said."""
    if cp.seq == 0:
        return True
    for line in store.lines(0):
        try:
            seq = ev.decode(line.raw).seq
        except CorruptLog:
            continue
        if seq == cp.seq:
            return cp.matches(line.raw)
    return False


def rewound(store: Store, stale: SnapshotStale) -> LogRewound:
    """The error that says the log under STORE went back behind what the hub had seen (STALE)."""
    try:
        now_holds = f"it now ends at seq {sum(1 for _ in store.read(0))}"
    except CorruptLog:
        now_holds = "what it holds now is damaged too"
    return LogRewound(f"the log was rewound or replaced: the hub had seen {stale.checkpoint.seq} events and "
                      f"the log no longer holds them ({now_holds})")


class StateCache:
    """The folded state of one store, kept between calls, and the read model that caches it.
    Every method is called under the hub lock; WARNINGS collects what the caller should be told."""

    def __init__(self, store: Store, readmodel: ReadModel, warnings: list[str]) -> None:
        self.store = store
        self.readmodel = readmodel
        self.warnings = warnings
        self._state: State | None = None  # the state folded last, kept for the next call
        self._kept: Checkpoint | None = None  # where in the log that state stands
        self._base = 0  # the read model's seq that the kept state's new messages follow
        self.changed = Changed()  # what the events folded into the kept state changed, since it was loaded

    def catch_up(self) -> State:
        """The state at the head of the log.

        It starts from the state kept from last time when the log still holds what it was folded
        from, else from the read model's snapshot when that holds, else from nothing; then folds the
        tail. Any failure forgets the kept state, so no half-folded state is reused."""
        try:
            kept = self._state is not None and self._kept_holds()
            if self._state is not None and not kept and self._kept is not None \
                    and not still_holds(self.store, self._kept):
                # What this Hub folded last is gone from the log: rewound, even if the read model is older.
                raise rewound(self.store, SnapshotStale(self._kept))
            state = self._state if kept and self._state is not None else self._load()
            self._state = None
            if state.seq == 0:
                state = self.rebuild("building the read model")
            try:
                for events in self.store.read_blocks(state.seq):
                    fold(events, state)
                    self.changed.add(events)
            except OutOfOrder:
                # A merge brought events that sort before some this state holds: fold the log again, in order.
                state = self.rebuild("folding the merged log in order")
        except BaseException:
            self._state = None
            raise
        self._state = state
        return state

    def lost(self) -> Checkpoint | None:
        """The read model's checkpoint when the log no longer holds it (it was rewound or replaced)."""
        cached = self.readmodel.load()
        if cached is None or self.store.resume(cached[1]) or still_holds(self.store, cached[1]):
            return None
        return cached[1]

    def forget(self) -> None:
        """Drop the kept state (it holds events that were never appended)."""
        self._state = None

    def _kept_holds(self) -> bool:
        return self._kept is not None and self.store.resume(self._kept)

    def _load(self) -> State:
        """The read model's state, positioned at its checkpoint; an empty state when it is unusable."""
        try:
            loaded = load_snapshot(self.readmodel, self.store)
        except SnapshotStale as stale:
            if not still_holds(self.store, stale.checkpoint):
                raise rewound(self.store, stale) from None
            self.warnings.append("the read model did not match the log; rebuilt it from the log")
            self.readmodel.discard()
            loaded = None
        if loaded is not None:
            state, checkpoint = loaded
            self._base = checkpoint.seq
            self.changed.restart(checkpoint)
            return state
        self._base = 0
        self.changed.restart(None)
        return State()

    def remember(self, state: State) -> None:
        """Keep STATE for the next call, with where it stands in the log."""
        self._kept = self.store.checkpoint()
        self._state = state

    def kept_state(self) -> State | None:
        """The state kept for the next call."""
        return self._state

    def kept_at(self) -> Checkpoint | None:
        """Where in the log the state kept for the next call stands."""
        return self._kept

    def save(self, state: State) -> None:
        """Store STATE (remembered) in the read model, when it holds anything the read model lacks."""
        if state.seq == self._base and not state.new_messages and not state.new_renames:
            return
        assert self._kept is not None
        try:
            self.readmodel.save(state, self._kept, self._base)
        except ReadModelBehind:
            # Deleted or swapped under us: fold again from what it holds, and store that.
            self._state = None
            state = self.catch_up()
            self.remember(state)
            self.readmodel.save(state, self._kept, self._base)
        self._base = state.seq

    def rebuild(self, label: str) -> State:
        """Fold the whole log into a new read model a block at a time, so memory stays flat however
        many messages the log holds, with a progress bar LABEL on a terminal."""
        self._state = None
        self.changed.restart(None)
        state = State()
        try:
            self.readmodel.discard()
            progress = Progress(label, self.store.size())
            with self.readmodel.writing(0) as writer:
                try:
                    for events in self.store.read_blocks(0):
                        fold(events, state)
                        writer.take(state)
                        progress.update(self.store.reached, state.seq)
                except OutOfOrder:
                    writer.restart()
                    state = fold_in_order(self.store, each=writer.take)
                progress.done()
                self.remember(state)
                assert self._kept is not None
                writer.finish(state, self._kept)
            self._base = state.seq
        except StorageError as e:
            # The messages handed to the failed transaction are gone from STATE: fold again, in memory.
            self.warnings.append(f"{e} (the log is intact; the next command retries)")
            state = fold_log(self.store)
            self._base = 0
        return state
