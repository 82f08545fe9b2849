"""`evhub verify` and `Hub.verify()` on a JSONL hub: a clean log verifies; a damaged line, a seq gap and
a repeated id are named by line and byte (exit 4); a torn tail and a write of several events that did
not finish are not events, and verify says so as warnings while the log still verifies.

The finer cases on the Python API (a repeated event, unknown types and fields from a newer evhub, a
read model that disagrees with the log) are in test_hub.py; verify after repair is in test_repair.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clock import at
from command import error_line, ok, run
from logs import KINDS, bye_hub, damaged

from evhub import CorruptLog, Hub


def test_a_clean_log_verifies(tmp_path: Path) -> None:
    hub, _ = bye_hub(tmp_path)
    assert ok(run("verify", cwd=tmp_path, env={"EVHUB_NOW": at(10)})).stdout == "ok: 7 events, log verified\n"
    assert Hub(tmp_path).verify() == {"events": 7, "warnings": [], "unknown": 0}


@pytest.mark.parametrize("kind", KINDS)
def test_verify_names_the_damage(tmp_path: Path, kind: str) -> None:
    hub, lines = bye_hub(tmp_path)
    damage = damaged(kind, lines)
    hub.log_path.write_bytes(b"".join(damage.lines))
    done = run("verify", cwd=tmp_path, env={"EVHUB_NOW": at(10)})
    if damage.error is not None:
        assert damage.error in error_line(done, CorruptLog.exit_code)
        with pytest.raises(CorruptLog) as info:
            Hub(tmp_path).verify()
        assert damage.error in str(info.value)
    else:  # not events, and not damage: the next write sets them aside
        assert damage.warning is not None
        ok(done)
        assert f"warning: {damage.warning}; the next write sets them aside\n" in done.stderr
        assert done.stdout == "ok: 6 events, log verified\n"  # the unfinished write's events counted as lines
        report = json.loads(ok(run("verify", "--json", cwd=tmp_path, env={"EVHUB_NOW": at(10)})).stdout)
        assert any(w.startswith(damage.warning) for w in report["warnings"]), report
    assert hub.log_path.read_bytes() == b"".join(damage.lines), "verify changed the log"
