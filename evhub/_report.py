"""Reports: the documents as markdown, for `evhub status`, `evhub recall` and the hook's card."""

from __future__ import annotations

from ._documents import folded, progress_bar, recall, status
from ._results import Recall
from ._state import State
from ._values import format_duration, seconds_between


def _ago(ts: str, now: str) -> str:
    return f"{format_duration(seconds_between(ts, now))} ago"


def status_markdown(st: State, now: str) -> str:
    doc = folded(status(st, now))
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


def recall_markdown(r: Recall) -> str:
    sid, now = r.session, r.at
    doc = folded(recall(r))
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
