"""Hand edits of the views (issue 16): an agent that still follows the seed's README writes
`HEARTBEATS/x.json`, a `PRIORITIES/p.lock`, a line at the end of `MESSAGES.md` or a step's status in a
`MILESTONES/<id>.json` by hand. The next evhub command, whichever it is, takes them as the events the
seed's protocol meant (each with `origin`, the file it came from), by the usual rules; whatever it
cannot take is reported on stderr, one line a file, and a copy kept before the view is rendered again.
`verify` names each file that differs from what evhub wrote (exit 4). Nothing is added when nothing was
touched. The installed `evhub` in subprocesses; setup through the Python API.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
from clock import at
from command import Runner, checked_log, init_hub, js, ok
from test_worktrees import repo_with_hub

from evhub import Hub
from evhub._errors import ViewsDisagree
from evhub._handedits import Files


def hub_with(tmp_path: Path, *sessions: str) -> Runner:
    """A hub at T0 where SESSIONS said hello."""
    runner = Runner(init_hub(tmp_path / "hub"))
    with runner.api() as hub:
        for sid in sessions:
            hub.hello(sid)
    return runner


def by_hand(runner: Runner) -> list[dict[str, Any]]:
    return [e for e in checked_log(runner.root) if "origin" in e]


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_a_heartbeat_and_a_message_written_by_hand_become_events_and_nothing_is_lost(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice", "bob")
    sessions = runner.sessions_dir
    # As the seed's quick start writes them: `echo '{"id":...,"time":"'$(date -u)'"}' > HEARTBEATS/...`
    (sessions / "HEARTBEATS" / "hank.json").write_text('{"id":"hank","time":"Tue Dec  1 03:09:00 UTC 2026"}\n')
    # alice's heartbeat put back as it was before her last event: nothing new
    (sessions / "HEARTBEATS" / "alice.json").write_text('{"id": "alice", "time": "2026-11-25T11:59:00Z"}')
    with open(sessions / "MESSAGES.md", "a") as board:
        board.write("alice -> bob: staging is deployed\n")

    inbox = runner("msg", "inbox", "--json", session="bob", now=at(30))
    assert [(m["from"], m["to"], m["text"]) for m in js(inbox)] == [("alice", "bob", "staging is deployed")]
    assert warnings(inbox.stderr) == []
    assert [(e["type"], e["session"], e["origin"]) for e in by_hand(runner)] == [
        ("session_registered", "hank", "HEARTBEATS/hank.json"),  # the seed's first step registers a newcomer
        ("heartbeat", "hank", "HEARTBEATS/hank.json"),
        ("message_posted", "alice", "MESSAGES.md"),
    ]
    assert json.loads((sessions / "HEARTBEATS" / "hank.json").read_text())["id"] == "hank"
    assert "> staging is deployed" in (sessions / "MESSAGES.md").read_text()

    # Taken once: the files are evhub's again, so later commands add nothing.
    before = checked_log(runner.root)
    ok(runner("status", now=at(40)))
    assert checked_log(runner.root) == before
    assert ok(runner("verify", now=at(40))).stdout == f"ok: {len(before)} events, log verified\n"


def test_a_line_said_by_a_known_session_is_a_note_to_everyone_and_any_other_line_is_reported(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice", "bob")
    with open(runner.sessions_dir / "MESSAGES.md", "a") as board:
        board.write("bob: Hi all, I'm picking up the flaky tests\n")

    listed = runner("msg", "list", "--json", now=at(10))
    assert [(m["from"], m["to"], m["text"]) for m in js(listed)] == [
        ("bob", "all", "Hi all, I'm picking up the flaky tests")]
    assert warnings(listed.stderr) == []

    # `Note:` names no session: not a message from someone called note, and said so.
    with open(runner.sessions_dir / "MESSAGES.md", "a") as board:
        board.write("Note: staging is down until noon\n")
    before = checked_log(runner.root)
    [warning] = warnings(runner("status", now=at(20)).stderr)
    assert "SESSIONS/MESSAGES.md was edited by hand and not understood" in warning
    assert checked_log(runner.root) == before


def test_a_hand_lock_claims_a_free_priority_and_is_refused_and_reported_on_a_held_one(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice", "bob")
    with runner.api() as hub:
        hub.claim("alice", "api")
    priorities = runner.sessions_dir / "PRIORITIES"
    (priorities / "web.lock").write_text("bob\n")  # the seed's lock: the holder's id
    (priorities / "api.lock").write_text("bob\n")

    done = runner("claims", "--json", now=at(10))
    assert {c["priority"]: c["session"] for c in js(done)} == {"api": "alice", "web": "bob"}
    [warning] = warnings(done.stderr)
    assert warning.startswith("warning: SESSIONS/PRIORITIES/api.lock was edited by hand and refused "
                              "(api is held by alice"), warning
    copy = Path(warning.rsplit("kept a copy in ", 1)[1])
    assert copy.read_text() == "bob\n" and copy.parts[-2:] == ("PRIORITIES", "api.lock")
    assert json.loads((priorities / "api.lock").read_text())["session"] == "alice"
    assert [(e["type"], e["origin"]) for e in by_hand(runner)] == [("priority_claimed", "PRIORITIES/web.lock")]


def test_what_is_not_understood_is_reported_once_kept_and_rendered_again(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice")
    sessions = runner.sessions_dir
    current = (sessions / "CURRENT_STATE.md").read_bytes()
    (sessions / "HEARTBEATS" / "x.json").write_text("{not json")
    (sessions / "PRIORITIES" / "p.lock").write_text("zed\n")  # a lock for a session nobody registered
    (sessions / "CURRENT_STATE.md").write_bytes(current + b"- done: the api\n")
    before = checked_log(runner.root)

    done = ok(runner("sessions", now=at(10)))
    found = {w.split(" was edited by hand", 1)[0]: w for w in warnings(done.stderr)}
    assert sorted(found) == ["warning: SESSIONS/CURRENT_STATE.md", "warning: SESSIONS/HEARTBEATS/x.json",
                             "warning: SESSIONS/PRIORITIES/p.lock"], done.stderr
    assert "unknown session 'zed'" in found["warning: SESSIONS/PRIORITIES/p.lock"]
    assert "not JSON" in found["warning: SESSIONS/HEARTBEATS/x.json"]
    kept = {w.rsplit("kept a copy in ", 1)[1]: w for w in found.values()}
    assert sorted(Path(p).read_bytes() for p in kept) == sorted([b"{not json", b"zed\n",
                                                                 current + b"- done: the api\n"])
    assert checked_log(runner.root) == before
    assert (sessions / "CURRENT_STATE.md").read_bytes() == current
    assert not (sessions / "HEARTBEATS" / "x.json").exists() and not (sessions / "PRIORITIES" / "p.lock").exists()
    assert warnings(ok(runner("sessions", now=at(10))).stderr) == [], "reported once"


def test_sessions_added_to_the_registry_or_discovery_by_hand_are_registered_first(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice")
    sessions = runner.sessions_dir
    (sessions / "PRIORITIES" / "search.lock").write_text("ivy\n")  # names a session added below
    registry = json.loads((sessions / "REGISTRY.json").read_text())
    registry["sessions"].append({"id": "ivy", "role": "search", "specialization": "", "about": "indexes"})
    (sessions / "REGISTRY.json").write_text(json.dumps(registry))
    (sessions / "DISCOVERY" / "jo-HELLO.md").write_text("# Hello, I'm jo\nMy role: docs\nMy work: the guide\n")

    done = runner("sessions", "--json", now=at(10))
    assert warnings(done.stderr) == []
    assert {s["id"]: s["role"] for s in js(done)} == {"alice": "", "ivy": "search", "jo": "docs"}
    assert [(e["type"], e["session"], e["origin"]) for e in by_hand(runner)] == [
        ("session_registered", "ivy", "REGISTRY.json"),
        ("session_registered", "jo", "DISCOVERY/jo-HELLO.md"),
        ("priority_claimed", "ivy", "PRIORITIES/search.lock"),
    ]


def test_a_milestone_edited_by_hand_becomes_its_step_updates(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "bob")
    with runner.api() as hub:
        hub.create_milestone("bob", "Deploy", milestone="deploy", steps=["build", "upload", "smoke"])
        hub.claim_milestone("bob", "deploy")
    path = runner.sessions_dir / "MILESTONES" / "deploy.json"
    rendered = path.read_bytes()
    doc = json.loads(rendered)
    doc["steps"][0]["status"] = "done"
    doc["steps"][1].update(status="in-progress", note="uploading")
    path.write_text(json.dumps(doc))

    shown = js(runner("milestone", "show", "deploy", "--json", now=at(10)))
    assert [(s["status"], s["note"]) for s in shown["steps"]] == [
        ("done", ""), ("in-progress", "uploading"), ("pending", "")]
    assert [(e["type"], e["session"], e["step"], e["origin"]) for e in by_hand(runner)] == [
        ("step_updated", "bob", 1, "MILESTONES/deploy.json"), ("step_updated", "bob", 2, "MILESTONES/deploy.json")]

    # The file as it was before (a checkout of tracked views puts old copies back): no step goes back.
    path.write_bytes(rendered)
    assert [s["status"] for s in js(runner("milestone", "show", "deploy", "--json", now=at(20)))["steps"]] == [
        "done", "in-progress", "pending"]
    assert len(by_hand(runner)) == 2


def test_verify_names_each_hand_edited_file_and_changes_nothing(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice")
    sessions = runner.sessions_dir
    before = checked_log(runner.root)
    assert js(runner("verify", "--json"))["views"] == []
    (sessions / "HEARTBEATS" / "hank.json").write_text('{"id": "hank"}')
    with open(sessions / "MESSAGES.md", "a") as board:
        board.write("alice -> all: lunch\n")
    (sessions / "DISCOVERY" / "alice-HELLO.md").unlink()
    (sessions / "quick-status.sh").chmod(0o755)  # touched, same content: no difference

    done = runner("verify")
    assert done.returncode == ViewsDisagree.exit_code
    assert done.stdout.splitlines()[1:] == [
        "SESSIONS/DISCOVERY/alice-HELLO.md: removed (evhub wrote it)",
        "SESSIONS/MESSAGES.md: 1 line added at the end by hand",
        "SESSIONS/HEARTBEATS/hank.json: written by hand (evhub did not write it)",
    ]
    assert done.stderr.startswith("error: 3 view files disagree with the log")
    assert Hub(runner.root).verify()["views"][2] == {"file": "SESSIONS/HEARTBEATS/hank.json",
                                                      "differs": "written by hand (evhub did not write it)"}
    assert checked_log(runner.root) == before and (sessions / "HEARTBEATS" / "hank.json").exists()


def test_a_hand_edit_in_another_worktrees_views_is_taken(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    wt2 = repo.add_worktree("../wt2")
    repo.ok("hello", "alice")  # renders every worktree's views, wt2's too
    (wt2 / "SESSIONS" / "HEARTBEATS" / "hank.json").write_text('{"id": "hank", "status": "on the api"}')

    [hank] = [line for line in repo.ok("sessions", now=at(5)).stdout.splitlines() if line.startswith("hank\t")]
    assert hank.startswith("hank\talive") and hank.endswith("[on the api]")
    hand = [e for e in json.loads(f"[{','.join(repo.log.read_text().splitlines())}]") if "origin" in e]
    assert [(e["type"], e["origin"]) for e in hand] == [("session_registered", "HEARTBEATS/hank.json"),
                                                        ("heartbeat", "HEARTBEATS/hank.json")]
    assert (repo.top / "SESSIONS" / "HEARTBEATS" / "hank.json").exists(), "shown in every worktree"


def test_a_view_folder_planted_as_a_link_is_not_read_through(tmp_path: Path) -> None:
    runner = hub_with(tmp_path, "alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "hank.json").write_text('{"id": "hank"}')
    heartbeats = runner.sessions_dir / "HEARTBEATS"
    (heartbeats / "alice.json").unlink()
    heartbeats.rmdir()
    heartbeats.symlink_to(outside)

    with runner.api(at(10)) as hub:
        assert "hank" not in hub.state().sessions and hub.warnings == []
    assert not heartbeats.is_symlink() and (outside / "hank.json").read_text() == '{"id": "hank"}'



def test_the_record_stays_what_an_earlier_evhub_reads_and_an_earlier_record_is_read(tmp_path: Path) -> None:
    """views.json is what evhub wrote before it kept each folder's render (in views-base.json): an earlier evhub
    that shares the hub still finds hand edits by it, and a hub an earlier evhub left (no bases) is read."""
    runner = hub_with(tmp_path, "alice", "bob")
    events = runner.root / "SESSIONS" / "events"
    record = msgspec.json.decode((events / "views.json").read_bytes(), type=dict[str, Files])
    assert "HEARTBEATS/alice.json" in record[str(runner.sessions_dir)]
    (events / "views-base.json").unlink()  # as an earlier evhub leaves a hub
    (runner.sessions_dir / "PRIORITIES" / "api.lock").write_text("bob\n")  # the seed's lock: the holder's id
    claims = runner("claims", "--json", now=at(10))
    assert {c["priority"]: c["session"] for c in js(claims)} == {"api": "bob"}
    assert [e["origin"] for e in by_hand(runner)] == ["PRIORITIES/api.lock"]
    assert json.loads((runner.sessions_dir / "PRIORITIES" / "api.lock").read_text())["token"] > 0
    assert (events / "views-base.json").is_file()


def test_a_read_that_renders_between_two_looks_takes_the_hand_edits_first(tmp_path: Path) -> None:
    """A Hub kept open (the Python API) looks for hand edits once a second, but a read renders whatever
    the calls since left for later: found as a line added to MESSAGES.md by hand, then rendered over as
    "not understood" (a copy kept, no message posted) by a read that came within the second."""
    runner = hub_with(tmp_path, "alice", "bob")
    with runner.api(now=at(10)) as hub:
        hub.heartbeat("alice")  # a new Hub looks, and renders at once
        hub.publish_every = math.inf  # every later call comes "within the second", however slow the machine
        with open(runner.sessions_dir / "MESSAGES.md", "a") as board:
            board.write("alice -> bob: staging is deployed\n")
        hub.heartbeat("bob")  # left for later: no look, no render
        hub.state()  # a read: renders what was left, so it looks first
        assert hub.warnings == []
    assert [(e["type"], e["session"], e["origin"]) for e in by_hand(runner)] == [
        ("message_posted", "alice", "MESSAGES.md")]
    assert "staging is deployed" in (runner.sessions_dir / "MESSAGES.md").read_text()


def test_a_hand_edit_made_before_the_repository_moved_is_taken_after_the_move(tmp_path: Path) -> None:
    """Found as a line added to MESSAGES.md by hand, then an `mv` of the repository: the record of what evhub
    wrote is kept by the folder's path, so the moved folder looked like one evhub never wrote, and was
    rendered over: the line lost, with no copy and no word."""
    repo = repo_with_hub(tmp_path)
    repo.ok("hello", "alice")
    with open(repo.top / "SESSIONS" / "MESSAGES.md", "a") as board:
        board.write("alice -> all: the api is up\n")
    moved = tmp_path / "moved"
    repo.top.rename(moved)
    repo.top = moved

    checked = repo.evhub("verify", now=at(5))
    assert checked.returncode == 4 and "SESSIONS/MESSAGES.md: 1 line added at the end by hand" in checked.stdout
    assert warnings(repo.ok("status", now=at(6)).stderr) == []
    hand = [e for e in json.loads(f"[{','.join(repo.log.read_text().splitlines())}]") if "origin" in e]
    assert [(e["type"], e["session"], e["text"]) for e in hand] == [("message_posted", "alice", "the api is up")]
    assert "the api is up" in (moved / "SESSIONS" / "MESSAGES.md").read_text()
    repo.ok("verify", now=at(7))
