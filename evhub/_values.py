"""Value parsing and formatting: identifiers, durations, times, event ids, the clock."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from ._errors import BadInput, ClockAhead

_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DURATION_RE = re.compile(r"(\d{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Ten years: longer ttls are typos, and they would overflow datetime arithmetic anyway.
MAX_DURATION_S = 10 * 365 * 86400
MAX_TEXT_BYTES = 64 * 1024
StepStatus = Literal["pending", "in-progress", "done", "blocked", "skipped"]
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
_NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)  # not float()'s: it takes '１２', 'nan', '1e9', ' 1_0 '


def check_id(value: str, what: str = "id") -> str:
    """Return VALUE when it is a valid identifier, else raise BadInput."""
    if not _ID_RE.fullmatch(value) or ".." in value:
        shown = value.encode("unicode_escape", "backslashreplace").decode("ascii")[:80]
        raise BadInput(
            f"invalid {what} {shown!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit, no '..'"
        )
    return value


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """'did you mean X?' (or 'X or Y') naming the KNOWN names close to GIVEN, its case aside; '' when none
    is: THE suggestion every "unknown ..." error makes."""
    import difflib  # only an error needs it: kept off every command's start-up

    close = difflib.get_close_matches(given.lower(), sorted(set(known)), n=3, cutoff=0.7)
    return f"did you mean {' or '.join(close)}?" if close else ""


def slug(title: str) -> str:
    """A milestone id made from its title: lower case, runs of other characters become '-'."""
    s = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:64].strip("-._")
    return s


def check_text(value: str, what: str = "text") -> str:
    """Return VALUE when it is non-empty, valid text and within the size limit."""
    if "\x00" in value:
        raise BadInput(f"{what} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise BadInput(f"{what} is not valid UTF-8") from e
    if size > MAX_TEXT_BYTES:
        raise BadInput(f"{what} is {size} bytes; the limit is {MAX_TEXT_BYTES}")
    return value


def parse_duration(value: str) -> int:
    """Seconds in a duration such as 30s, 5m, 2h, 1d or a bare number of seconds."""
    m = _DURATION_RE.fullmatch(value.strip())
    if not m:
        raise BadInput(f"invalid duration {value!r}: use a number with s, m, h or d, such as 10m")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0 or seconds > MAX_DURATION_S:
        raise BadInput(f"duration {value!r} is out of range (1s to 3650d)")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human age: 45s, 12m, 3h, 2d."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def format_ts(dt: datetime) -> str:
    """UTC RFC 3339 with microseconds and Z: fixed width (a four-digit year, which strftime does not
    pad), so strings sort as times do."""
    d = dt.astimezone(UTC)
    return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
            f".{d.microsecond:06d}Z")


def parse_ts(value: str) -> datetime:
    """An RFC 3339 time (a naive one is taken as UTC)."""
    if len(value) == 27 and value[-1] == "Z":
        # As evhub writes times (views show thousands of them): no offset to parse.
        with suppress(ValueError):
            dt = datetime.fromisoformat(value[:-1])
            if dt.tzinfo is None:  # else an offset before the Z: refused below
                return dt.replace(tzinfo=UTC)
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError) as e:  # OverflowError: an offset that leaves years 1..9999
        raise BadInput(f"invalid time {value!r}: use RFC 3339, such as 2026-11-25T14:02:00Z") from e


def normalize_ts(value: str) -> str:
    """VALUE as evhub writes times."""
    return format_ts(parse_ts(value))


def seconds_between(earlier: str, later: str) -> float:
    """Seconds from one stored time to another."""
    return (parse_ts(later) - parse_ts(earlier)).total_seconds()


def ts_minus(ts: str, seconds: float) -> str:
    """The stored time SECONDS before TS."""
    return format_ts(parse_ts(ts) - timedelta(seconds=seconds))


# How far ahead of the real clock a written time may be: a clock a little ahead does no harm (a
# session seems alive for at most this much longer); one further ahead is refused, never written.
FUTURE_BOUND_S = 60


def _fixed_now() -> str | None:
    fixed = os.environ.get("EVHUB_NOW")
    if not fixed:
        return None
    try:
        return normalize_ts(fixed)
    except BadInput as e:
        raise BadInput(f"EVHUB_NOW: {e}") from None


def now() -> str:
    """The current time: EVHUB_NOW when set (tests, reproducing a past moment), else the wall clock."""
    return _fixed_now() or format_ts(datetime.now(UTC))


def _bound(real: str | None = None) -> str:
    """REAL (else this machine's clock) plus FUTURE_BOUND_S: the latest time the time rule allows."""
    return format_ts((parse_ts(real) if real else datetime.now(UTC)) + timedelta(seconds=FUTURE_BOUND_S))


def future_limit(real: str | None = None) -> str | None:
    """The latest time the time rule lets a log hold, by REAL (the store's own clock, else this
    machine's); None under EVHUB_ALLOW_FUTURE=1, which lifts the bound."""
    return None if os.environ.get("EVHUB_ALLOW_FUTURE") == "1" else _bound(real)


def read_time(last_ts: str) -> str:
    """The time a read is answered at: the clock, but never behind LAST_TS, the log's last time (a clock
    that runs behind sees the hub as its last writer left it), nor past the bound of the real clock (a
    log from the future keeps no one alive)."""
    return max(now(), min(last_ts, _bound()))


def write_time(last_ts: str, real: str | None = None) -> str:
    """The time a write is decided and stamped at, by the hub's time rule: the clock (EVHUB_NOW, else
    REAL, the store's own clock, else this machine's), never behind LAST_TS, the log's last time; a
    time past future_limit is ClockAhead."""
    real = real or format_ts(datetime.now(UTC))
    clock = _fixed_now() or real
    if clock == real and last_ts <= real:
        return real  # the clock itself: within the bound (the usual write)
    ts = max(clock, last_ts)
    limit = future_limit(real)
    if limit is None or ts <= limit:
        return ts
    ahead = format_duration(seconds_between(real, ts))
    if ts == clock:
        raise ClockAhead(
            f"EVHUB_NOW {clock} is {ahead} ahead of the real clock ({real}): evhub writes no time more than "
            f"{FUTURE_BOUND_S}s ahead (EVHUB_ALLOW_FUTURE=1 allows it, for tests)"
        )
    raise ClockAhead(
        f"the log's last event is stamped {last_ts}, {ahead} ahead of the real clock ({real}), and evhub never "
        "writes a time behind the log's last one: `evhub repair` sets the events from the future aside"
    )


def env_number(name: str, default: float, most: int, unit: str = "seconds", whole: bool = False) -> float:
    """The number the environment variable NAME holds (DEFAULT when unset or empty): plain digits,
    between 0 and MOST, a WHOLE one if asked; anything else is BadInput naming the variable."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    number = _NUMBER_RE.fullmatch(raw)
    if number is None or (whole and number[1]) or float(raw) > most:
        raise BadInput(f"{name} must be {unit} between 0 and {most}, not {raw!r}")
    return float(raw)


def file_stamp() -> str:
    """The current time as a file name part: 20261125T120000.000000Z."""
    return now().replace(":", "").replace("-", "")


def parse_when(value: str, now_ts: str) -> str:
    """A point in time given as a duration ago (10m) or as an RFC 3339 time."""
    if _DURATION_RE.fullmatch(value.strip()):
        return ts_minus(now_ts, parse_duration(value))
    try:
        return normalize_ts(value)
    except BadInput:
        raise BadInput(
            f"invalid time {value!r}: use a duration ago (30s, 10m, 2h, 1d) or RFC 3339 (2026-11-25T14:02:00Z)"
        ) from None


# base64's base-32 digits, spelt as Crockford's (which ULIDs use).
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def new_id() -> str:
    """A ULID: 48 bits of milliseconds and 80 random bits, 26 Crockford base-32 characters."""
    n = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    # 128 bits are 26 digits with 2 bits to spare: shifted into 160 bits, they are the first 26 of 32.
    return base64.b32encode((n << 30).to_bytes(20, "big"))[:26].translate(_TO_CROCKFORD).decode()
