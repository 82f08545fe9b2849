"""The tests' clock: the fixed moment every story starts at, and bounded waits for things to happen.

`T0` is that moment; `at(seconds)` is the time SECONDS after it, as EVHUB_NOW takes it. `fixed_now`
holds EVHUB_NOW for the Python API in this process. `wait_until(what, done)` waits for a condition
(never for a guessed number of seconds) and fails naming WHAT when it has not come within the bound.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float = 0) -> str:
    """The time SECONDS after T0, as EVHUB_NOW takes it."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def fixed_now(value: str) -> Iterator[None]:
    """EVHUB_NOW set to VALUE in this process, for the Python API, and put back afterwards."""
    old = os.environ.get("EVHUB_NOW")
    os.environ["EVHUB_NOW"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["EVHUB_NOW"]
        else:
            os.environ["EVHUB_NOW"] = old


def wait_until(what: str, done: Callable[[], object], timeout: float = 20) -> None:
    """Return once DONE() is true; an AssertionError naming WHAT when it is still false after TIMEOUT
    seconds. DONE may itself fail (assert) to stop the wait early, e.g. when a process it waits on died."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.05)
