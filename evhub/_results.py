"""What the Hub's use cases return, beside the state's own types: typed, importable from `evhub`."""

from __future__ import annotations

from typing import NamedTuple

from . import _events as ev
from ._state import Message, State


class Recall(NamedTuple):
    """What a session needs after a context loss, as `Hub.recall` found it."""

    session: str  # the session's current id
    state: State  # the hub when it was asked
    unread: list[Message]  # its unread messages, oldest first (left unread)
    recent: list[ev.AnyEvent]  # its latest events, oldest first
    at: str  # the time it was asked (liveness and ages are judged at it)


class Location(NamedTuple):
    """Where a hub keeps what: `Hub.where`, `evhub where`."""

    root: str  # the hub's root: its main worktree in a git repository
    log: str  # the log file, or the PostgreSQL server and schema that hold it
    read_model: str
    views: list[str]  # the SESSIONS/ folders kept live


class Saved(NamedTuple):
    """What `Hub.save` recorded."""

    mode: str  # quick, milestone or full (auto resolved)
    events: list[int]  # the seqs of the events it appended
    git_commit: str | None  # with mode full in a git work tree: the commit of SESSIONS/


class Claimed(NamedTuple):
    """What `Hub.claim` and `Hub.claim_milestone` got: the claim, and whom it was taken from."""

    priority: str
    token: int  # the claim's fencing token
    took_over_from: str | None = None  # the former holder, when its claim was stale and is taken over
    took_over_because: str = ""  # why that claim was stale: "silent 12m", or "its ttl ran out"


class Merged(NamedTuple):
    """What `Hub.merge_log` took from another clone's log."""

    added: int  # events this hub lacked, now in its log
    known: int  # events it held already
