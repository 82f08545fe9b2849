"""Reading history: `log` filters and following, and read-only SQL over the read model."""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from . import _events as ev
from ._errors import BadInput, CorruptLog
from ._hub import Hub
from ._store import JsonlStore, LogLine
from ._values import check_id, parse_when

TYPE_ALIASES = {
    "hello": "session_registered",
    "register": "session_registered",
    "bye": "session_left",
    "claim": "priority_claimed",
    "release": "priority_released",
    "focus": "focus_set",
    "note": "note_added",
    "milestone": "milestone_created",
    "step": "step_updated",
    "msg": "message_posted",
    "message": "message_posted",
    "read": "messages_read",
    "propose": "id_proposed",
    "accept": "id_accepted",
    "reject": "id_rejected",
}
FOLLOW_POLL_S = 0.2


class LogFilter(NamedTuple):
    session: str | None
    type_: str | None
    since: str | None
    until: str | None

    @classmethod
    def make(cls, *, session: str | None, type_: str | None, since: str | None, until: str | None,
             now: str) -> LogFilter:
        if type_ is not None:
            type_ = TYPE_ALIASES.get(type_, type_)
            if type_ not in ev.EVENT_TYPES and not type_.replace("_", "").isalpha():
                raise BadInput(f"unknown event type {type_!r}")
        return cls(
            session=None if session is None else check_id(session, "session id"),
            type_=type_,
            since=None if since is None else parse_when(since, now),
            until=None if until is None else parse_when(until, now),
        )

    def quick_reject(self, raw: bytes) -> bool:
        """True when RAW cannot match, judged without decoding it."""
        if self.type_ is not None and f'"type":"{self.type_}"'.encode() not in raw:
            return True
        return self.session is not None and f'"session":"{self.session}"'.encode() not in raw

    def matches(self, e: ev.AnyEvent) -> bool:
        if self.session is not None and getattr(e, "session", None) != self.session:
            return False
        if self.type_ is not None and _type_of(e) != self.type_:
            return False
        if self.since is not None and e.ts < self.since:
            return False
        return self.until is None or e.ts <= self.until

    def describe(self, line: LogLine) -> str:
        """One human line for an event: #seq time type session field=value ..."""
        doc = ev.to_dict(ev.decode(line.raw))
        head = [f"#{doc.pop('seq')}", doc.pop("ts"), str(doc.pop("type"))]
        doc.pop("id", None)
        doc.pop("more", None)
        who = doc.pop("session", None)
        if who:
            head.append(who)
        fields = [f"{k}={_show(v)}" for k, v in doc.items() if v not in ("", None, False, [])]
        return " ".join(head + fields)


def _type_of(e: ev.AnyEvent) -> str:
    return e.type if isinstance(e, ev.UnknownEvent) else str(e.__struct_config__.tag)


def _show(v: Any) -> str:
    text = ",".join(map(str, v)) if isinstance(v, list) else str(v)
    return repr(text) if any(c.isspace() for c in text) or not text else text


def _select(hub: Hub, flt: LogFilter, lines: Iterator[LogLine]) -> Iterator[LogLine]:
    for line in lines:
        if flt.quick_reject(line.raw):
            continue
        try:
            e = ev.decode(line.raw)
        except CorruptLog as err:
            hub.warnings.append(f"the log is damaged at byte {line.offset} ({err}); events after it not shown")
            return
        if flt.matches(e):
            yield line


def matching_lines(hub: Hub, flt: LogFilter, limit: int | None) -> tuple[list[LogLine], int]:
    """The matching lines (only the last LIMIT when given) and the offset where the log ended."""
    store = JsonlStore(hub.log_path)
    shown = deque(_select(hub, flt, store.lines(0)), maxlen=limit)
    return list(shown), store.scanned_to


def follow_lines(hub: Hub, flt: LogFilter, offset: int) -> Iterator[LogLine]:
    """Matching lines appended after OFFSET, as they arrive, until interrupted."""
    store = JsonlStore(hub.log_path)
    while True:
        yield from _select(hub, flt, store.lines(offset))
        if store.scanned_to == offset:
            time.sleep(FOLLOW_POLL_S)
        offset = store.scanned_to


def query_readmodel(hub: Hub, query: str) -> list[dict[str, Any]]:
    """Rows of a read-only QUERY against the read model."""
    import sqlite_utils

    uri = hub.readmodel.path.as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            return list(sqlite_utils.Database(conn).query(query))
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise BadInput(f"sql: {e}") from e
