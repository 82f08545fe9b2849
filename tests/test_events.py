"""The log format: every event type round-trips, newer lines are kept, broken lines are CorruptLog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from histories import ODD
from hypothesis import given, settings
from hypothesis import strategies as st

from evhub import _events as ev
from evhub._errors import CorruptLog

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "events" / "schema.json"
REGENERATE = f"{Path(sys.executable).name} events/make_schema.py"
SETTINGS = settings(max_examples=150, deadline=None)

# The types of the spec's log format table.
SPEC_TYPES = {
    "hub_created",
    "session_registered",
    "heartbeat",
    "session_left",
    "id_proposed",
    "id_accepted",
    "id_rejected",
    "priority_claimed",
    "priority_released",
    "focus_set",
    "note_added",
    "milestone_created",
    "milestone_claimed",
    "step_updated",
    "message_posted",
    "messages_read",
    # Not in the spec's table: what `evhub repair` writes in place of a damaged line,
    "event_lost",
    # and which agent session (a Claude Code session_id) a session is, for `evhub hook`,
    "agent_attached",
    # and steps added to a milestone after its creation (`evhub milestone add-step`).
    "steps_added",
}

# Any text UTF-8 can carry (no lone surrogates), and the awkward pieces a log must survive.
odd_text = st.one_of(
    st.text(st.characters(codec="utf-8")),
    st.lists(st.sampled_from((*ODD, "\x00", "\x7f", "\u0085", "\U0010ffff", "\ud7ff")), max_size=6).map(
        "".join
    ),
)
ints = st.integers(-(2**63), 2**63 - 1)


def for_type(t: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for one field type of an event struct."""
    if isinstance(t, mi.IntType):
        return ints
    if isinstance(t, mi.StrType):
        return odd_text
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.ListType):
        return st.lists(for_type(t.item_type), max_size=4)
    if isinstance(t, mi.UnionType):
        return st.one_of(*(for_type(u) for u in t.types))
    raise AssertionError(f"no strategy for event field type {t}: add one to tests/test_events.py")


def for_event(cls: type[ev.Event]) -> st.SearchStrategy[ev.Event]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.builds(cls, **{f.name: for_type(f.type) for f in info.fields})


events = st.one_of(*(for_event(cls) for cls in ev.EVENT_TYPES.values()))


def test_the_event_types_are_the_specs() -> None:
    assert set(ev.EVENT_TYPES) == SPEC_TYPES
    for tag, cls in ev.EVENT_TYPES.items():
        fields = set(cls.__struct_fields__)
        assert {"seq", "id", "ts"} <= fields
        # Only the hub itself and repair's placeholders are written by no session.
        assert ("session" in fields) == (tag not in ("hub_created", "event_lost")), tag


@SETTINGS
@given(events)
def test_every_event_round_trips_through_its_log_line(event: ev.KnownEvent) -> None:
    line = ev.encode(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1, "one event, one line"
    text = line.decode("utf-8")  # valid UTF-8, or this raises
    obj = json.loads(text)
    assert isinstance(obj, dict)
    assert next(iter(obj)) == "type" and obj["type"] == event.__struct_config__.tag
    assert set(obj) == {"type", *event.__struct_fields__}
    assert ev.to_dict(event) == obj and next(iter(ev.to_dict(event))) == "type"
    back = ev.decode(line)
    assert type(back) is type(event) and back == event
    assert ev.unknown_fields(line, back) == []
    assert ev.decode(line.rstrip(b"\n")) == event, "the newline is optional when decoding"
    assert ev.decode_block(line * 3) == [event] * 3


@SETTINGS
@given(events, st.data())
def test_unknown_fields_from_a_newer_evhub_are_ignored_and_reported(
    event: ev.KnownEvent, data: st.DataObject
) -> None:
    obj = ev.to_dict(event)
    new_keys = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(lambda k: k not in obj)
    json_values = st.recursive(
        st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | odd_text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
        max_leaves=6,
    )
    extra = data.draw(st.dictionaries(new_keys, json_values, min_size=1, max_size=4), label="extra")
    first = data.draw(st.booleans(), label="extra fields first")
    newer = {**extra, **obj} if first else {**obj, **extra}
    line = json.dumps(newer, ensure_ascii=data.draw(st.booleans(), label="ascii")).encode() + b"\n"
    back = ev.decode(line)
    assert back == event
    assert ev.unknown_fields(line, back) == sorted(extra)


@SETTINGS
@given(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20).filter(lambda t: t not in ev.EVENT_TYPES),
    ints,
    st.none() | odd_text,
    st.dictionaries(st.sampled_from(["payload", "priority", "text", "v"]), odd_text),
)
def test_unknown_types_decode_as_unknown_events(
    kind: str, seq: int, session: str | None, rest: dict[str, str]
) -> None:
    obj: dict[str, Any] = {"type": kind, "seq": seq, "id": "01J", "ts": "2026-11-25T12:00:00.000000Z", **rest}
    if session is not None:
        obj["session"] = session
    line = json.dumps(obj).encode() + b"\n"
    back = ev.decode(line)
    assert isinstance(back, ev.UnknownEvent)
    assert (back.type, back.seq, back.id, back.session) == (kind, seq, "01J", session)
    assert ev.unknown_fields(line, back) == []


@SETTINGS
@given(events)
def test_a_truncated_line_is_corrupt(event: ev.KnownEvent) -> None:
    body = ev.encode(event).rstrip(b"\n")
    for n in range(len(body)):
        with pytest.raises(CorruptLog):
            ev.decode(body[:n] + b"\n")
    assert ev.decode_block(body[:-1] + b"\n") is None


BROKEN = [
    b"",
    b"\n",
    b"hello\n",
    b"[1, 2]\n",
    b"null\n",
    b'"heartbeat"\n',
    b'{"type": "heartbeat"}\n',  # the fields every event has are missing
    b'{"type": "heartbeat", "seq": "1", "id": "x", "ts": "t", "session": "s"}\n',  # seq is a string
    b'{"type": "heartbeat", "seq": 1, "id": "x", "ts": "t"}\n',  # no session
    b'{"type": "step_updated", "seq": 1, "id": "x", "ts": "t", "session": "s", "milestone": "m"}\n',
    b'{"type": "newer_thing", "id": "x", "ts": "t"}\n',  # unknown type, still no seq
    b'{"type": 7, "seq": 1, "id": "x", "ts": "t"}\n',
    b'{"type": ["heartbeat"], "seq": 1, "id": "x", "ts": "t"}\n',
    b'{"type": {"a": 1}, "seq": 1, "id": "x", "ts": "t"}\n',
    b'{"seq": 1, "id": "x", "ts": "t", "session": "s"}\n',  # no type at all
    b'{"type": "heartbeat", "seq": 1, "id": "x", "ts": "t", "session": "\xff\xfe"}\n',  # not UTF-8
    b'{"type": "heartbeat", "seq": "1", "id": "x", "ts": "t", "session": "\xc3"}\n',  # both
    b'{"type": "heartbeat", "seq": 1, "id": "x", "ts": "t", "session": "s"} {}\n',  # two documents
    b'{"type": "heartbeat", "seq": 1, "id": "x", "ts": "t", "session": "s"\n',
    b"\x00\x00\x00\x00\n",  # what a crash can leave behind on some file systems
]


@pytest.mark.parametrize("line", BROKEN, ids=repr)
def test_a_line_that_is_not_a_whole_event_is_corrupt(line: bytes) -> None:
    with pytest.raises(CorruptLog):
        ev.decode(line)
    good = ev.encode(ev.Heartbeat(seq=1, id="x", ts="t", session="s"))
    assert ev.decode_block(good + line) is None or line.strip() == b""


# The catalogue


def schema_bytes() -> bytes:
    return msgspec.json.format(msgspec.json.encode(ev.schema()), indent=2) + b"\n"


def test_events_schema_json_is_up_to_date() -> None:
    assert SCHEMA.is_file(), f"events/schema.json is missing: run `{REGENERATE}`"
    assert SCHEMA.read_bytes() == schema_bytes(), (
        f"events/schema.json is out of date with evhub/_events.py: run `{REGENERATE}` and commit it"
    )


def test_schema_names_every_event_type() -> None:
    schema = json.loads(SCHEMA.read_bytes())
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == SPEC_TYPES


def test_make_schema_writes_the_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run(
        [sys.executable, str(ROOT / "events" / "make_schema.py"), str(out)], check=True, timeout=60
    )
    assert out.read_bytes() == schema_bytes()
