"""Regenerate the event catalogue: `python events/make_schema.py [OUT]` (OUT defaults to events/schema.json).

The schema comes from the msgspec event types in evhub/_events.py; tests/test_events.py fails when the
committed file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from evhub._events import schema


def schema_json() -> bytes:
    return msgspec.json.format(msgspec.json.encode(schema()), indent=2) + b"\n"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("schema.json")
    out.write_bytes(schema_json())
    print(f"wrote {out}")
