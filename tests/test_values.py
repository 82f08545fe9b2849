"""Times as evhub writes and reads them (evhub/_values.py): a stored time reads back as the time it was,
by the fast path views take thousands of times, and a spelling it does not take is refused, as by the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evhub import BadInput
from evhub._values import format_ts, parse_ts

_TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


@given(_TIMES)
def test_a_stored_time_reads_back_as_the_time_it_was(t: datetime) -> None:
    assert parse_ts(format_ts(t)) == t and parse_ts(format_ts(t)).tzinfo is UTC


@given(_TIMES, st.integers(-14 * 60, 14 * 60))
def test_a_time_with_an_offset_reads_as_the_same_instant(t: datetime, minutes: int) -> None:
    shown = t.astimezone(timezone(timedelta(minutes=minutes)))
    assert parse_ts(shown.isoformat()) == t


@pytest.mark.parametrize("value", [
    "2026-12-01T10:48:12.2282+01Z",  # as long as a stored time, with an offset before its Z
    "2026-12-01T10:48:12.228236+Z", "2026-13-01T10:48:12.228236Z", "2026-12-01T10:48:12.228236ZZ", "", "yesterday",
])
def test_a_time_spelled_otherwise_is_refused(value: str) -> None:
    with pytest.raises(BadInput):
        parse_ts(value)
