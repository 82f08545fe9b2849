"""Documents: pure functions from the state (and the clock) to the dicts every front end shows.

The CLI's `--json`, the MCP tools, the JSON views in SESSIONS/ and the markdown reports are all
these documents, formatted.  The dict shapes are public; keys are snake_case.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Container, Iterable
from typing import Any

from . import _events as ev
from ._results import Recall
from ._state import Claim, Message, Milestone, Session, State

RECENT_MESSAGES = 5


def session_dict(st: State, s: Session, now: str, alive: Container[str] | None = None) -> dict[str, Any]:
    """Session S as documents show it; ALIVE: the sessions alive at NOW, when known (see State.live_sessions)."""
    return {
        "id": s.id,
        "role": s.role,
        "specialization": s.specialization,
        "alive": s.id in alive if alive is not None else st.is_alive(s.id, now),
        "last_seen": s.last_seen,
        "status": s.status,
        "left": s.left,
        "agreement": s.agreement,
        "aka": list(s.aka),
    }


def sessions(st: State, now: str, include_all: bool = False) -> list[dict[str, Any]]:
    """Live sessions (or every registered one), by id."""
    alive = set(st.live_sessions(now))
    ids = sorted(st.sessions) if include_all else sorted(alive)
    return [session_dict(st, st.sessions[sid], now, alive) for sid in ids]


def claim_dict(st: State, c: Claim, now: str, alive: Container[str] | None = None) -> dict[str, Any]:
    """Claim C as documents show it; ALIVE: the sessions alive at NOW, when known (see State.holder_alive)."""
    return {
        "priority": c.priority,
        "session": c.session,
        "token": c.token,
        "since": c.since,
        "alive": st.holder_alive(c, now, alive),
        "stale": not st.claim_holds(c, now, alive),
        "refreshed": c.refreshed,
        "ttl_s": c.ttl_s,
        "took_over_from": c.took_over_from,
    }


def claims(st: State, now: str) -> list[dict[str, Any]]:
    alive = set(st.live_sessions(now))
    return [claim_dict(st, st.claims[p], now, alive) for p in sorted(st.claims)]


def milestone_dict(m: Milestone) -> dict[str, Any]:
    return {
        "id": m.id,
        "title": m.title,
        "priority": m.priority,
        "owner": m.owner,
        "created": m.created,
        "created_by": m.created_by,
        "completed": m.completed,
        "steps": [
            {"n": n, "text": s.text, "status": s.status, "note": s.note, "updated": s.updated, "by": s.by}
            for n, s in enumerate(m.steps, 1)
        ],
        "progress": {"done": m.done_count, "total": len(m.steps)},
    }


def milestones(st: State, include_complete: bool = True) -> list[dict[str, Any]]:
    return [
        milestone_dict(st.milestones[mid])
        for mid in sorted(st.milestones)
        if include_complete or st.milestones[mid].completed is None
    ]


def message_dicts(messages: list[Message]) -> list[dict[str, Any]]:
    return [{"seq": m.seq, "ts": m.ts, "from": m.sender, "to": m.to, "text": m.text} for m in messages]


def status(st: State, now: str, limit: int | None = None) -> dict[str, Any]:
    """The seed's quick-status as one document; with LIMIT, each of its lists of sessions, claims and
    milestones holds only its first LIMIT entries (by id), `counts` giving how many there are: an
    agent's view of a hub of thousands, at the cost of a hub of a few."""
    alive = set(st.live_sessions(now))
    active_ids = [mid for mid, m in st.milestones.items() if m.completed is None]
    counts = {"sessions": len(alive), "claims": len(st.claims), "milestones": len(active_ids)}
    live, active, priorities = _first(alive, limit), _first(active_ids, limit), _first(st.claims, limit)
    held: dict[str, list[str]] = {sid: [] for sid in live}
    if held:
        for c in st.claims.values():
            if c.session in held:
                held[c.session].append(c.priority)
    return {
        "focus": None if st.focus is None else {"text": st.focus.text, "session": st.focus.session,
                                                  "ts": st.focus.ts},
        "sessions": [{**session_dict(st, st.sessions[sid], now, alive), "holds": sorted(held[sid])} for sid in live],
        "claims": [claim_dict(st, st.claims[p], now, alive) for p in priorities],
        "milestones": [milestone_dict(st.milestones[mid]) for mid in active],
        "counts": counts,
        "completed": [
            {"ts": c.ts, "kind": c.kind, "name": c.name, "session": c.session, "note": c.note}
            for c in reversed(st.completed)
        ],
        "messages": message_dicts(st.messages[-RECENT_MESSAGES:]),
        "events": st.seq,
        "now": now,
    }


def _first(ids: Iterable[str], limit: int | None) -> list[str]:
    """IDS in order, only the first LIMIT of them when LIMIT is set (without sorting them all)."""
    return sorted(ids) if limit is None else heapq.nsmallest(limit, ids)


def recall(r: Recall) -> dict[str, Any]:
    """What a session needs after a context loss, as one document."""
    st, sid, now = r.state, r.session, r.at
    s = st.sessions[sid]
    return {
        "session": session_dict(st, s, now),
        "about": s.about,
        "claims": [claim_dict(st, c, now) for c in st.claims_of(sid)],
        "milestones": [{**milestone_dict(m), "next_step": m.next_step} for m in st.milestones_of(sid)],
        "unread": message_dicts(r.unread),
        "notes": [{"seq": n.seq, "ts": n.ts, "text": n.text} for n in s.notes],
        "recent_events": [ev.to_dict(e) for e in r.recent],
        "focus": None if st.focus is None else st.focus.text,
        "others": [r for r in sessions(st, now) if r["id"] != sid],
    }


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


# A line break as people type one; every other invisible character is shown as an escape.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
NEWLINE_MARK = "\N{RETURN SYMBOL}"
# Controls (C0 with ESC and tab, DEL, C1), format characters (bidi overrides, isolates and marks,
# zero-width ones, the BOM), line and paragraph separators, lone surrogates.
_INVISIBLE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def one_line(text: str) -> str:
    """Free text (a message, a note, a status, a title...) as one item that cannot pose as structure:
    line breaks shown as ⏎, every other control, bidi, zero-width or separator character as an escape
    such as \\x1b or \\u202e, so it can neither start a line nor drive a terminal nor reorder or hide
    what is shown.  Ordinary printable text is left as it is.  THE rule for every place that shows text."""
    if text.isprintable():
        return text  # no line break, control or invisible character: most text, and views show thousands
    return NEWLINE_MARK.join(lines(text))


def lines(text: str) -> list[str]:
    """TEXT's lines, each shown by the rule of one_line (for a view that keeps a message's lines)."""
    return [line if line.isprintable() else "".join(map(_shown, line)) for line in _LINE_BREAK.split(text)]


def _shown(ch: str) -> str:
    return repr(ch)[1:-1] if unicodedata.category(ch) in _INVISIBLE else ch


def folded(doc: Any) -> Any:
    """DOC with every string shown by one_line, so free text (a message, a status, a role) can
    never start a heading or a fake line of its own in the markdown reports."""
    if isinstance(doc, str):
        return one_line(doc)
    if isinstance(doc, dict):
        return {k: folded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [folded(v) for v in doc]
    return doc
