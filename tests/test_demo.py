"""`evhub demo`: the installed command runs the whole story with real processes and leaves a sound hub."""

from __future__ import annotations

import json
from pathlib import Path

from command import error_line, ok, run

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
