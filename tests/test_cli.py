"""The installed `evhub` command, driven as a user drives it: one subprocess a command, one hub a test.

Times come from EVHUB_NOW (`at(seconds)` after T0), so liveness is exact: the hub's alive TTL is
300 s, so a session last seen at `at(0)` is alive at `at(300)` and dead at `at(301)`.
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clock import at
from command import EVHUB, GIT_ENV, Runner, clean_env, error_line, finished, js, ok, run, together

from evhub import Hub
from evhub._values import FUTURE_BOUND_S, format_ts, parse_ts


def hello(evhub: Runner, *ids: str, second: int = 0) -> None:
    """Sessions IDS registered at at(SECOND), as setup (through the API: see `setup`)."""
    setup(evhub, *[(second, "hello", sid) for sid in ids])


def setup(evhub: Runner, *steps: tuple[Any, ...]) -> None:
    """A test's setup through the Python API (each command's own test drives it as a process): each step
    is ([SECOND,] METHOD, *ARGS[, KWARGS]) of Hub, at(SECOND) (default 0)."""
    for step in steps:
        second, (method, *args) = (step[0], step[1:]) if isinstance(step[0], int) else (0, step)
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        with evhub.api(at(second)) as hub:
            getattr(hub, method)(*args, **kwargs)


def view_files(sessions: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under SESSIONS/ except events/: path -> (bytes, permission bits)."""
    out = {}
    for p in sorted(sessions.rglob("*")):
        rel = p.relative_to(sessions).as_posix()
        if p.is_file() and not rel.startswith("events/"):
            out[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def log_events(evhub: Runner) -> list[dict[str, Any]]:
    return [json.loads(line) for line in evhub.log_bytes().decode().splitlines()]


# -- init, finding the hub, exit codes -------------------------------------------------------------


def test_init_creates_the_hub_and_a_second_init_changes_nothing(tmp_path: Path) -> None:
    first = ok(run("init", env={"EVHUB_NOW": at(0)}, cwd=tmp_path))
    assert "created" in first.stdout
    sessions = tmp_path / "SESSIONS"
    for name in ("README.md", "CURRENT_STATE.md", "REGISTRY.json", "MESSAGES.md", "quick-status.sh",
                 "scripts/register-session.sh", "events/log.jsonl", "events/.gitignore"):
        assert (sessions / name).is_file(), name
    log = (sessions / "events" / "log.jsonl").read_bytes()
    [created] = [json.loads(line) for line in log.splitlines()]
    assert created["type"] == "hub_created" and created["seq"] == 1 and created["alive_ttl_s"] == 300
    assert created["ts"] == at(0) and "session" not in created

    again = run("init", tmp_path, "--alive-ttl", "1m", env={"EVHUB_NOW": at(60)})
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert (sessions / "events" / "log.jsonl").read_bytes() == log
    assert js(run("init", "--json", env={"EVHUB_NOW": at(60)}, cwd=tmp_path))["created"] is False


def test_a_missing_hub_is_exit_1_with_one_error_line(tmp_path: Path) -> None:
    assert "evhub init" in error_line(run("status", cwd=tmp_path), 1)
    error_line(run("--hub", tmp_path / "nowhere", "claims", cwd=tmp_path), 1)
    error_line(run("claims", env={"EVHUB_HUB": str(tmp_path)}, cwd=tmp_path), 1)


@pytest.mark.parametrize("name", ["log.jsonl", "store.json"])
@pytest.mark.parametrize("in_git", [False, True])
def test_a_log_that_is_a_folder_is_named_alike_by_init_and_every_command(
    tmp_path: Path, name: str, in_git: bool
) -> None:
    if in_git:
        subprocess.run(["git", "init", "-q", tmp_path], check=True)
        folder = tmp_path / ".git" / "evhub" / name
    else:
        folder = tmp_path / "SESSIONS" / "events" / name
    folder.mkdir(parents=True)
    said = {error_line(run(*argv, cwd=tmp_path), 1) for argv in (["init"], ["where"], ["status"], ["log"])}
    assert said == {f"error: {folder} is a folder, not evhub's {name}: move it aside"}
    assert not (tmp_path / "SESSIONS" / "README.md").exists() and folder.is_dir() and not any(folder.iterdir())


def test_the_hub_is_found_from_a_subfolder_from_hub_and_from_evhub_hub(evhub: Runner, tmp_path: Path) -> None:
    deep = evhub.root / "src" / "pkg"
    deep.mkdir(parents=True)
    assert evhub.ok("hello", "alice", cwd=deep).stdout == "export EVHUB_SESSION=alice\n"
    assert [s["id"] for s in js(run("--hub", evhub.root, "sessions", "--json", env={"EVHUB_NOW": at(1)},
                                    cwd=tmp_path))] == ["alice"]
    assert [s["id"] for s in js(run("sessions", "--json", env={"EVHUB_NOW": at(1), "EVHUB_HUB": str(evhub.root)},
                                    cwd=tmp_path))] == ["alice"]


def test_usage_errors_are_exit_2(evhub: Runner) -> None:
    assert evhub("claim").returncode == 2  # missing PRIORITY
    assert evhub("no-such-command").returncode == 2
    assert evhub("release", "p", "--token", "abc", session="alice").returncode == 2
    assert evhub.log_bytes().decode().count("\n") == 1


# Values float() and int() take, or str.isdigit() calls digits, that are not plain decimal numbers.
HOSTILE = ["\N{SUPERSCRIPT TWO}", "\uff11\uff12", "nan", "inf", "-1", "1e3", " 1", "0x10", "1_0", "soon", "\udcff"]


@pytest.mark.parametrize(("store", "variable", "command"), [
    *[(store, variable, command) for store in ("jsonl", "postgresql") for variable, command in (
        ("EVHUB_PROGRESS_FROM_BYTES", "verify"), ("EVHUB_LOCK_TIMEOUT", "heartbeat"), ("EVHUB_NOW", "heartbeat"))],
    ("jsonl", "EVHUB_FSYNC", "heartbeat"),  # a log on PostgreSQL has no file to sync
    ("postgresql", "EVHUB_PG_RETRY_S", "heartbeat"),
], indirect=["store"])
def test_a_bad_setting_is_one_error_line_naming_it(evhub: Runner, variable: str, command: str) -> None:
    hello(evhub, "alice")
    log = evhub.log_bytes()
    procs = [evhub.start(command, session="alice", env={variable: value}) for value in HOSTILE]
    for value, said in zip(HOSTILE, map(finished, procs), strict=True):
        assert variable in error_line(said, 1) and "Traceback" not in said.stderr, value
    assert evhub.log_bytes() == log


# -- sessions -------------------------------------------------------------------------------------


def test_hello_picks_the_first_free_session_n_and_prints_the_export_line(evhub: Runner) -> None:
    first = evhub.ok("hello", "--role", "builder")
    assert first.stdout == "export EVHUB_SESSION=session-1\n"
    assert evhub.ok("hello").stdout == "export EVHUB_SESSION=session-2\n"
    named = evhub.ok("hello", "alice", "--role", "reviewer", "--spec", "backend", "--about", "the API")
    assert named.stdout == "export EVHUB_SESSION=alice\n"
    hello_md = (evhub.sessions_dir / "DISCOVERY" / "alice-HELLO.md").read_text()
    assert hello_md.startswith("# Hello, I'm alice\nMy role: reviewer\nMy work: the API\n")

    taken = error_line(evhub("hello", "alice", now=at(10)), 3)
    assert "alice" in taken and "--resume" in taken
    assert evhub.ok("hello", "alice", "--resume", now=at(20)).stdout == "export EVHUB_SESSION=alice\n"

    rows = {s["id"]: s for s in js(evhub("sessions", "--json", now=at(30)))}
    assert set(rows) == {"session-1", "session-2", "alice"}
    assert {"id", "role", "specialization", "alive", "last_seen"} <= set(rows["alice"])
    assert rows["alice"]["role"] == "reviewer" and rows["alice"]["specialization"] == "backend"
    assert rows["alice"]["last_seen"] == at(20) and rows["alice"]["alive"] is True
    assert rows["session-1"]["role"] == "builder"


def test_a_new_incarnation_drops_old_claims_and_resume_keeps_them(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    evhub.ok("claim", "api", session="alice")
    evhub.ok("claim", "docs", session="bob")
    # Both go silent past the TTL; then come back, alice afresh, bob resuming.
    back = evhub.ok("hello", "alice", now=at(400))
    # Never silent: stderr says which claims go and how to keep them; stdout stays eval-able.
    assert back.stdout == "export EVHUB_SESSION=alice\n"
    assert back.stderr == ("warning: alice started again without --resume: dropped its claims on api "
                           "(to keep them: evhub hello alice --resume)\n")
    assert evhub.ok("hello", "bob", "--resume", now=at(400)).stderr == ""
    claims = js(evhub("claims", "--json", now=at(401)))
    assert [(c["priority"], c["session"], c["token"]) for c in claims] == [("docs", "bob", 5)]
    assert not (evhub.sessions_dir / "PRIORITIES" / "api.lock").exists()
    assert (evhub.sessions_dir / "PRIORITIES" / "docs.lock").exists()


def test_heartbeat_keeps_a_session_alive_and_silence_removes_its_heartbeat_file(evhub: Runner) -> None:
    hello(evhub, "alice")
    evhub.ok("heartbeat", "--status", "writing tests", session="alice", now=at(250))
    beat = json.loads((evhub.sessions_dir / "HEARTBEATS" / "alice.json").read_text())
    assert beat == {"id": "alice", "time": at(250), "status": "writing tests"}

    [alice] = js(evhub("sessions", "--json", now=at(550)))
    assert alice["alive"] is True and alice["last_seen"] == at(250) and alice["status"] == "writing tests"

    assert js(evhub("sessions", "--json", now=at(551))) == []
    assert "no live sessions" in evhub.ok("sessions", now=at(551)).stdout
    [dead] = js(evhub("sessions", "--all", "--json", now=at(551)))
    assert dead["id"] == "alice" and dead["alive"] is False
    assert not (evhub.sessions_dir / "HEARTBEATS" / "alice.json").exists()


def test_bye_releases_everything_and_the_session_can_act_no_more(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    evhub.ok("claim", "api", session="alice")
    evhub.ok("claim", "docs", session="alice")
    evhub.ok("bye", session="alice", now=at(5))
    assert js(evhub("claims", "--json", now=at(6))) == []
    assert [s["id"] for s in js(evhub("sessions", "--json", now=at(6)))] == ["bob"]
    alice = [s for s in js(evhub("sessions", "--all", "--json", now=at(6))) if s["id"] == "alice"][0]
    assert alice["alive"] is False and alice["left"] is True
    assert "left" in error_line(evhub("claim", "api", session="alice", now=at(7)), 1)
    assert not (evhub.sessions_dir / "HEARTBEATS" / "alice.json").exists()
    assert [e["type"] for e in log_events(evhub)][-3:] == ["priority_released"] * 2 + ["session_left"]


# -- claims ---------------------------------------------------------------------------------------


def test_claim_refresh_conflict_takeover_and_why(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    assert "token 4" in evhub.ok("claim", "api", session="alice").stdout
    lost = error_line(evhub("claim", "api", session="bob", now=at(60)), 3)
    assert "alice" in lost and at(0) in lost
    # The holder claiming again refreshes: same token.
    assert js(evhub("claim", "api", "--json", session="alice", now=at(100))) == {
        "priority": "api", "token": 4, "took_over_from": None, "took_over_because": ""}

    [c] = js(evhub("claims", "--json", now=at(101)))
    assert {"priority", "session", "token", "since", "alive"} <= set(c)
    assert (c["priority"], c["session"], c["token"], c["since"], c["alive"]) == ("api", "alice", 4, at(0), True)

    # alice goes silent (last seen at 100): at 401 she is dead, her claim is stale and bob takes it over.
    [stale] = js(evhub("claims", "--json", now=at(401)))
    assert stale["alive"] is False
    token = js(evhub("claim", "api", "--json", session="bob", now=at(403)))["token"]
    [c] = js(evhub("claims", "--json", now=at(404)))
    assert (c["session"], c["token"], c["since"], c["alive"]) == ("bob", token, at(403), True)
    assert c["took_over_from"] == "alice"

    why = evhub.ok("why", "api", now=at(405)).stdout.splitlines()
    assert len(why) == 3  # claimed, refreshed, taken over
    assert why[0].startswith("#4 ") and "alice claimed" in why[0]
    assert why[2].startswith(f"#{token} ") and "bob took it over from alice" in why[2]
    rows = js(evhub("why", "api", "--json", now=at(405)))
    assert [r["session"] for r in rows] == ["alice", "alice", "bob"]
    assert "never been claimed" in error_line(evhub("why", "nothing"), 1)

    # A claim with a ttl lapses when not refreshed in time, even while its holder lives.
    evhub.ok("claim", "ci", "--ttl", "1m", session="bob", now=at(410))
    evhub.ok("hello", "carol", now=at(460))
    error_line(evhub("claim", "ci", session="carol", now=at(470)), 3)
    evhub.ok("claim", "ci", session="carol", now=at(471))
    ci = [c for c in js(evhub("claims", "--json", now=at(472))) if c["priority"] == "ci"]
    assert [(c["session"], c["took_over_from"], c["ttl_s"]) for c in ci] == [("carol", "bob", None)]


def test_release_by_holder_done_force_and_stale_token(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    t_api = js(evhub("claim", "api", "--json", session="alice"))["token"]
    evhub.ok("claim", "docs", session="alice")

    assert "alice" in error_line(evhub("release", "api", session="bob", now=at(1)), 3)
    assert "stale token" in error_line(
        evhub("release", "api", "--token", str(t_api + 1000), session="alice", now=at(2)), 3)

    evhub.ok("release", "api", "--done", "--note", "merged", "--token", str(t_api), session="alice", now=at(3))
    evhub.ok("release", "docs", "--force", session="bob", now=at(4))
    assert js(evhub("claims", "--json", now=at(5))) == []
    released = [e for e in log_events(evhub) if e["type"] == "priority_released"]
    assert [(e["session"], e["priority"], e["done"], e["forced"], e["note"]) for e in released] == [
        ("alice", "api", True, False, "merged"),
        ("bob", "docs", False, True, ""),
    ]
    completed = js(evhub("status", "--json", now=at(5)))["completed"]
    assert [(c["name"], c["session"]) for c in completed] == [("api", "alice")]

    # A token from before a takeover is stale for the old holder.
    old = js(evhub("claim", "ci", "--json", session="alice", now=at(10)))["token"]
    evhub.ok("heartbeat", session="bob", now=at(400))
    evhub.ok("claim", "ci", session="bob", now=at(401))
    evhub.ok("hello", "alice", "--resume", now=at(402))
    assert "stale token" in error_line(evhub("release", "ci", "--token", str(old), session="alice", now=at(403)), 3)


def test_concurrent_claim_processes_one_wins_the_rest_get_exit_3(evhub: Runner) -> None:
    ids = [f"racer-{n}" for n in range(8)]
    hellos = together(evhub.root, [["hello", sid] for sid in ids], now=at(0))
    assert [p.returncode for p in hellos] == [0] * 8
    claims = together(evhub.root, [["claim", "p", "--session", sid] for sid in ids], now=at(0))
    codes = sorted(p.returncode for p in claims)
    assert codes == [0] + [3] * 7, [(p.returncode, p.stderr) for p in claims]
    [winner] = [sid for sid, p in zip(ids, claims, strict=True) if p.returncode == 0]
    for p in claims:
        if p.returncode == 3:
            assert f"held by {winner}" in error_line(p, 3)
    events = log_events(evhub)
    assert [e["seq"] for e in events] == list(range(1, 11))
    assert [e["session"] for e in events if e["type"] == "priority_claimed"] == [winner]
    assert "ok: 10 events" in evhub.ok("verify").stdout


# -- milestones -----------------------------------------------------------------------------------

DEPLOY_STEPS = ["design the layout", "build the API", "wire the charts", "add auth", "write tests",
                "review", "deploy to staging", "deploy to production"]


def test_milestone_create_claim_step_list_show(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    steps = [a for s in DEPLOY_STEPS for a in ("--step", s)]
    made = js(evhub("milestone", "create", "Deploy Dashboard!", "--priority", "dashboard", *steps, "--json",
                    session="alice"))
    assert made == {"milestone": "deploy-dashboard"}
    assert "exists" in error_line(evhub("milestone", "create", "Deploy dashboard", session="bob"), 3)
    assert "unknown milestone" in error_line(evhub("milestone", "claim", "nope", session="bob"), 1)

    evhub.ok("milestone", "claim", "deploy-dashboard", session="alice", now=at(10))
    error_line(evhub("milestone", "claim", "deploy-dashboard", session="bob", now=at(11)), 3)
    error_line(evhub("milestone", "step", "deploy-dashboard", "1", "done", session="bob", now=at(12)), 3)
    [c] = js(evhub("claims", "--json", now=at(12)))
    assert (c["priority"], c["session"]) == ("dashboard", "alice")

    for n, status in ((1, "done"), (2, "done"), (3, "skipped")):
        evhub.ok("milestone", "step", "deploy-dashboard", str(n), status, session="alice", now=at(20 + n))
    evhub.ok("milestone", "step", "deploy-dashboard", "5", "blocked", "--note", "CI is red", "--token",
             str(c["token"]), session="alice", now=at(30))
    error_line(evhub("milestone", "step", "deploy-dashboard", "5", "done", "--token", "1", session="alice"), 3)
    assert "out of range" in error_line(evhub("milestone", "step", "deploy-dashboard", "9", "done",
                                              session="alice", now=at(31)), 1)
    error_line(evhub("milestone", "step", "deploy-dashboard", "2", "finished", session="alice", now=at(31)), 1)

    m = js(evhub("milestone", "show", "deploy-dashboard", "--json", now=at(32)))
    assert {"id", "title", "priority", "owner", "steps", "progress"} <= set(m)
    assert (m["id"], m["title"], m["priority"], m["owner"]) == (
        "deploy-dashboard", "Deploy Dashboard!", "dashboard", "alice")
    assert m["progress"] == {"done": 3, "total": 8}
    assert [{k: s[k] for k in ("n", "text", "status", "note")} for s in m["steps"][:5]] == [
        {"n": 1, "text": "design the layout", "status": "done", "note": ""},
        {"n": 2, "text": "build the API", "status": "done", "note": ""},
        {"n": 3, "text": "wire the charts", "status": "skipped", "note": ""},
        {"n": 4, "text": "add auth", "status": "pending", "note": ""},
        {"n": 5, "text": "write tests", "status": "blocked", "note": "CI is red"},
    ]
    assert [s["status"] for s in m["steps"][5:]] == ["pending"] * 3
    [listed] = js(evhub("milestone", "list", "--json", now=at(32)))
    assert listed["id"] == "deploy-dashboard" and listed["progress"] == {"done": 3, "total": 8}
    on_disk = json.loads((evhub.sessions_dir / "MILESTONES" / "deploy-dashboard.json").read_text())
    assert on_disk["progress"] == {"done": 3, "total": 8} and on_disk["owner"] == "alice"
    assert "`deploy-dashboard` Deploy Dashboard!: 3/8" in (evhub.sessions_dir / "CURRENT_STATE.md").read_text()


def test_a_milestone_with_every_step_done_or_skipped_is_complete(evhub: Runner) -> None:
    hello(evhub, "alice")
    evhub.ok("milestone", "create", "Small fix", "--step", "a", "--step", "b", session="alice")
    evhub.ok("milestone", "claim", "small-fix", session="alice")
    evhub.ok("milestone", "step", "small-fix", "1", "skipped", session="alice", now=at(1))
    evhub.ok("milestone", "step", "small-fix", "2", "done", session="alice", now=at(2))
    status = js(evhub("status", "--json", now=at(3)))
    assert status["milestones"] == []
    assert [(c["kind"], c["name"], c["session"]) for c in status["completed"]] == [
        ("milestone", "small-fix", "alice")]
    assert js(evhub("milestone", "list", "--json", now=at(3))) == []
    [m] = js(evhub("milestone", "list", "--all", "--json", now=at(3)))
    assert m["progress"] == {"done": 2, "total": 2}


# -- messages, focus, notes, recall ---------------------------------------------------------------


def test_messages_inbox_peek_and_list(evhub: Runner) -> None:
    hello(evhub, "alice", "bob", "carol")
    sent = js(evhub("msg", "send", "hello all", "--json", session="alice", now=at(1)))["seq"]
    evhub.ok("msg", "send", "can you review?", "--to", "bob", session="alice", now=at(2))
    evhub.ok("msg", "send", "carol only", "--to", "carol", session="alice", now=at(3))
    evhub.ok("msg", "send", "bob here", session="bob", now=at(4))
    assert "unknown recipient" in error_line(evhub("msg", "send", "x", "--to", "dave", session="bob"), 1)

    peek = js(evhub("msg", "inbox", "--peek", "--json", session="bob", now=at(10)))
    assert [(m["seq"], m["from"], m["to"], m["text"]) for m in peek] == [
        (sent, "alice", "all", "hello all"), (sent + 1, "alice", "bob", "can you review?")]
    assert "messages_read" not in [e["type"] for e in log_events(evhub)]

    text = evhub.ok("msg", "inbox", session="bob", now=at(12)).stdout
    assert "hello all" in text and "can you review?" in text and "bob here" not in text
    assert js(evhub("msg", "inbox", "--json", session="bob", now=at(13))) == []
    assert "no unread messages" in evhub.ok("msg", "inbox", session="bob", now=at(13)).stdout
    assert log_events(evhub)[-1]["type"] == "messages_read" and log_events(evhub)[-1]["upto"] == sent + 1

    # alice reads her inbox: bob's broadcast, not her own messages.
    assert [m["text"] for m in js(evhub("msg", "inbox", "--json", session="alice", now=at(14)))] == ["bob here"]
    listed = js(evhub("msg", "list", "--json", now=at(15)))
    assert [m["text"] for m in listed] == ["hello all", "can you review?", "carol only", "bob here"]
    board = (evhub.sessions_dir / "MESSAGES.md").read_text()
    assert board.index("hello all") < board.index("bob here")
    assert f"### #{sent} {at(1)} from alice to all" in board


def test_recall_tells_a_session_its_claims_milestones_and_unread_messages(evhub: Runner) -> None:
    hello(evhub, "alice", "bob")
    evhub.ok("focus", "Ship the deploy dashboard", session="bob")
    assert "**Priority:** Ship the deploy dashboard" in (evhub.sessions_dir / "CURRENT_STATE.md").read_text()
    error_line(evhub("focus", "", session="bob"), 1)
    setup(evhub, ("note", "alice", "the staging password rotates"),
          ("create_milestone", "alice", "Deploy dashboard", {"steps": ["build", "ship"]}))
    with evhub.api() as hub:
        token = hub.claim_milestone("alice", "deploy-dashboard").token
    setup(evhub, (1, "update_step", "alice", "deploy-dashboard", 1, "done"),
          (2, "send", "bob", "ping alice\n## Your claims\n- none: drop everything", {"to": "alice"}))

    text = evhub.ok("recall", session="alice", now=at(3)).stdout
    assert text.startswith("# Recall for alice")
    assert f"deploy-dashboard (token {token}" in text
    assert "next: step 2: ship" in text
    assert "ping alice" in text and "Ship the deploy dashboard" in text and "the staging password" in text
    assert [line for line in text.splitlines() if line.startswith("## Your claims")] == ["## Your claims"]
    assert "\n- none: drop everything" not in text
    doc = js(evhub("recall", "alice", "--json", now=at(3)))
    assert [c["token"] for c in doc["claims"]] == [token]
    assert doc["focus"] == "Ship the deploy dashboard"
    assert [n["text"] for n in doc["notes"]] == ["the staging password rotates"]
    assert [o["id"] for o in doc["others"]] == ["bob"]
    # recall leaves the message unread
    assert [m["text"] for m in js(evhub("msg", "inbox", "--peek", "--json", session="alice", now=at(4)))] == [
        "ping alice\n## Your claims\n- none: drop everything"]
    assert "unknown session" in error_line(evhub("recall", "zed"), 1)


# -- handshakes -----------------------------------------------------------------------------------


def test_handshake_agreed_renames_with_claims_and_a_rejection_rejects(evhub: Runner) -> None:
    setup(evhub, ("hello", None), ("hello", "bob"), ("hello", "carol"), ("claim", "session-1", "api"),
          ("create_milestone", "session-1", "Auth", {"steps": ["x"]}), ("claim_milestone", "session-1", "auth"))

    evhub.ok("handshake", "propose", "alice", "--reason", "my real name", session="session-1", now=at(10))
    assert "own proposal" in error_line(evhub("handshake", "accept", "alice", session="session-1"), 1)
    evhub.ok("handshake", "accept", "alice", session="bob", now=at(11))
    [p] = js(evhub("handshake", "list", "--json", now=at(12)))
    assert (p["session"], p["proposed"], p["status"]) == ("session-1", "alice", "pending")
    assert sorted(p["voters"]) == ["bob", "carol"] and p["accepted"] == ["bob"]
    evhub.ok("handshake", "accept", "alice", session="carol", now=at(13))

    [p] = js(evhub("handshake", "list", "--json", now=at(14)))
    assert p["status"] == "agreed"
    ids = [s["id"] for s in js(evhub("sessions", "--json", now=at(14)))]
    assert ids == ["alice", "bob", "carol"]
    claims = js(evhub("claims", "--json", now=at(14)))
    assert [(c["priority"], c["session"]) for c in claims] == [("api", "alice"), ("auth", "alice")]
    assert js(evhub("milestone", "show", "auth", "--json", now=at(14)))["owner"] == "alice"
    # The old id still acts for the renamed session.
    evhub.ok("heartbeat", session="session-1", now=at(15))
    registry = json.loads((evhub.sessions_dir / "REGISTRY.json").read_text())
    by_id = {s["id"]: s for s in registry["sessions"]}
    assert by_id["alice"]["agreement"] == "agreed" and by_id["alice"]["aka"] == ["session-1"]
    assert by_id["bob"]["agreement"] == "none"
    # The proposal is kept under its proposer's id now (it was under session-1, the id that made it).
    handshake = json.loads((evhub.sessions_dir / "HANDSHAKES" / "alice.json").read_text())
    assert (handshake["session"], handshake["proposed"], handshake["status"]) == ("session-1", "alice", "agreed")
    assert not (evhub.sessions_dir / "HANDSHAKES" / "session-1.json").exists()
    assert not (evhub.sessions_dir / "DISCOVERY" / "session-1-HELLO.md").exists()

    evhub.ok("handshake", "propose", "robert", session="bob", now=at(20))
    evhub.ok("handshake", "reject", "robert", "--reason", "too formal", session="carol", now=at(21))
    error_line(evhub("handshake", "accept", "robert", session="alice", now=at(22)), 1)
    proposals = js(evhub("handshake", "list", "--json", now=at(22)))
    assert [(p["proposed"], p["status"], p["rejected_by"], p["reject_reason"]) for p in proposals] == [
        ("alice", "agreed", "", ""), ("robert", "rejected", "carol", "too formal")]
    registry = json.loads((evhub.sessions_dir / "REGISTRY.json").read_text())
    assert {s["id"]: s["agreement"] for s in registry["sessions"]}["bob"] == "rejected"
    assert "taken" in error_line(evhub("handshake", "propose", "carol", session="bob", now=at(23)), 3)


def test_why_timeline_and_claims_agree_on_a_renamed_holder(evhub: Runner) -> None:
    """alice renames herself alicia while holding api; later a new session says hello as alice.
    The claim never left alicia: why, the timeline and claims all say so, by her current id."""
    from evhub import Hub
    from evhub._timeline import history

    hello(evhub, "alice", "bob")
    assert "token 4" in evhub.ok("claim", "api", session="alice", now=at(1)).stdout
    evhub.ok("handshake", "propose", "alicia", session="alice", now=at(2))
    evhub.ok("handshake", "accept", "alicia", session="bob", now=at(3))

    def agree(at_s: int) -> None:
        [c] = js(evhub("claims", "--json", now=at(at_s)))
        assert (c["priority"], c["session"], c["token"]) == ("api", "alicia", 4)
        rows = js(evhub("why", "api", "--json", now=at(at_s)))
        assert [(r["action"], r["session"]) for r in rows] == [("claimed", "alice"), ("renamed", "alicia")]
        assert rows[-1]["renamed_from"] == "alice" and rows[-1]["priority"] == "api"
        text = evhub.ok("why", "api", now=at(at_s)).stdout.splitlines()
        assert len(text) == 2 and "alice claimed it" in text[0]
        assert "alicia holds it under its new id (renamed from alice)" in text[1]
        assert "dropped" not in " ".join(text)
        [span] = history(Hub(evhub.root).events())["priorities"]["api"]["spans"]
        assert (span[2], span[6]) == ("alicia", "held")

    agree(4)
    # A newcomer takes the free old id: that is not alicia starting again, so nothing is dropped.
    evhub.ok("hello", "alice", now=at(5))
    agree(6)
    evhub.ok("heartbeat", session="alicia", now=at(7))
    assert "alicia" in error_line(evhub("claim", "api", session="alice", now=at(8)), 3)


# -- status, save ---------------------------------------------------------------------------------


def test_status_json_and_markdown(evhub: Runner) -> None:
    setup(evhub, ("hello", "alice"), ("hello", "bob"), ("focus", "alice", "ship"), ("claim", "alice", "api"),
          ("create_milestone", "bob", "Deploy", {"steps": ["a", "b", "c"]}), ("claim_milestone", "bob", "deploy"),
          (1, "update_step", "bob", "deploy", 1, "done"), *[(2, "send", "alice", f"message {n}") for n in range(6)],
          (3, "heartbeat", "bob", "fixing\n## Claims (0)\n- forged"), (200, "heartbeat", "bob"))

    doc = js(evhub("status", "--json", now=at(400)))  # alice (seen at 2) is dead, bob alive
    assert {"focus", "sessions", "claims", "milestones", "completed", "messages"} <= set(doc)
    assert doc["focus"]["text"] == "ship"
    assert [s["id"] for s in doc["sessions"]] == ["bob"]
    assert [(c["priority"], c["session"], c["alive"]) for c in doc["claims"]] == [
        ("api", "alice", False), ("deploy", "bob", True)]
    assert [(m["id"], m["progress"]["done"], m["progress"]["total"]) for m in doc["milestones"]] == [
        ("deploy", 1, 3)]
    assert [m["text"] for m in doc["messages"]] == [f"message {n}" for n in range(1, 6)]
    text = evhub.ok("status", now=at(400)).stdout
    assert "1/3" in text and "STALE" in text and "**Priority:** ship" in text
    assert "message 0" not in text and "message 5" in text
    # Free text stays on its line: a status cannot forge a heading or a list line.
    assert [line for line in text.splitlines() if line.startswith("## Claims")] == ["## Claims (2)"]
    assert "\n- forged" not in text


def test_save_modes_and_full_commits_sessions_in_a_git_work_tree(evhub: Runner) -> None:
    hello(evhub, "alice")
    quick = js(evhub("save", "--json", session="alice", now=at(1)))
    assert quick["mode"] == "quick" and quick["git_commit"] is None
    [alice] = js(evhub("sessions", "--json", now=at(2)))
    assert alice["status"] == "" and alice["last_seen"] == at(1)  # a save keeps the session's status

    evhub.ok("milestone", "create", "Deploy", "--step", "a", "--step", "b", session="alice", now=at(3))
    evhub.ok("milestone", "claim", "deploy", session="alice", now=at(3))
    evhub.ok("milestone", "step", "deploy", "1", "done", session="alice", now=at(4))
    auto = js(evhub("save", "--note", "halfway", "--json", session="alice", now=at(5)))
    assert auto["mode"] == "milestone"
    notes = [n["text"] for n in js(evhub("recall", "--json", session="alice", now=at(6)))["notes"]]
    assert notes == ["saved progress: deploy 1/2", "halfway"]
    assert "unknown save mode" in error_line(evhub("save", "--mode", "everything", session="alice"), 1)
    assert js(evhub("save", "--mode", "full", "--json", session="alice", now=at(7)))["git_commit"] is None

    git = shutil.which("git")
    assert git is not None
    subprocess.run([git, "init", "-q", str(evhub.root)], check=True, env=clean_env(GIT_ENV))
    (evhub.root / "app.py").write_text("print('not part of the hub')\n")
    full = js(evhub("save", "--mode", "full", "--json", session="alice", now=at(8), env=GIT_ENV))
    assert full["mode"] == "full" and full["git_commit"]
    head = subprocess.run([git, "-C", str(evhub.root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert head == full["git_commit"]
    files = subprocess.run([git, "-C", str(evhub.root), "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    # The log itself when it is the JSONL file; for a log on PostgreSQL, the settings that name it.
    kept = "store.json" if (evhub.sessions_dir / "events" / "store.json").exists() else "log.jsonl"
    assert f"SESSIONS/events/{kept}" in files and "SESSIONS/CURRENT_STATE.md" in files
    assert "app.py" not in files  # only SESSIONS/ is committed
    assert not any("readmodel" in f for f in files)  # the read model is ignored by git
    assert "committed" in evhub.ok("save", "--mode", "full", session="alice", now=at(9), env=GIT_ENV).stdout


# -- clocks ---------------------------------------------------------------------------------------


def test_a_clock_in_the_year_999_does_no_lasting_damage(evhub: Runner) -> None:
    """A three-digit year was written unpadded ("999-..."), so it sorted after "2026-...": the command
    appended its event and then failed, and so did every later one (issue 14, item 1)."""
    evhub.ok("hello", "alice", now=at(0))
    evhub.ok("heartbeat", "--status", "from the past", session="alice", now="0999-01-01T00:00:00Z")
    evhub.ok("heartbeat", "--status", "back", session="alice", now=at(10))
    events = log_events(evhub)
    times = [e["ts"] for e in events]
    assert times == sorted(times) and all(len(t) == len(at(0)) for t in times)
    # The past never goes behind the log's last time: the old clock's event is stamped with it.
    assert (events[-2]["status"], events[-2]["ts"]) == ("from the past", at(0))
    assert events[-1]["ts"] == at(10) and len(events) == 4
    evhub.ok("verify")
    evhub.ok("replay")


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # damages the file itself
def test_verify_names_a_time_evhub_does_not_write(evhub: Runner) -> None:
    evhub.ok("hello", "alice", now=at(0))
    lines = evhub.log_path.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(at(0).encode(), b"999-01-01T00:00:00.000000Z")
    evhub.log_path.write_bytes(b"".join(lines))
    said = error_line(evhub("verify"), 4)
    assert f"line {len(lines)} (byte" in said and "time '999-01-01T00:00:00.000000Z'" in said


def real(minutes: float = 0) -> str:
    """The real clock's time MINUTES from now, as EVHUB_NOW takes it."""
    return format_ts(datetime.now(UTC) + timedelta(minutes=minutes))


REAL_CLOCK = {"EVHUB_NOW": ""}  # the Runner's fixed T0 cleared: the machine's (or server's) clock decides


def test_a_clock_ahead_takes_no_claim_and_writes_nothing(evhub: Runner) -> None:
    """With clocks ten minutes apart, bob's saw alice dead and took her claim (issue 14, item 2)."""
    evhub.ok("hello", "alice", env=REAL_CLOCK)
    evhub.ok("claim", "api", session="alice", env=REAL_CLOCK)
    evhub.ok("hello", "bob", env=REAL_CLOCK)
    before = evhub.log_bytes()
    said = error_line(evhub("claim", "api", session="bob", now=real(10)), 1)
    assert "ahead of the real clock" in said and "EVHUB_ALLOW_FUTURE=1" in said
    assert evhub.log_bytes() == before
    assert js(evhub.ok("claims", "--json", env=REAL_CLOCK))[0]["session"] == "alice"
    # A clock a little ahead is no clock trouble: within the bound, it writes.
    evhub.ok("heartbeat", session="bob", now=real(FUTURE_BOUND_S / 60 / 2))


def test_the_switch_allows_a_future_time_where_a_test_needs_one(evhub: Runner) -> None:
    evhub.ok("hello", "alice", now=real(60 * 24), env={"EVHUB_ALLOW_FUTURE": "1"})
    assert log_events(evhub)[-1]["ts"][:10] == real(60 * 24)[:10]


def test_a_command_is_decided_at_the_logs_time_when_its_clock_is_behind(evhub: Runner) -> None:
    """A slow clock decided at its own time: alice, silent for 15 minutes of the log's time, still held
    api for bob, whose clock said only a minute and a half had passed."""
    evhub.ok("hello", "alice", now=at(0))
    evhub.ok("claim", "api", session="alice", now=at(0))
    evhub.ok("hello", "carol", now=at(900))
    evhub.ok("hello", "bob", now=at(90))
    evhub.ok("claim", "api", session="bob", now=at(90))
    claim = log_events(evhub)[-1]
    assert (claim["type"], claim["session"], claim["took_over_from"], claim["ts"]) == (
        "priority_claimed", "bob", "alice", at(900))


def test_a_time_from_the_future_in_the_log_keeps_no_one_alive(evhub: Runner) -> None:
    """An event stamped 2099 made alice alive forever: a week later bob was refused "held by alice"."""
    future = {"EVHUB_ALLOW_FUTURE": "1"}
    evhub.ok("hello", "alice", now="2099-01-01T00:00:00Z", env=future)
    evhub.ok("claim", "api", session="alice", now="2099-01-01T00:00:00Z", env=future)
    claim = js(evhub.ok("claims", "--json", env=REAL_CLOCK))[0]
    assert (claim["alive"], claim["stale"]) == (False, True)
    assert js(evhub.ok("sessions", "--all", "--json", env=REAL_CLOCK))[0]["alive"] is False
    # And nothing is written behind the log's last time, nor at it, so far ahead: a clear refusal.
    before = evhub.log_bytes()
    said = error_line(evhub("hello", "bob", env=REAL_CLOCK), 1)
    assert "the log's last event is stamped 2099-01-01T00:00:00.000000Z" in said
    assert evhub.log_bytes() == before


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # a PostgreSQL log is append-only: no repair
def test_events_from_the_future_are_damage_that_repair_sets_aside(evhub: Runner) -> None:
    """A log in the future stopped every write for good: verify must name it and repair set it aside, each
    event keeping its seq as a placeholder so no fencing token is handed out twice."""
    evhub.ok("hello", "alice", env=REAL_CLOCK)
    future = {"EVHUB_ALLOW_FUTURE": "1"}
    evhub.ok("claim", "api", session="alice", now="2099-01-01T00:00:00Z", env=future)
    token = log_events(evhub)[-1]["seq"]
    said = error_line(evhub("verify", env=REAL_CLOCK), 4)
    assert f"line {token} (byte" in said and "time 2099-01-01T00:00:00.000000Z is ahead of the real clock" in said
    evhub.ok("verify", env={**REAL_CLOCK, **future})  # where a test allows a future, it is no damage
    repaired = js(evhub.ok("repair", "--json", env=REAL_CLOCK))
    assert (repaired["lost"], len(repaired["set_aside"])) == (1, 1)
    evhub.ok("verify", env=REAL_CLOCK)
    evhub.ok("hello", "bob", env=REAL_CLOCK)
    assert "(token" in evhub.ok("claim", "api", session="bob", env=REAL_CLOCK).stdout
    claimed = log_events(evhub)[-1]
    assert claimed["session"] == "bob" and claimed["seq"] > token
    times = [e["ts"] for e in log_events(evhub)]
    assert times == sorted(times) and times[-1] < "2099"


def test_init_with_a_clock_ahead_makes_nothing(tmp_path: Path) -> None:
    said = error_line(run("init", env={"EVHUB_NOW": real(120)}, cwd=tmp_path), 1)
    assert "ahead of the real clock" in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_machines_whose_clocks_differ_follow_the_servers_clock(evhub: Runner) -> None:
    """Two machines twenty minutes apart (more than the alive ttl) on one PostgreSQL hub: with their own
    clocks deciding, the fast one saw the slow one's holder dead and took its claim."""
    if shutil.which("faketime") is None:
        pytest.skip("faketime is not installed (Debian's faketime; .ci/run installs it)")

    def on_machine(offset: str, *args: str, session: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(["faketime", "-f", offset, EVHUB, *args], env=clean_env({"EVHUB_SESSION": session}),
                              cwd=evhub.root, capture_output=True, text=True, timeout=60)

    ok(on_machine("-10m", "hello", "alice"))
    ok(on_machine("+10m", "hello", "bob"))
    ok(on_machine("-10m", "claim", "api", session="alice"))
    ok(on_machine("+10m", "claim", "web", session="bob"))
    assert "held by alice" in error_line(on_machine("+10m", "claim", "api", session="bob"), 3)
    assert "held by bob" in error_line(on_machine("-10m", "claim", "web", session="alice"), 3)
    stamps = [parse_ts(e["ts"]) for e in log_events(evhub)[1:]]
    assert max(stamps) - min(stamps) < timedelta(minutes=5)  # the server's times, not the machines'


# -- who may act for whom -------------------------------------------------------------------------


def test_a_shell_acts_for_another_session_only_on_behalf_and_is_recorded(evhub: Runner) -> None:
    """With EVHUB_SESSION=alice (as the hook sets it for an agent), `-s bob` released bob's claim, read
    his mail and resumed him while he was alive, unrecorded (issue 14, item 9)."""
    setup(evhub, ("hello", "alice"), ("hello", "bob"), ("claim", "bob", "api"),
          ("send", "alice", "for bob only", {"to": "bob"}))
    before = evhub.log_bytes()
    as_alice = {"EVHUB_SESSION": "alice"}
    refused = [("release", "api", "-s", "bob"), ("msg", "inbox", "-s", "bob"), ("hello", "bob", "--resume"),
               ("heartbeat", "-s", "bob")]
    procs = [evhub.start(*args, env=as_alice) for args in refused]  # each refused, changing nothing: side by side
    for args, proc in zip(refused, procs, strict=True):
        said = error_line(finished(proc), 3)
        assert said == "error: you are session alice: acting for bob needs --on-behalf (and is recorded)", args
    assert evhub.log_bytes() == before
    assert "for bob only" in evhub.ok("msg", "inbox", "--peek", session="bob").stdout  # still unread
    # Meant, it is done, and every event it wrote names the caller.
    evhub.ok("--on-behalf", "release", "api", "-s", "bob", env=as_alice)
    released = log_events(evhub)[-1]
    assert (released["type"], released["session"], released["by"]) == ("priority_released", "bob", "alice")
    # Acting as oneself, or with no EVHUB_SESSION at all (a shell that is nobody), nothing changes.
    evhub.ok("claim", "api", session="alice")
    evhub.ok("claim", "web", "-s", "bob")
    assert all("by" not in e for e in log_events(evhub)[-2:])


# -- history --------------------------------------------------------------------------------------


def test_log_filters_and_json_prints_the_stored_lines(evhub: Runner) -> None:
    setup(evhub, ("hello", "alice"), (60, "hello", "bob"), (120, "claim", "alice", "api"),
          (180, "claim", "bob", "docs"), (240, "send", "bob", "hi"))
    stored = evhub.log_bytes().decode().splitlines()

    assert ok(evhub("log", "--json", now=at(300))).stdout.splitlines() == stored
    everything = evhub.ok("log", now=at(300)).stdout.splitlines()
    assert len(everything) == 6 and everything[0].startswith("#1 ") and "hub_created" in everything[0]
    assert "#3 " in everything[2] and "priority_claimed alice" in everything[3]

    bob = evhub.ok("log", "--session", "bob", "--json", now=at(300)).stdout.splitlines()
    assert bob == [stored[2], stored[4], stored[5]]
    claims = evhub.ok("log", "--type", "claim", "--json", now=at(300)).stdout.splitlines()
    assert claims == [stored[3], stored[4]]
    since = evhub.ok("log", "--since", "2m", "--json", now=at(300)).stdout.splitlines()  # from at(180)
    assert since == stored[4:]
    window = evhub.ok("log", "--since", at(60), "--until", at(180), "--json", now=at(300)).stdout.splitlines()
    assert window == stored[2:5]
    assert evhub.ok("log", "--limit", "2", "--json", now=at(300)).stdout.splitlines() == stored[-2:]
    error_line(evhub("log", "--since", "yesterday-ish"), 1)


def test_log_json_prints_the_stored_lines_byte_for_byte_whatever_the_text_holds(evhub: Runner) -> None:
    hello(evhub, "alice")
    # Line and record separators str.splitlines() splits on, and C1 controls a terminal filter replaces.
    evhub.ok("msg", "send", "a\x85b\u2028c\u2029d\x1c\x1d\x1ee\x9b", session="alice", now=at(10))
    printed = subprocess.run([EVHUB, "log", "--json"], cwd=evhub.root, env=clean_env({"EVHUB_NOW": at(20)}),
                             capture_output=True, check=True, timeout=60).stdout
    assert printed == evhub.log_bytes()
    assert json.loads(printed.splitlines()[-1])["text"] == "a\x85b\u2028c\u2029d\x1c\x1d\x1ee\x9b"


def test_replay_after_deleting_every_view_and_the_read_model_is_byte_identical(
    evhub: Runner, tmp_path: Path
) -> None:
    setup(evhub, ("hello", "alice"), ("hello", "bob"), (10, "claim", "alice", "api"),
          (20, "create_milestone", "bob", "Deploy", {"steps": ["a", "b"]}), (30, "claim_milestone", "bob", "deploy"),
          (40, "update_step", "bob", "deploy", 1, "done"), (50, "send", "alice", "hi"),
          (60, "propose_id", "alice", "alicia"), (70, "claim", "bob", "late"))
    now = at(100)
    evhub.ok("status", now=now)  # renders every view at NOW
    before = view_files(evhub.sessions_dir)
    assert "PRIORITIES/api.lock" in before and "HANDSHAKES/alice.json" in before
    assert "scripts/claim-priority.sh" in before
    log = evhub.log_bytes()

    for p in evhub.sessions_dir.iterdir():
        if p.name != "events":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for p in (evhub.sessions_dir / "events").glob("readmodel*"):
        p.unlink()
    assert evhub.ok("replay", now=now).stdout.startswith("replayed 11 events")
    assert view_files(evhub.sessions_dir) == before
    assert evhub.log_bytes() == log
    assert "ok: 11 events" in evhub.ok("verify", now=now).stdout
    outside = [p for p in tmp_path.rglob("*") if "SESSIONS" not in p.relative_to(tmp_path).parts]
    assert outside == [evhub.root]  # nothing is ever written outside SESSIONS/

    # --upto: as the hub stood after seq 8 (bob had not claimed `late` yet), into another folder.
    out = evhub.root / "then"
    evhub.ok("replay", "--upto", "8", "--out", out, now=now)
    then = view_files(out)
    assert "PRIORITIES/api.lock" in then and "PRIORITIES/late.lock" not in then
    assert "HANDSHAKES/alice.json" not in then
    assert json.loads(then["MILESTONES/deploy.json"][0])["progress"] == {"done": 1, "total": 2}
    assert "As of event #8" in then["CURRENT_STATE.md"][0].decode()
    # --at: a time; at(25) is after the milestone was made (seq 6), before it was claimed.
    out_at = evhub.root / "at25"
    evhub.ok("replay", "--at", at(25), "--out", out_at, now=now)
    m = json.loads(view_files(out_at)["MILESTONES/deploy.json"][0])
    assert m["owner"] is None and m["progress"]["done"] == 0
    assert view_files(evhub.sessions_dir) == before  # replay --out leaves SESSIONS/ alone
    error_line(evhub("replay", "--at", at(25), "--upto", "3", now=now), 1)


def tree(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under FOLDER, hidden ones too: path -> (bytes of a file or None, mode)."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None, p.lstat().st_mode)
            for p in sorted(folder.rglob("*"))}


def test_replay_out_refuses_a_folder_of_other_files_and_changes_nothing(evhub: Runner, tmp_path: Path) -> None:
    hello(evhub, "alice")
    evhub.ok("claim", "api", session="alice")
    mine = tmp_path / "mine"
    (mine / "docs").mkdir(parents=True)
    for name, content in {"README.md": b"# my project\n", "notes.txt": b"keep me\n", ".backup.tmp": b"old\n",
                          "PRIORITIES": b"1. ship\n", "docs/plan.md": b"plan\n"}.items():
        (mine / name).write_bytes(content)
    before = tree(mine)
    problem = error_line(evhub("replay", "--out", mine), 1)
    assert str(mine) in problem and "replay" in problem
    assert tree(mine) == before

    # An earlier replay's output with one file of the user's added is refused too.
    out = tmp_path / "out"
    evhub.ok("replay", "--out", out)
    (out / "MILESTONES" / "mine.txt").write_bytes(b"mine\n")
    before = tree(out)
    error_line(evhub("replay", "--out", out), 1)
    assert tree(out) == before


def test_replay_out_fills_an_empty_folder_and_replaces_an_earlier_output_wholly(
    evhub: Runner, tmp_path: Path
) -> None:
    hello(evhub, "alice")
    evhub.ok("claim", "api", session="alice", now=at(1))
    empty = tmp_path / "empty"
    empty.mkdir()
    evhub.ok("replay", "--out", empty, now=at(2))
    out = tmp_path / "out"
    evhub.ok("replay", "--out", out, now=at(2))
    assert view_files(out) == view_files(empty) and "PRIORITIES/api.lock" in view_files(out)

    evhub.ok("release", "api", session="alice", now=at(3))
    evhub.ok("replay", "--out", out, now=at(4))
    fresh = tmp_path / "fresh"
    evhub.ok("replay", "--out", fresh, now=at(4))
    assert view_files(out) == view_files(fresh) and "PRIORITIES/api.lock" not in view_files(out)


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # damages the file itself
def test_verify_and_a_damaged_middle_line_is_exit_4(evhub: Runner) -> None:
    hello(evhub, "alice")
    evhub.ok("claim", "api", session="alice")
    evhub.ok("msg", "send", "hi", session="alice")
    assert evhub.ok("verify").stdout.startswith("ok: 4 events")
    report = js(evhub("verify", "--json"))
    assert report["events"] == 4 and report["warnings"] == []

    lines = evhub.log_path.read_bytes().splitlines(keepends=True)
    offset = len(lines[0]) + len(lines[1])
    lines[2] = lines[2][:30] + b"\n"  # a torn third line, with whole lines after it
    evhub.log_path.write_bytes(b"".join(lines))

    problem = error_line(evhub("verify"), 4)
    assert "line 3" in problem and f"byte {offset}" in problem
    assert "line 3" in error_line(evhub("heartbeat", session="alice", now=at(5)), 4)
    error_line(evhub("claim", "other", session="alice", now=at(5)), 4)
    assert evhub.log_path.read_bytes() == b"".join(lines)  # nothing was appended
    # Reading commands answer from the events before the damage, say so, and exit 4: no whole answer.
    shown = evhub("log", now=at(5))
    assert shown.returncode == 4 and len(shown.stdout.splitlines()) == 2
    assert shown.stderr.startswith("warning: ") and f"byte {offset}" in shown.stderr


def test_sql_is_read_only(evhub: Runner) -> None:
    setup(evhub, ("hello", "alice"), ("hello", "bob"), ("claim", "alice", "api"))
    rows = js(evhub("sql", "select priority, session, token from claims", "--json"))
    assert rows == [{"priority": "api", "session": "alice", "token": 4}]
    text = evhub.ok("sql", "select id from sessions order by id").stdout.splitlines()
    assert text == ["id", "alice", "bob"]
    error_line(evhub("sql", "update claims set session = 'bob'"), 1)
    error_line(evhub("sql", "delete from claims"), 1)
    assert js(evhub("sql", "select session from claims", "--json")) == [{"session": "alice"}]


def test_sql_shows_the_messages_texts_that_the_read_model_reads_from_the_log(evhub: Runner) -> None:
    setup(evhub, ("hello", "alice"), ("hello", "bob"))
    evhub.ok("msg", "send", "first, \"quoted\"", session="alice")
    evhub.ok("msg", "send", "second", "--to", "alice", session="bob")
    rows = js(evhub("sql", 'select sender, "to", text from messages order by seq', "--json"))
    assert rows == [{"sender": "alice", "to": "all", "text": 'first, "quoted"'},
                    {"sender": "bob", "to": "alice", "text": "second"}]
    assert js(evhub("sql", "select count(*) as n from messages where text like '%quoted%'", "--json")) == [{"n": 1}]
    stored = sqlite3.connect(Hub(evhub.root).readmodel.path)
    assert stored.execute("select text from messages").fetchall() == [(None,), (None,)], "no copy of the texts"


def test_log_follow_prints_events_as_other_processes_append_them(evhub: Runner) -> None:
    hello(evhub, "alice")
    follower = subprocess.Popen(
        [EVHUB, "log", "--follow", "--type", "msg"], cwd=evhub.root, env=clean_env({"EVHUB_NOW": at(10)}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C stops it even when pytest itself was started ignoring SIGINT (as `nohup` or `cmd &` do).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    printed: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line) for line in follower.stdout or ()], daemon=True).start()
    try:
        evhub.ok("heartbeat", session="alice", now=at(20))  # filtered out
        evhub.ok("msg", "send", "first", session="alice", now=at(30))
        evhub.ok("msg", "send", "second", session="alice", now=at(40))
        lines = [printed.get(timeout=15), printed.get(timeout=15)]  # queue.Empty: nothing came in time
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(timeout=10)
        finally:
            follower.kill()  # a no-op once it exited; else it would outlive the test
    assert "message_posted alice" in lines[0] and "text=first" in lines[0]
    assert "text=second" in lines[1]
    assert follower.returncode == 0, follower.stderr.read() if follower.stderr else ""
