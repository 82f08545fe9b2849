"""Reports: the documents as markdown, for `evhub status`, `evhub recall` and the hook's card."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ._documents import folded, one_line, progress_bar, recall, status
from ._results import Recall
from ._state import Message, State
from ._values import format_duration, seconds_between

CONTEXT_BUDGET = 9_000
"""The characters a hook injects into an agent's context at most: Claude Code keeps 10,000 of a hook's
additionalContext (longer becomes a preview and a file path); the rest is margin."""


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


def message_item(m: Message) -> str:
    """One message as one list item: its sender's words quoted as a JSON string, data that can pose
    neither as structure nor as evhub's own text."""
    quoted = json.dumps(one_line(m.text), ensure_ascii=False)
    return f"- #{m.seq} from {one_line(m.sender)} to {one_line(m.to)}: {quoted}"


def fit_messages(messages: Sequence[Message], budget: int) -> tuple[list[Message], list[str]]:
    """The newest of MESSAGES (oldest first) whose items fit in BUDGET characters, with a line counting
    the others when some are left out: (the messages shown, the lines to show)."""
    room = budget - len(_more(len(messages))) - 1  # kept for that line, needed or not: one pass
    shown: list[Message] = []
    for m in reversed(messages):
        size = len(message_item(m)) + 1
        if size <= room:  # one too long for the room left is skipped, so it holds back none older
            shown.append(m)
            room -= size
    shown.reverse()
    left_out = len(messages) - len(shown)
    return shown, [message_item(m) for m in shown] + ([_more(left_out)] if left_out else [])


def _more(n: int) -> str:
    return f"{n} more unread, not shown here: `evhub msg inbox` lists them."


def fit_text(text: str, budget: int) -> str:
    """TEXT, cut at a line to BUDGET characters when longer, saying so."""
    if len(text) <= budget:
        return text
    note = "... cut here to fit the agent's context: `evhub recall` prints it whole.\n"
    return text[: text.rfind("\n", 0, budget - len(note)) + 1] + note


def recall_markdown(r: Recall, budget: int | None = None) -> tuple[str, list[Message]]:
    """The recall card, and the unread messages it shows: all of them, or within BUDGET characters the
    newest that fit (the card says that those shown are now marked read, as the hook does)."""
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
        warn = " (STALE: it no longer keeps others out)" if c["stale"] else ""
        out.append(f"- {c['priority']} (token {c['token']}, since {c['since']}){warn}")
    if not doc["claims"]:
        out.append("- none (`evhub claim P` claims priority P)")
    out += ["", "## Your milestones"]
    for m in doc["milestones"]:
        n = m["next_step"]
        nxt = f"next: step {n}: {m['steps'][n - 1]['text']}" if n else "all steps done"
        out.append(f"- {m['id']} {m['progress']['done']}/{m['progress']['total']} {m['title']}; {nxt}")
    if not doc["milestones"]:
        out.append("- none")
    head = out
    out = ["", "## Your recent notes"]
    out += [f"- {n['ts']}: {n['text']}" for n in doc["notes"]] or ["- none"]
    out += ["", "## Your recent events"]
    out += [f"- #{e.get('num', e['seq'])} {e['ts']} {e['type']}" for e in doc["recent_events"]] or ["- none"]
    out += ["", "## Other live sessions"]
    for o in doc["others"]:
        role = f" ({o['role']})" if o["role"] else ""
        out.append(f"- {o['id']}{role}: seen {_ago(o['last_seen'], now)}")
    if not doc["others"]:
        out.append("- none")
    unread = r.unread
    if budget is None:
        shown, items = unread, [message_item(m) for m in unread]
        title = f"## Unread messages ({len(unread)}; `evhub msg inbox` marks them read)"
    else:
        title = f"## Unread messages ({len(unread)}; those shown here are now marked read)"
        tail = sum(len(line) + 1 for line in out)
        # A crowded hub's notes and sessions give way to the messages: what is cut is the card's end.
        rest = sum(len(line) + 1 for line in head) + len(title) + 2 + min(tail, budget // 4)
        shown, items = fit_messages(unread, budget - rest)
    text = "\n".join([*head, "", title, *items, *out]) + "\n"
    return (text, shown) if budget is None else (fit_text(text, budget), shown)
