"""Adopting a hand-kept SESSIONS/ folder: the parsers of the seed's file formats, one file at a time."""

from __future__ import annotations

import pytest

from evhub._errors import BadInput, Unreadable
from evhub._legacy import (
    HeartbeatFile,
    LockFile,
    MessageLine,
    StepFile,
    StrayLine,
    parse_current_priority,
    parse_handshake,
    parse_heartbeat,
    parse_hello,
    parse_lock,
    parse_messages,
    parse_milestone,
    parse_registry,
    parse_time,
)

# -- the parsers -----------------------------------------------------------------------------------------


def test_times_are_read_as_the_seed_writes_them() -> None:
    assert parse_time("2026-11-25T09:00:00Z") == "2026-11-25T09:00:00.000000Z"
    assert parse_time("Wed Nov 25 09:00:00 UTC 2026") == "2026-11-25T09:00:00.000000Z"  # $(date -u)
    assert parse_time("Wed Nov  5 09:00:00 UTC 2026") == "2026-11-05T09:00:00.000000Z"
    assert parse_time("2026-11-25 09:00") == "2026-11-25T09:00:00.000000Z"
    assert parse_time(1795597200) == "2026-11-25T09:00:00.000000Z"
    for bad in ("yesterday", "", True, None, [1]):
        with pytest.raises(Unreadable):
            parse_time(bad)


def test_a_heartbeat_is_read_from_the_seeds_echo_line_and_from_evhubs_own() -> None:
    seed = '{"id":"alice","time":"Wed Nov 25 09:00:00 UTC 2026"}\n'
    assert parse_heartbeat(seed, "alice.json") == HeartbeatFile(session="alice", time="2026-11-25T09:00:00.000000Z")
    ours = '{\n  "id": "bob",\n  "time": "2026-11-25T09:01:00.000000Z",\n  "status": "reviewing"\n}\n'
    assert parse_heartbeat(ours, "bob.json").status == "reviewing"
    # No id: the file's name says whose it is; no time: the caller decides (the file's mtime).
    assert parse_heartbeat("{}", "Carol.json") == HeartbeatFile(session="carol")


@pytest.mark.parametrize(("text", "why"), [
    ('{"id": "alice", "time": ', "not JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    ('{"id": "alice", "time": "soon"}', "time 'soon'"),
    ('{"id": "no such id!"}', "invalid session id"),
])
def test_an_unreadable_heartbeat_says_why_in_one_line(text: str, why: str) -> None:
    with pytest.raises(Unreadable) as e:
        parse_heartbeat(text, "x.json")
    assert why in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, BadInput)  # one hierarchy: it prints as any other bad input


def test_a_lock_is_read_as_json_as_key_value_lines_or_as_a_bare_session_id() -> None:
    assert parse_lock("bob\n", "api-auth.lock") == LockFile(priority="api-auth", session="bob")
    kv = "session: bob\nclaimed_at: 2026-11-25 09:05 UTC\n"
    assert parse_lock(kv, "3.lock") == LockFile(priority="3", session="bob", time="2026-11-25T09:05:00.000000Z")
    ours = ('{"priority": "api", "session": "carol", "token": 4, "since": "2026-11-25T09:00:00.000000Z", '
            '"ttl_s": 600}')
    assert parse_lock(ours, "api.lock") == LockFile(priority="api", session="carol",
                                                    time="2026-11-25T09:00:00.000000Z", ttl_s=600)
    for text, why in (("", "neither JSON"), ('{"since": "2026-11-25T09:00:00Z"}', "which session"),
                      ("two words", "neither JSON"), ('{"session": "a", "ttl_s": "10m"}', "ttl_s")):
        with pytest.raises(Unreadable, match=why):
            parse_lock(text, "p.lock")


def test_a_milestone_keeps_its_steps_statuses_notes_and_owner() -> None:
    seed = """{
      "id": "deploy-dashboard", "title": "Deploy dashboard", "priority": "3", "claimed_by": "alice",
      "created": "2026-11-25T09:00:00Z",
      "steps": [
        {"step": 1, "title": "Design", "status": "completed", "completed_at": "2026-11-25T09:10:00Z"},
        {"step": 2, "title": "Deploy to staging", "status": "in_progress", "notes": "uploading"},
        "Deploy to production"
      ]
    }"""
    m = parse_milestone(seed, "deploy-dashboard.json")
    assert (m.id, m.title, m.priority, m.owner, m.created) == (
        "deploy-dashboard", "Deploy dashboard", "3", "alice", "2026-11-25T09:00:00.000000Z")
    assert m.steps == (
        StepFile(text="Design", status="done", updated="2026-11-25T09:10:00.000000Z"),
        StepFile(text="Deploy to staging", status="in-progress", note="uploading"),
        StepFile(text="Deploy to production"),
    )
    # No id: the file's name; no priority: the milestone's id, as `milestone create` does.
    bare = parse_milestone('{"title": "Docs", "steps": ["one"]}', "docs.json")
    assert (bare.id, bare.priority, bare.owner) == ("docs", "docs", None)
    with pytest.raises(Unreadable, match="step 2: step status 'almost'"):
        parse_milestone('{"steps": ["a", {"text": "b", "status": "almost"}]}', "m.json")


def test_messages_are_read_from_seed_lines_and_evhub_blocks_with_stray_lines_reported() -> None:
    text = """# Messages

Post your messages below, newest last.

[2026-11-25T09:00:00Z] alice -> all: Morning! Who owns api-auth?
- **bob** → alice (2026-11-25 09:02): I do.
  Landing in an hour.
this line is nobody's message
bob to carol: no time on this one

### #7 2026-11-25T09:05:00.000000Z from carol to all

> two lines,
> quoted
"""
    parsed = parse_messages(text)
    assert parsed.messages == (
        MessageLine(sender="alice", to="all", text="Morning! Who owns api-auth?", time="2026-11-25T09:00:00.000000Z",
                    line=5),
        MessageLine(sender="bob", to="alice", text="I do.\nLanding in an hour.", time="2026-11-25T09:02:00.000000Z",
                    line=6),
        MessageLine(sender="bob", to="carol", text="no time on this one", line=9),
        MessageLine(sender="carol", to="all", text="two lines,\nquoted", time="2026-11-25T09:05:00.000000Z", line=11,
                    seq=7),
    )
    assert parsed.stray == (StrayLine(line=8, text="this line is nobody's message"),)
    # The preamble before the first message is no stray line; an appended line is a new message.
    assert parse_messages(text + "carol -> bob: thanks\n").messages[-1].text == "thanks"


def test_the_registry_is_read_in_its_shapes_and_a_bad_entry_is_skipped_with_why() -> None:
    listed = parse_registry('{"sessions": [{"id": "alice", "role": "builder", "specialization": "frontend", '
                            '"last_seen": "2026-11-25T09:00:00Z"}, {"id": "not an id"}, 3]}')
    assert [(s.id, s.role, s.specialization, s.last_seen) for s in listed.sessions] == [
        ("alice", "builder", "frontend", "2026-11-25T09:00:00.000000Z")]
    assert len(listed.skipped) == 2 and "invalid session id" in listed.skipped[0]
    keyed = parse_registry('{"alice": {"role": "builder"}, "bob": {"role": "reviewer"}}')
    assert [(s.id, s.role) for s in keyed.sessions] == [("alice", "builder"), ("bob", "reviewer")]
    with pytest.raises(Unreadable, match="not JSON"):
        parse_registry("{")


def test_a_hello_handshake_and_the_current_priority() -> None:
    hello = parse_hello("# Hello, I'm alice\nMy role: builder\nMy work: the deploy dashboard\n", "alice-HELLO.md")
    assert (hello.session, hello.role, hello.work) == ("alice", "builder", "the deploy dashboard")
    template = parse_hello("# Hello, I'm [your-session-id]\nMy role: [what you do]\n", "bob-HELLO.md")
    assert (template.session, template.role) == ("bob", "")  # the template's placeholders are no answers
    with pytest.raises(Unreadable, match="not a hello"):
        parse_hello("just notes\n", "x-HELLO.md")
    shake = parse_handshake('{"from": "session-1", "proposed": "carol", "status": "accepted", '
                            '"accepted_by": ["alice", "bob"]}', "session-1.json")
    assert (shake.session, shake.proposed, shake.status, shake.accepted) == (
        "session-1", "carol", "agreed", ("alice", "bob"))
    assert parse_current_priority("# State\n\n**Priority:** Ship the dashboard (3)\n") == "Ship the dashboard (3)"
    assert parse_current_priority("**Priority:** (none set; `evhub focus TEXT` sets it)\n") is None
    assert parse_current_priority("nothing here\n") is None
