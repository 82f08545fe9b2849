"""The seed's scripts in SESSIONS/ keep working: each flow of the old hand-kept folder, run through
the shims with bash (the installed evhub on PATH), has the effect the spec gives it, checked with
`evhub ... --json`. The hub folder has a space in its name, as users' folders do."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from clock import at
from command import EVHUB, Runner, clean_env, init_hub, js, ok

DEPLOY_STEPS = [
    "Design the dashboard layout",
    "Build the deployments API endpoint",
    "Wire the status charts",
    "Add login",
    "Write the integration tests",
    "Review",
    "Deploy to staging",
    "Deploy to production",
]


class Shims:
    """Runs SESSIONS/<script> with bash from a folder that is not the hub, as a user's terminal might."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.root = root
        self.cwd = cwd

    def __call__(self, script: str, *args: str, session: str | None = None, now: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"EVHUB_NOW": now or at(0), **(env or {})}
        if session is not None:
            extra["EVHUB_SESSION"] = session
        return subprocess.run(
            ["bash", str(self.root / "SESSIONS" / script), *args],
            env=clean_env(extra), cwd=self.cwd, capture_output=True, text=True, timeout=60,
        )


@pytest.fixture
def spaced_hub(tmp_path: Path) -> Path:
    return init_hub(tmp_path / "my project")


@pytest.fixture
def shims(spaced_hub: Path, tmp_path: Path) -> Shims:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Shims(spaced_hub, elsewhere)


@pytest.fixture
def hub(spaced_hub: Path) -> Runner:
    return Runner(spaced_hub)



def test_register_claim_and_the_milestone_flow_through_the_shims(shims: Shims, hub: Runner) -> None:
    reg = ok(shims("scripts/register-session.sh", "alice"))
    assert reg.stdout == "export EVHUB_SESSION=alice\n"
    ok(shims("scripts/register-session.sh", "bob", "--role", "reviewer", now=at(1)))
    assert [(s["id"], s["role"]) for s in js(hub("sessions", "--json", now=at(2)))] == [
        ("alice", ""), ("bob", "reviewer")]

    ok(shims("scripts/claim-priority.sh", "2", "alice", now=at(3)))
    lost = shims("scripts/claim-priority.sh", "2", "bob", now=at(4))
    assert lost.returncode == 3 and "held by alice" in lost.stderr
    assert [(c["priority"], c["session"]) for c in js(hub("claims", "--json", now=at(5)))] == [("2", "alice")]

    ok(shims("create-milestone.sh", "Deploy dashboard", "3", *DEPLOY_STEPS, session="bob", now=at(6)))
    m = js(hub("milestone", "show", "deploy-dashboard", "--json", now=at(7)))
    assert (m["title"], m["priority"], m["owner"]) == ("Deploy dashboard", "3", None)
    assert [s["text"] for s in m["steps"]] == DEPLOY_STEPS and m["progress"] == {"done": 0, "total": 8}
    again = shims("create-milestone.sh", "Deploy dashboard", "3", session="bob", now=at(7))
    assert again.returncode == 3

    ok(shims("claim-milestone.sh", "deploy-dashboard", "bob", now=at(8)))
    assert js(hub("milestone", "show", "deploy-dashboard", "--json", now=at(9)))["owner"] == "bob"
    assert ("3", "bob") in [(c["priority"], c["session"]) for c in js(hub("claims", "--json", now=at(9)))]
    assert shims("claim-milestone.sh", "deploy-dashboard", "alice", now=at(9)).returncode == 3

    # update-milestone.sh acts as $EVHUB_SESSION, as the seed's did.
    ok(shims("update-milestone.sh", "deploy-dashboard", "1", "done", session="bob", now=at(10)))
    ok(shims("update-milestone.sh", "deploy-dashboard", "2", "in-progress", "API half done", session="bob",
             now=at(11)))
    refused = shims("update-milestone.sh", "deploy-dashboard", "3", "done", session="alice", now=at(12))
    assert refused.returncode == 3 and "bob" in refused.stderr
    m = js(hub("milestone", "show", "deploy-dashboard", "--json", now=at(13)))
    assert [(s["status"], s["note"]) for s in m["steps"][:3]] == [
        ("done", ""), ("in-progress", "API half done"), ("pending", "")]
    assert m["progress"] == {"done": 1, "total": 8}

    listing = ok(shims("milestone-status.sh", now=at(14))).stdout
    assert "deploy-dashboard" in listing and "1/8" in listing and "bob" in listing
    one = ok(shims("milestone-status.sh", "deploy-dashboard", now=at(14))).stdout
    assert one.splitlines()[0].startswith("deploy-dashboard: Deploy dashboard (1/8")
    assert "  2. [in-progress] Build the deployments API endpoint (API half done)" in one.splitlines()

    status = ok(shims("quick-status.sh", now=at(15))).stdout
    assert status.startswith("# evhub status")
    assert "- 2: alice" in status and "- 3: bob" in status and "1/8" in status
    assert json.loads(ok(shims("quick-status.sh", "--json", now=at(15))).stdout)["events"] == 9


def test_save_progress_modes_through_the_shim(shims: Shims, hub: Runner) -> None:
    ok(shims("scripts/register-session.sh", "alice"))
    ok(shims("save-progress.sh", "quick", "alice", now=at(30)))
    [alice] = js(hub("sessions", "--json", now=at(31)))
    assert (alice["status"], alice["last_seen"]) == ("", at(30))

    ok(shims("create-milestone.sh", "Docs", "docs", "write", "publish", session="alice", now=at(32)))
    ok(shims("claim-milestone.sh", "docs", "alice", now=at(33)))
    ok(shims("update-milestone.sh", "docs", "1", "done", session="alice", now=at(34)))
    ok(shims("save-progress.sh", "auto", "alice", now=at(35)))
    ok(shims("save-progress.sh", "milestone", "alice", "--note", "publishing next", now=at(36)))
    notes = [n["text"] for n in js(hub("recall", "alice", "--json", now=at(37)))["notes"]]
    assert notes == ["saved progress: docs 1/2", "publishing next"]  # the same progress is noted once

    git_env = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "init", "-q", str(hub.root)], check=True, env=clean_env(git_env))
    saved = ok(shims("save-progress.sh", "full", "alice", now=at(38), env=git_env))
    assert "committed SESSIONS/" in saved.stdout
    tracked = subprocess.run(["git", "-C", str(hub.root), "ls-files", "SESSIONS"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "SESSIONS/events/log.jsonl" in tracked and "SESSIONS/save-progress.sh" in tracked
    assert shims("save-progress.sh", "everything", "alice", now=at(39)).returncode == 1


def test_the_shims_check_their_arguments_and_run_as_executables(shims: Shims, hub: Runner) -> None:
    for script, args in (("scripts/register-session.sh", []), ("scripts/claim-priority.sh", ["1"]),
                         ("claim-milestone.sh", ["m"]), ("update-milestone.sh", ["m", "1"]),
                         ("create-milestone.sh", ["Title"]), ("save-progress.sh", ["quick"])):
        proc = shims(script, *args)
        assert proc.returncode == 2 and proc.stderr.startswith("usage: "), (script, proc.stderr)
    assert hub.log_bytes().decode().count("\n") == 1  # none of them reached the hub

    # As the seed's README runs them: ./SESSIONS/quick-status.sh from the repository root.
    direct = subprocess.run(["./SESSIONS/quick-status.sh"], cwd=hub.root, capture_output=True, text=True,
                            env=clean_env({"EVHUB_NOW": at(1)}))
    assert direct.returncode == 0 and direct.stdout.startswith("# evhub status")
    for script in ("milestone-status.sh", "claim-milestone.sh", "update-milestone.sh", "create-milestone.sh",
                   "save-progress.sh", "scripts/register-session.sh", "scripts/claim-priority.sh"):
        assert os.access(hub.sessions_dir / script, os.X_OK), script

    # A title that starts with '-' is a title, not an option; no steps is fine too.
    ok(shims("scripts/register-session.sh", "alice", now=at(2)))
    ok(shims("create-milestone.sh", "-x marks the spot", "treasure", session="alice", now=at(3)))
    [m] = js(hub("milestone", "list", "--json", now=at(4)))
    assert (m["id"], m["title"], m["priority"], m["steps"]) == ("x-marks-the-spot", "-x marks the spot",
                                                                "treasure", [])


def test_the_seeds_six_scripts_with_the_seeds_arguments_in_a_plain_shell(spaced_hub: Path, hub: Runner) -> None:
    def plain(script: str, *args: str, now: str) -> subprocess.CompletedProcess[str]:
        # What `env -i PATH=...` leaves: no EVHUB_SESSION, no HOME, nothing but where evhub is.
        env = {"PATH": f"{Path(EVHUB).parent}{os.pathsep}/usr/bin{os.pathsep}/bin", "EVHUB_NOW": now}
        return subprocess.run(["bash", str(spaced_hub / "SESSIONS" / script), *args], env=env, cwd=spaced_hub,
                              capture_output=True, text=True, timeout=60)

    # SESSIONS-README's `create-milestone.sh <title> <priority>` (it used to fail with "no session"): the
    # person acts as `human`; the steps come later.
    ok(plain("create-milestone.sh", "Write e2e suite", "e2e-suite", now=at(1)))
    ok(hub("milestone", "add-step", "write-e2e-suite", "outline", "write", "review", now=at(2),
           env={"PATH": f"{Path(EVHUB).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"}))
    ok(hub("hello", "alice", now=at(3)))
    ok(plain("claim-milestone.sh", "write-e2e-suite", "alice", now=at(4)))
    # The seed's words (`completed`, `in_progress`), and its save-progress.sh's fifth argument, the session.
    ok(plain("update-milestone.sh", "write-e2e-suite", "1", "completed", now=at(5)))
    ok(plain("update-milestone.sh", "write-e2e-suite", "2", "in_progress", "half way", "alice", now=at(6)))
    ok(plain("save-progress.sh", "auto", "alice", now=at(7)))
    status = ok(plain("quick-status.sh", now=at(8))).stdout
    assert "write-e2e-suite" in status and "1/3" in status
    listing = ok(plain("milestone-status.sh", now=at(8))).stdout
    assert listing.startswith("write-e2e-suite\t") and "alice" in listing
    # MILESTONES/README's form: a level instead of a priority, then the creating session.
    ok(plain("create-milestone.sh", "Deploy Dashboard", "HIGH", "alice", now=at(9)))

    m = js(hub("milestone", "show", "write-e2e-suite", "--json", now=at(10)))
    assert (m["priority"], m["owner"], m["created_by"]) == ("e2e-suite", "alice", "human")
    assert [(s["text"], s["status"], s["note"], s["by"]) for s in m["steps"]] == [
        ("outline", "done", "", "alice"), ("write", "in-progress", "half way", "alice"), ("review", "pending", "", "")]
    # While alice lives, the person's update is hers (her claim would refuse anyone else), recorded as human's.
    step1 = json.loads(ok(hub("log", "--type", "step_updated", "--json", now=at(10))).stdout.splitlines()[0])
    assert (step1["session"], step1["by"]) == ("alice", "human")
    d = js(hub("milestone", "show", "deploy-dashboard", "--json", now=at(10)))
    assert (d["priority"], d["created_by"], d["steps"]) == ("deploy-dashboard", "alice", [])
    assert [s["id"] for s in js(hub("sessions", "--all", "--json", now=at(10)))] == ["alice", "human"]

    # Once alice is silent, the person acts as human.
    ok(plain("update-milestone.sh", "write-e2e-suite", "2", "done", now=at(1000)))
    assert js(hub("milestone", "show", "write-e2e-suite", "--json", now=at(1001)))["steps"][1]["by"] == "human"
