"""`evhub watch`: a live terminal dashboard that follows the log as it grows.

It starts from the read model's checkpoint (or folds the log when there is none), then folds
each new block of the log as it appears: it never polls the views, and takes no lock, since it
only reads.  `dashboard` is pure (state, feed, now -> a rich renderable), so it is tested with a
recording console; `watch` is the loop around it: rich's Live display, q or Ctrl-C to leave.
"""

import math
import os
import select
import sys
import termios
import time
import tty
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import takewhile

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import _events as ev
from ._cache import SnapshotStale, load_snapshot
from ._documents import one_line, progress_bar
from ._hub import Hub
from ._order import events_in_order, fold_in_order
from ._state import OutOfOrder, State, fold
from ._store import Checkpoint
from ._values import format_duration, read_time, seconds_between

FEED_KEPT = 12
MESSAGES_SHOWN = 5
ROWS_SHOWN = 10  # sessions and claims: live ones and held ones first, the rest counted
TICK_S = 0.2  # how often the log's size is looked at: a new event shows within a second


def dashboard(state: State, feed: list[ev.AnyEvent], at: str, live: bool = True) -> RenderableType:
    """The hub at time AT: sessions, claims, milestones, the last messages and the newest events (with
    how to quit when LIVE)."""
    sessions = Table(title="Sessions", title_justify="left", expand=True)
    for column in ("session", "state", "last seen", "status"):
        sessions.add_column(column)
    ordered = sorted(state.sessions, key=lambda s: (not state.is_alive(s, at), s))
    for sid in ordered[:ROWS_SHOWN]:
        s = state.sessions[sid]
        alive = state.is_alive(sid, at)
        mark = Text("alive", style="green") if alive else Text("left" if s.left else "silent", style="dim")
        sessions.add_row(sid, mark, _ago(s.last_seen, at), _line(s.status))
    _more(sessions, len(ordered))

    claims = Table(title="Claims", title_justify="left", expand=True)
    for column in ("priority", "holder", "held for", "token"):
        claims.add_column(column)
    # Stale claims first: a claim held by a silent session is what a watcher must notice.
    ordered = sorted(state.claims, key=lambda p: (state.claim_holds(state.claims[p], at), p))
    for p in ordered[:ROWS_SHOWN]:
        c = state.claims[p]
        holds = state.claim_holds(c, at)
        holder = Text(c.session) if holds else Text(f"{c.session} (stale)", style="bold red")
        claims.add_row(p, holder, format_duration(seconds_between(c.since, at)), str(c.token))
    _more(claims, len(ordered))

    milestones = Table(title="Milestones", title_justify="left", expand=True)
    for column in ("milestone", "progress", "owner", "title"):
        milestones.add_column(column)
    for mid in sorted(state.milestones):
        m = state.milestones[mid]
        if m.completed is None:
            bar = f"{progress_bar(m.done_count, len(m.steps))} {m.done_count}/{len(m.steps)}"
            milestones.add_row(mid, bar, m.owner or "unclaimed", _line(m.title))

    messages = Table(title="Last messages", title_justify="left", expand=True)
    for column in ("#", "from", "to", "text"):
        messages.add_column(column)
    for msg in state.messages[-MESSAGES_SHOWN:]:
        messages.add_row(str(msg.seq), msg.sender, msg.to, _line(msg.text))

    events = Table(title="Events", title_justify="left", expand=True)
    for column in ("#", "time", "type", "session", "what"):
        events.add_column(column)
    for e in feed[-FEED_KEPT:]:
        doc = ev.to_dict(e)
        what = _line(" ".join(f"{k}={v}" for k, v in doc.items()
                              if k not in ("seq", "id", "ts", "type", "session", "more")
                              and v not in ("", None, False)))
        events.add_row(str(e.seq), e.ts[11:19], str(doc["type"]), str(doc.get("session") or ""), what)

    quits = " · q quits" if live else ""
    live_count = len(state.live_sessions(at))
    head = Text(f"evhub · event #{state.number} · {live_count} live · {at[:19]}Z{quits}", style="bold")
    return Group(head, sessions, claims, milestones, messages, events)


def _more(table: Table, total: int) -> None:
    if total > ROWS_SHOWN:
        table.add_row(Text(f"… and {total - ROWS_SHOWN} more", style="dim"))


def _ago(ts: str, at: str) -> str:
    return f"{format_duration(seconds_between(ts, at))} ago" if ts else ""


def _line(text: str) -> Text:
    """Free text as one item: shown by one_line, and as a Text, so that rich reads no [markup] in it."""
    return Text(one_line(text))


class Follower:
    """The state at the end of the log, kept up to date by folding each new block as it appears."""

    def __init__(self, hub: Hub) -> None:
        self.store = hub.open_store()
        try:
            loaded = load_snapshot(hub.readmodel, self.store)
        except SnapshotStale:
            loaded = None  # a rewritten log: fold it from the start
        self.state = State() if loaded is None else loaded[0]
        self.seen: Checkpoint | None = None  # where the last poll left the log: a rewritten log no longer holds it
        # Seeded with the newest events, so the feed does not start empty.
        self.read_at = -math.inf
        self.feed: deque[ev.AnyEvent] = deque(hub.recent_events(None, FEED_KEPT, 64 * 1024), maxlen=FEED_KEPT)
        self.poll()

    def poll(self) -> bool:
        """Fold what was appended since the last poll; whether anything was. A store that notifies
        appends is read only when it did, or every poll_s in case a notification was missed."""
        if not self.store.wait(0) and time.monotonic() - self.read_at < self.store.poll_s:
            return False
        self.read_at = time.monotonic()
        before = self.state.seq
        if self.seen is not None and not self.store.resume(self.seen):
            self.state = State()  # the log was rewritten (a repair): fold it again, the feed going on after its newest
        try:
            for events in self.store.read_blocks(self.state.seq):
                fold(events, self.state)
                self.state.stored()  # the watch shows the last messages only: keep memory flat
                newest = self.feed[-1].seq if self.feed else 0
                self.feed.extend(e for e in events[-FEED_KEPT:] if e.seq > newest)
        except OutOfOrder:
            self.state = fold_in_order(self.store, each=State.stored)  # a merge brought older events
        self.seen = self.store.checkpoint()
        return self.state.seq != before


FOLDED_AT_ONCE = 4096


def snapshot(hub: Hub, at: str) -> State:
    """The hub as it stood at AT: the events up to then, folded."""
    state = State()
    run: list[ev.AnyEvent] = []
    # The fold's order takes writes by their time: the first write after AT ends the hub as it stood then.
    for e in takewhile(lambda e: e.ts <= at, events_in_order(hub.open_store())):
        run.append(e)
        if len(run) == FOLDED_AT_ONCE:
            fold(run, state)
            state.stored()  # the watch shows the last messages only: keep memory flat
            run = []
    fold(run, state)
    state.stored()
    return state


def watch(hub: Hub, at: str | None, console: Console | None = None, once: bool = False) -> None:
    """Show the dashboard until q or Ctrl-C; with AT, the hub as it stood then, printed once.  With ONCE,
    or when the output is no terminal (an agent's shell, a pipe), the hub now, printed once: nothing
    there could quit a live display, and a command that never ends would hang its caller."""
    console = console or Console()
    if at is not None:
        console.print(dashboard(snapshot(hub, at), [], at, live=False))
        return
    follower = Follower(hub)
    # Not console.is_terminal alone: FORCE_COLOR, often set in CI and agents' shells, makes rich say yes.
    if once or not (console.is_terminal and console.file.isatty()):
        console.print(dashboard(follower.state, list(follower.feed), read_time(follower.state.last_ts), live=False))
        return

    def shown() -> RenderableType:
        return dashboard(follower.state, list(follower.feed), read_time(follower.state.last_ts))
    with _keys() as pressed, Live(shown(), console=console,
                                  auto_refresh=False, screen=False) as live:
        shown_at = time.monotonic()
        try:
            while "q" not in pressed(TICK_S):
                # Redraw on news, and each second anyway: ages and liveness move with the clock.
                if follower.poll() or time.monotonic() - shown_at >= 1:
                    live.update(shown(), refresh=True)
                    shown_at = time.monotonic()
        except KeyboardInterrupt:
            pass


@contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """A function that waits up to N seconds for keys on a terminal's stdin and returns them."""
    if not sys.stdin.isatty():
        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""
        yield wait
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still interrupts

    def read(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 32).decode(errors="replace") if ready else ""
    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
