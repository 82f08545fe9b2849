"""evhub: an event-sourced, append-only coordination hub for AI coding sessions on one repository.

The public names are imported on first use (PEP 562), so `import evhub` costs nothing: the hook's
fast path and the entry point load only the modules they use, never the whole hub.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._adopt import Adoption
    from ._decide import Command
    from ._errors import (
        BadInput,
        Conflict,
        CorruptLog,
        EvhubError,
        HubBusy,
        HubNotFound,
        NotFound,
        StorageError,
        UnrelatedHub,
    )
    from ._events import AnyEvent, Event
    from ._hub import Hub
    from ._pgstore import StoreSettings
    from ._results import Claimed, Location, Merged, Recall, Saved
    from ._state import Claim, ClaimChange, Message, Milestone, Note, Session, State, Step
    from ._sync import Synced

# Each public name and the module that defines it.
_HOMES = {
    "Adoption": "_adopt",
    "Command": "_decide",
    **dict.fromkeys(("BadInput", "Conflict", "CorruptLog", "EvhubError", "HubBusy", "HubNotFound", "NotFound",
                     "RefRewritten", "StorageError", "SyncFailed", "UnrelatedHub"), "_errors"),
    "AnyEvent": "_events",
    "Event": "_events",
    "Hub": "_hub",
    "StoreSettings": "_pgstore",
    "Synced": "_sync",
    **dict.fromkeys(("Claimed", "Location", "Merged", "Recall", "Saved"), "_results"),
    **dict.fromkeys(("Claim", "ClaimChange", "Message", "Milestone", "Note", "Session", "State", "Step"), "_state"),
}

__all__ = [
    "Adoption",
    "AnyEvent",
    "BadInput",
    "Claim",
    "ClaimChange",
    "Claimed",
    "Command",
    "Conflict",
    "CorruptLog",
    "Event",
    "EvhubError",
    "Hub",
    "HubBusy",
    "HubNotFound",
    "Location",
    "Merged",
    "Message",
    "Milestone",
    "NotFound",
    "Note",
    "Recall",
    "RefRewritten",
    "Saved",
    "Session",
    "State",
    "StorageError",
    "Step",
    "StoreSettings",
    "SyncFailed",
    "Synced",
    "UnrelatedHub",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # found once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
