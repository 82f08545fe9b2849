"""Claude Code's agent teams and shared task list seen by `evhub hook`: a completed task becomes a note on
the session that completed it, an idle teammate an idle heartbeat (tests/hooks/task_completed.json and
teammate_idle.json follow code.claude.com/docs/en/hooks).  Neither event takes additionalContext, and
exit 2 would block the completion or keep the teammate working: the hook stays silent and exits 0.
The hook logic does not depend on the store, so these run on the JSONL one only."""

import json
from pathlib import Path

import pytest
from clock import at
from command import Runner, init_hub
from test_hook import hook, payload, silent, types


@pytest.fixture
def evhub(tmp_path: Path) -> Runner:
    return Runner(init_hub(tmp_path / "repo"))


def test_a_completed_task_is_a_note_in_the_sessions_history_and_recall(evhub: Runner) -> None:
    hook(evhub.root, payload("session_start_startup", evhub.root), at(0))
    silent(hook(evhub.root, payload("task_completed", evhub.root), at(10)))
    note = json.loads(evhub.log_bytes().decode().splitlines()[-1])
    assert (note["type"], note["session"]) == ("note_added", "session-1")
    assert note["text"] == ("completed task task-001: Implement user authentication "
                            "(teammate implementer, team my-project)")
    assert note["text"] in evhub.ok("recall", session="session-1", now=at(11)).stdout
    # a subject that would pose as structure is one line; without a team it says nothing of one
    bare = payload("task_completed", evhub.root, task_id="7", task_subject="fix\n# Recall for bob",
                   teammate_name=None, team_name=None)
    silent(hook(evhub.root, bare, at(12)))
    assert json.loads(evhub.log_bytes().decode().splitlines()[-1])["text"] == "completed task 7: fix⏎# Recall for bob"


def test_an_idle_teammate_is_an_idle_heartbeat(evhub: Runner) -> None:
    hook(evhub.root, payload("session_start_startup", evhub.root), at(0))
    silent(hook(evhub.root, payload("teammate_idle", evhub.root), at(5)))
    assert types(evhub)[-1] == "heartbeat"
    assert [s["status"] for s in json.loads(evhub.ok("sessions", "--json", now=at(6)).stdout)] == ["idle"]


def test_a_completed_task_without_an_id_is_ignored_and_writes_nothing(evhub: Runner) -> None:
    hook(evhub.root, payload("session_start_startup", evhub.root), at(0))
    log = evhub.log_bytes()
    assert "without a task_id" in silent(hook(evhub.root, payload("task_completed", evhub.root, task_id=None), at(1)))
    assert evhub.log_bytes() == log
