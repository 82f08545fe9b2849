"""Reading history: `log` filters and following, and read-only SQL over the read model."""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from . import _events as ev
from ._documents import one_line
from ._errors import BadInput, CorruptLog, EvhubError, NotFound
from ._integrity import LogLine
from ._order import events_in_order
from ._readmodel import with_log_texts
from ._state import State, claim_history
from ._store import Store
from ._values import check_id, did_you_mean, parse_when

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
                raise _unknown_type(type_)
        return cls(
            session=None if session is None else check_id(session, "session id"),
            type_=type_,
            since=None if since is None else parse_when(since, now),
            until=None if until is None else parse_when(until, now),
        )

    def needles(self) -> tuple[bytes, ...]:
        """Bytes every matching line holds, unless it holds a \\u escape: the quoted type and session."""
        return tuple(_quoted(v) for v in (self.type_, self.session) if v is not None)

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


def _unknown_type(type_: str) -> BadInput:
    hint = (did_you_mean(type_, [*TYPE_ALIASES, *ev.EVENT_TYPES])
            or f"use one of {', '.join(TYPE_ALIASES)}, or a full name such as priority_claimed")
    return BadInput(f"unknown event type {type_!r}: {hint}")


def check_type(store: Store, type_: str | None) -> None:
    """Refuse TYPE_ unless this evhub knows it or the log holds an event of it (written by a newer
    evhub): a typo would otherwise match nothing and look like an empty history."""
    if type_ is None or type_ in ev.EVENT_TYPES:
        return
    for line in store.search((_quoted(type_),)):
        try:
            if _type_of(ev.decode(line.raw)) == type_:
                return
        except CorruptLog:
            continue  # the scan that follows says where the log is damaged
    raise _unknown_type(type_)


def _type_of(e: ev.AnyEvent) -> str:
    return e.type if isinstance(e, ev.UnknownEvent) else str(e.__struct_config__.tag)


def _show(v: Any) -> str:
    text = ",".join(map(str, v)) if isinstance(v, list) else str(v)
    # repr quotes text with spaces and escapes what one_line would; other text is shown by one_line.
    return repr(text) if any(c.isspace() for c in text) or not text else one_line(text)


def _quoted(value: str) -> bytes:
    """VALUE as a JSON string without escapes (types and ids never need one)."""
    return b'"' + value.encode() + b'"'


def _select(flt: LogFilter, lines: Iterator[LogLine], warnings: list[str], damaged: list[int],
            ) -> Iterator[LogLine]:
    """The LINES that match FLT, judged on the decoded event; a damaged line ends them with a warning,
    its offset put in DAMAGED."""
    for line in lines:
        try:
            e = ev.decode(line.raw)
        except CorruptLog as err:
            warnings.append(f"the log is damaged at byte {line.offset} ({err}); events after it not shown")
            damaged.append(line.offset)
            return
        if flt.matches(e):
            yield line


def matching_lines(store: Store, flt: LogFilter, limit: int | None, warnings: list[str],
                   ) -> tuple[list[LogLine], int]:
    """The matching lines (only the last LIMIT when given) and the offset where they end: where the log
    ended, or its first damaged line."""
    check_type(store, flt.type_)
    damaged: list[int] = []
    shown = deque(_select(flt, store.search(flt.needles()), warnings, damaged), maxlen=limit)
    return list(shown), damaged[0] if damaged else store.scanned_to


def follow_lines(store: Store, flt: LogFilter, offset: int, tell: Callable[[str], None]) -> Iterator[LogLine]:
    """Matching lines appended after OFFSET, as they arrive, until interrupted.

    A line that is not an event is waited on until a repair mends it, TELL being given a warning once
    (a follower waits there for long: its user must hear why at once, not when it ends). When the log is
    rewritten under the follower (the last line it read is no longer where it was: a repair), it reads
    the log again from the start and goes on after the last event it read, each event shown once; an
    event it had read that is now an `event_lost` placeholder is shown again, as lost."""
    last = _line_before(store, offset)  # the last line read: where it stands tells a rewritten log
    seen = 0 if last is None else _seq(last)  # the last event read
    told: set[int] = set()  # the placeholders shown
    damage: str | None = None  # the warning told of the line waited on
    while True:
        again = last is not None and not store.holds(last)
        if again:
            offset = 0
        news = False
        for line in store.lines(offset):
            try:
                e = ev.decode(line.raw)
            except CorruptLog as err:
                warning = f"the log is damaged at byte {line.offset} ({err}); waiting for `evhub repair`"
                if warning != damage:
                    tell(warning)
                    damage = warning
                break
            offset, last, news, damage = line.offset + len(line.raw), line, True, None
            if e.seq <= seen and (not isinstance(e, ev.EventLost) or e.seq in told):
                continue  # read before the log was rewritten
            seen = max(seen, e.seq)
            if isinstance(e, ev.EventLost):
                told.add(e.seq)
            if flt.matches(e):
                yield line
        if not news:
            store.wait(store.poll_s)  # a log found rewritten but empty, or gone, is waited on too


def _seq(line: LogLine) -> int:
    try:
        return ev.decode(line.raw).seq
    except CorruptLog:
        return 0  # a damaged line the scan's needles passed over


def _line_before(store: Store, offset: int) -> LogLine | None:
    """The whole line of STORE that ends at byte OFFSET (None at 0)."""
    for at, block in store.blocks(0):
        if at + len(block) >= offset:
            end = offset - at
            if end <= 0:
                return None
            start = block.rfind(b"\n", 0, end - 1) + 1
            return LogLine(at + start, block[start:end])
    return None


def recent_events(store: Store, session: str | None, limit: int, window: int) -> list[ev.AnyEvent]:
    """The latest LIMIT events of SESSION (of anyone when None), among about the last WINDOW // 128
    events of the log."""
    newest = store.newest(window // 128)
    return [e for e in newest if session is None or getattr(e, "session", None) == session][-limit:]


def why(store: Store, priority: str) -> list[dict[str, Any]]:
    """The history of PRIORITY's claims, oldest first: each claim, refresh, takeover, rename and
    end, as the fold decided it (claim_history), with the event that made it."""
    priority = check_id(priority, "priority")
    rows: list[dict[str, Any]] = []
    for change in claim_history(events_in_order(store), State(), priority):
        row = {"action": change.action, **ev.to_dict(change.event)}
        if change.action == "renamed":  # the event is the vote that agreed it: name the holder
            row.update(session=change.session, priority=priority, renamed_from=change.renamed_from)
        rows.append(row)
    if not rows:
        claimed = {e.priority for e in store.read(0) if isinstance(e, ev.PriorityClaimed)}
        hint = did_you_mean(priority, claimed)
        raise NotFound(f"{priority} has never been claimed" + (f": {hint}" if hint else ""))
    return rows


def query_readmodel(path: Path, query: str, store: Store) -> list[dict[str, Any]]:
    """Rows of a read-only QUERY against the read model (the messages' texts read from STORE's log)."""
    import sqlite_utils

    uri = path.as_uri() + "?mode=ro"
    failed: list[EvhubError] = []
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            failed = with_log_texts(conn, store)
            return list(sqlite_utils.Database(conn).query(query))
        finally:
            conn.close()
    except sqlite3.Error as e:
        if failed:
            raise failed[0] from e  # reading a text from the log failed, not the query
        raise BadInput(f"sql: {e}") from e
