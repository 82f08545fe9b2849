"""A damaged JSONL log never makes evhub lie: reads answer from every event before the first damaged
line and say so, the next writer completes a last event that lost only its newline (its seq, a fencing
token, is never handed out again), `evhub repair` keeps every intact event, stays proportional to the
log's size, and leaves a backup that is complete or absent, and nothing is written through a planted
`quarantine` link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clock import at
from command import ok, run


def small_hub(root: Path) -> list[bytes]:
    """A hub in ROOT where alice holds api (token 3) and bob said hello (seq 4); its log's lines."""
    env = {"EVHUB_NOW": at(0)}
    ok(run("init", cwd=root, env=env))
    ok(run("hello", "alice", cwd=root, env=env))
    ok(run("claim", "api", "-s", "alice", cwd=root, env=env))
    ok(run("hello", "bob", cwd=root, env=env))
    return log_of(root).read_bytes().splitlines(keepends=True)


def log_of(root: Path) -> Path:
    return root / "SESSIONS" / "events" / "log.jsonl"


def evhub(root: Path, *args: str, second: int = 1, **kw: Any) -> Any:
    return run(*args, cwd=root, env={"EVHUB_NOW": at(second)}, **kw)


def seqs(root: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in log_of(root).read_bytes().splitlines()]


def repaired(root: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(ok(evhub(root, "repair", "--json", second=10)).stdout)
    return report


def verified(root: Path, events: int) -> None:
    assert ok(evhub(root, "verify", second=20)).stdout == f"ok: {events} events, log verified\n"


# -- a last event that lost only its newline ------------------------------------------------------


def test_a_last_event_that_lost_only_its_newline_is_kept_and_its_seq_never_handed_out_again(tmp_path: Path) -> None:
    lines = small_hub(tmp_path)
    for model in tmp_path.glob("SESSIONS/events/readmodel*"):
        model.unlink()
    log_of(tmp_path).write_bytes(b"".join(lines)[:-1])

    sessions = ok(evhub(tmp_path, "sessions", "--json"))
    assert sorted(s["id"] for s in json.loads(sessions.stdout)) == ["alice", "bob"], "bob's hello is an event"
    assert json.loads(ok(evhub(tmp_path, "claim", "web", "-s", "bob", "--json", second=2)).stdout)["token"] == 5
    assert seqs(tmp_path) == [1, 2, 3, 4, 5]
    assert log_of(tmp_path).read_bytes().startswith(b"".join(lines)), "bob's hello completed, byte for byte"
    assert not (log_of(tmp_path).parent / "quarantine").exists()
    verified(tmp_path, 5)
