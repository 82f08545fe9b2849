"""evhub: an event-sourced, append-only coordination hub for AI coding sessions on one repository."""

from ._decide import Command
from ._errors import BadInput, Conflict, CorruptLog, EvhubError, HubBusy, HubNotFound, NotFound, StorageError
from ._events import AnyEvent, Event
from ._hub import Hub
from ._pgstore import StoreSettings
from ._results import Location, Recall, Saved
from ._state import Claim, ClaimChange, Message, Milestone, Note, Session, State, Step

__all__ = [
    "AnyEvent",
    "BadInput",
    "Claim",
    "ClaimChange",
    "Command",
    "Conflict",
    "CorruptLog",
    "Event",
    "EvhubError",
    "Hub",
    "HubBusy",
    "HubNotFound",
    "Location",
    "Message",
    "Milestone",
    "NotFound",
    "Note",
    "Recall",
    "Saved",
    "Session",
    "State",
    "StorageError",
    "Step",
    "StoreSettings",
]
