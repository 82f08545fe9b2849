"""The Hub: the imperative shell around the pure core, and the use cases every front end calls.

Every mutating call runs the one loop: take the hub lock -> catch up on the log -> take the hand
edits of the views (in a write of their own) -> decide against that state -> append all of its
events in one write (fsync) -> publish (the read model and the views) -> release.  Reading calls
catch up the same way, so the read model and the views mend themselves after any damage, and answer
from that state.

Finding and creating hubs is in _place, loading the state in _cache, history queries in _history,
what a hand edit of a view meant in _handedits, verify in _verify, repair in the store (only it knows
how its log is kept): the Hub calls them and keeps only the loop.
"""

from __future__ import annotations

import atexit
import io
import math
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import _decide as cmd
from . import _events as ev
from . import _place
from ._cache import StateCache
from ._errors import (
    BadInput,
    Conflict,
    CorruptLog,
    EvhubError,
    ExpectedPositionError,
    HubNotFound,
    LogRewound,
    StorageError,
)
from ._handedits import COPIES, Base, Edit, Record, commands_for, find_edits
from ._lock import HubLock
from ._pgstore import StoreSettings
from ._readmodel import ReadModel
from ._results import Claimed, Location, Merged, Recall, Saved
from ._state import CLONES, NOT_CLONED, Message, Milestone, State, evolve, is_unread
from ._store import Checkpoint, Store
from ._values import file_stamp, format_duration, new_id, now, parse_when, read_time, seconds_between, write_time

if TYPE_CHECKING:
    from ._adopt import Adoption
    from ._history import LogFilter
    from ._integrity import LogLine

SESSIONS = _place.SESSIONS
RETRIES = 50  # decide-and-append rounds lost to other machines' appends before a command gives up
RECENT_EVENTS = 10  # a recall's latest events of the session
REGISTERING = ("HEARTBEATS/", "DISCOVERY/", "REGISTRY.json")  # views whose hand edits may register a session
RENDERED_ONLY = "the views were rebuilt from the log without reading it"
IGNORE_VIEWS = b"# evhub: generated views, not tracked (git config evhub.trackViews true)\n*\n"

# Hubs holding events that their read model and views do not show yet; flushed at exit.
_unpublished: weakref.WeakSet[Hub] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for hub in list(_unpublished):
        try:
            hub.flush()
        except EvhubError as e:
            print(f"warning: evhub could not refresh {hub.dir} at exit: {e}", file=sys.stderr)


def _decided(command: cmd.Command, state: State, clock: str, *, origin: str | None = None,
             caller: str | None = None, on_behalf: bool = False, clone: int | None = None) -> list[ev.Event]:
    """COMMAND's events, decided against STATE at CLOCK (numbered as clone CLONE), given their ids (and ORIGIN)
    and folded into STATE."""
    decided = cmd.decide(command, state, clock, caller=caller, on_behalf=on_behalf, clone=clone)
    for event in decided:
        event.id = new_id()
        if origin is not None:
            event.origin = origin
        evolve(state, event)
    return decided


def _claimed(events: list[ev.Event], state: State) -> Claimed:
    """The claim a command's EVENTS (a claim last) made, folded into STATE."""
    e = events[-1]
    assert isinstance(e, ev.PriorityClaimed)
    token = state.claims[e.priority].token
    former = e.took_over_from
    if former is None:
        return Claimed(e.priority, token)
    # The claim was stale: its holder dead (silent past the alive ttl), or alive with its claim's ttl run out.
    silent = seconds_between(state.sessions[former].last_seen, e.ts)
    because = "its ttl ran out" if state.is_alive(former, e.ts) else f"silent {format_duration(silent)}"
    return Claimed(e.priority, token, former, because)


class Hub:
    """A hub: the folder holding SESSIONS/, whose event log (SESSIONS/events/log.jsonl, or the
    PostgreSQL table its settings name) is the truth.

    Every call appends its events durably before it returns. The read model and the views follow:
    a Hub refreshes them at once when it last did so PUBLISH_EVERY seconds ago or more (so a
    one-off call, and every CLI command, refreshes them before it returns), else it leaves them
    for its next call, flush(), or the end of the process: a burst of calls pays for one refresh
    a second, not one a call.  A reading call refreshes them first when they do not show the state it
    answers from, unless `refresh_on_read` is False (`evhub mcp`, whose thread flushes every second).

    `warnings` collects what a call noticed and mended without failing (a read model rebuilt, a
    view that could not be written, a read-only hub answered from the log): each line is for a
    person; the CLI prints them on stderr and clears the list.  `damage` is the damaged line the last
    read stopped at (None when the log read whole): the answer holds every event before it, and is
    no whole answer, so the CLI exits 4 after printing it.  A Hub is for one thread at a time."""

    def __init__(self, root: Path | str, *, publish_every: float = 1.0, store: StoreSettings | None = None) -> None:
        self.root = Path(root).absolute()
        self._settings = store  # init's own: its connection string may hold the password the kept one lacks
        self.dir = self.root / SESSIONS
        self.events_dir = _place.events_dir(self.root)
        self.log_path = self.events_dir / "log.jsonl"
        self.readmodel = ReadModel(self.events_dir / "readmodel.sqlite3")
        self.warnings: list[str] = []
        self.damage: CorruptLog | None = None
        self.adopted: Adoption | None = None  # what `init(adopt=True)` carried over from a hand-kept folder
        self.publish_every = publish_every
        self.refresh_on_read = True  # False: reads leave the views to flush() (a server that runs it on a timer)
        # Who the caller is, when known (the CLI's EVHUB_SESSION): acting for another session is then
        # refused unless on_behalf says it is meant, and recorded (decide's rule).
        self.caller: str | None = None
        self.on_behalf = False
        self._cache = StateCache(self.open_store(), self.readmodel, self.warnings)
        self._hub_lock = HubLock(self.events_dir / "lock")
        self._views = Record(self.events_dir)  # what evhub last wrote into each views folder
        self._unchanged: dict[str, set[str]] | None = None  # per folder, the views the last look found unedited
        self._published_at = -math.inf
        self._published_cp: Checkpoint | None = None  # where the state this Hub last published stands
        self._cacheless = False  # answering from a fold of the log alone (a read-only hub)
        if _place.in_work_tree(self.root):
            self.warnings.append(f"this hub's log is in the work tree ({self.events_dir}), where git commands can "
                                 "rewind it: run `evhub migrate` to move it out of git's reach")

    @property
    def store(self) -> Store:
        """This Hub's own handle on its log (commands append through it)."""
        return self._cache.store

    def open_store(self) -> Store:
        """A new handle on this hub's log: the JSONL file, or the PostgreSQL table its settings name."""
        return self._settings.open() if self._settings is not None else _place.open_store(self.root)

    def exists(self) -> bool:
        return _place.holds_log(self.root)

    def _check_exists(self) -> None:
        if not self.exists():
            raise HubNotFound(f"no hub at {self.root}")

    # -- finding and creating ---------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path | str = ".", alive_ttl_s: int = 300, adopt: bool = False,
             store: StoreSettings | None = None, events: tuple[list[bytes], list[ev.AnyEvent]] | None = None,
             ) -> tuple[Hub, bool]:
        """Create a hub in DIRECTORY; (hub, False) when one is already there, unchanged, or another
        init (here, or another machine's on the same PostgreSQL schema) made it first.  See
        _place.create for STORE, EVENTS and ADOPT; the hub's `adopted` says what ADOPT carried over."""
        root = Path(directory).absolute()
        created, adopted = _place.create(root, alive_ttl_s, adopt, store, events)
        hub = cls(root, store=store if created is not None else None)
        hub.adopted = adopted
        if created is not None:
            hub.flush(force=True)
        return hub, bool(created)

    @classmethod
    def find(cls, hub: Path | str | None = None, start: Path | str | None = None) -> Hub:
        """The hub at HUB, else at $EVHUB_HUB, else the nearest one above START (the current directory)."""
        return cls(_place.find(hub, start))

    # -- the loop -----------------------------------------------------------------------------

    def _lock(self) -> HubLock:
        return self._hub_lock

    def _due(self) -> bool:
        """Whether PUBLISH_EVERY seconds have passed since this Hub last published."""
        return time.monotonic() - self._published_at >= self.publish_every

    def _publish(self, state: State, now_: bool = True) -> None:
        """Save the read model and render the views now when NOW_, else at the next call that finds
        them due (_due), flush() or exit.

        Both are caches of the log, so failing to write them is a warning: the log already holds
        every acknowledged event."""
        self._cache.remember(state)
        if not now_:
            self._unchanged = None  # the render that would have spared looking at them again is not now
            if self._cache.kept_at() != self._published_cp:
                _unpublished.add(self)  # else the views show this state already: nothing is left for later
            return
        self._save(state, render=True)
        self._published_at = time.monotonic()
        _unpublished.discard(self)

    def _save(self, state: State, render: bool) -> None:
        """Save STATE (remembered) to the read model, and render its views when RENDER."""
        try:
            self._cache.save(state)
            if render:
                self.render(state)
                self._published_cp = self._cache.kept_at()
        except EvhubError as e:
            # The events are appended: that is the command's result, whatever a cache of them says.
            self.warnings.append(f"{e} (the log is intact; the next command retries)")

    def flush(self, force: bool = False) -> None:
        """Save the read model and render the views now, if any call left them for later (or FORCE)."""
        if force or self in _unpublished:
            with self._lock():
                self._publish(self._take_hand_edits(self._cache.catch_up()))

    def _rebuild(self) -> State:
        """Replay in place: a new read model from the whole log, then the views. Caller holds the lock."""
        state = self._cache.rebuild("replay")
        self._publish(state)
        return state

    def where(self) -> Location:
        """Where this hub keeps its log, its read model and its views."""
        log = self.store.where or str(self.log_path)
        return Location(root=str(self.root), log=log, read_model=str(self.readmodel.path),
                        views=[str(folder) for folder in self.views_dirs()])

    def views_dirs(self) -> list[Path]:
        """The SESSIONS/ folders kept live: this hub's, and in a git repository every worktree's."""
        return _place.views_dirs(self.root)

    def render(self, state: State, at: str | None = None, out: Path | None = None) -> int:
        """Render every view of STATE (as seen at AT) into OUT, or into every folder of views_dirs(). The kept
        state (AT None) is drawn again only where its events changed it since a folder's last render."""
        from ._render import View, redraw, render, write_replay, write_views

        moment = at or read_time(state.last_ts)
        if out is not None:
            return write_replay(out, render(state, moment))
        repo = _place.repository(self.root)
        tracked = repo is None or self.events_dir != repo.hub_dir or repo.tracks_views()
        changed = self._cache.changed
        kept = self._cache.kept_at() if at is None and state is self._cache.kept_state() else None
        drawn: dict[Base | None, tuple[dict[str, View], list[str] | None]] = {}

        def views_since(base: Base | None) -> tuple[dict[str, View], list[str] | None]:
            """The views to write over a folder that shows BASE, and the files to remove (None: all others)."""
            if base is None or kept is None or changed.everything or changed.since != base.checkpoint:
                base = None  # drawn whole, once for every such folder
            if base not in drawn:
                if base is None:
                    views, gone = render(state, moment), None
                else:
                    only, gone = redraw(state, changed, base.at, moment)
                    views = render(state, moment, only)
                if not tracked:
                    views[".gitignore"] = View(IGNORE_VIEWS)  # git ignores the views, as it ignores any generated file
                drawn[base] = views, gone
            return drawn[base]

        written = 0
        # The views the look for hand edits found as evhub wrote them, when it ran just before under this lock.
        unchanged, self._unchanged = self._unchanged or {}, None
        folders = self.views_dirs()
        self._views.load(folders)
        self._views.folders = {f: files for f, files in self._views.folders.items() if Path(f) in folders}
        self._views.bases = {f: base for f, base in self._views.bases.items() if Path(f) in folders}
        stamp = file_stamp()
        try:
            for folder in folders:
                seen = self._views.files(folder)
                base = self._views.bases.pop(str(folder), None)
                base = base if seen is not None else None  # a folder evhub never wrote is rendered whole
                views, gone = views_since(base)
                # A hand edit still there when the views are rendered (replay takes none): kept, and said.
                stranger = None if seen is None else partial(self._keep_hand_edit, folder, stamp,
                                                              ("not understood", RENDERED_ONLY))
                self._views.folders[str(folder)] = seen = {} if seen is None else seen
                written += write_views(folder, views, seen, stranger, unchanged.get(str(folder), ()), gone)
                ours = folder / ".gitignore"
                try:
                    if tracked and ours.is_file() and not ours.is_symlink() and ours.read_bytes() == IGNORE_VIEWS:
                        ours.unlink()  # git was asked to track the views since
                        written += 1
                except OSError as e:
                    raise StorageError(f"cannot remove {ours}: {e.strerror}") from e
                if kept is not None:
                    self._views.bases[str(folder)] = Base(*kept, at=moment)
        finally:
            self._views.save()  # what was written, even when a later file failed
        if kept is not None:
            changed.restart(kept)
        return written

    def _label(self, folder: Path, rel: str) -> str:
        """FOLDER/REL as a person finds it: SESSIONS/REL in this hub's own folder, else its full path."""
        return f"{SESSIONS}/{rel}" if folder == self.dir else str(folder / rel)

    def _keep_hand_edit(self, folder: Path, stamp: str, why: tuple[str, str], rel: str, content: bytes) -> None:
        """Keep a copy of a hand edit that evhub did not take before it renders over it, and say so: WHY
        is (not understood or refused, the reason)."""
        copy = self.events_dir / COPIES / stamp / (rel if folder == self.dir else f"{folder.parent.name}/{rel}")
        try:
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(content)
        except OSError as e:
            raise StorageError(f"cannot keep a copy of the hand edit of {folder / rel} in {copy}: "
                               f"{e.strerror or e}") from e
        self.warnings.append(f"{self._label(folder, rel)} was edited by hand and {why[0]} ({why[1]}); "
                             f"kept a copy in {copy}")

    def _hand_edits(self) -> list[Edit]:
        """The view files changed by hand since evhub wrote them, in every views folder. Caller holds
        the hub lock."""
        from ._render import VIEW_DIRS

        folders = self.views_dirs()
        self._views.load(folders)
        edits: list[Edit] = []
        self._unchanged = {}
        for folder in folders:
            seen = self._views.files(folder)
            if seen is not None:
                leftovers: list[str] = []
                found = find_edits(folder, seen, VIEW_DIRS, self._unchanged.setdefault(str(folder), set()), leftovers)
                if found or leftovers:
                    # Whatever of the edits is not taken is rendered over, and a killed writer's temp file removed, by
                    # a whole render of the folder: forgetting its base says so to this process and, once the record
                    # is saved (the edits taken), to the next.
                    self._views.bases.pop(str(folder), None)
                edits += found
        # A view removed by hand is rendered again. The files that register sessions go first: another
        # file may name one.
        return sorted((e for e in edits if e.content is not None), key=lambda e: not e.rel.startswith(REGISTERING))

    def _take_hand_edits(self, state: State) -> State:
        """STATE with the hand edits of the views taken, when there are any. Caller holds the hub lock,
        not the store's."""
        edits = self._hand_edits()
        if not edits:
            return state
        with self.store.locked():
            return self._decide_and_append((), edits, state)[1]

    def _decide_hand_edits(self, edits: list[Edit], state: State, clock: str, clone: int | None,
                           ) -> tuple[list[ev.Event], list[tuple[Edit, tuple[str, str]]]]:
        """The events the seed's protocol meant by EDITS, decided by the usual rules and folded into
        STATE; and each edit that could not be taken, or not all of it, with why (see _keep_hand_edit)."""
        events: list[ev.Event] = []
        untaken = []
        for edit in edits:
            meant = commands_for(edit, state)
            problem = None if meant.problem is None else ("not understood", meant.problem)
            for c in meant.commands:
                try:
                    # No caller: the file says who acts, as the seed's protocol let it.
                    events += _decided(c, state, clock, origin=edit.rel, clone=clone)
                except EvhubError as e:
                    problem = ("refused" if isinstance(e, Conflict) else "not understood", str(e))
            if problem is not None:
                untaken.append((edit, problem))
        return events, untaken

    def _taken(self, edits: list[Edit], untaken: list[tuple[Edit, tuple[str, str]]]) -> None:
        """EDITS are in the log (what could be taken of them) or kept aside (UNTAKEN, said on stderr):
        the record takes their files as evhub's, so no later command takes them again, and the next
        render writes over them."""
        stamp = file_stamp()
        for edit, why in untaken:
            assert edit.content is not None
            self._keep_hand_edit(edit.folder, stamp, why, edit.rel, edit.content)
        for edit in edits:
            files = self._views.files(edit.folder)
            assert files is not None
            files[edit.rel] = edit.taken()
        self._views.save()

    def execute(self, *commands: cmd.Command) -> list[ev.Event]:
        """Decide COMMANDS in turn against the current state and append their events in one write."""
        return self._execute(*commands)[0]

    def _execute(self, *commands: cmd.Command) -> tuple[list[ev.Event], State]:
        self._check_exists()
        try:
            with self._lock(), self.store.locked(), self.store.synced_later():
                # Hand edits are looked for when the views are due to be rendered over them: a burst of calls
                # pays for one look a second, as for one render.
                due = self._due()
                events, state = self._decide_and_append(commands, self._hand_edits() if due else [])
                self._publish(state, now_=due)
        finally:
            self.store.sync()  # after the lock: writers in turn share a flush (see JsonlStore.sync)
        return events, state

    def _decide_and_append(self, commands: Sequence[cmd.Command], edits: list[Edit], state: State | None = None,
                           ) -> tuple[list[ev.Event], State]:
        """Take the hand EDITS of the views, then decide COMMANDS, against the head of the log (STATE when
        the caller just caught up), and append what they decided. Caller holds both locks."""
        for attempt in range(RETRIES):
            if state is None:
                try:
                    state = self._cache.catch_up()
                except CorruptLog as e:
                    raise type(e)(f"{e}; writing is refused until `evhub repair`") from e
            try:
                clone = self._writing_clone(state)
                if edits:
                    # In a write of their own before the command decides: a refused command loses none.
                    clock = write_time(state.last_ts, self.store.clock())
                    head = state.seq
                    taken, untaken = self._decide_hand_edits(edits, state, clock, clone)
                    if taken:
                        self.store.append(taken, head)
                        state.appended(taken)
                        self._cache.changed.add(taken)
                    self._taken(edits, untaken)
                    edits = []
                head = state.seq
                clock = write_time(state.last_ts, self.store.clock())
                events: list[ev.Event] = []
                for c in commands:
                    events += _decided(c, state, clock, caller=self.caller, on_behalf=self.on_behalf, clone=clone)
                if events:
                    self.store.append(events, head)
                    state.appended(events)
                    self._cache.changed.add(events)
            except ExpectedPositionError:
                # Another machine appended first (a shared store): decide again on what it wrote.
                self._cache.forget()
                state = None
                if attempt == RETRIES - 1:
                    raise
                continue
            except BaseException:
                self._cache.forget()  # folded events that were never appended
                raise
            break
        assert state is not None
        return events, state

    def state(self) -> State:
        """The current state, catching up (and mending the read model and views) on the way."""
        self._check_exists()
        self.damage = None
        self._cacheless = not os.access(self.events_dir, os.W_OK)
        if self._cacheless:
            self.warnings.append("the hub is read-only here: answering from the log without caching")
            return self._fold_readable()
        with self._lock():
            try:
                state = self._cache.catch_up()
            except LogRewound as e:
                self.warnings.append(f"{e}; answering from what the hub had seen (run `evhub repair`)")
                seen = self.readmodel.load()
                return seen[0] if seen is not None else self._fold_readable()
            except CorruptLog:
                self._cacheless = True
                return self._fold_readable()
            # A read looks for hand edits when they are due, as a write does, and refreshes the views when they
            # do not show this state yet: a burst of reads renders nothing new, and looks once a second. It never
            # renders without a look: the calls since the last one left the views for later, hand edits and all.
            self._cache.remember(state)
            now_ = self._due() or (self.refresh_on_read and self._cache.kept_at() != self._published_cp)
            if now_:
                state = self._take_hand_edits(state)
            self._publish(state, now_=now_)
            if not now_ and (state.new_messages or state.new_renames):
                self._save(state, render=False)  # messages are read from the read model
            return state

    def _fold_readable(self) -> State:
        """Fold every event that can be read, stopping at the first damaged line (and saying so)."""
        state = State()
        try:
            for e in self.open_store().read(0):
                evolve(state, e)
        except CorruptLog as e:
            self.damage = e
            self.warnings.append(f"{e}; answering from the {state.seq} events before it (`evhub repair` sets the "
                                 "damage aside)")
        return state

    # -- reading ------------------------------------------------------------------------------

    def _messages(self, state: State, after: int = 0, to: str | None = None,
                  last: int | None = None, keep: Callable[[Message], bool] | None = None) -> list[Message]:
        """Messages from the read model (STATE must be published), or from STATE itself when it was
        folded without one: after seq AFTER, to TO or all, or the LAST ones; those KEEP keeps, when given."""
        if not self._cacheless:
            return self.readmodel.messages(self.store, after, to, last, keep)
        found = [m for m in state.new_messages if m.seq > after and (to is None or m.to in ("all", to))
                 and (keep is None or keep(m))]
        return found if last is None else found[-last:]

    def _unread(self, state: State, sid: str) -> list[Message]:
        s = state.sessions[sid]
        return self._messages(state, s.read_upto, to=sid, keep=partial(is_unread, s=s))

    def unread(self, session: str) -> tuple[str, list[Message]]:
        """SESSION's current id and its unread messages, oldest first."""
        state = self.state()
        sid = cmd.acting_session(state, session)
        return sid, self._unread(state, sid)

    def sql(self, query: str) -> list[dict[str, Any]]:
        """The rows of a read-only QUERY against the read model, brought up to the log first."""
        from ._history import query_readmodel

        state = self.state()
        if not self._cacheless:
            with self._lock():
                self.readmodel.write_tables(state)
        return query_readmodel(self.readmodel.path, query, self.store)

    def last_messages(self, limit: int) -> list[Message]:
        """The last LIMIT messages on the board, oldest first."""
        return self._messages(self.state(), last=limit)

    def milestone(self, milestone: str) -> Milestone:
        """The milestone MILESTONE (NotFound, with a suggestion, when there is none)."""
        return cmd.find_milestone(self.state(), milestone)

    def recall(self, session: str, *, recent: int = RECENT_EVENTS) -> Recall:
        """What SESSION needs after a context loss: the state, its unread messages (left unread) and
        its RECENT latest events."""
        state = self.state()
        sid = cmd.acting_session(state, session)
        # Events past a damaged line are no part of the answer (the state stops before it).
        latest = [e for e in self.recent_events(sid, recent) if e.seq <= state.seq] if recent else []
        return Recall(session=sid, state=state, unread=self._unread(state, sid), recent=latest,
                      at=read_time(state.last_ts))

    # -- the commands -----------------------------------------------------------------------

    def hello(self, session: str | None = None, *, role: str = "", specialization: str = "",
              about: str = "", resume: bool = False) -> str:
        """Register SESSION (or the first free session-N); returns its id."""
        [e] = self.execute(cmd.Hello(session=session, role=role, specialization=specialization,
                                     about=about, resume=resume))
        assert isinstance(e, ev.SessionEvent)
        return e.session

    def heartbeat(self, session: str, status: str = "") -> list[ev.Event]:
        return self.execute(cmd.Heartbeat(session=session, status=status))

    def bye(self, session: str) -> list[ev.Event]:
        return self.execute(cmd.Bye(session=session))

    def claim(self, session: str, priority: str, ttl_s: int | None = None) -> Claimed:
        """Claim PRIORITY: its fencing token, and whom it was taken over from."""
        return _claimed(*self._execute(cmd.ClaimPriority(session=session, priority=priority, ttl_s=ttl_s)))

    def release(self, session: str, priority: str, *, done: bool = False, note: str = "",
                force: bool = False, token: int | None = None) -> list[ev.Event]:
        return self.execute(cmd.ReleasePriority(session=session, priority=priority, done=done, note=note,
                                                force=force, token=token))

    def focus(self, session: str, text: str) -> list[ev.Event]:
        return self.execute(cmd.SetFocus(session=session, text=text))

    def note(self, session: str, text: str) -> list[ev.Event]:
        return self.execute(cmd.AddNote(session=session, text=text))

    def create_milestone(self, session: str, title: str, *, milestone: str | None = None,
                         priority: str | None = None, steps: Sequence[str] = ()) -> str:
        """Create a milestone; returns its id."""
        [e] = self.execute(cmd.CreateMilestone(session=session, title=title, milestone=milestone,
                                               priority=priority, steps=tuple(steps)))
        assert isinstance(e, ev.MilestoneCreated)
        return e.milestone

    def claim_milestone(self, session: str, milestone: str, ttl_s: int | None = None) -> Claimed:
        """Own MILESTONE and claim its priority: the claim's token, and whom it was taken over from."""
        return _claimed(*self._execute(cmd.ClaimMilestone(session=session, milestone=milestone, ttl_s=ttl_s)))

    def update_step(self, session: str, milestone: str, step: int, status: str, *, note: str = "",
                    token: int | None = None) -> list[ev.Event]:
        return self.execute(cmd.UpdateStep(session=session, milestone=milestone, step=step, status=status,
                                           note=note, token=token))

    def add_steps(self, session: str, milestone: str, steps: Sequence[str]) -> list[ev.Event]:
        """Append STEPS to MILESTONE, numbered on from its last step."""
        return self.execute(cmd.AddSteps(session=session, milestone=milestone, steps=tuple(steps)))

    def send(self, session: str, text: str, to: str = "all") -> int:
        """Post a message; returns its seq."""
        [e] = self.execute(cmd.SendMessage(session=session, text=text, to=to))
        return e.number

    def inbox(self, session: str, *, peek: bool = False) -> list[Message]:
        """Unread messages for SESSION, oldest first; unless PEEK, they are then marked read."""
        sid, unread = self.unread(session)
        if not peek:
            self.mark_shown(sid, unread, unread)
        return unread

    def mark_read(self, session: str, upto: int, seqs: Sequence[int] = ()) -> list[ev.Event]:
        """SESSION has read every message up to seq UPTO, and those at SEQS."""
        return self.execute(cmd.MarkRead(session=session, upto=upto, seqs=tuple(seqs)))

    def mark_shown(self, session: str, unread: Sequence[Message], shown: Sequence[Message]) -> list[ev.Event]:
        """SESSION was shown SHOWN out of its UNREAD messages (oldest first, as `unread` gave them): those
        are read now, and the others stay unread."""
        if not shown:
            return []
        kept = {m.seq for m in unread} - {m.seq for m in shown}
        upto = min(kept) - 1 if kept else max(m.seq for m in shown)
        # "Read up to" covers what was written on this clone (is_unread): the rest is listed.
        identity = _place.clone_of(self.events_dir)
        here = {NOT_CLONED, identity.clone if identity is not None else NOT_CLONED}
        return self.mark_read(session, upto, [m.seq for m in shown if m.seq > upto or m.clone not in here])

    def attach_agent(self, session: str, agent: str, agent_session: str) -> list[ev.Event]:
        """Remember that AGENT's own session AGENT_SESSION is SESSION here."""
        return self.execute(cmd.AttachAgent(session=session, agent=agent, agent_session=agent_session))

    def join_agent(self, agent: str, agent_session: str, *, role: str = "", about: str = "") -> str:
        """The session attached to AGENT's session AGENT_SESSION, resumed; else a new one attached to it."""
        events = self.execute(cmd.JoinAgent(agent=agent, agent_session=agent_session, role=role, about=about))
        assert isinstance(events[0], ev.SessionEvent)
        return events[0].session

    def live_agent_session(self, agent: str, agent_session: str) -> str | None:
        """The live session attached to AGENT's session AGENT_SESSION, if any."""
        state = self.state()
        sid = state.agent_session(agent, agent_session)
        return sid if sid is not None and sid in state.sessions and not state.sessions[sid].left else None

    def agent_here(self, agent: str, agent_session: str, *, role: str = "") -> str:
        """The live session attached to AGENT's session AGENT_SESSION; when there is none (the agent seen
        first mid-session, or its session left), one joined as at the agent's start. A hook and an MCP
        server reach the same session through it, whichever comes first."""
        return self.live_agent_session(agent, agent_session) or self.join_agent(agent, agent_session, role=role)

    def propose_id(self, session: str, proposed: str, reason: str = "") -> list[ev.Event]:
        return self.execute(cmd.ProposeId(session=session, proposed=proposed, reason=reason))

    def accept_id(self, session: str, proposed: str) -> list[ev.Event]:
        return self.execute(cmd.AcceptId(session=session, proposed=proposed))

    def reject_id(self, session: str, proposed: str, reason: str = "") -> list[ev.Event]:
        return self.execute(cmd.RejectId(session=session, proposed=proposed, reason=reason))

    def save(self, session: str, mode: str = "auto", note: str = "") -> Saved:
        """The seed's save-progress: quick (heartbeat), milestone (+ progress note), full (+ git commit).

        A save changes nothing else: the session's status stays, and the progress note is added only
        when the progress changed since the last one (repeated, it would crowd the session's recall)."""
        from ._git import commit

        if mode not in ("auto", "quick", "milestone", "full"):
            raise BadInput(f"unknown save mode {mode!r}: use auto, quick, milestone or full")
        state = self.state()
        sid = cmd.acting_session(state, session)
        owned = state.milestones_of(sid)
        if mode == "auto":
            mode = "milestone" if owned else "quick"
        if mode == "milestone" and not owned:
            raise BadInput(f"{sid} owns no unfinished milestone, so it has no progress to save: "
                           "`evhub milestone claim ID` owns one; `evhub save --mode quick` saves a heartbeat")
        commands: list[cmd.Command] = [cmd.Heartbeat(session=sid, status=None)]
        progress = "saved progress: " + ", ".join(f"{m.id} {m.done_count}/{len(m.steps)}" for m in owned)
        said = [n.text for n in state.sessions[sid].notes if n.text.startswith("saved progress: ")]
        if mode in ("milestone", "full") and owned and said[-1:] != [progress]:
            commands.append(cmd.AddNote(session=sid, text=progress))
        if note:
            commands.append(cmd.AddNote(session=sid, text=note))
        events = self.execute(*commands)
        committed = None
        if mode == "full":
            self.flush(force=True)  # the views committed agree with the log, and nothing is left to render
            committed = commit(self.root, SESSIONS, f"evhub save by {sid}")
        return Saved(mode=mode, events=[e.number for e in events], git_commit=committed)

    # -- history ------------------------------------------------------------------------------

    def events(self, after: int = 0) -> Iterator[ev.AnyEvent]:
        """Every event after seq AFTER, from the log itself: all of them in the fold's order (_order), when
        AFTER is 0."""
        from ._order import events_in_order

        self.state()  # history read from a log that went behind the hub comes with that warning
        return self.open_store().read(after) if after else events_in_order(self.open_store())

    def log(self, flt: LogFilter, limit: int | None = None) -> tuple[list[LogLine], int]:
        """The log lines that FLT matches (only the last LIMIT when given), and where the log ended
        (for `follow`)."""
        from ._history import matching_lines

        self.state()
        return matching_lines(self.open_store(), flt, limit, self.warnings)

    def follow(self, flt: LogFilter, offset: int, tell: Callable[[str], None] | None = None) -> Iterator[LogLine]:
        """The lines FLT matches appended after OFFSET, as they arrive, until interrupted; TELL is given each
        warning as it arises (by default it joins `warnings`)."""
        from ._history import follow_lines

        return follow_lines(self.open_store(), flt, offset, self.warnings.append if tell is None else tell)

    def export(self, out: IO[bytes]) -> int:
        """Write every event's line as stored to OUT; how many."""
        self.state()
        return self.open_store().dump(out)

    # -- clones ----------------------------------------------------------------------------------

    @property
    def hub_id(self) -> str:
        """The id of this hub's first event: the same in every clone of it."""
        return self.state().hub_id

    @property
    def clone(self) -> int | None:
        """This clone's index among the hub's clones (its events' numbers end in it); None before its first
        sync."""
        return self._clone_index(self.state())

    def _clone_index(self, state: State) -> int | None:
        """The clone index to number the events decided against STATE with (a clone file left by another
        hub that was here before counts for nothing)."""
        identity = _place.clone_of(self.events_dir)
        return identity.clone if identity is not None and identity.hub == state.hub_id else None

    def _writing_clone(self, state: State) -> int | None:
        """_clone_index, for a write: a log that holds numbered events (a clone's, imported) cannot take events
        numbered by their positions, which could be numbers its clones gave already."""
        clone = self._clone_index(state)
        if clone is None and state.top:
            raise Conflict("this hub's log came from a clone of a hub shared by `evhub sync`, but this copy is no "
                           "clone of it: run `evhub sync` to join that hub's clones before writing")
        return clone

    def become_clone(self, clone: int) -> None:
        """Make this hub clone CLONE of itself: from now on its events are numbered apart from every other
        clone's (_order). A hub that is a clone already keeps its index."""
        if not 0 <= clone < CLONES:
            raise BadInput(f"a clone's index is 0 to {CLONES - 1}, not {clone}")
        with self._lock():
            state = self._cache.catch_up()
            if self._clone_index(state) is None:
                _place.write_clone(self.events_dir, _place.CloneOf(hub=state.hub_id, clone=clone))

    def log_bytes(self) -> bytes:
        """The whole log, as `evhub export` writes it."""
        out = io.BytesIO()
        self.export(out)
        return out.getvalue()

    def merge_log(self, data: bytes, name: str = "the log") -> Merged:
        """Take every event of DATA (another clone's whole log, as `evhub export` writes it, read from NAME)
        that this hub lacks, keeping each write whole; adds no event of its own, so merging the same log
        again takes nothing. UnrelatedHub when DATA is another hub's log."""
        from ._order import union
        from ._store import parse_log

        _, theirs = parse_log(data, name)
        self._check_exists()
        with self._lock(), self.store.locked():
            state = self._cache.catch_up()
            known = {e.id for e in self.store.read(0)}
            new = union(state, known, theirs, name)
            if new:
                try:
                    self.store.append(new, state.seq, chained=True)
                finally:
                    self._cache.forget()  # the kept state never saw these: fold them from the log
                state = self._cache.catch_up()
                self._publish(state)
        return Merged(added=len(new), known=len(theirs) - len(new))

    def recent_events(self, session: str | None, limit: int = RECENT_EVENTS,
                      window: int = 256 * 1024) -> list[ev.AnyEvent]:
        """The latest events of SESSION (of anyone when None), among the log's last WINDOW bytes."""
        from ._history import recent_events

        return recent_events(self.open_store(), session, limit, window)

    def replay(self, at: str | None = None, upto: int | None = None, out: Path | None = None) -> State:
        """Rebuild the views from nothing, as the hub stood at time AT or seq UPTO, in place or into OUT."""
        if out is None and at is None and upto is None:
            # In place and up to now: the read model is rebuilt from nothing too, in one fold of the log.
            with self._lock():
                return self._rebuild()
        clock = now()
        moment = parse_when(at, clock) if at else None
        state = State()
        for e in self.events():
            if moment is not None and e.ts > moment:
                break
            evolve(state, e)
            if e.number == upto:
                break
        view_time = moment or (clock if upto is None else max(state.last_ts, state.created))
        if out is not None:
            self.render(state, at=view_time, out=out)
        else:
            with self._lock():
                self.render(state, at=view_time)
        return state

    def why(self, priority: str) -> list[dict[str, Any]]:
        """The history of PRIORITY's claims and releases, oldest first (the rows of `evhub why --json`)."""
        from ._history import why

        self.state()
        return why(self.open_store(), priority)

    def verify(self) -> dict[str, Any]:
        """Check the whole log, raising CorruptLog naming the first damaged line; then the views: `views`
        lists each file that disagrees with the log (changed by hand since evhub wrote it)."""
        from ._verify import check_views, verify

        report = verify(self.open_store(), self.readmodel)
        # Under the lock, so no render replaces a file between reading the record and its stat.
        with self._lock() if os.access(self.events_dir, os.W_OK) else nullcontext():
            folders = self.views_dirs()
            self._views.load(folders)
            report["views"] = check_views(self._views, folders, self._label)
        return report

    def repair(self) -> dict[str, Any]:
        """Set aside what cannot be read so the log verifies again; nothing is deleted."""
        self._check_exists()
        with self._lock():
            result = self.store.repair(self._cache.lost())
            if result["repaired"]:
                self._rebuild()
        return result
