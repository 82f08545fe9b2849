"""`evhub timeline`: the hub's history drawn on a time axis, as one self-contained HTML file.

A lane per session (alive spans, silences, hello and bye), a lane per priority (who held it when,
takeovers marked), milestone steps and messages as points.  Heartbeats are folded into the spans
they keep alive, so a million-event hub gives a file that still opens quickly.  Clicking an item
shows the events it stands for.  No network, no server: the data, styles and script are inline.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import _events as ev
from ._documents import one_line
from ._errors import StorageError
from ._state import ClaimChange, State, claim_history
from ._values import parse_ts

PAGE = Path(__file__).with_name("timeline.html")  # the page: styles and script, __TITLE__ and __DATA__ filled in
MESSAGES_DRAWN = 5000  # the newest ones in the range; older ones are counted, not drawn
TEXT_KEPT = 200


def seconds(ts: str) -> float:
    """A log time as seconds since the epoch."""
    return parse_ts(ts).timestamp()


def history(events: Iterable[ev.AnyEvent], since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """The timeline's data: session and priority lanes of spans, step and message points.  The
    priority lanes draw the claim history as the fold decided it (renames and new incarnations
    included), so they always agree with `evhub claims` and `evhub why`."""
    state = State()
    sessions: dict[str, dict[str, Any]] = {}
    priorities: dict[str, dict[str, Any]] = {}
    held: dict[str, list[Any]] = {}  # priority -> its open span
    steps: list[list[Any]] = []
    messages: list[list[Any]] = []
    first = last = None

    for e in events:
        changes = list(claim_history((e,), state))
        ttl = state.alive_ttl_s
        if (since is not None and e.ts < since) or (until is not None and e.ts > until):
            continue
        t = seconds(e.ts)
        first = t if first is None else first
        last = t
        sid = getattr(e, "session", None)
        if isinstance(sid, str):
            lane = sessions.setdefault(sid, {"spans": [], "marks": []})
            spans = lane["spans"]
            if spans and spans[-1][1] is None and t - spans[-1][4] <= ttl:
                span = spans[-1]  # still alive: the span goes on
            else:
                if spans and spans[-1][1] is None:
                    spans[-1][1] = spans[-1][4] + ttl  # fell silent a ttl after it was last seen
                span = [t, None, e.seq, e.seq, t, 0, ""]
                spans.append(span)
            span[3], span[4], span[5] = e.seq, t, span[5] + 1
            if isinstance(e, ev.Heartbeat):
                span[6] = _kept(e.status)
            elif isinstance(e, ev.SessionRegistered):
                lane["marks"].append([t, "resumed" if e.resume else "hello", e.seq])
            elif isinstance(e, ev.SessionLeft):
                lane["marks"].append([t, "bye", e.seq])
                span[1] = t
        for change in changes:
            _draw_claim(change, t, priorities, held)
        if isinstance(e, ev.StepUpdated):
            steps.append([t, e.milestone, e.step, e.status, e.session, e.seq, _kept(e.note)])
        elif isinstance(e, ev.MessagePosted):
            messages.append([t, e.session, e.to, _kept(e.text), e.seq])
    ttl = state.alive_ttl_s
    end = last if last is not None else 0.0
    for lane in sessions.values():
        if lane["spans"] and lane["spans"][-1][1] is None:
            lane["spans"][-1][1] = min(lane["spans"][-1][4] + ttl, end)
    for span in held.values():
        span[1] = end
    return {
        "start": first if first is not None else 0.0,
        "end": end,
        "sessions": sessions,
        "priorities": priorities,
        "steps": steps,
        "messages": messages[-MESSAGES_DRAWN:],
        "messages_not_drawn": max(0, len(messages) - MESSAGES_DRAWN),
    }


def _kept(text: str) -> str:
    """Free text as the page shows it: its start, as one item."""
    return one_line(text[:TEXT_KEPT])


# How a span ends, by the change that ended it.
_ENDED = {"dropped": "dropped (new incarnation)", "left": "bye"}


def _draw_claim(change: ClaimChange, t: float, priorities: dict[str, dict[str, Any]],
                held: dict[str, list[Any]]) -> None:
    """Draw one change of the claim history on its priority's lane at time T."""
    e, p = change.event, change.priority
    span = held.get(p)
    if change.action in ("claimed", "took over"):
        lane = priorities.setdefault(p, {"spans": [], "marks": []})
        if span is not None:
            _close(held, p, t, e.seq, f"taken over by {change.session}")
        if change.action == "took over" and isinstance(e, ev.PriorityClaimed):
            lane["marks"].append([t, f"{change.session} took over from {e.took_over_from}", e.seq])
        held[p] = [t, None, change.session, e.seq, e.seq, None, "held"]
        lane["spans"].append(held[p])
    elif span is None:
        return  # a claim made before the range drawn
    elif change.action == "renamed":
        span[2] = change.session
        priorities[p]["marks"].append([t, f"{change.renamed_from} is now {change.session}", e.seq])
    elif change.action != "refreshed":
        note = e.note if isinstance(e, ev.PriorityReleased) else ""
        how = _ENDED.get(change.action, change.action)
        _close(held, p, t, e.seq, how + (f": {_kept(note)}" if note else ""))


def _close(held: dict[str, list[Any]], priority: str, t: float, seq: int, how: str) -> None:
    span = held.pop(priority)
    span[1], span[5], span[6] = t, seq, how


def write(path: Path, data: dict[str, Any], title: str) -> None:
    """The timeline of DATA as one HTML file at PATH."""
    # Every "<" is escaped (JSON reads \u003c as "<"), so no text from the log can close the script
    # element or open a comment or a script inside it ("<!--<script>" would swallow its end tag).
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    page = PAGE.read_text(encoding="utf-8").replace("__TITLE__", _html_escape(title)).replace("__DATA__", payload)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}") from e


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
