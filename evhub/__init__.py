"""evhub: an event-sourced, append-only coordination hub for AI coding sessions on one repository."""

from ._errors import BadInput, Conflict, CorruptLog, EvhubError, HubBusy, HubNotFound, NotFound, StorageError
from ._hub import Hub
from ._pgstore import StoreSettings

__all__ = [
    "BadInput",
    "Conflict",
    "CorruptLog",
    "EvhubError",
    "Hub",
    "HubBusy",
    "HubNotFound",
    "NotFound",
    "StorageError",
    "StoreSettings",
]
