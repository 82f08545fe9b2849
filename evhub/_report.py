"""Reports: pure functions from the state (and the clock) to the documents the CLI prints.

The dict shapes here are the public `--json` output; keys are snake_case.
"""

from __future__ import annotations

from typing import Any

from ._state import Claim, Message, Milestone, Session, State
from ._values import format_duration, seconds_between

RECENT_MESSAGES = 5


def session_dict(st: State, s: Session, now: str) -> dict[str, Any]:
    return {
        "id": s.id,
        "role": s.role,
        "specialization": s.specialization,
        "alive": st.is_alive(s.id, now),
        "last_seen": s.last_seen,
        "status": s.status,
        "left": s.left,
        "agreement": s.agreement,
        "aka": list(s.aka),
    }


def sessions(st: State, now: str, include_all: bool = False) -> list[dict[str, Any]]:
    """Live sessions (or every registered one), by id."""
    rows = [session_dict(st, st.sessions[sid], now) for sid in sorted(st.sessions)]
    return rows if include_all else [r for r in rows if r["alive"]]


def claim_dict(st: State, c: Claim, now: str) -> dict[str, Any]:
    return {
        "priority": c.priority,
        "session": c.session,
        "token": c.token,
        "since": c.since,
        "alive": st.is_alive(c.session, now),
        "stale": not st.claim_holds(c, now),
        "refreshed": c.refreshed,
        "ttl_s": c.ttl_s,
        "took_over_from": c.took_over_from,
    }


def claims(st: State, now: str) -> list[dict[str, Any]]:
    return [claim_dict(st, st.claims[p], now) for p in sorted(st.claims)]


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


def message_dicts(messages: list[Any]) -> list[dict[str, Any]]:
    return [{"seq": m.seq, "ts": m.ts, "from": m.sender, "to": m.to, "text": m.text} for m in messages]


def status(st: State, now: str) -> dict[str, Any]:
    """The seed's quick-status as one document."""
    return {
        "focus": None if st.focus is None else {"text": st.focus.text, "session": st.focus.session,
                                                  "ts": st.focus.ts},
        "sessions": [
            {**r, "holds": [c.priority for c in st.claims_of(r["id"])]}
            for r in sessions(st, now)
        ],
        "claims": claims(st, now),
        "milestones": milestones(st, include_complete=False),
        "completed": [
            {"ts": c.ts, "kind": c.kind, "name": c.name, "session": c.session, "note": c.note}
            for c in reversed(st.completed)
        ],
        "messages": message_dicts(st.messages[-RECENT_MESSAGES:]),
        "events": st.seq,
        "now": now,
    }


def _ago(ts: str, now: str) -> str:
    return f"{format_duration(seconds_between(ts, now))} ago"


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def _folded(doc: Any) -> Any:
    """DOC with every string folded onto one line, so free text (a message, a status, a role) can
    never start a heading or a fake line of its own in the markdown reports."""
    if isinstance(doc, str):
        return " ".join(doc.split())
    if isinstance(doc, dict):
        return {k: _folded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_folded(v) for v in doc]
    return doc


def status_markdown(st: State, now: str) -> str:
    doc = _folded(status(st, now))
    out = ["# evhub status", ""]
    f = doc["focus"]
    out.append(f"**Priority:** {f['text']} (set by {f['session']}, {_ago(f['ts'], now)})" if f
               else "**Priority:** none set (`evhub focus TEXT`)")
    out += ["", f"## Live sessions ({len(doc['sessions'])})"]
    for s in doc["sessions"]:
        holds = f" holds {', '.join(s['holds'])}" if s["holds"] else ""
        status_text = f" [{s['status']}]" if s["status"] else ""
        role = f" ({s['role']})" if s["role"] else ""
        out.append(f"- {s['id']}{role}{status_text}: seen {_ago(s['last_seen'], now)}{holds}")
    if not doc["sessions"]:
        out.append("- none")
    out += ["", f"## Claims ({len(doc['claims'])})"]
    for c in doc["claims"]:
        flag = " **STALE: holder not alive or ttl ran out**" if c["stale"] else ""
        out.append(f"- {c['priority']}: {c['session']} since {_ago(c['since'], now)} (token {c['token']}){flag}")
    if not doc["claims"]:
        out.append("- none")
    out += ["", f"## Active milestones ({len(doc['milestones'])})"]
    for m in doc["milestones"]:
        p = m["progress"]
        owner = m["owner"] or "unclaimed"
        out.append(f"- {m['id']} {progress_bar(p['done'], p['total'])} {p['done']}/{p['total']} "
                   f"{m['title']} ({owner})")
    if not doc["milestones"]:
        out.append("- none")
    out += ["", "## Recently completed"]
    for c in doc["completed"]:
        note = f": {c['note']}" if c["note"] else ""
        out.append(f"- {c['kind']} {c['name']} by {c['session']}, {_ago(c['ts'], now)}{note}")
    if not doc["completed"]:
        out.append("- none")
    out += ["", "## Last messages"]
    for m in doc["messages"]:
        out.append(f"- #{m['seq']} {m['from']} → {m['to']}: {m['text']}")
    if not doc["messages"]:
        out.append("- none")
    out += ["", f"{doc['events']} events in the log."]
    return "\n".join(out) + "\n"


def recall(st: State, sid: str, now: str, recent: list[dict[str, Any]], unread: list[Message]) -> dict[str, Any]:
    """What session SID needs after a context loss; RECENT is its latest events, newest last."""
    s = st.sessions[sid]
    return {
        "session": session_dict(st, s, now),
        "about": s.about,
        "claims": [claim_dict(st, c, now) for c in st.claims_of(sid)],
        "milestones": [{**milestone_dict(m), "next_step": m.next_step} for m in st.milestones_of(sid)],
        "unread": message_dicts(unread),
        "notes": [{"seq": n.seq, "ts": n.ts, "text": n.text} for n in s.notes],
        "recent_events": recent,
        "focus": None if st.focus is None else st.focus.text,
        "others": [r for r in sessions(st, now) if r["id"] != sid],
    }


def recall_markdown(st: State, sid: str, now: str, recent: list[dict[str, Any]], unread: list[Message]) -> str:
    doc = _folded(recall(st, sid, now, recent, unread))
    s = doc["session"]
    out = [f"# Recall for {sid}", ""]
    out.append(f"You are **{sid}**" + (f", role: {s['role']}" if s["role"] else "")
               + (f" ({s['specialization']})" if s["specialization"] else "") + ".")
    if doc["about"]:
        out.append(f"About: {doc['about']}")
    if s["aka"]:
        out.append(f"Formerly known as: {', '.join(s['aka'])}.")
    out.append(f"Hub focus: {doc['focus'] or 'none set'}.")
    out += ["", "## Your claims"]
    for c in doc["claims"]:
        warn = " (STALE: claim it again)" if c["stale"] else ""
        out.append(f"- {c['priority']} (token {c['token']}, since {c['since']}){warn}")
    if not doc["claims"]:
        out.append("- none: claim before you start work (`evhub claim P`)")
    out += ["", "## Your milestones"]
    for m in doc["milestones"]:
        n = m["next_step"]
        nxt = f"next: step {n}: {m['steps'][n - 1]['text']}" if n else "all steps done"
        out.append(f"- {m['id']} {m['progress']['done']}/{m['progress']['total']} {m['title']}; {nxt}")
    if not doc["milestones"]:
        out.append("- none")
    out += ["", f"## Unread messages ({len(doc['unread'])}; `evhub msg inbox` marks them read)"]
    for msg in doc["unread"]:
        out.append(f"- #{msg['seq']} from {msg['from']} to {msg['to']}: {msg['text']}")
    out += ["", "## Your recent notes"]
    out += [f"- {n['ts']}: {n['text']}" for n in doc["notes"]] or ["- none"]
    out += ["", "## Your recent events"]
    out += [f"- #{e['seq']} {e['ts']} {e['type']}" for e in doc["recent_events"]] or ["- none"]
    out += ["", "## Other live sessions"]
    for o in doc["others"]:
        role = f" ({o['role']})" if o["role"] else ""
        out.append(f"- {o['id']}{role}: seen {_ago(o['last_seen'], now)}")
    if not doc["others"]:
        out.append("- none")
    return "\n".join(out) + "\n"
