"""`evhub demo`: the installed command runs the whole story with real processes and leaves a sound hub."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from command import checked_log, error_line, ok, run

from evhub._demo import DEAD_AFTER_MINUTES, Story
from evhub._values import format_ts, seconds_between

PRIORITY = "deploy-dashboard"
AGENTS = {"alice", "bob", "carol"}


def test_demo_runs_the_story_and_leaves_a_sound_hub(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = ok(run("demo", root, timeout=120))
    assert "race to claim deploy-dashboard" in proc.stdout
    assert "# evhub status" in proc.stdout
    assert f"evhub --hub {root} why {PRIORITY}" in proc.stdout
    assert (root / "SESSIONS" / "CURRENT_STATE.md").is_file()

    assert "log verified" in ok(run("--hub", root, "verify")).stdout

    # Exactly one session won the race; a later claim took it over from the silent winner.
    history = json.loads(ok(run("--hub", root, "why", PRIORITY, "--json")).stdout)
    claims = [r for r in history if r["type"] == "priority_claimed"]
    winner = claims[0]["session"]
    assert winner in AGENTS and claims[0]["took_over_from"] is None
    firsts = [c for c in claims if c["session"] != winner and c["took_over_from"] is None]
    assert firsts == [], "a second session got the claim without taking it over"
    takeovers = [c for c in claims if c["took_over_from"] is not None]
    assert len(takeovers) == 1 and takeovers[0]["took_over_from"] == winner
    taker = takeovers[0]["session"]
    assert taker in AGENTS - {winner}
    assert takeovers[0]["seq"] > claims[0]["seq"]

    # The milestone exists, owned by the taker, part done.
    milestone = json.loads(ok(run("--hub", root, "milestone", "show", PRIORITY, "--json")).stdout)
    assert milestone["title"] == "Deploy dashboard"
    assert milestone["owner"] == taker
    assert 0 < milestone["progress"]["done"] < milestone["progress"]["total"]

    # Messages went both ways, to all and to one session.
    messages = json.loads(ok(run("--hub", root, "msg", "list", "--json")).stdout)
    assert len(messages) >= 3
    assert {m["from"] for m in messages} >= AGENTS
    assert any(m["to"] == winner for m in messages) and any(m["to"] == "all" for m in messages)

    # The story ends now: the silent winner is dead, the other two are alive.
    sessions = json.loads(ok(run("--hub", root, "sessions", "--all", "--json")).stdout)
    alive = {s["id"]: s["alive"] for s in sessions}
    assert alive == {a: a != winner for a in AGENTS}


def test_demo_refuses_a_folder_that_holds_a_hub(tmp_path: Path) -> None:
    ok(run("init", tmp_path))
    log = tmp_path / "SESSIONS" / "events" / "log.jsonl"
    before = log.read_bytes()
    line = error_line(run("demo", tmp_path), 1)
    assert str(tmp_path) in line
    assert log.read_bytes() == before


def test_a_paced_story_runs_on_the_real_clock_so_a_watch_beside_it_sees_it_live(tmp_path: Path) -> None:
    """Paced, every event is stamped by the real clock (a watch judges liveness by it), and the hub's alive
    ttl is five story minutes, so a session the story leaves silent that long is dead, as in the story."""
    root = tmp_path / "demo"
    root.mkdir()
    started = format_ts(datetime.now(UTC))
    story = Story(root, pace_s=0.2)
    story.run(21, "init", str(root), "--alive-ttl", f"{story.alive_ttl_s}s")
    story.run(20, "hello", "alice")
    story.run(14, "heartbeat", "-s", "alice")
    ended = format_ts(datetime.now(UTC))
    log = checked_log(root)
    assert log[0]["alive_ttl_s"] == story.alive_ttl_s == DEAD_AFTER_MINUTES * story.minute_s == 1
    assert all(started <= e["ts"] <= ended for e in log), "stamped in the past, every session would look silent"
    hello, beat = log[1], log[2]
    assert seconds_between(hello["ts"], beat["ts"]) >= 6 * story.minute_s  # six story minutes, never fewer
