"""Adopting a hand-kept SESSIONS/ folder: the parsers of the seed's file formats, one file at a time, and
`evhub init --adopt` on the folders in tests/seedfolders/ (a tidy one that follows the seed's README,
and a messy one with the mistakes people and agents make by hand)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest
from clock import at, fixed_now
from command import Runner, ok
from hypothesis import given, settings
from hypothesis import strategies as st

from evhub import Conflict, Hub
from evhub import _events as ev
from evhub._adopt import Adoption, Folder, hub_events
from evhub._errors import BadInput, Unreadable
from evhub._legacy import (
    HeartbeatFile,
    LockFile,
    MessageLine,
    MessagesFile,
    MilestoneFile,
    RegistryEntry,
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
from evhub._render import render
from evhub._state import State, fold

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
    for text, why in (("", "the file is empty"), ('{"since": "2026-11-25T09:00:00Z"}', "which session"),
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
    # So is a heading appended by hand in evhub's way, without the seq and time evhub writes, or the
    # seed's, with its text on the lines below, quoted or not, up to a rule.
    appended = parse_messages(text + "\n### from hank to all\n\nDeploying now.\n> Back in 5.\n\n"
                              "## [2026-11-25T09:30:00Z] hank -> bob\nsee the runbook\n---\nnot hank's\n")
    assert [(m.sender, m.to, m.text, m.time) for m in appended.messages[-2:]] == [
        ("hank", "all", "Deploying now.\nBack in 5.", None),
        ("hank", "bob", "see the runbook", "2026-11-25T09:30:00.000000Z")]
    assert appended.stray[-1] == StrayLine(line=24, text="not hank's")
    # A heading is a message only with `from` or an arrow: "## Notes to self" is not one.
    assert parse_messages("## Notes to self\nbuy milk\n") == MessagesFile()
    # `id: text` is a note to everyone from a session the folder names, and nothing from anyone else.
    said = parse_messages("alice: morning all\n- [2026-11-25T10:00:00Z] bob: on it\nNote: buy milk\n", ["alice", "bob"])
    assert [(m.sender, m.to, m.text, m.time) for m in said.messages] == [
        ("alice", "all", "morning all", None), ("bob", "all", "on it", "2026-11-25T10:00:00.000000Z")]
    assert said.stray == (StrayLine(line=3, text="Note: buy milk"),)


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
    # evhub renders a proposal replaced by a later one as withdrawn.
    assert parse_handshake('{"session": "a", "proposed": "b", "status": "withdrawn"}', "a.json").status == "withdrawn"
    with pytest.raises(Unreadable, match="status 'maybe'"):
        parse_handshake('{"session": "a", "proposed": "b", "status": "maybe"}', "a.json")
    assert parse_current_priority("# State\n\n**Priority:** Ship the dashboard (3)\n") == "Ship the dashboard (3)"
    assert parse_current_priority("**Priority:** (none set; `evhub focus TEXT` sets it)\n") is None
    assert parse_current_priority("nothing here\n") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["alice", "2026-11-25T09:00:00Z", "done", "in_progress", "Wed Nov 25 09:00:00 UTC 2026"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "session", "time", "status", "steps", "title", "text", "note", "notes", "owner",
                         "priority", "since", "ttl_s", "sessions", "proposed", "accepted_by", "from", "by"]),
        inner, max_size=6),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(), st.binary()))
def test_every_parser_reads_a_file_or_says_why_it_cannot(content: str | bytes) -> None:
    """Whatever a hand-kept file holds, a parser returns its values or raises Unreadable: never another error."""
    parsers = [lambda t: parse_heartbeat(t, "alice.json"), lambda t: parse_lock(t, "api.lock"),
               lambda t: parse_milestone(t, "m.json"), parse_messages, parse_registry,
               lambda t: parse_hello(t, "alice-HELLO.md"), lambda t: parse_handshake(t, "alice.json"),
               parse_current_priority]
    for parse in parsers:
        try:
            parse(content)
        except Unreadable as e:
            assert str(e) and "\n" not in str(e)


# -- init --adopt ------------------------------------------------------------------------------------------

SEEDFOLDERS = Path(__file__).resolve().parent / "seedfolders"
README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLES = Path(__file__).resolve().parent.parent / "events" / "samples"


def hand_kept(tmp_path: Path, name: str) -> Runner:
    """A folder holding tests/seedfolders/NAME as its SESSIONS/, as a team kept it before evhub."""
    shutil.copytree(SEEDFOLDERS / name, tmp_path / "SESSIONS")
    return Runner(tmp_path)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def views(sessions: Path) -> dict[str, bytes]:
    return {rel: data for rel, data in files(sessions).items() if not rel.startswith("events/")}


def readme_sample(command: str) -> str:
    """The output the README shows after COMMAND in its section on adopting a hand-kept folder."""
    section = README.read_text().split("### Adopting a hand-kept folder\n", 1)[1]
    return section.split(command, 1)[1].split("```", 1)[0]


def test_an_adopted_tidy_folder_shows_its_sessions_claims_milestones_and_messages_in_status(tmp_path: Path) -> None:
    evhub = hand_kept(tmp_path, "tidy")
    said = evhub.ok("init", "--adopt").stdout.splitlines()
    [legacy] = (tmp_path / "SESSIONS" / "events").glob("legacy-*")
    assert files(legacy) == files(SEEDFOLDERS / "tidy"), "the originals are kept, untouched"
    assert said == [
        f"created a hub at {tmp_path / 'SESSIONS'}",
        f"adopted the hand-kept SESSIONS/: its files are kept, untouched, in {legacy}",
        "carried over:",
        "  sessions (3): alice, bob, carol",
        "  heartbeats (3): alice, bob, carol",
        "  claims (2): api-auth (bob), flaky-tests (carol)",
        "  milestones (1): deploy-dashboard (2/8, owner alice)",
        "  messages (5): alice → all, bob → all, carol → bob, alice → bob, bob → alice",
        "  discovery (3): alice, bob, carol",
        "  handshakes (1): carol → carol-qa (pending)",
        "  priority (1): 3 - Ship the deploy dashboard",
    ]

    status = json.loads(evhub.ok("status", "--json", now=at(30)).stdout)
    assert [(s["id"], s["status"], s["holds"]) for s in status["sessions"]] == [
        ("alice", "", ["3"]), ("bob", "auth: refresh tokens", ["api-auth"]),
        ("carol", "bisecting test_upload_retry", ["flaky-tests"])]
    assert [(c["priority"], c["session"], c["since"], c["stale"]) for c in status["claims"]] == [
        ("3", "alice", "2026-11-25T09:20:00.000000Z", False),
        ("api-auth", "bob", "2026-11-25T09:14:00.000000Z", False),
        ("flaky-tests", "carol", "2026-11-25T09:15:30.000000Z", False)]
    [m] = status["milestones"]
    assert (m["id"], m["owner"], m["progress"]) == ("deploy-dashboard", "alice", {"done": 2, "total": 8})
    assert [(s["status"], s["note"]) for s in m["steps"][:4]] == [
        ("done", "wireframe in docs/dash.md"), ("done", ""), ("in-progress", "charts render; wiring live data"),
        ("pending", "")]
    assert [(x["from"], x["to"], x["ts"]) for x in status["messages"]][-2:] == [
        ("alice", "bob", "2026-11-25T11:40:00.000000Z"), ("bob", "alice", "2026-11-25T11:45:00.000000Z")]
    assert status["focus"]["text"] == "3 - Ship the deploy dashboard"
    text = evhub.ok("status", now=at(30)).stdout
    assert "deploy-dashboard ██░░░░░░░░ 2/8 Deploy dashboard (alice)" in text and "bob → alice: Yes, final." in text

    # The log keeps the folder's own times, every adopted event says so, and it verifies.
    log = [json.loads(line) for line in (tmp_path / "SESSIONS" / "events" / "log.jsonl").read_text().splitlines()]
    assert log[0]["type"] == "hub_created" and "origin" not in log[0]
    assert log[0]["ts"] == "2026-11-25T09:00:00.000000Z"  # alice's first_seen, the earliest time the folder gives
    assert all(e["origin"] == "adopted" for e in log[1:])
    assert [e["ts"] for e in log] == sorted(e["ts"] for e in log)
    ok(evhub("verify"))
    # The views are the log's: a replay from nothing gives the same files.
    before = views(tmp_path / "SESSIONS")
    evhub.ok("replay", now=at(30))
    assert views(tmp_path / "SESSIONS") == before


def test_a_messy_folder_is_adopted_as_far_as_it_can_be_and_every_other_file_is_reported(tmp_path: Path) -> None:
    evhub = hand_kept(tmp_path, "messy")
    doc = json.loads(evhub.ok("init", "--adopt", "--json").stdout)
    adopted = doc["adopted"]
    [legacy] = (tmp_path / "SESSIONS" / "events").glob("legacy-*")
    assert doc["created"] is True and adopted["legacy"] == str(legacy)
    assert files(legacy) == files(SEEDFOLDERS / "messy")
    assert adopted["carried"] == {
        "sessions": ["dave", "frank", "zed"],
        "heartbeats": ["dave", "frank"],
        # dave's heartbeat is two hours old and zed was never seen but in its lock: the time rule says stale.
        "claims": ["cache (frank)", "db-migration (dave, stale: holder not alive)",
                   "ghost (zed, stale: holder not alive)", "search (frank)"],
        "milestones": ["search-v2 (1/3, owner frank)"],
        "messages": ["frank → all", "dave → frank", "frank → dave"],
        "discovery": ["frank"],
        "handshakes": [],
        "priority": [],
    }
    reasons = {p["file"]: p["reason"] for p in adopted["not_carried"]}
    assert set(reasons) == {
        "DISCOVERY/zed-HELLO.md", "HANDSHAKES/dave.json", "HEARTBEATS/erin.json", "HEARTBEATS/notes.txt",
        "MESSAGES.md:4", "MESSAGES.md:6", "MILESTONES/half-plan.json", "PRIORITIES/broken.lock", "REGISTRY.json",
        "old-plan.md"}
    assert reasons["REGISTRY.json"].startswith("not JSON")
    assert reasons["HEARTBEATS/erin.json"].startswith("not JSON")
    assert reasons["MESSAGES.md:4"] == "not a message: TODO ask dave about the migration"
    assert reasons["MILESTONES/half-plan.json"] == (
        "step 2: step status 'almost' is none of pending, in-progress, done, blocked, skipped")
    assert reasons["old-plan.md"] == "not a file of the seed's layout"
    assert all("\n" not in r for r in reasons.values())

    # The text report says the same, one line a file: as the README shows it, run in /home/me/app.
    app = tmp_path / "home" / "me" / "app"
    said = hand_kept(app, "messy").ok("init", "--adopt").stdout
    assert readme_sample("$ evhub init --adopt\n") == said.replace(str(app), "/home/me/app")

    with evhub.api(at(0)) as hub:
        state = hub.state()
    search = state.milestones["search-v2"]
    assert (search.owner, [(s.status, s.note) for s in search.steps]) == (
        "frank", [("done", ""), ("in-progress", "indexing 40%"), ("pending", "")])
    assert state.claims["db-migration"].since == "2026-11-25T10:00:00.000000Z"
    ok(evhub("verify"))


# -- the plan, through the pure API -------------------------------------------------------------------------


def adopt_folder(found: Folder, now: str = at(0)) -> tuple[State, list[ev.Event], Adoption]:
    events, adoption = hub_events(found, "legacy", 300, now)
    return fold(events), events, adoption


def test_a_session_the_folder_gives_no_time_for_is_not_made_alive_by_adoption() -> None:
    found = Folder(registry=(RegistryEntry(id="ghost", role="old"),
                             RegistryEntry(id="alice", last_seen="2026-11-25T10:00:00.000000Z")),
                   heartbeats={"HEARTBEATS/bob.json": HeartbeatFile(session="bob", time=at(-60))},
                   locks={"PRIORITIES/old.lock": LockFile(priority="old", session="ghost")})
    state, events, _ = adopt_folder(found)
    assert state.live_sessions(at(0)) == ["bob"]
    # ghost registered, and claimed, at the earliest time the folder gives: no sign of life since.
    assert state.sessions["ghost"].last_seen == "2026-11-25T10:00:00.000000Z" == events[0].ts
    assert state.stale_reason(state.claims["old"], at(0)) == "holder not alive"


def test_adopted_times_never_run_backwards_nor_past_now() -> None:
    found = Folder(heartbeats={"HEARTBEATS/a.json": HeartbeatFile(session="a", time=at(3600)),  # a clock ahead
                               "HEARTBEATS/b.json": HeartbeatFile(session="b", time=at(-7200))},
                   messages=(MessageLine(sender="b", to="a", text="late", time=at(-60), line=3),
                             MessageLine(sender="a", to="all", text="no time given", line=4)))
    _, events, adoption = adopt_folder(found)
    stamps = [e.ts for e in events]
    assert stamps == sorted(stamps) and stamps[0] == at(-7200) and max(stamps) == at(0)
    assert all(e.origin == "adopted" for e in events[1:]) and events[0].origin is msgspec.UNSET
    assert adoption.carried["messages"] == ["b → a", "a → all"] and adoption.not_carried == []


@pytest.mark.parametrize("sample", ["three-sessions-day", "handshakes"])
def test_the_parsers_read_back_what_evhub_renders(sample: str) -> None:
    """A view file evhub wrote, read back: what a hand edit of it is compared with."""
    state = fold(ev.decode(line) for line in (SAMPLES / f"{sample}.jsonl").read_bytes().splitlines())
    now = state.last_ts
    rendered = {rel: v.content for rel, v in render(state, now).items()}
    for rel, content in rendered.items():
        folder, _, name = rel.rpartition("/")
        if folder == "HEARTBEATS":
            beat = parse_heartbeat(content, name)
            s = state.sessions[beat.session]
            assert (beat.time, beat.status) == (s.last_seen, s.status)
        elif folder == "PRIORITIES":
            lock = parse_lock(content, name)
            c = state.claims[lock.priority]
            assert (lock.session, lock.time, lock.ttl_s) == (c.session, c.since, c.ttl_s)
        elif folder == "MILESTONES" and name != "README.md":
            m = parse_milestone(content, name)
            kept = state.milestones[m.id]
            assert (m.title, m.priority, m.owner, m.created_by, m.created) == (
                kept.title, kept.priority, kept.owner, kept.created_by, kept.created)
            assert [(s.text, s.status, s.note, s.updated or "", s.by or "") for s in m.steps] == [
                (s.text, s.status, s.note, s.updated, s.by) for s in kept.steps]
        elif folder == "DISCOVERY":
            hello = parse_hello(content, name)
            s = state.sessions[hello.session]
            assert hello.role == s.role and hello.work == (s.about or s.specialization)
        elif folder == "HANDSHAKES":
            shake = parse_handshake(content, name)
            assert shake.session == name.removesuffix(".json") and shake.proposed
    board = parse_messages(rendered["MESSAGES.md"])
    assert board.stray == ()
    assert [(m.seq, m.time, m.sender, m.to, m.text) for m in board.messages] == [
        (m.seq, m.ts, m.sender, m.to, m.text) for m in state.messages]
    registry = parse_registry(rendered["REGISTRY.json"])
    assert [(r.id, r.role, r.first_seen, r.last_seen) for r in registry.sessions] == [
        (s.id, s.role, s.first_seen, s.last_seen) for _, s in sorted(state.sessions.items())]
    assert parse_current_priority(rendered["CURRENT_STATE.md"]) == (state.focus.text if state.focus else None)


def test_the_python_api_adopts_too_and_a_second_init_adopts_nothing(tmp_path: Path) -> None:
    shutil.copytree(SEEDFOLDERS / "tidy", tmp_path / "SESSIONS")
    with fixed_now(at(0)):
        with pytest.raises(Conflict, match="rerun with --adopt"):
            Hub.init(tmp_path)
        assert files(tmp_path / "SESSIONS") == files(SEEDFOLDERS / "tidy")  # refused: nothing moved
        hub, created = Hub.init(tmp_path, adopt=True)
        assert created and hub.adopted is not None and hub.adopted.not_carried == []
        assert hub.adopted.carried["claims"] == ["api-auth (bob)", "flaky-tests (carol)"]
        again, created = Hub.init(tmp_path, adopt=True)
    assert not created and again.adopted is None
    assert len(list((tmp_path / "SESSIONS" / "events").glob("legacy-*"))) == 1


def test_a_milestone_nobody_is_named_for_is_made_by_human_and_said_so() -> None:
    steps = (StepFile(text="Write", status="done"), StepFile(text="Ship"))
    found = Folder(milestones={"MILESTONES/docs.json": MilestoneFile(id="docs", title="Docs", priority="docs",
                                                                     steps=steps)})
    state, _, adoption = adopt_folder(found)
    assert (state.milestones["docs"].created_by, state.milestones["docs"].done_count) == ("human", 1)
    assert adoption.carried["milestones"] == ["docs (1/2)"]
    assert adoption.notes == ["MILESTONES/docs.json names no creator or owner: human made it, registered for that"]
