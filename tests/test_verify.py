"""`evhub verify` and `Hub.verify()` on a JSONL hub: a clean log verifies; a damaged line, a seq gap and
a repeated id are named by line and byte (exit 4); a torn tail and a write of several events that did
not finish are not events, and verify says so as warnings while the log still verifies.

The finer cases on the Python API (a repeated event, unknown types and fields from a newer evhub, a
read model that disagrees with the log) are in test_hub.py; verify after repair is in test_repair.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock import at
from command import error_line, ok, run
from logs import KINDS, bye_hub, damaged

from evhub import CorruptLog, Hub
from evhub._store import JsonlStore
from evhub._verify import verify


def test_a_clean_log_verifies(tmp_path: Path) -> None:
    hub, _ = bye_hub(tmp_path)
    assert ok(run("verify", cwd=tmp_path, env={"EVHUB_NOW": at(10)})).stdout == "ok: 7 events, log verified\n"
    assert Hub(tmp_path).verify() == {"events": 7, "warnings": [], "unknown": 0, "views": []}


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


class AppendsAfterTheFullRead(JsonlStore):
    """The hub's log, read by verify while another process writes: a real `evhub` process appends the
    moment verify's read of the whole log reaches its end; with SAVED false, the read model is left as it
    was (a writer saves it at most once a second)."""

    def __init__(self, hub: Hub, saved: bool) -> None:
        super().__init__(hub.log_path)
        self.hub, self.saved = hub, saved
        self.appended = False

    def blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        yield from super().blocks(start)
        if start == 0 and not self.appended:
            self.appended = True
            before = self.hub.readmodel.path.read_bytes()
            ok(run("msg", "send", "written meanwhile", cwd=self.hub.root,
                   env={"EVHUB_NOW": at(20), "EVHUB_SESSION": "alice"}))
            if not self.saved:
                self.hub.readmodel.path.write_bytes(before)


@pytest.mark.parametrize("saved", [True, False], ids=["read model saved", "read model not saved yet"])
def test_a_write_during_verify_is_no_disagreement(tmp_path: Path, saved: bool) -> None:
    """The full fold and the read model are read at different moments; verify compares them at one seq,
    so another process writing in between is neither "the read model disagrees" nor a rewritten log."""
    hub, _ = bye_hub(tmp_path)
    ok(run("hello", "alice", cwd=tmp_path, env={"EVHUB_NOW": at(10)}))
    store = AppendsAfterTheFullRead(hub, saved)
    assert verify(store, hub.readmodel)["warnings"] == []
    assert store.appended and Hub(tmp_path).verify()["events"] == 9
