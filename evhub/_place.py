"""Where hubs are: finding the hub a command works on, opening its store, and making a new hub
(or adopting a hand-kept SESSIONS/ folder).  No state and no views: the Hub does those.

In a git repository the hub is the repository's: its log, lock, read model and store settings live
in `<common git dir>/evhub/`, which every worktree of the repository shares and no checkout, stash,
reset, clean, pull or rebase touches; each worktree gets the views in its own SESSIONS/.  The
repository is read from the `.git` files themselves (no git process on a command's start-up).
Outside a repository a hub is the folder holding SESSIONS/events/, as it always was; so is a hub an
earlier evhub made inside a repository, until `evhub migrate` moves it.
"""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from . import _events as ev
from ._errors import BadInput, Conflict, ExpectedPositionError, HubNotFound, StorageError
from ._lock import HubLock
from ._pgstore import STORE_FILE, StoreSettings
from ._store import JsonlStore, Store
from ._values import file_stamp, new_id, write_time

if TYPE_CHECKING:
    from ._adopt import Adoption

SESSIONS = "SESSIONS"
GITIGNORE = ("# evhub: the read model, the views' record, the lock and the clone's identity are this clone's own, "
             "never shared\nreadmodel.sqlite3*\nviews.json\nlock\nclone.json\nsynced.json\n")
CLONE_FILE = "clone.json"


class CloneOf(msgspec.Struct, frozen=True):
    """This clone's place among the clones of hub HUB: its index, which its events' numbers end in."""

    hub: str
    clone: int


# clone.json's path -> (its stat when read, what it said): asked at every write, read again only once replaced.
_clones: dict[Path, tuple[tuple[int, int, int], CloneOf]] = {}


def clone_of(events_folder: Path) -> CloneOf | None:
    """This hub's clone identity (None before its first sync): looked up at every write, so a sync by another
    process is never missed (write_clone replaces the file, so its stat tells a new one)."""
    path = _named(events_folder, CLONE_FILE)
    try:
        st = os.stat(path)
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _clones.get(path)
        if cached is not None and cached[0] == seen:
            return cached[1]
        identity = msgspec.json.decode(path.read_bytes(), type=CloneOf)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
        raise StorageError(f"cannot read {path}: {e}") from e
    _clones[path] = (seen, identity)
    return identity


@lru_cache(maxsize=256)
def _named(folder: Path, name: str) -> Path:
    """FOLDER / NAME, made once: a hub asks for its files' paths at every write."""
    return folder / name


def write_clone(events_folder: Path, clone: CloneOf) -> None:
    """Make this hub clone CLONE (whole or not at all). Caller holds the hub lock."""
    part = events_folder / f".{CLONE_FILE}.part"
    try:
        with open(part, "wb") as f:
            f.write(msgspec.json.encode(clone) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, events_folder / CLONE_FILE)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise StorageError(f"cannot write {events_folder / CLONE_FILE}: {e.strerror}") from e


class Repo(NamedTuple):
    """The git work tree a folder is in, and its repository's common git directory."""

    top: Path
    common: Path

    @property
    def hub_dir(self) -> Path:
        """Where the repository's hub keeps its log, lock, read model and settings."""
        return self.common / "evhub"

    @property
    def root(self) -> Path:
        """The hub's root: the main worktree's top (else, in a bare repository, this worktree's)."""
        main = self.common.parent
        return main if self.common.name == ".git" and (main / ".git").is_dir() else self.top

    def worktrees(self) -> list[Path]:
        """The repository's work trees, as `git worktree list` shows them: the main one first."""
        linked: list[Path] = []
        try:
            admin = list((self.common / "worktrees").iterdir())
        except OSError:
            admin = []
        for entry in admin:
            try:
                top = Path((entry / "gitdir").read_text().strip()).parent
            except OSError:
                continue
            if top.is_dir() and top != self.root:
                linked.append(top)
        return [self.root, *sorted(linked)]

    def tracks_views(self) -> bool:
        """Whether `git config evhub.trackViews true` asks git to track the views."""
        return self.says("trackviews")

    def says(self, key: str) -> bool:
        """Whether `git config evhub.KEY true` is set in the repository's own config (KEY in lower case)."""
        import configparser  # only when rendering views or syncing: off every command's start-up

        config = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            config.read(self.common / "config")
            return config.getboolean("evhub", key, fallback=False)
        except (configparser.Error, ValueError):
            return False


def repository(start: Path) -> Repo | None:
    """The git work tree holding START and its common git directory, read from the `.git` folder or
    file (a linked worktree's names its git dir, which names the common one); None outside git."""
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        try:
            if dotgit.is_dir():
                return Repo(folder, dotgit)
            if not dotgit.is_file():
                continue
            text = dotgit.read_text().strip()
            if not text.startswith("gitdir:"):
                continue
            gitdir = (folder / text.removeprefix("gitdir:").strip()).resolve()
            common = gitdir / "commondir"
            return Repo(folder, (gitdir / common.read_text().strip()).resolve() if common.is_file() else gitdir)
        except OSError:
            continue
    return None


@lru_cache(maxsize=256)
def _in_tree(root: Path) -> Path:
    """The folder of a hub kept in the work tree at ROOT: as evhub made every hub before it moved into
    git's common dir, and as it still makes them outside a repository."""
    return root / SESSIONS / "events"


def _present(path: Path) -> bool:
    """Whether PATH, a hub's log or store settings, is there. Something else by that name is an error, so
    init and every other command say the same of it (not one 'already a hub', the rest 'no hub')."""
    try:
        # One stat: asking is_file() then exists() would call a log a racing init makes in between "not a file".
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        raise StorageError(f"cannot look for a hub at {path.parent}: {e.strerror}") from e
    if stat.S_ISREG(mode):
        return True
    kind = "a folder" if stat.S_ISDIR(mode) else "not a file"
    raise StorageError(f"{path} is {kind}, not evhub's {path.name}: move it aside")


def _has_log(events: Path) -> bool:
    return _present(_named(events, "log.jsonl")) or _present(_named(events, STORE_FILE))


def in_work_tree(root: Path) -> bool:
    """Whether the hub at ROOT keeps its log in the work tree while ROOT is in a git repository: a hub
    an earlier evhub made, which git can rewind until `evhub migrate` moves it."""
    return _has_log(_in_tree(root)) and repository(root) is not None


def events_dir(root: Path) -> Path:
    """The folder of the log, read model and lock of the hub at ROOT (or of the one to make there)."""
    in_tree = _in_tree(root)
    if _has_log(in_tree):
        return in_tree
    repo = repository(root)
    return repo.hub_dir if repo is not None else in_tree


def holds_log(folder: Path) -> bool:
    """Whether FOLDER is a hub's root, or a worktree's top whose repository has a hub; a folder we
    may not look into is an error."""
    if _has_log(_in_tree(folder)):
        return True
    repo = repository(folder) if (folder / ".git").exists() else None
    return repo is not None and _has_log(repo.hub_dir)


def hub_root(folder: Path) -> Path:
    """The root of the hub FOLDER holds (holds_log): itself, or its repository's main worktree."""
    if _has_log(_in_tree(folder)):
        return folder
    repo = repository(folder)
    return repo.root if repo is not None else folder


def views_dirs(root: Path) -> list[Path]:
    """The SESSIONS/ folders that show the hub at ROOT: one in every worktree of its repository."""
    repo = repository(root)
    if repo is None or _has_log(_in_tree(root)):
        return [root / SESSIONS]
    return [top / SESSIONS for top in repo.worktrees()]


def made(root: Path) -> bool:
    """Whether init already made the hub at ROOT. An empty log is a crash between creating it and
    writing its first event: not yet a hub."""
    events = events_dir(root)
    log = events / "log.jsonl"
    return (_present(log) and log.stat().st_size > 0) or _present(events / STORE_FILE)


def find(hub: Path | str | None = None, start: Path | str | None = None) -> Path:
    """The root of the hub at HUB, else at $EVHUB_HUB, else the nearest one above START (the current
    directory)."""
    given = hub if hub is not None else os.environ.get("EVHUB_HUB") or None
    if given is not None:
        path = Path(given).absolute()
        if holds_log(path):
            return hub_root(path)
        if path.name == SESSIONS and holds_log(path.parent):
            return hub_root(path.parent)
        raise HubNotFound(f"no hub at {given}: run `evhub init {given}`")
    here = Path(start).absolute() if start is not None else Path.cwd()
    for candidate in (here, *here.parents):
        if holds_log(candidate):
            return hub_root(candidate)
    raise HubNotFound("no hub here or above: run `evhub init` or pass --hub DIR")


def _fsync_enabled() -> bool:
    raw = os.environ.get("EVHUB_FSYNC", "")
    if raw.lower() not in ("", "1", "true", "yes", "on", "0", "false", "no", "off"):
        raise BadInput(f"EVHUB_FSYNC must be 0 or 1 (false or true, no or yes, off or on), not {raw!r}")
    return raw.lower() not in ("0", "false", "no", "off")


def open_store(root: Path) -> Store:
    """A new handle on the log of the hub at ROOT: the JSONL file, or the PostgreSQL table its
    settings name."""
    settings = StoreSettings.read(events_dir(root))
    if settings is not None:
        return settings.open()
    return JsonlStore(events_dir(root) / "log.jsonl", fsync=_fsync_enabled())


def create(root: Path, alive_ttl_s: int = 300, adopt: bool = False, store: StoreSettings | None = None,
           events: tuple[list[bytes], list[ev.AnyEvent]] | None = None) -> tuple[bool | None, Adoption | None]:
    """Make a hub at ROOT: True when this call made it, False when another (a racing init here, or
    another machine's on the same PostgreSQL schema) made it first, None when one was already here
    and nothing was done; and what it adopted.

    With STORE its log is the PostgreSQL table those settings name. With EVENTS (the lines of an
    exported log and their events) the new log is those lines, byte for byte.  A hand-kept
    SESSIONS/ is never overwritten: with ADOPT its files are first moved, untouched, into the hub's
    folder (SESSIONS/events/, or .git/evhub/ in a repository) as legacy-<time>/, and the new log starts
    with the events that reproduce them (_adopt); without it, create refuses."""
    repo = repository(root)
    if repo is not None and not _has_log(_in_tree(root)):
        if root != repo.root and made(repo.root):
            raise Conflict(f"this repository already has a hub, at {repo.root}: run evhub anywhere in "
                           "the repository (or any of its worktrees) without init")
        root = repo.root
    folder, events_folder = root / SESSIONS, events_dir(root)
    if made(root):
        if events is not None:
            raise Conflict(f"a hub is already at {folder}: import loads into a new hub only")
        return None, None
    if not 1 <= alive_ttl_s <= 30 * 86400:
        raise BadInput("the alive ttl must be between 1s and 30d")
    write_time("")  # a clock too far ahead is refused before anything is made
    if store is not None:
        store.keep()
        shared = store.open()
        log: Store = shared
    else:
        log = open_store(root)
    try:
        if store is not None:
            shared.create()  # before any file is made here, so a bad address leaves nothing behind
            if events is not None and log.head() != 0:
                raise Conflict(f"schema {store.schema} already holds a hub: import loads into an empty store")
        kept = [p for p in folder.iterdir() if p.name != "events"] if folder.is_dir() else []
        if kept and not adopt:
            if made(root) and events is None:
                return False, None  # another init here finished first: those are its views
            raise Conflict(
                f"{folder} exists and was not made by evhub: rerun with --adopt to keep its files "
                "in SESSIONS/events/legacy-<time>/ and start the hub there"
            )
        legacy = events_folder / f"legacy-{file_stamp()}"
        first: list[ev.Event] = []
        adoption = None
        if kept:
            # Read and decided before anything moves: whatever goes wrong, the hand-kept folder stays as it was.
            from ._adopt import hub_events, read_folder

            first, adoption = hub_events(read_folder(folder, kept), str(legacy), alive_ttl_s,
                                         write_time("", log.clock()))
        _make_folder(events_folder, kept, legacy)
        with HubLock(events_folder / "lock"):
            # Decided under the lock (and the store's own check of the head): of several racing inits,
            # only the one that wrote says it made the hub.
            try:
                if log.head() != 0:
                    raise ExpectedPositionError("the store already holds a hub")
                if events is not None:
                    log.load(*events)
                else:
                    first = first or [ev.HubCreated(seq=1, id="", ts=write_time("", log.clock()),
                                                    alive_ttl_s=alive_ttl_s)]
                    for e in first:
                        e.id = new_id()
                    log.append(first, 0)  # one write: the hub is made with all it adopted, or not at all
                made_it = True
            except ExpectedPositionError:
                if events is not None:
                    raise Conflict("another init filled the store first: import loads into an empty store") from None
                made_it = False  # another machine's init made it first
        if store is not None:
            store.write(events_folder)  # once the store holds a hub: a failed init leaves no settings saying it does
        return made_it, adoption
    finally:
        log.close()


def join(root: Path, data: bytes, clone: int, name: str = "the remote's log") -> None:
    """Make the hub at ROOT a clone, index CLONE, of the hub whose log (as another clone keeps it) is
    DATA: its events laid out in the fold's order, so the part numbered by seqs keeps its seqs."""
    from ._order import in_order
    from ._store import parse_log

    _, theirs = parse_log(data, name)
    events = in_order(theirs)
    for seq, e in enumerate(events, 1):
        if isinstance(e, ev.UnknownEvent):
            raise BadInput(f"{name}: event {e.number} is of type {e.type}, unknown to this evhub: upgrade evhub "
                           "to join this hub")
        if e.num is msgspec.UNSET and e.seq != seq:
            raise BadInput(f"{name}: event {e.seq} is numbered by its position but is not where it was: "
                           "not the log of a clone")
        e.seq = seq
    folder = events_dir(root)
    if made(root):
        raise Conflict(f"a hub is already at {root}: a clone joins only where there is none")
    # The identity first: no event can be written here before the hub is a clone (it would be numbered by
    # its position, as only the hub's first clone numbers the events it wrote before syncing).
    _make_folder(folder, [], folder)
    write_clone(folder, CloneOf(hub=events[0].id, clone=clone))
    created, _ = create(root, events=([ev.encode(e) for e in events if not isinstance(e, ev.UnknownEvent)], events))
    if created is not True:
        raise Conflict(f"a hub appeared at {root} while joining: run the sync again")


def _make_folder(events_folder: Path, kept: list[Path], legacy: Path) -> None:
    """SESSIONS/events/ with its .gitignore, after moving KEPT (a hand-kept folder's files) aside into
    LEGACY."""
    try:
        events_folder.mkdir(parents=True, exist_ok=True)
        if kept:
            legacy.mkdir()
            for path in kept:
                path.rename(legacy / path.name)
        gitignore = events_folder / ".gitignore"
        if gitignore.is_symlink():
            gitignore.unlink()  # a planted link is replaced, never written through
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE)
    except OSError as e:
        raise StorageError(f"cannot create {events_folder}: {e.strerror}") from e


def migrate(root: Path) -> tuple[Path, Path, bool] | None:
    """Move the hub an earlier evhub made in the work tree at ROOT into its repository's common git
    dir, under its lock, and stop git tracking SESSIONS/ (staged, never committed: history keeps every
    old version).  (from, to, whether git tracked SESSIONS/); None when there is nothing to move."""
    from ._git import untrack

    source, repo = _in_tree(root), repository(root)
    if repo is None or not _has_log(source):
        return None
    target = repo.hub_dir
    if _has_log(target):
        raise Conflict(f"this repository already has a hub in {target}: the one in {source} cannot move there; "
                       "`evhub export` it and merge by hand")
    with HubLock(source / "lock"):
        try:
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(source.iterdir()):
                if path.name not in ("lock", ".gitignore"):
                    os.replace(path, target / path.name)
        except OSError as e:
            raise StorageError(f"cannot move {source} to {target}: {e.strerror}; run `evhub migrate` again") from e
    for leftover in ("lock", ".gitignore"):
        (source / leftover).unlink(missing_ok=True)
    try:
        source.rmdir()
    except OSError:
        pass  # something of the user's is left there: keep it
    return source, target, untrack(root, SESSIONS)
