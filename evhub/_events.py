"""The event types: the public log format, one JSON object a line, `type` first."""


from typing import Any, Union, cast

import msgspec

from ._errors import CorruptLog

LOG_VERSION = 1
CLONES = 1000  # an event's `num` ends in the index of the clone that wrote it: num % CLONES (see _order)


class Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Fields every event has: its gap-free position in this log, a unique id and a UTC time.

    `num` is the event's number across the clones of a hub (see _order): absent, it is `seq`, as on
    every event of a hub that never synced, so those logs read and write byte-identical.

    `more` is true on every event but the last of one command's write (bye, milestone claim,
    save...), and absent otherwise: a write cut short leaves a batch with `more` on its last
    line, which readers treat as torn, never as half a command."""

    seq: int
    num: int | msgspec.UnsetType = msgspec.UNSET
    id: str
    ts: str
    more: bool | msgspec.UnsetType = msgspec.UNSET
    by: str | msgspec.UnsetType = msgspec.UNSET  # the caller, when it acted for another session
    # Where an event came from when no command made it: "adopted" by `init --adopt`, or the view file a
    # hand edit was read from. Absent on every other event, so older logs read and write byte-identical.
    origin: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def number(self) -> int:
        """The event's number across clones: tokens, message numbers and the fold's order use it."""
        return self.seq if self.num is msgspec.UNSET else self.num


class SessionEvent(Event, kw_only=True, gc=False):
    """An event done by one session."""

    session: str


class HubCreated(Event, tag="hub_created", kw_only=True, gc=False):
    alive_ttl_s: int = 300
    v: int = LOG_VERSION


class SessionRegistered(SessionEvent, tag="session_registered", kw_only=True, gc=False):
    role: str = ""
    specialization: str = ""
    about: str = ""
    resume: bool = False


class Heartbeat(SessionEvent, tag="heartbeat", kw_only=True, gc=False):
    status: str = ""


class SessionLeft(SessionEvent, tag="session_left", kw_only=True, gc=False):
    pass


class IdProposed(SessionEvent, tag="id_proposed", kw_only=True, gc=False):
    proposed: str
    reason: str = ""


class IdAccepted(SessionEvent, tag="id_accepted", kw_only=True, gc=False):
    proposed: str
    reason: str = ""


class IdRejected(SessionEvent, tag="id_rejected", kw_only=True, gc=False):
    proposed: str
    reason: str = ""


class PriorityClaimed(SessionEvent, tag="priority_claimed", kw_only=True, gc=False):
    priority: str
    ttl_s: int | None = None
    took_over_from: str | None = None


class PriorityReleased(SessionEvent, tag="priority_released", kw_only=True, gc=False):
    priority: str
    done: bool = False
    note: str = ""
    forced: bool = False


class FocusSet(SessionEvent, tag="focus_set", kw_only=True, gc=False):
    text: str


class NoteAdded(SessionEvent, tag="note_added", kw_only=True, gc=False):
    text: str


class MilestoneCreated(SessionEvent, tag="milestone_created", kw_only=True, gc=False):
    milestone: str
    title: str
    priority: str
    steps: list[str] = []


class MilestoneClaimed(SessionEvent, tag="milestone_claimed", kw_only=True, gc=False):
    milestone: str


class StepUpdated(SessionEvent, tag="step_updated", kw_only=True, gc=False):
    milestone: str
    step: int
    status: str
    note: str = ""


class StepsAdded(SessionEvent, tag="steps_added", kw_only=True, gc=False):
    """STEPS appended to MILESTONE after its creation, numbered on from its last step."""

    milestone: str
    steps: list[str]


class MessagePosted(SessionEvent, tag="message_posted", kw_only=True, gc=False):
    to: str = "all"
    text: str


class MessagesRead(SessionEvent, tag="messages_read", kw_only=True, gc=False):
    """SESSION has read every message up to seq UPTO, and those at SEQS above it: a hook shows the newest
    unread messages that fit the agent's context, and the older ones stay unread."""

    upto: int
    seqs: list[int] | msgspec.UnsetType = msgspec.UNSET


class AgentAttached(SessionEvent, tag="agent_attached", kw_only=True, gc=False):
    """SESSION is the hub's id for an agent's own session (a Claude Code session_id, ...), so the
    agent resumed or compacted later comes back as the same session, with its claims."""

    agent: str
    agent_session: str


class EventLost(Event, tag="event_lost", kw_only=True, gc=False):
    """Written by `evhub repair` in place of an event whose line was damaged, so seq stays gap-free."""

    reason: str


class UnknownEvent(msgspec.Struct, kw_only=True, gc=False):
    """An event of a type this evhub does not know (from a newer one): kept, never folded."""

    seq: int
    num: int | msgspec.UnsetType = msgspec.UNSET
    id: str
    ts: str
    type: str
    more: bool | msgspec.UnsetType = msgspec.UNSET
    session: str | None = None

    @property
    def number(self) -> int:
        return self.seq if self.num is msgspec.UNSET else self.num


KnownEvent = Union[
    HubCreated,
    SessionRegistered,
    Heartbeat,
    SessionLeft,
    IdProposed,
    IdAccepted,
    IdRejected,
    PriorityClaimed,
    PriorityReleased,
    FocusSet,
    NoteAdded,
    MilestoneCreated,
    MilestoneClaimed,
    StepUpdated,
    StepsAdded,
    MessagePosted,
    MessagesRead,
    AgentAttached,
    EventLost,
]
AnyEvent = Union[KnownEvent, UnknownEvent]

EVENT_TYPES: dict[str, type[Event]] = {
    t.__struct_config__.tag: t  # type: ignore[misc]
    for t in KnownEvent.__args__  # type: ignore[attr-defined]
}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KnownEvent)
_unknown_decoder = msgspec.json.Decoder(UnknownEvent)


def encode(event: Event) -> bytes:
    """One log line, with its newline."""
    return _encoder.encode(event) + b"\n"


def is_canonical(events: list[AnyEvent], block: bytes) -> bool:
    """Whether BLOCK is exactly the lines this evhub would write for EVENTS, so no line of it holds
    a field or a type unknown here (checked in one call for a whole block)."""
    return _encoder.encode_lines(events) == block


def decode(line: bytes) -> AnyEvent:
    """The event on one log line; CorruptLog when the line is not a whole event."""
    try:
        event: AnyEvent = _decoder.decode(line)
        return event
    except msgspec.ValidationError as e:
        try:
            raw = msgspec.json.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise CorruptLog(f"not an event: {e}") from e
        if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"] not in EVENT_TYPES:
            try:
                return _unknown_decoder.decode(line)
            except msgspec.ValidationError as e2:
                raise CorruptLog(f"not an event: {e2}") from e2
        raise CorruptLog(f"not an event: {e}") from e
    except msgspec.DecodeError as e:
        raise CorruptLog(f"not JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise CorruptLog(f"not UTF-8: {e}") from e


def decode_block(lines: bytes) -> list[AnyEvent] | None:
    """Every event in a block of whole lines, or None when a line needs a closer look."""
    try:
        # The decoder knows only the known types; AnyEvent also admits UnknownEvent.
        return cast(list[AnyEvent], _decoder.decode_lines(lines))
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None


def unknown_fields(line: bytes, event: AnyEvent) -> list[str]:
    """Fields on LINE that this evhub's type for it does not have (written by a newer evhub)."""
    if isinstance(event, UnknownEvent):
        return []
    if encode(event) == line.rstrip(b"\n") + b"\n":
        return []
    raw = msgspec.json.decode(line)
    known = set(event.__struct_fields__) | {"type"}
    return sorted(k for k in raw if k not in known)


def to_dict(event: AnyEvent) -> dict[str, Any]:
    """The event as the plain mapping its log line holds (type first)."""
    out: dict[str, Any] = msgspec.to_builtins(event)
    return out


def schema() -> dict[str, Any]:
    """The JSON Schema of the log format, as written to events/schema.json."""
    return msgspec.json.schema(KnownEvent)
