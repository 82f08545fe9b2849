"""A damaged JSONL log never makes evhub lie: reads answer from every event before the first damaged
line and say so, the next writer completes a last event that lost only its newline (its seq, a fencing
token, is never handed out again), `evhub repair` keeps every intact event, stays proportional to the
log's size, and leaves a backup that is complete or absent, and nothing is written through a planted
`quarantine` link."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clock import at
from command import EVHUB, built_once, clean_env, error_line, ok, run

from evhub import Hub


def build_small_hub(root: Path) -> None:
    env = {"EVHUB_NOW": at(0)}
    ok(run("init", cwd=root, env=env))
    ok(run("hello", "alice", cwd=root, env=env))
    ok(run("claim", "api", "-s", "alice", cwd=root, env=env))
    ok(run("hello", "bob", cwd=root, env=env))


def small_hub(root: Path) -> list[bytes]:
    """A hub in ROOT where alice holds api (token 3) and bob said hello (seq 4), a copy of one the
    installed `evhub` built once; its log's lines."""
    built_once(build_small_hub, root)
    return log_of(root).read_bytes().splitlines(keepends=True)


def log_of(root: Path) -> Path:
    return root / "SESSIONS" / "events" / "log.jsonl"


def forget_what_the_hub_saw(root: Path) -> None:
    """Make the log one the hub never saw whole (else reads answer from the read model and repair puts
    back what the hub had seen)."""
    for seen in [*root.glob("SESSIONS/events/readmodel*"), log_of(root).with_name("seen.jsonl")]:
        seen.unlink()


def evhub(root: Path, *args: str, second: int = 1, **kw: Any) -> Any:
    return run(*args, cwd=root, env={"EVHUB_NOW": at(second)}, **kw)


def seqs(root: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in log_of(root).read_bytes().splitlines()]


def repaired(root: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(ok(evhub(root, "repair", "--json", second=10)).stdout)
    return report


def verified(root: Path, events: int) -> None:
    assert ok(evhub(root, "verify", second=20)).stdout == f"ok: {events} events, log verified\n"


# -- reads before the damage ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["duplicated", "deleted", "garbage"])
def test_reads_answer_from_the_events_before_the_damaged_line_say_so_and_exit_4(tmp_path: Path, kind: str) -> None:
    small_hub(tmp_path)
    ok(evhub(tmp_path, "heartbeat", "-s", "alice", second=0))  # seq 5, past the damage
    lines = log_of(tmp_path).read_bytes().splitlines(keepends=True)
    # The read model is gone (a fresh clone of the folder, say): the answer comes from the log alone.
    for model in tmp_path.glob("SESSIONS/events/readmodel*"):
        model.unlink()
    damaged = {"duplicated": [*lines[:3], lines[2], *lines[3:]], "deleted": [*lines[:3], lines[4]],
               "garbage": [*lines[:3], b"{garbage\n", *lines[3:]]}[kind]
    log_of(tmp_path).write_bytes(b"".join(damaged))
    line, before = 4, 3

    claims = evhub(tmp_path, "claims")
    assert claims.returncode == 4, "a read of a damaged log must not pass for a whole answer"
    assert claims.stdout.startswith("api\talice\ttoken 3")
    assert f"line {line} " in claims.stderr and "evhub repair" in claims.stderr
    status = evhub(tmp_path, "status", "--json")
    assert status.returncode == 4 and json.loads(status.stdout)["events"] == before
    recall = evhub(tmp_path, "recall", "alice", "--json")
    assert recall.returncode == 4
    assert max(e["seq"] for e in json.loads(recall.stdout)["recent_events"]) <= before, "nothing from past the damage"

    hub = Hub(tmp_path)
    assert hub.state().seq == before
    assert hub.damage is not None and f"line {line} " in str(hub.damage)
    assert any("evhub repair" in w for w in hub.warnings)


def test_a_healthy_log_reads_without_damage(tmp_path: Path) -> None:
    small_hub(tmp_path)
    hub = Hub(tmp_path)
    assert hub.state().seq == 4 and hub.damage is None
    assert ok(evhub(tmp_path, "claims")).stderr == ""


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


# -- repair keeps every intact event --------------------------------------------------------------


def test_repair_puts_two_swapped_lines_back_in_order_and_loses_nothing(tmp_path: Path) -> None:
    lines = small_hub(tmp_path)
    ok(evhub(tmp_path, "msg", "send", "hello all", "-s", "bob", second=2))
    lines = log_of(tmp_path).read_bytes().splitlines(keepends=True)
    log_of(tmp_path).write_bytes(b"".join([*lines[:3], lines[4], lines[3]]))

    report = repaired(tmp_path)
    assert (report["repaired"], report["events"], report["lost"], report["set_aside"]) == (True, 5, 0, [])
    assert log_of(tmp_path).read_bytes() == b"".join(lines), "both events kept, byte for byte, in seq order"
    verified(tmp_path, 5)


def test_a_seq_far_out_of_range_is_set_aside_not_a_gap_filled_with_placeholders(tmp_path: Path) -> None:
    lines = small_hub(tmp_path)
    far = [lines[3].replace(b'"seq":4', b'"seq":' + str(seq).encode()) for seq in (1_000_003, 9 * 10**18)]
    log_of(tmp_path).write_bytes(b"".join([*lines, far[0], far[1]]))

    report = repaired(tmp_path)
    assert (report["events"], report["lost"]) == (4, 0)
    aside = sorted((log_of(tmp_path).parent / rel).read_bytes() for rel in report["set_aside"])
    assert aside == sorted(far)
    assert log_of(tmp_path).read_bytes() == b"".join(lines)
    assert "out of range" in (log_of(tmp_path).parent / report["set_aside"][0]).with_suffix(".txt").read_text()
    verified(tmp_path, 4)


def test_a_log_ending_in_two_unfinished_writes_gets_a_placeholder_for_the_missing_seq(tmp_path: Path) -> None:
    lines = small_hub(tmp_path)
    ok(evhub(tmp_path, "bye", "-s", "alice", second=2))  # releases api, then leaves: one write, seq 5 and 6
    lines = log_of(tmp_path).read_bytes().splitlines(keepends=True)
    assert b'"more":true' in lines[4]
    seven = lines[4].replace(b'"seq":5', b'"seq":7').replace(b'"id":"', b'"id":"7', 1)
    log_of(tmp_path).write_bytes(b"".join([*lines[:5], seven]))  # seq 5 (more), seq 7 (more)
    forget_what_the_hub_saw(tmp_path)

    report = repaired(tmp_path)
    assert (report["events"], report["lost"]) == (6, 1)
    assert [(log_of(tmp_path).parent / rel).read_bytes() for rel in report["set_aside"]] == [seven]
    kept = log_of(tmp_path).read_bytes().splitlines(keepends=True)
    assert kept[:5] == lines[:5] and json.loads(kept[5])["type"] == "event_lost" and len(kept) == 6
    verified(tmp_path, 6)
    assert json.loads(ok(evhub(tmp_path, "claim", "web", "-s", "bob", "--json", second=11)).stdout)["token"] == 7


def test_a_repair_that_runs_out_of_disk_leaves_no_backup_and_the_log_unchanged(tmp_path: Path) -> None:
    lines = small_hub(tmp_path)
    damaged = b"".join([*lines[:3], b"{garbage\n", lines[3]])
    log_of(tmp_path).write_bytes(damaged)
    limit = len(damaged) // 2  # room for half a backup

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run([EVHUB, "repair"], cwd=tmp_path, env=clean_env({"EVHUB_NOW": at(10)}), capture_output=True,
                          text=True, timeout=60, preexec_fn=small_disk)
    assert "the log is unchanged" in error_line(full, 1)
    events_dir = log_of(tmp_path).parent
    assert log_of(tmp_path).read_bytes() == damaged
    assert [p.name for p in events_dir.iterdir() if "repair" in p.name] == [], "a backup is whole or absent"


# -- a planted quarantine link ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["next write", "repair"])
def test_a_planted_quarantine_link_is_never_followed(tmp_path: Path, how: str) -> None:
    lines = small_hub(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (log_of(tmp_path).parent / "quarantine").symlink_to(outside)
    torn = b'{"type":"heartbeat","seq":5,"id":"01'
    log_of(tmp_path).write_bytes(b"".join(lines) + torn if how == "next write"
                                 else b"".join([*lines[:3], b"{garbage\n", lines[3]]))

    done = evhub(tmp_path, *(["heartbeat", "-s", "alice"] if how == "next write" else ["repair"]), second=2)
    assert "quarantine" in error_line(done, 1) and "link" in error_line(done, 1)
    assert list(outside.iterdir()) == [], "nothing written outside the hub"


@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_line_that_lost_its_newline_before_another_is_damage_and_repair_keeps_both(
    tmp_path: Path, where: str
) -> None:
    lines = small_hub(tmp_path)
    i = 1 if where == "middle" else 2  # alice's hello glued to her claim, or her claim to bob's hello
    log_of(tmp_path).write_bytes(b"".join([*lines[:i], lines[i][:-1], *lines[i + 1:]]))
    forget_what_the_hub_saw(tmp_path)

    claims = evhub(tmp_path, "claims")
    assert claims.returncode == 4 and f"line {i + 1} " in claims.stderr, "damage, not a write that did not finish"
    assert "line" in error_line(evhub(tmp_path, "heartbeat", "-s", "alice"), 4)

    report = repaired(tmp_path)
    assert (report["events"], report["lost"], report["set_aside"]) == (4, 0, [])
    assert log_of(tmp_path).read_bytes() == b"".join(lines), "both events kept, byte for byte"
    verified(tmp_path, 4)
