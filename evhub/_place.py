"""Where hubs are: finding the hub a command works on, opening its store, and making a new hub
(or adopting a hand-kept SESSIONS/ folder).  No state and no views: the Hub does those."""

from __future__ import annotations

import os
from pathlib import Path

from . import _events as ev
from ._errors import BadInput, Conflict, ExpectedPositionError, HubNotFound, StorageError
from ._lock import HubLock
from ._pgstore import STORE_FILE, StoreSettings
from ._store import JsonlStore, Store
from ._values import file_stamp, new_id, now

SESSIONS = "SESSIONS"
GITIGNORE = "# evhub: the read model and the lock are local caches, never shared\nreadmodel.sqlite3*\nlock\n"


def events_dir(root: Path) -> Path:
    """The folder of a hub's log, read model and lock."""
    return root / SESSIONS / "events"


def holds_log(folder: Path) -> bool:
    """Whether FOLDER holds a hub: SESSIONS/events/log.jsonl, or the settings of a log kept on
    PostgreSQL; a folder we may not look into is an error."""
    events = events_dir(folder)
    try:
        return (events / "log.jsonl").is_file() or (events / STORE_FILE).is_file()
    except OSError as e:  # is_file() answers False for a missing path, but raises for EACCES
        raise StorageError(f"cannot look for a hub at {events}: {e.strerror}") from e


def made(root: Path) -> bool:
    """Whether init already made the hub at ROOT. An empty log is a crash between creating it and
    writing its first event: not yet a hub."""
    log = events_dir(root) / "log.jsonl"
    return (log.exists() and log.stat().st_size > 0) or (events_dir(root) / STORE_FILE).exists()


def find(hub: Path | str | None = None, start: Path | str | None = None) -> Path:
    """The root of the hub at HUB, else at $EVHUB_HUB, else the nearest one above START (the current
    directory)."""
    given = hub if hub is not None else os.environ.get("EVHUB_HUB") or None
    if given is not None:
        path = Path(given).absolute()
        if holds_log(path):
            return path
        if path.name == SESSIONS and holds_log(path.parent):
            return path.parent
        raise HubNotFound(f"no hub at {given}: run `evhub init {given}`")
    here = Path(start).absolute() if start is not None else Path.cwd()
    for candidate in (here, *here.parents):
        if holds_log(candidate):
            return candidate
    raise HubNotFound("no hub here or above: run `evhub init` or pass --hub DIR")


def _fsync_enabled() -> bool:
    return os.environ.get("EVHUB_FSYNC", "1") not in ("0", "false", "no", "off")


def open_store(root: Path) -> Store:
    """A new handle on the log of the hub at ROOT: the JSONL file, or the PostgreSQL table its
    settings name."""
    settings = StoreSettings.read(events_dir(root))
    if settings is not None:
        return settings.open()
    return JsonlStore(events_dir(root) / "log.jsonl", fsync=_fsync_enabled())


def create(root: Path, alive_ttl_s: int = 300, adopt: bool = False, store: StoreSettings | None = None,
           events: tuple[list[bytes], list[ev.AnyEvent]] | None = None) -> bool | None:
    """Make a hub at ROOT: True when this call made it, False when another (a racing init here, or
    another machine's on the same PostgreSQL schema) made it first, None when one was already here
    and nothing was done.

    With STORE its log is the PostgreSQL table those settings name. With EVENTS (the lines of an
    exported log and their events) the new log is those lines, byte for byte.  A hand-kept
    SESSIONS/ is never overwritten: with ADOPT its files are first moved, untouched, into
    SESSIONS/events/legacy-<time>/; without it, create refuses."""
    folder, events_folder = root / SESSIONS, events_dir(root)
    if made(root):
        if events is not None:
            raise Conflict(f"a hub is already at {folder}: import loads into a new hub only")
        return None
    if not 1 <= alive_ttl_s <= 30 * 86400:
        raise BadInput("the alive ttl must be between 1s and 30d")
    if store is not None:
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
                return False  # another init here finished first: those are its views
            raise Conflict(
                f"{folder} exists and was not made by evhub: rerun with --adopt to keep its files "
                "in SESSIONS/events/legacy-<time>/ and start the hub there"
            )
        _make_folder(events_folder, kept)
        if store is not None:
            store.write(events_folder)
        with HubLock(events_folder / "lock"):
            # Decided under the lock (and the store's own check of the head): of several racing inits,
            # only the one that wrote says it made the hub.
            try:
                if log.head() != 0:
                    raise ExpectedPositionError("the store already holds a hub")
                if events is not None:
                    log.load(*events)
                else:
                    log.append([ev.HubCreated(seq=1, id=new_id(), ts=now(), alive_ttl_s=alive_ttl_s)], 0)
            except ExpectedPositionError:
                if events is not None:
                    raise Conflict("another init filled the store first: import loads into an empty store") from None
                return False  # another machine's init made it first
            return True
    finally:
        log.close()


def _make_folder(events_folder: Path, kept: list[Path]) -> None:
    """SESSIONS/events/ with its .gitignore, after moving KEPT (a hand-kept folder's files) aside."""
    try:
        events_folder.mkdir(parents=True, exist_ok=True)
        if kept:
            legacy = events_folder / f"legacy-{file_stamp()}"
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
