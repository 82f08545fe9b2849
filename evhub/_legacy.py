"""The seed's hand-kept files, read: one pure parser a file format, for `init --adopt` and for hand edits.

The seed (`SESSIONS/README.md` before evhub) let people and agents write its files by hand, so each
format is read leniently: evhub's own rendering of a file, and the shapes the seed's instructions
produce (a heartbeat written with `$(date -u)`, a lock holding just a session id, a milestone whose
steps are plain strings...). Each parser takes a file's text (and its name, where the name says
something, such as the priority of a lock) and returns small frozen values; a file it cannot read
raises Unreadable, whose message says why in one line.  No parser touches the disk or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from ._errors import BadInput, Unreadable
from ._values import STEP_STATUSES, check_id, format_ts, normalize_ts

# -- values ------------------------------------------------------------------------------------------


class HeartbeatFile(msgspec.Struct, frozen=True, kw_only=True):
    """HEARTBEATS/<id>.json: SESSION was alive at TIME (None: the file gives no time), doing STATUS."""

    session: str
    time: str | None = None
    status: str = ""


class LockFile(msgspec.Struct, frozen=True, kw_only=True):
    """PRIORITIES/<priority>.lock: SESSION claimed PRIORITY at TIME (None: not said), for TTL_S seconds."""

    priority: str
    session: str
    time: str | None = None
    ttl_s: int | None = None


class StepFile(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a milestone, numbered from 1 in the file's order."""

    text: str
    status: str = "pending"
    note: str = ""
    updated: str | None = None
    by: str | None = None


class MilestoneFile(msgspec.Struct, frozen=True, kw_only=True):
    """MILESTONES/<id>.json: a milestone with its steps, their statuses and notes."""

    id: str
    title: str
    priority: str
    owner: str | None = None
    created_by: str | None = None
    created: str | None = None
    steps: tuple[StepFile, ...] = ()


class MessageLine(msgspec.Struct, frozen=True, kw_only=True):
    """One message of MESSAGES.md: from SENDER to TO ("all" or a session id), posted at TIME when given.
    LINE is where it starts (1-based); SEQ is its number when evhub rendered it."""

    sender: str
    to: str
    text: str
    time: str | None = None
    line: int = 0
    seq: int | None = None


class StrayLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line of MESSAGES.md after its first message that is no message and no part of one."""

    line: int
    text: str


class MessagesFile(msgspec.Struct, frozen=True, kw_only=True):
    messages: tuple[MessageLine, ...] = ()
    stray: tuple[StrayLine, ...] = ()


class RegistryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One session of REGISTRY.json."""

    id: str
    role: str = ""
    specialization: str = ""
    about: str = ""
    first_seen: str | None = None
    last_seen: str | None = None


class RegistryFile(msgspec.Struct, frozen=True, kw_only=True):
    """REGISTRY.json: its sessions, and why each entry that could not be read was left out."""

    sessions: tuple[RegistryEntry, ...] = ()
    skipped: tuple[str, ...] = ()


class HelloFile(msgspec.Struct, frozen=True, kw_only=True):
    """DISCOVERY/<id>-HELLO.md: the session's introduction."""

    session: str
    role: str = ""
    work: str = ""


class HandshakeFile(msgspec.Struct, frozen=True, kw_only=True):
    """HANDSHAKES/<name>.json: SESSION proposed to be known as PROPOSED; STATUS is pending, agreed,
    rejected or withdrawn (replaced by a later proposal)."""

    session: str
    proposed: str
    status: str = "pending"
    reason: str = ""
    time: str | None = None
    accepted: tuple[str, ...] = ()
    rejected_by: str | None = None
    reject_reason: str = ""


# -- shared readers ----------------------------------------------------------------------------------

# `date -u` as the seed's heartbeat line writes it ("Tue Dec  1 03:09:00 UTC 2026"), a few common
# variants of it, and plain dates with a space instead of T.
_TIME_FORMATS = (
    "%a %b %d %H:%M:%S %Z %Y",
    "%a %d %b %Y %H:%M:%S %Z",
    "%a %b %d %H:%M:%S %Y",
    "%Y-%m-%d %H:%M:%S %Z",
    "%Y-%m-%d %H:%M %Z",
    "%Y-%m-%d %H:%M",
)


def parse_time(value: object) -> str:
    """A time as the seed's files hold it (RFC 3339, `date -u` output, a Unix time in seconds), in
    evhub's form; Unreadable when it is none of those."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Unreadable(f"time {value!r} is not a time")
    if isinstance(value, (int, float)):
        try:
            return format_ts(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError) as e:
            raise Unreadable(f"time {value!r} is out of range") from e
    text = " ".join(value.split())
    try:
        return normalize_ts(text)
    except BadInput:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return format_ts(datetime.strptime(text, fmt).replace(tzinfo=UTC))
        except ValueError:
            continue
    raise Unreadable(f"time {value!r} is not one evhub can read (RFC 3339 such as 2026-11-25T14:02:00Z, "
                     "or `date -u` output)")


def _json_object(text: str | bytes) -> dict[str, Any]:
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise Unreadable(f"not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise Unreadable(f"a JSON {type(doc).__name__}, not an object")
    return doc


def _pick(doc: dict[str, Any], *keys: str) -> Any:
    """The value of the first of KEYS that DOC holds with a value (not null, not empty)."""
    for key in keys:
        value = doc.get(key)
        if value not in (None, ""):
            return value
    return None


def _string(doc: dict[str, Any], *keys: str) -> str:
    value = _pick(doc, *keys)
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)  # notes kept as a list of lines
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise Unreadable(f"{keys[0]} is {value!r}, not text")
    return str(value)


def _id(value: object, what: str) -> str:
    """VALUE as an evhub identifier (the seed's ids are often capitalised: lower-cased here)."""
    if not isinstance(value, str) or not value.strip():
        raise Unreadable(f"no {what}")
    try:
        return check_id(value.strip().lower(), what)
    except BadInput as e:
        raise Unreadable(str(e)) from None


def _time(doc: dict[str, Any], *keys: str) -> str | None:
    value = _pick(doc, *keys)
    return None if value is None else parse_time(value)


def _stem(name: str, suffix: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base[: -len(suffix)] if base.endswith(suffix) else base


# -- one parser a format -------------------------------------------------------------------------------

_SESSION_KEYS = ("id", "session", "session_id", "name")
_TIME_KEYS = ("time", "timestamp", "ts", "last_seen", "updated")


def parse_heartbeat(text: str | bytes, name: str) -> HeartbeatFile:
    """HEARTBEATS/NAME (NAME is `<id>.json`): the seed's `{"id": ..., "time": ...}`, evhub's own with
    `status`; a file without an id is the session its name says."""
    doc = _json_object(text)
    session = _id(_pick(doc, *_SESSION_KEYS) or _stem(name, ".json"), "session id")
    return HeartbeatFile(session=session, time=_time(doc, *_TIME_KEYS), status=_string(doc, "status"))


_KEY_VALUE = re.compile(r"\s*([A-Za-z_ ]+?)\s*[:=]\s*(.*?)\s*")


def parse_lock(text: str | bytes, name: str) -> LockFile:
    """PRIORITIES/NAME (NAME is `<priority>.lock`): evhub's claim JSON, a JSON object naming its
    holder, `key: value` lines (session, time...), or just the holder's id."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    priority = _id(_stem(name, ".lock"), "priority")
    if not raw.strip():
        raise Unreadable("the file is empty: it does not say which session holds it")
    if raw.lstrip().startswith("{"):
        doc = _json_object(raw)
    else:
        doc = {}
        words = raw.split()
        for line in raw.splitlines():
            m = _KEY_VALUE.fullmatch(line)
            if m:
                doc[m[1].lower().replace(" ", "_")] = m[2]
        if not doc and len(words) == 1:
            doc = {"session": words[0]}
        if not doc:
            raise Unreadable("neither JSON nor `session: ID` lines nor a session id alone")
    holder = _pick(doc, "session", "holder", "owner", "claimed_by", "by", "id")
    if holder is None:
        raise Unreadable("it does not say which session holds it")
    ttl = _pick(doc, "ttl_s")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise Unreadable(f"ttl_s {ttl!r} is not a number of seconds")
    return LockFile(priority=_id(_pick(doc, "priority") or priority, "priority"), session=_id(holder, "session id"),
                    time=_time(doc, "since", "time", "claimed_at", "claimed", "timestamp", "ts"), ttl_s=ttl)


# The seed's ways of saying a step's status, by evhub's name for it.
_STATUS_WORDS = {
    "pending": ("pending", "todo", "to-do", "not-started", "open", "planned", "waiting", "new"),
    "in-progress": ("in-progress", "in_progress", "in progress", "inprogress", "active", "started", "doing",
                    "wip", "working", "current"),
    "done": ("done", "complete", "completed", "finished", "ok", "passed", "closed"),
    "blocked": ("blocked", "stuck", "on-hold", "on hold"),
    "skipped": ("skipped", "skip", "cancelled", "canceled", "dropped", "n/a"),
}
_STATUSES = {word: status for status, words in _STATUS_WORDS.items() for word in words}
assert set(_STATUS_WORDS) == set(STEP_STATUSES)


def step_status(value: object) -> str:
    """A step status as the seed wrote it ("completed", "in_progress", ✅...) in evhub's words."""
    if isinstance(value, bool):
        return "done" if value else "pending"
    word = str(value).strip().lower().strip("✅⏳🔄❌⬜️ ").strip()
    status = _STATUSES.get(word)
    if status is None:
        raise Unreadable(f"step status {value!r} is none of {', '.join(STEP_STATUSES)}")
    return status


def _step(raw: object, n: int) -> StepFile:
    if isinstance(raw, str):
        if not raw.strip():
            raise Unreadable(f"step {n} is empty")
        return StepFile(text=raw)
    if not isinstance(raw, dict):
        raise Unreadable(f"step {n} is {raw!r}, neither text nor an object")
    try:
        text = _string(raw, "text", "title", "name", "description", "task", "step")
        if not text.strip() or text.isdigit():
            raise Unreadable("it has no text")
        status = step_status(_pick(raw, "status", "state") or ("done" if _pick(raw, "done") else "pending"))
        by = _pick(raw, "by", "owner", "session", "completed_by")
        return StepFile(text=text, status=status, note=_string(raw, "note", "notes", "comment"),
                        updated=_time(raw, "updated", "completed_at", "completed", "started_at", "time"),
                        by=None if by is None else _id(by, "session id"))
    except Unreadable as e:
        raise Unreadable(f"step {n}: {e}") from None


def parse_milestone(text: str | bytes, name: str) -> MilestoneFile:
    """MILESTONES/NAME: evhub's `milestone show --json`, or the seed's milestone with its steps as
    strings or objects (text/title/name, status, note/notes, updated/completed_at, by)."""
    doc = _json_object(text)
    mid = _id(_pick(doc, "id", "milestone", "milestone_id") or _stem(name, ".json"), "milestone id")
    title = _string(doc, "title", "name", "description") or mid
    steps = doc.get("steps", [])
    if not isinstance(steps, list):
        raise Unreadable(f"steps is {type(steps).__name__}, not a list")
    owner = _pick(doc, "owner", "claimed_by", "assignee", "assigned_to", "session")
    creator = _pick(doc, "created_by", "creator", "author")
    return MilestoneFile(
        id=mid, title=title, priority=_id(_pick(doc, "priority") or mid, "priority"),
        owner=None if owner is None else _id(owner, "owner"),
        created_by=None if creator is None else _id(creator, "created_by"),
        created=_time(doc, "created", "created_at", "started", "started_at"),
        steps=tuple(_step(s, n) for n, s in enumerate(steps, 1)),
    )


# A message on one line, as the seed's board is kept: an optional bullet or heading, an optional [time],
# `from -> to` (or →, "to"), an optional (time), then `: text`; indented or `>` lines below carry it on.
# Names may be **bold**.
_NAME = r"\*{0,2}@?([A-Za-z0-9][A-Za-z0-9._-]{0,63})\*{0,2}"
_SEED_LINE = re.compile(
    r"(?:[-*+]\s+|#{1,6}\s+)?(?:\[([^\]]+)\]\s*)?(?:\*{0,2}from:?\*{0,2}\s+)?" + _NAME
    + r"\s*(?:->|→|=>|\bto\b)\s*" + _NAME + r"(?:\s*\(([^)]+)\))?\s*\*{0,2}:\*{0,2}\s*(.*\S)",
    re.IGNORECASE,
)
# `alice: text`, or `- [time] alice: text`: a note to everyone, read as one only from a known sender (else
# "Note: ..." would be a message from someone called note).
_SAID_LINE = re.compile(r"(?:[-*+]\s+)?(?:\[([^\]]+)\]\s*)?" + _NAME + r"\s*:\s*(.*\S)")
# A heading above a message whose text is the lines below it: evhub's `### #seq time from A to B` (its
# text quoted with `>`), the same without seq or time as someone appending by hand writes it, and
# `## [time] A -> B (time)`.
_HEADING_FROM = re.compile(r"#{1,6}\s+(?:#(\d+)\s+)?(?:(?!from\s)(\S+)\s+)?from\s+" + _NAME + r"\s+to\s+" + _NAME
                           + r"\s*:?", re.IGNORECASE)
_HEADING_ARROW = re.compile(r"#{1,6}\s+()(?:\[([^\]]+)\]\s*)?" + _NAME + r"\s*(?:->|→|=>)\s*" + _NAME
                            + r"(?:\s*\(([^)]+)\))?\s*:?", re.IGNORECASE)
_EVERYONE = ("all", "everyone", "everybody", "broadcast")


def _recipient(name: str) -> str:
    return "all" if name.lower() in _EVERYONE else _id(name, "recipient")


def _rule(line: str) -> bool:
    """A horizontal rule (---, ***, ===) or nothing at all."""
    return set(line.strip()) <= set("-=*_ ")


def _skipped(line: str) -> bool:
    """Lines that are no message and need no report: blank, headings, rules, evhub's italic remarks."""
    s = line.strip()
    return _rule(s) or s.startswith("#") or (s.startswith("_") and s.endswith("_"))


def _header(line: str, number: int, senders: frozenset[str]) -> tuple[dict[str, Any], list[str] | None] | None:
    """The message LINE starts, if it starts one: its fields, and its first text line (None: the text is
    on the lines below)."""
    s = line.strip()
    one = _SEED_LINE.fullmatch(s)
    said = None if one else _SAID_LINE.fullmatch(s)
    if one:
        when, sender, to, text = one[1] or one[4], one[2], one[3], [one[5]]
        seq = None
    elif said and said[2].lower() in senders:
        when, sender, to, text, seq = said[1], said[2], "all", [said[3]], None
    else:
        found = _HEADING_FROM.fullmatch(s)
        if found:
            seq, when, sender, to = found.groups()
        else:
            found = _HEADING_ARROW.fullmatch(s)
            if not found:
                return None
            seq, when, sender, to, later = found.groups()
            when = when or later
        text = None
    head = {"sender": _id(sender, "sender"), "to": _recipient(to),
            "time": None if when is None else parse_time(when), "line": number,
            "seq": None if not seq else int(seq)}
    return head, text


def parse_messages(text: str | bytes, senders: Iterable[str] = ()) -> MessagesFile:
    """MESSAGES.md: its messages in order, and the stray lines after the first message that are no part of
    one. A message is a seed line (`[time] alice -> bob: text`, carried on by indented or `>` lines), a
    line `alice: text` when alice is one of SENDERS (a note to everyone, as people write on a board), or
    a heading (evhub's `### #seq time from A to B`, or `### from A to B`) with its text on the lines below,
    `>`-quoted or not, up to the next message or a rule. Lines before the first message are the file's
    preamble."""
    known = frozenset(name.lower() for name in senders)
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    messages: list[MessageLine] = []
    stray: list[StrayLine] = []
    body: list[str] | None = None  # the text lines of the message being read
    below = False  # whether its text is the lines below its heading (else only indented or quoted ones)
    head: dict[str, Any] = {}

    def close() -> None:
        nonlocal body
        if body is not None:
            content = "\n".join(body).strip("\n")
            if content.strip():
                messages.append(MessageLine(text=content, **head))
            else:
                stray.append(StrayLine(line=head["line"], text=f"a message from {head['sender']} with no text"))
        body = None

    for number, line in enumerate(raw.splitlines(), 1):
        try:
            started = _header(line, number, known)
        except Unreadable as e:
            close()
            stray.append(StrayLine(line=number, text=f"{line.strip()} ({e})"))
            continue
        if started is not None:
            close()
            head, body = started[0], started[1] or []
            below = started[1] is None
            continue
        quoted = line.lstrip()
        if body is not None and (line.startswith((">", " ", "\t")) or not line.strip()
                                 or (below and not _rule(line))):
            body.append(quoted[1:].removeprefix(" ") if quoted.startswith(">") else line.strip())
            continue
        close()
        if (messages or stray) and not _skipped(line):
            stray.append(StrayLine(line=number, text=line.strip()))
    close()
    return MessagesFile(messages=tuple(messages), stray=tuple(stray))


def _registry_entry(raw: object, key: str | None) -> RegistryEntry:
    if isinstance(raw, str) and key is None:
        return RegistryEntry(id=_id(raw, "session id"))
    if not isinstance(raw, dict):
        raise Unreadable(f"{raw!r} is not a session")
    sid = _id(_pick(raw, *_SESSION_KEYS) or key, "session id")
    return RegistryEntry(
        id=sid, role=_string(raw, "role"), specialization=_string(raw, "specialization", "spec", "specialty"),
        about=_string(raw, "about", "work", "description", "focus"),
        first_seen=_time(raw, "first_seen", "registered", "registered_at", "created", "joined"),
        last_seen=_time(raw, "last_seen", "last_active", "seen", "last_heartbeat"),
    )


def parse_registry(text: str | bytes) -> RegistryFile:
    """REGISTRY.json: `{"sessions": [...]}` (evhub's, and the seed's), `{"sessions": {id: {...}}}`, a
    bare list, or an object keyed by session id. An entry that cannot be read is skipped, with why."""
    try:
        doc: Any = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise Unreadable(f"not JSON ({e})") from e
    if isinstance(doc, dict) and "sessions" in doc:
        doc = doc["sessions"]
    if isinstance(doc, dict):
        items: list[tuple[str | None, object]] = list(doc.items())
    elif isinstance(doc, list):
        items = [(None, v) for v in doc]
    else:
        raise Unreadable(f"a JSON {type(doc).__name__}, neither a list of sessions nor an object")
    sessions: list[RegistryEntry] = []
    skipped: list[str] = []
    for n, (key, raw) in enumerate(items, 1):
        try:
            sessions.append(_registry_entry(raw, key))
        except Unreadable as e:
            skipped.append(f"entry {key or n}: {e}")
    return RegistryFile(sessions=tuple(sessions), skipped=tuple(skipped))


_HELLO_HEADING = re.compile(r"#\s*hello,?\s+i(?:['’]?m| am)\s+(\[[^\]]*\]|\S+?)\s*[.!]?", re.IGNORECASE)


def parse_hello(text: str | bytes, name: str) -> HelloFile:
    """DISCOVERY/NAME (NAME is `<id>-HELLO.md`): the seed's template, `# Hello, I'm ID`, `My role: ...`,
    `My work: ...`."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    session, fields = None, {}
    for line in raw.splitlines():
        heading = _HELLO_HEADING.fullmatch(line.strip())
        if heading and session is None and not heading[1].startswith("["):  # "[your-session-id]": the template
            session = heading[1]
        m = re.fullmatch(r"\s*(?:[-*]\s*)?\*{0,2}my (role|work)\*{0,2}:\*{0,2}\s*(.*?)\s*", line, re.IGNORECASE)
        if m and m[1].lower() not in fields:
            value = m[2]
            fields[m[1].lower()] = "" if value.startswith(("[", "(not given")) else value
    if session is None and not fields:
        raise Unreadable("not a hello: no `# Hello, I'm ID` and no `My role:` or `My work:` line")
    return HelloFile(session=_id(session or _stem(name, "-HELLO.md"), "session id"), role=fields.get("role", ""),
                     work=fields.get("work", ""))


_HANDSHAKE_STATUS = {"pending": "pending", "proposed": "pending", "open": "pending", "agreed": "agreed",
                     "accepted": "agreed", "approved": "agreed", "rejected": "rejected", "declined": "rejected",
                     "withdrawn": "withdrawn"}


def parse_handshake(text: str | bytes, name: str) -> HandshakeFile:
    """HANDSHAKES/NAME: evhub's proposal JSON, or the seed's `{"from"/"session", "proposed"/"proposed_id",
    "status", "accepted_by", "reason"}`; a file named after its proposer needs no `session`."""
    doc = _json_object(text)
    # evhub's own file names the proposer's id now in known_as (its `session` is the id it proposed under).
    session = _id(_pick(doc, "known_as", "session", "from", "proposer", "session_id") or _stem(name, ".json"),
                  "proposer")
    proposed = _id(_pick(doc, "proposed", "proposed_id", "new_id", "id"), "proposed id")
    word = str(_pick(doc, "status", "state") or "pending").lower()
    status = _HANDSHAKE_STATUS.get(word)
    if status is None:
        raise Unreadable(f"status {word!r} is none of pending, agreed, rejected, withdrawn")
    accepted = _pick(doc, "accepted", "accepted_by", "agreed_by", "votes") or []
    if not isinstance(accepted, list):
        raise Unreadable(f"accepted is {accepted!r}, not a list")
    rejected_by = _pick(doc, "rejected_by")
    return HandshakeFile(
        session=session, proposed=proposed, status=status, reason=_string(doc, "reason"),
        time=_time(doc, "ts", "time", "proposed_at", "created"),
        accepted=tuple(_id(a, "session id") for a in accepted),
        rejected_by=None if rejected_by is None else _id(rejected_by, "session id"),
        reject_reason=_string(doc, "reject_reason"),
    )


_PRIORITY_LINE = re.compile(r"[#>*\-\s]*(?:current\s+)?priority\*{0,2}\s*:\*{0,2}\s*(.*?)\s*", re.IGNORECASE)


def parse_current_priority(text: str | bytes) -> str | None:
    """CURRENT_STATE.md's current priority: its first `Priority:` line, as the seed's `grep "Priority:"`
    finds it (None when there is none, or evhub's "(none set ...)")."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    for line in raw.splitlines():
        m = _PRIORITY_LINE.fullmatch(line)
        if m:
            value = m[1].strip("* ")
            return None if not value or value.startswith("(none set") else value
    return None
