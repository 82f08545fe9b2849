"""A progress bar for long folds (replay, verify, repair, a first catch-up): events done of about
how many, rate and time left, redrawn on stderr at most ten times a second.

It shows only when stderr is a terminal and the log is large enough to take a while, so pipes,
`--json` and tests see nothing extra.
"""

import sys
import time
from typing import TextIO

from ._values import env_number

SHOWN_FROM_BYTES = 8 * 1024 * 1024  # about 50,000 events: anything smaller is done before a bar helps
REDRAW_S = 0.1
WIDTH = 24


class Progress:
    """`progress.update(bytes_done, events_done)` as a fold goes; `progress.done()` at the end.

    The work is measured in bytes of the log (TOTAL_BYTES), or in any other unit whose total is known
    ahead (the benchmark counts events): SHOWN_FROM is then in that unit."""

    def __init__(self, label: str, total_bytes: int, stream: TextIO | None = None,
                 shown_from: int | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.total_bytes = total_bytes
        threshold = _threshold() if shown_from is None else shown_from
        self.shown = total_bytes >= threshold and _is_terminal(self.stream)
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.events = 0

    def update(self, bytes_done: int, events_done: int) -> None:
        self.events = events_done
        if not self.shown:
            return
        now = time.monotonic()
        if now - self.drawn_at < REDRAW_S:
            return
        self.drawn_at = now
        self.stream.write("\r" + self.line(bytes_done, now - self.started) + "\x1b[K")
        self.stream.flush()

    def line(self, bytes_done: int, elapsed: float) -> str:
        """One line: label, bar, events done of the estimated total, rate, time left."""
        share = min(1.0, bytes_done / self.total_bytes) if self.total_bytes else 1.0
        total = round(self.events / share) if share else 0
        rate = self.events / elapsed if elapsed > 0 else 0.0
        left = (total - self.events) / rate if rate else 0.0
        bar = "█" * round(share * WIDTH) + "░" * (WIDTH - round(share * WIDTH))
        return f"{self.label} {bar} {self.events:,} of ~{total:,} events, {rate:,.0f}/s, {left:.1f}s left"

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _threshold() -> int:
    # EVHUB_PROGRESS_FROM_BYTES lets a test show the bar on a small log.
    return int(env_number("EVHUB_PROGRESS_FROM_BYTES", SHOWN_FROM_BYTES, 10**15, "bytes", whole=True))
