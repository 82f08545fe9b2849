"""Golden tests: replay each recorded history in events/samples/ and compare every rendered view,
byte for byte, with the files kept in tests/golden/.

For each sample NAME, the log is copied into a fresh folder as SESSIONS/events/log.jsonl (no views,
no read model) and the installed `evhub replay` rebuilds the folder, with EVHUB_NOW fixed at one
minute after the sample's last event; the result must equal tests/golden/NAME/. A sample holding a
takeover is also replayed with `--at` one second before its first takeover, when the silent
session's claim is still listed (as stale); that must equal tests/golden/NAME@before-takeover/.

After an intended change to the views, or after re-recording the samples with
`events/record_samples.py`, rewrite the golden files and review the diff before committing:

    EVHUB_UPDATE_GOLDEN=1 /work/venv/bin/pytest tests/test_golden.py
    git diff --stat tests/golden
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from command import ok, run

from evhub._render import DOCS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "events" / "samples").glob("*.jsonl"))
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("EVHUB_UPDATE_GOLDEN") == "1"


def shift(ts: str, seconds: float) -> str:
    t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def views(folder: Path) -> dict[str, bytes]:
    """Every file under FOLDER (a SESSIONS/ folder) rendered from the log, leaving out events/ and
    the files that are the same in every hub (the documents and the shims: tests/test_render.py and
    tests/test_shims.py check those)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not rel.startswith("events/"):
            executable = bool(p.stat().st_mode & stat.S_IXUSR)
            assert executable == rel.endswith(".sh"), f"{rel}: executable is {executable}"
            if rel not in DOCS and not rel.endswith(".sh"):
                out[rel] = p.read_bytes()
    return out


def compare(got: dict[str, bytes], golden_dir: Path) -> None:
    if UPDATE:
        shutil.rmtree(golden_dir, ignore_errors=True)
        for rel, content in got.items():
            (golden_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden_dir / rel).write_bytes(content)
    assert golden_dir.is_dir(), f"no golden files at {golden_dir}: run with EVHUB_UPDATE_GOLDEN=1"
    want = {p.relative_to(golden_dir).as_posix(): p.read_bytes() for p in golden_dir.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(want), "the set of view files differs from the golden one"
    for rel in sorted(want):
        if got[rel] != want[rel]:
            diff = difflib.unified_diff(
                want[rel].decode().splitlines(), got[rel].decode().splitlines(),
                f"golden/{rel}", f"replayed/{rel}", lineterm="",
            )
            pytest.fail(f"{golden_dir.name}/{rel} differs:\n" + "\n".join(list(diff)[:60]))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_replaying_a_sample_renders_the_golden_views(sample: Path, tmp_path: Path) -> None:
    log = sample.read_bytes()
    events = [json.loads(line) for line in log.splitlines()]
    root = tmp_path / "hub"
    (root / "SESSIONS" / "events").mkdir(parents=True)
    (root / "SESSIONS" / "events" / "log.jsonl").write_bytes(log)
    env = {"EVHUB_NOW": shift(events[-1]["ts"], 60)}

    report = json.loads(ok(run("verify", "--json", env=env, cwd=root)).stdout)
    assert report["events"] == len(events) and report["warnings"] == [], report
    ok(run("replay", env=env, cwd=root))
    assert (root / "SESSIONS" / "events" / "log.jsonl").read_bytes() == log
    compare(views(root / "SESSIONS"), GOLDEN / sample.stem)

    takeovers = [e for e in events if e["type"] == "priority_claimed" and e["took_over_from"]]
    if takeovers:
        then = tmp_path / "then"
        ok(run("replay", "--at", shift(takeovers[0]["ts"], -1), "--out", then, env=env, cwd=root))
        compare(views(then), GOLDEN / f"{sample.stem}@before-takeover")


# Every event type of the spec's log format table.
SPEC_TYPES = {
    "hub_created", "session_registered", "heartbeat", "session_left", "id_proposed", "id_accepted",
    "id_rejected", "priority_claimed", "priority_released", "focus_set", "note_added", "milestone_created",
    "milestone_claimed", "step_updated", "message_posted", "messages_read",
}


def test_there_are_samples_and_every_golden_folder_belongs_to_one() -> None:
    assert len(SAMPLES) >= 2
    seen = {json.loads(line)["type"] for p in SAMPLES for line in p.read_bytes().splitlines()}
    assert SPEC_TYPES <= seen, f"no sample holds {sorted(SPEC_TYPES - seen)}"
    names = {p.stem for p in SAMPLES}
    for folder in GOLDEN.iterdir():
        assert folder.name.split("@")[0] in names, f"{folder} belongs to no sample"
