"""The Hub: the imperative shell around the pure core.

Every mutating call runs: take the hub lock -> catch up on the log -> decide against that
state -> append all of its events in one write (fsync) -> update the read model -> render
the views -> release.  Reading calls catch up the same way, so the read model and the views
mend themselves after any damage, and answer from that state.
"""

from __future__ import annotations

import atexit
import math
import os
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _decide as cmd
from . import _events as ev
from ._errors import (
    BadInput,
    Conflict,
    CorruptLog,
    EvhubError,
    ExpectedPositionError,
    HubNotFound,
    StorageError,
)
from ._lock import HubLock
from ._pgstore import STORE_FILE, StoreSettings
from ._readmodel import Checkpoint, ReadModel, ReadModelBehind
from ._state import Message, State, evolve, fold, is_unread
from ._store import JsonlStore, Store
from ._values import file_stamp, new_id, now, parse_when

SESSIONS = "SESSIONS"
GITIGNORE = "# evhub: the read model and the lock are local caches, never shared\nreadmodel.sqlite3*\nlock\n"


def _fsync_enabled() -> bool:
    return os.environ.get("EVHUB_FSYNC", "1") not in ("0", "false", "no", "off")


# Hubs holding events that their read model and views do not show yet; flushed at exit.
_unpublished: weakref.WeakSet[Hub] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for hub in list(_unpublished):
        try:
            hub.flush()
        except EvhubError as e:
            print(f"warning: evhub could not refresh {hub.dir} at exit: {e}", file=sys.stderr)


RETRIES = 50  # decide-and-append rounds lost to other machines' appends before a command gives up


def _holds_log(folder: Path) -> bool:
    """Whether FOLDER holds a hub: SESSIONS/events/log.jsonl, or the settings of a log kept on
    PostgreSQL; a folder we may not look into is an error."""
    events = folder / SESSIONS / "events"
    try:
        return (events / "log.jsonl").is_file() or (events / STORE_FILE).is_file()
    except OSError as e:  # is_file() answers False for a missing path, but raises for EACCES
        raise StorageError(f"cannot look for a hub at {events}: {e.strerror}") from e


class Hub:
    """A hub: the folder holding SESSIONS/, whose SESSIONS/events/log.jsonl is the truth.

    Every call appends its events durably before it returns. The read model and the views follow:
    a Hub refreshes them at once when it last did so PUBLISH_EVERY seconds ago or more (so a
    one-off call, and every CLI command, refreshes them before it returns), else it leaves them
    for its next call, flush(), or the end of the process: a burst of calls pays for one refresh
    a second, not one a call."""

    def __init__(self, root: Path | str, *, publish_every: float = 1.0) -> None:
        self.root = Path(root).absolute()
        self.dir = self.root / SESSIONS
        self.events_dir = self.dir / "events"
        self.log_path = self.events_dir / "log.jsonl"
        self.store = self.open_store()
        self.readmodel = ReadModel(self.events_dir / "readmodel.sqlite3")
        self.warnings: list[str] = []
        self.publish_every = publish_every
        self._hub_lock = HubLock(self.events_dir / "lock")
        self._state: State | None = None  # the state this Hub folded last, kept for its next call
        self._kept: Checkpoint | None = None  # where in the log that state stands
        self._base = 0  # the read model's seq that the kept state's new messages follow
        self._published_at = -math.inf
        self._cacheless = False  # answering from a fold of the log alone (a read-only hub)

    def open_store(self) -> Store:
        """A new handle on this hub's log: the JSONL file, or the PostgreSQL table its settings name."""
        settings = StoreSettings.read(self.events_dir)
        if settings is not None:
            return settings.open()
        return JsonlStore(self.log_path, fsync=_fsync_enabled())

    def _made(self) -> bool:
        """Whether init already made this hub. An empty log is a crash between creating it and writing
        its first event: not yet a hub."""
        return (self.log_path.exists() and self.log_path.stat().st_size > 0) or \
            (self.events_dir / STORE_FILE).exists()

    def exists(self) -> bool:
        return _holds_log(self.root)

    def _check_exists(self) -> None:
        if not self.exists():
            raise HubNotFound(f"no hub at {self.root}")

    # -- finding and creating ---------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path | str = ".", alive_ttl_s: int = 300, adopt: bool = False,
             store: StoreSettings | None = None, events: tuple[list[bytes], list[ev.AnyEvent]] | None = None,
             ) -> tuple[Hub, bool]:
        """Create a hub in DIRECTORY; (hub, False) when one is already there, unchanged.

        With STORE its log is the PostgreSQL table those settings name; when that already holds a
        hub (another machine made it), this folder joins it: (hub, False).  With EVENTS (the lines
        of an exported log and their events) the new log is those lines, byte for byte.

        A hand-kept SESSIONS/ is never overwritten: with ADOPT its files are first moved,
        untouched, into SESSIONS/events/legacy-<time>/; without it, init refuses."""
        hub = cls(directory)
        if hub._made():
            if events is not None:
                raise Conflict(f"a hub is already at {hub.dir}: import loads into a new hub only")
            return hub, False
        if not 1 <= alive_ttl_s <= 30 * 86400:
            raise BadInput("the alive ttl must be between 1s and 30d")
        if store is not None:
            hub.store = store.open()
            hub.store.create()  # before any file is made here, so a bad address leaves nothing behind
            if events is not None and hub.store.head() != 0:
                raise Conflict(f"schema {store.schema} already holds a hub: import loads into an empty store")
        kept = [p for p in hub.dir.iterdir() if p.name != "events"] if hub.dir.is_dir() else []
        if kept and not adopt:
            if hub._made() and events is None:
                return hub, False  # another init here finished first: those are its views
            raise Conflict(
                f"{hub.dir} exists and was not made by evhub: rerun with --adopt to keep its files "
                "in SESSIONS/events/legacy-<time>/ and start the hub there"
            )
        try:
            hub.events_dir.mkdir(parents=True, exist_ok=True)
            if kept:
                legacy = hub.events_dir / f"legacy-{file_stamp()}"
                legacy.mkdir()
                for path in kept:
                    path.rename(legacy / path.name)
            gitignore = hub.events_dir / ".gitignore"
            if gitignore.is_symlink():
                gitignore.unlink()  # a planted link is replaced, never written through
            if not gitignore.exists():
                gitignore.write_text(GITIGNORE)
        except OSError as e:
            raise StorageError(f"cannot create {hub.events_dir}: {e.strerror}") from e
        if store is not None:
            store.write(hub.events_dir)
        with HubLock(hub.events_dir / "lock"):
            # Decided under the lock (and the store's own check of the head): of several racing inits,
            # only the one that wrote says it made the hub.
            created = hub.store.head() == 0
            try:
                if created and events is not None:
                    hub.store.load(*events)
                elif created:
                    hub.store.append([ev.HubCreated(seq=1, id=new_id(), ts=now(), alive_ttl_s=alive_ttl_s)], 0)
            except ExpectedPositionError:
                if events is not None:
                    raise Conflict("another init filled the store first: import loads into an empty store") from None
                created = False  # another machine's init made it first
            hub._publish(hub._catch_up(), now_=True)
        return hub, created

    @classmethod
    def find(cls, hub: Path | str | None = None, start: Path | str | None = None) -> Hub:
        """The hub at HUB, else at $EVHUB_HUB, else the nearest one above START (the current directory)."""
        given = hub if hub is not None else os.environ.get("EVHUB_HUB") or None
        if given is not None:
            path = Path(given).absolute()
            for candidate in (path, path.parent):
                if _holds_log(candidate):
                    if candidate == path.parent and path.name != SESSIONS:
                        continue
                    return cls(candidate)
            raise HubNotFound(f"no hub at {given}: run `evhub init {given}`")
        here = Path(start).absolute() if start is not None else Path.cwd()
        for candidate in (here, *here.parents):
            if _holds_log(candidate):
                return cls(candidate)
        raise HubNotFound("no hub here or above: run `evhub init` or pass --hub DIR")

    # -- the locked cycle ---------------------------------------------------------------------

    def _lock(self) -> HubLock:
        return self._hub_lock

    def _catch_up(self) -> State:
        """The state at the head of the log. Caller holds the lock.

        It starts from the state this Hub folded last time when the log still holds what it was
        folded from, else from the read model's checkpoint when that holds, else from nothing;
        then folds the tail. Any failure forgets the kept state, so no half-folded state is reused."""
        try:
            state = self._state if self._state is not None and self._kept_holds() else self._load()
            self._state = None
            if state.seq == 0:
                state = self._fold_into_new_readmodel("building the read model")
            for events in self.store.read_blocks(state.seq):
                fold(events, state)
        except BaseException:
            self._state = None
            raise
        self._state = state
        return state

    def _kept_holds(self) -> bool:
        return self._kept is not None and self.store.position == (self._kept.seq, self._kept.offset) and \
            self._kept.matches(self.store.last_line(self._kept.offset))

    def _load(self) -> State:
        """The read model's state, positioned at its checkpoint; an empty state when it is unusable."""
        cached = self.readmodel.load()
        if cached is not None:
            state, checkpoint = cached
            if self._checkpoint_holds(checkpoint):
                self.store.seek(checkpoint.seq, checkpoint.offset)
                self._base = checkpoint.seq
                return state
            self.warnings.append("the read model did not match the log; rebuilt it from the log")
            self.readmodel.discard()
        self.store.seek(0, 0)
        self._base = 0
        return State()

    def _checkpoint_holds(self, cp: Checkpoint) -> bool:
        if cp.offset == 0:
            return cp.seq == 0
        return cp.matches(self.store.last_line(cp.offset))

    def _remember(self, state: State) -> None:
        """Keep STATE for the next call, with where it stands in the log."""
        seq, offset = self.store.position
        self._kept = Checkpoint.after(seq, offset, self.store.seen_line(offset))
        self._state = state

    def _publish(self, state: State, now_: bool = False) -> None:
        """Save the read model and render the views, now when NOW_ or PUBLISH_EVERY seconds have passed
        since this Hub last did, else at the next call that finds them due, flush() or exit.

        Both are caches of the log, so failing to write them is a warning: the log already holds
        every acknowledged event."""
        self._remember(state)
        if not now_ and time.monotonic() - self._published_at < self.publish_every:
            _unpublished.add(self)
            return
        try:
            if state.seq != self._base or state.new_messages or state.new_renames:
                self._save(state)
            self.render(state)
        except StorageError as e:
            self.warnings.append(f"{e} (the log is intact; the next command retries)")
        self._published_at = time.monotonic()
        _unpublished.discard(self)

    def _save(self, state: State) -> None:
        assert self._kept is not None
        try:
            self.readmodel.save(state, self._kept, self._base)
        except ReadModelBehind:
            # Deleted or swapped under us: fold again from what it holds, and store that.
            self._state = None
            state = self._catch_up()
            self._remember(state)
            self.readmodel.save(state, self._kept, self._base)
        self._base = state.seq

    def _rebuild(self) -> State:
        """Replay in place: a new read model from the whole log, then the views. Caller holds the lock."""
        state = self._fold_into_new_readmodel("replay")
        self._publish(state, now_=True)
        return state

    def _fold_into_new_readmodel(self, label: str) -> State:
        """Fold the whole log into a new read model a block at a time, so memory stays flat however
        many messages the log holds, with a progress bar LABEL on a terminal. Caller holds the lock."""
        from ._progress import Progress

        self._state = None
        state = State()
        try:
            self.readmodel.discard()
            self.store.seek(0, 0)
            progress = Progress(label, self.store.size())
            with self.readmodel.writing(0) as writer:
                for events in self.store.read_blocks(0):
                    fold(events, state)
                    writer.take(state)
                    progress.update(self.store.position[1], state.seq)
                progress.done()
                self._remember(state)
                assert self._kept is not None
                writer.finish(state, self._kept)
            self._base = state.seq
        except StorageError as e:
            # The messages handed to the failed transaction are gone from STATE: fold again, in memory.
            self.warnings.append(f"{e} (the log is intact; the next command retries)")
            self.store.seek(0, 0)
            state = fold(self.store.read(0))
            self._base = 0
        return state

    def flush(self) -> None:
        """Save the read model and render the views now, if any call left them for later."""
        if self in _unpublished:
            with self._lock():
                self._publish(self._catch_up(), now_=True)

    def render(self, state: State, at: str | None = None, out: Path | None = None) -> int:
        """Render every view of STATE (as seen at AT) into OUT, or into SESSIONS/."""
        from ._render import render, write_views

        return write_views(out or self.dir, render(state, at or now()))

    def execute(self, *commands: cmd.Command) -> list[ev.Event]:
        """Decide COMMANDS in turn against the current state and append their events in one write."""
        return self._execute(*commands)[0]

    def _execute(self, *commands: cmd.Command) -> tuple[list[ev.Event], State]:
        self._check_exists()
        with self._lock(), self.store.locked():
            for attempt in range(RETRIES):
                try:
                    state = self._catch_up()
                except CorruptLog as e:
                    raise CorruptLog(f"{e}; writing is refused until `evhub repair`") from e
                head = state.seq
                clock = now()
                events: list[ev.Event] = []
                try:
                    for c in commands:
                        decided = cmd.decide(c, state, clock)
                        for event in decided:
                            event.id = new_id()
                            evolve(state, event)
                        events += decided
                    if events:
                        self.store.append(events, head)
                except ExpectedPositionError:
                    # Another machine appended first (a shared store): decide again on what it wrote.
                    self._state = None
                    if attempt == RETRIES - 1:
                        raise
                    continue
                except BaseException:
                    self._state = None  # folded events that were never appended
                    raise
                break
            self._publish(state)
        return events, state

    def state(self) -> State:
        """The current state, catching up (and mending the read model and views) on the way."""
        self._check_exists()
        self._cacheless = not os.access(self.events_dir, os.W_OK)
        if self._cacheless:
            self.warnings.append("the hub is read-only here: answering from the log without caching")
            return self._fold_readable()
        with self._lock():
            try:
                state = self._catch_up()
            except CorruptLog as e:
                self.warnings.append(f"{e}; answering from the events before it (run `evhub verify`)")
                self._cacheless = True
                return self._fold_readable()
            self._publish(state, now_=True)
            return state

    def _fold_readable(self) -> State:
        """Fold every event that can be read, stopping at the first damaged line."""
        state = State()
        try:
            for e in self.open_store().read(0):
                evolve(state, e)
        except CorruptLog:
            pass
        return state

    def _messages(self, state: State, after: int = 0, to: str | None = None,
                  last: int | None = None) -> list[Message]:
        """Messages from the read model (STATE must be published), or from STATE itself when it was
        folded without one: after seq AFTER, to TO or all, or the LAST ones."""
        if not self._cacheless:
            return self.readmodel.messages(after, to, last)
        found = [m for m in state.new_messages if m.seq > after and (to is None or m.to in ("all", to))]
        return found if last is None else found[-last:]

    def unread(self, session: str) -> tuple[str, list[Message]]:
        """SESSION's current id and its unread messages, oldest first."""
        state = self.state()
        sid = cmd.acting_session(state, session)
        upto = state.sessions[sid].read_upto
        return sid, [m for m in self._messages(state, upto, to=sid) if is_unread(m, sid, upto)]

    def last_messages(self, limit: int) -> list[Message]:
        """The last LIMIT messages on the board, oldest first."""
        return self._messages(self.state(), last=limit)

    # -- the Python API: one method a command ---------------------------------------------------

    def hello(self, session: str | None = None, *, role: str = "", specialization: str = "",
              about: str = "", resume: bool = False) -> str:
        """Register SESSION (or the first free session-N); returns its id."""
        [e] = self.execute(cmd.Hello(session=session, role=role, specialization=specialization,
                                     about=about, resume=resume))
        assert isinstance(e, ev.SessionEvent)
        return e.session

    def heartbeat(self, session: str, status: str = "") -> None:
        self.execute(cmd.Heartbeat(session=session, status=status))

    def bye(self, session: str) -> list[ev.Event]:
        return self.execute(cmd.Bye(session=session))

    def claim(self, session: str, priority: str, ttl_s: int | None = None) -> int:
        """Claim PRIORITY; returns the claim's fencing token."""
        _, state = self._execute(cmd.ClaimPriority(session=session, priority=priority, ttl_s=ttl_s))
        return state.claims[priority].token

    def release(self, session: str, priority: str, *, done: bool = False, note: str = "",
                force: bool = False, token: int | None = None) -> None:
        self.execute(cmd.ReleasePriority(session=session, priority=priority, done=done, note=note,
                                         force=force, token=token))

    def focus(self, session: str, text: str) -> None:
        self.execute(cmd.SetFocus(session=session, text=text))

    def note(self, session: str, text: str) -> None:
        self.execute(cmd.AddNote(session=session, text=text))

    def create_milestone(self, session: str, title: str, *, milestone: str | None = None,
                         priority: str | None = None, steps: Sequence[str] = ()) -> str:
        """Create a milestone; returns its id."""
        [e] = self.execute(cmd.CreateMilestone(session=session, title=title, milestone=milestone,
                                               priority=priority, steps=tuple(steps)))
        assert isinstance(e, ev.MilestoneCreated)
        return e.milestone

    def claim_milestone(self, session: str, milestone: str, ttl_s: int | None = None) -> int:
        """Own MILESTONE and claim its priority; returns the claim's token."""
        events, state = self._execute(cmd.ClaimMilestone(session=session, milestone=milestone, ttl_s=ttl_s))
        claimed = events[-1]
        assert isinstance(claimed, ev.PriorityClaimed)
        return state.claims[claimed.priority].token

    def update_step(self, session: str, milestone: str, step: int, status: str, *, note: str = "",
                    token: int | None = None) -> None:
        self.execute(cmd.UpdateStep(session=session, milestone=milestone, step=step, status=status,
                                    note=note, token=token))

    def send(self, session: str, text: str, to: str = "all") -> int:
        """Post a message; returns its seq."""
        [e] = self.execute(cmd.SendMessage(session=session, text=text, to=to))
        return e.seq

    def inbox(self, session: str, *, peek: bool = False) -> list[dict[str, Any]]:
        """Unread messages for SESSION; unless PEEK, they are then marked read."""
        from ._report import message_dicts

        sid, unread = self.unread(session)
        messages = message_dicts(unread)
        if messages and not peek:
            self.execute(cmd.MarkRead(session=sid, upto=messages[-1]["seq"]))
        return messages

    def attach_agent(self, session: str, agent: str, agent_session: str) -> None:
        """Remember that AGENT's own session AGENT_SESSION is SESSION here."""
        self.execute(cmd.AttachAgent(session=session, agent=agent, agent_session=agent_session))

    def join_agent(self, agent: str, agent_session: str, *, role: str = "", about: str = "") -> str:
        """The session attached to AGENT's session AGENT_SESSION, resumed; else a new one attached to it."""
        events = self.execute(cmd.JoinAgent(agent=agent, agent_session=agent_session, role=role, about=about))
        assert isinstance(events[0], ev.SessionEvent)
        return events[0].session

    def propose_id(self, session: str, proposed: str, reason: str = "") -> None:
        self.execute(cmd.ProposeId(session=session, proposed=proposed, reason=reason))

    def accept_id(self, session: str, proposed: str) -> None:
        self.execute(cmd.AcceptId(session=session, proposed=proposed))

    def reject_id(self, session: str, proposed: str, reason: str = "") -> None:
        self.execute(cmd.RejectId(session=session, proposed=proposed, reason=reason))

    def save(self, session: str, mode: str = "auto", note: str = "") -> dict[str, Any]:
        """The seed's save-progress: quick (heartbeat), milestone (+ progress note), full (+ git commit)."""
        if mode not in ("auto", "quick", "milestone", "full"):
            raise BadInput(f"unknown save mode {mode!r}: use auto, quick, milestone or full")
        state = self.state()
        sid = cmd.acting_session(state, session)
        owned = state.milestones_of(sid)
        if mode == "auto":
            mode = "milestone" if owned else "quick"
        commands: list[cmd.Command] = [cmd.Heartbeat(session=sid, status="saved")]
        if mode in ("milestone", "full") and owned:
            progress = ", ".join(f"{m.id} {m.done_count}/{len(m.steps)}" for m in owned)
            commands.append(cmd.AddNote(session=sid, text=f"saved progress: {progress}"))
        if note:
            commands.append(cmd.AddNote(session=sid, text=note))
        events = self.execute(*commands)
        committed = self._git_commit(f"evhub save by {sid}") if mode == "full" else None
        return {"mode": mode, "events": [e.seq for e in events], "git_commit": committed}

    def _git_commit(self, message: str) -> str | None:
        """Commit SESSIONS/ when the hub is inside a git work tree; the new commit's id, or None."""
        def git(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True)

        try:
            if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
                return None
            git("add", "-A", "--", SESSIONS)
            done = git("commit", "-q", "-m", message, "--", SESSIONS)
        except OSError:
            return None
        if done.returncode != 0:
            return None
        return git("rev-parse", "HEAD").stdout.strip() or None

    # -- history ------------------------------------------------------------------------------

    def events(self, after: int = 0) -> Iterator[ev.AnyEvent]:
        """Every event after seq AFTER, from the log itself."""
        return self.open_store().read(after)

    def recent_events(self, session: str | None, limit: int = 10, window: int = 256 * 1024) -> list[ev.AnyEvent]:
        """The latest events of SESSION (of anyone when None), from the last WINDOW bytes of the log
        (of a PostgreSQL log, the last WINDOW // 128 events)."""
        store = self.open_store()
        if not isinstance(store, JsonlStore):
            newest = list(store.read(max(0, store.head() - window // 128)))
            return [e for e in newest if session is None or getattr(e, "session", None) == session][-limit:]
        start = max(0, store.size() - window)
        found: list[ev.AnyEvent] = []
        lines = store.lines(start)
        if start:
            next(lines, None)  # the first line may be cut
        for line in lines:
            try:
                e = ev.decode(line.raw)
            except CorruptLog:
                continue
            if session is None or getattr(e, "session", None) == session:
                found.append(e)
        return found[-limit:]

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
            if (upto is not None and e.seq > upto) or (moment is not None and e.ts > moment):
                break
            evolve(state, e)
        view_time = moment or (clock if upto is None else max(state.last_ts, state.created))
        if out is not None:
            self.render(state, at=view_time, out=out)
        else:
            with self._lock():
                self.render(state, at=view_time)
        return state

    def why(self, priority: str) -> list[dict[str, Any]]:
        """The history of PRIORITY's claims and releases, oldest first."""
        from ._history import why

        return why(self.open_store(), priority)

    def verify(self) -> dict[str, Any]:
        """Check the whole log; raises CorruptLog naming the first damaged line."""
        from ._verify import verify

        return verify(self)

    def repair(self) -> dict[str, Any]:
        """Set aside what cannot be read so the log verifies again; nothing is deleted."""
        from ._repair import repair

        self._check_exists()
        if not isinstance(self.store, JsonlStore):
            # Rows are committed whole and never changed: the only damage is a row some other client
            # inserted, which an append-only log cannot take out.
            from ._verify import verify

            try:
                events = verify(self, label="repair")["events"]
            except CorruptLog as e:
                raise CorruptLog(f"{e}; a log on PostgreSQL is append-only, so repair cannot rewrite it: "
                                 "the database owner must remove that row") from e
            return {"repaired": False, "events": events, "set_aside": [], "lost": 0, "backup": None}
        with self._lock():
            result = repair(self)
            if result["repaired"]:
                self._rebuild()
        return result


