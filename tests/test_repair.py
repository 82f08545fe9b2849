"""`evhub repair` and `Hub.repair()` on a JSONL hub: each kind of damage verify names is set aside into
quarantine/ with a note, a backup of the damaged log is kept, every seq left missing gets an
`event_lost` placeholder (so later events keep their seqs), and the repaired log verifies.

test_reliability.py holds repair to the rest of its contract through the command (a duplicated line,
everything at once, unknown events kept, nothing deleted, two repairs at one moment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clock import at, fixed_now
from command import ok, run
from logs import KINDS, bye_hub, damaged

from evhub import Hub


def repaired(root: Path, how: str) -> dict[str, Any]:
    if how == "evhub repair":
        report: dict[str, Any] = json.loads(ok(run("repair", "--json", cwd=root, env={"EVHUB_NOW": at(10)})).stdout)
        return report
    with fixed_now(at(10)):
        return Hub(root).repair()


@pytest.mark.parametrize("how", ["evhub repair", "Hub.repair()"])
@pytest.mark.parametrize("kind", KINDS)
def test_repair_sets_the_damage_aside_keeps_a_backup_and_the_log_verifies_again(
    tmp_path: Path, kind: str, how: str
) -> None:
    hub, lines = bye_hub(tmp_path)
    damage = damaged(kind, lines)
    hub.log_path.write_bytes(b"".join(damage.lines))
    events_dir = hub.log_path.parent

    report = repaired(tmp_path, how)
    assert report["repaired"] is True
    assert (report["events"], report["lost"]) == (damage.events, len(damage.lost))
    assert (events_dir / report["backup"]).read_bytes() == b"".join(damage.lines), "the backup is the damaged log"
    assert sorted((events_dir / rel).read_bytes() for rel in report["set_aside"]) == sorted(damage.set_aside)
    for rel in report["set_aside"]:
        assert "set aside by evhub repair" in (events_dir / rel).with_suffix(".txt").read_text()

    log = hub.log_path.read_bytes().splitlines(keepends=True)
    assert [json.loads(x)["seq"] for x in log] == list(range(1, damage.events + 1))
    for seq, line in enumerate(log, 1):
        if seq in damage.lost:
            assert json.loads(line)["type"] == "event_lost", seq
        else:  # every other event keeps its line byte for byte, so its seq
            assert line == lines[seq - 1], seq
    assert ok(run("verify", cwd=tmp_path, env={"EVHUB_NOW": at(11)})).stdout == \
        f"ok: {damage.events} events, log verified\n"
    assert Hub(tmp_path).verify()["warnings"] == []


def test_after_an_unfinished_write_is_set_aside_the_hub_writes_on_from_its_last_whole_event(tmp_path: Path) -> None:
    hub, lines = bye_hub(tmp_path)
    hub.log_path.write_bytes(b"".join(damaged("unfinished write", lines).lines))
    ok(run("repair", cwd=tmp_path, env={"EVHUB_NOW": at(10)}))
    claims = json.loads(ok(run("claims", "--json", cwd=tmp_path, env={"EVHUB_NOW": at(11)})).stdout)
    assert sorted(c["priority"] for c in claims) == ["p", "q"], "the bye that did not finish released nothing"
    assert json.loads(ok(run("heartbeat", "--json", "-s", "alice", cwd=tmp_path,
                             env={"EVHUB_NOW": at(12)})).stdout) == {"events": [5]}
    assert ok(run("verify", cwd=tmp_path, env={"EVHUB_NOW": at(13)})).stdout == "ok: 5 events, log verified\n"
