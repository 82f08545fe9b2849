"""One error hierarchy: every failure evhub reports is an EvhubError with an exit code."""

from __future__ import annotations


class EvhubError(Exception):
    """Base class of every error evhub raises on purpose."""

    exit_code = 1


class BadInput(EvhubError):
    """An argument, identifier, duration, time or text is not acceptable."""


class Unreadable(BadInput):
    """A file kept by hand in the seed's layout (a heartbeat, a lock, a milestone...) that evhub cannot
    read; its message says why. Adoption and hand edits report it and keep the file."""


class ClockAhead(BadInput):
    """A time further ahead of the real clock than evhub allows would be written."""


class UnrelatedHub(BadInput):
    """A log or remote to merge with belongs to another hub: only clones of one hub merge."""


class NotFound(EvhubError):
    """The session, priority, milestone or proposal named does not exist."""


class HubNotFound(NotFound):
    """No hub was found at the given path or above the current directory."""


class HubBusy(EvhubError):
    """The hub lock stayed held by another process past the lock timeout."""


class StorageError(EvhubError):
    """Reading or writing a hub file failed (permissions, disk full, ...)."""


class Conflict(EvhubError):
    """The action collides with another session: held claim, taken id, stale token, existing thing."""

    exit_code = 3


class NotYours(Conflict):
    """The command acts for a session other than the caller's own without saying it means to."""


class ExpectedPositionError(Conflict):
    """The log's head moved past the position an append expected."""


class RefRewritten(Conflict):
    """A clone's ref on the git remote no longer continues what this clone fetched or pushed before (force-
    pushed, or written by someone else): the sync stops before merging or pushing anything, and says how to
    look at the ref and accept it."""


class SyncFailed(EvhubError):
    """A sync could not reach, read or update the git remote (offline, refused, git missing); this clone's
    log keeps every event it had, and the next sync completes what this one began."""


class CorruptLog(EvhubError):
    """The log holds a line that is not a whole event; run `evhub verify` and `evhub repair`."""

    exit_code = 4


class LogRewound(CorruptLog):
    """The log no longer holds what the hub has seen: it was rewound or replaced; `evhub repair` restores it."""


class ViewsDisagree(EvhubError):
    """View files disagree with the log: edited by hand since evhub wrote them (`verify` names each)."""

    exit_code = 4
