"""Record the sample histories in events/samples/ by really running the installed `evhub` command.

    /work/venv/bin/python events/record_samples.py [NAME ...]

Each scenario runs in a fresh temporary hub, one `evhub` process per command, with EVHUB_NOW
advancing from command to command, so the times in the log tell a believable day. Every command's
exit code is checked (a race's loser must get 3), and then the hub's log is copied to
events/samples/NAME.jsonl. Event ids are fresh ULIDs on every recording; nothing rendered depends on
them. After re-recording, refresh the golden views: EVHUB_UPDATE_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"


def evhub_command() -> str:
    beside = Path(sys.executable).parent / "evhub"
    found = str(beside) if beside.is_file() else shutil.which("evhub")
    if found is None:
        raise SystemExit("the evhub command is not installed: pip install -e .")
    return found


class Recorder:
    """A hub in a temporary folder and a clock; `r.run(session, *args)` runs one evhub command."""

    def __init__(self, root: Path, start: datetime) -> None:
        self.root = root
        self.clock = start
        self.evhub = evhub_command()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EVHUB_")}

    def wait(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)

    def run(self, session: str | None, *args: str, after: float = 0, expect: int = 0) -> str:
        """Advance the clock by AFTER seconds, then run `evhub ARGS` as SESSION; returns its stdout."""
        self.wait(after)
        env = dict(self.env, EVHUB_NOW=self.clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        if session is not None:
            env["EVHUB_SESSION"] = session
        proc = subprocess.run([self.evhub, *args], cwd=self.root, env=env, capture_output=True, text=True)
        if proc.returncode != expect:
            raise SystemExit(
                f"`evhub {' '.join(args)}` as {session} exited {proc.returncode}, not {expect}:\n{proc.stderr}"
            )
        return proc.stdout

    def log(self) -> bytes:
        return (self.root / "SESSIONS" / "events" / "log.jsonl").read_bytes()


DEPLOY_STEPS = [
    "Design the dashboard layout",
    "Build the deployments API endpoint",
    "Wire the status charts",
    "Add login with the new auth endpoints",
    "Write the integration tests",
    "Review with bob",
    "Deploy to staging and smoke-test",
    "Deploy to production",
]


def three_sessions_day(r: Recorder) -> None:
    """Three sessions share a morning: hello, a race for api-auth, the 8-step deploy-dashboard
    milestone, messages, a handshake rename (session-1 becomes carol), carol goes silent holding
    flaky-tests and bob takes it over, and the milestone completes."""
    r.run(None, "init")
    r.run(None, "hello", "alice", "--role", "builder", "--spec", "frontend", "--about", "the deploy dashboard",
          after=5)
    r.run(None, "hello", "bob", "--role", "reviewer", "--spec", "backend", "--about", "API review and auth",
          after=20)
    # The third says hello without an id and gets the first free session-N.
    third = r.run(None, "hello", "--role", "tester", "--spec", "qa", after=15)
    if not third.startswith("session-1\n"):
        raise SystemExit(f"expected session-1, got {third!r}")
    r.run("alice", "focus", "Ship the deploy dashboard (priority 3)", after=10)
    r.run("alice", "msg", "send", "Morning! I'm on the deploy dashboard. Someone please own api-auth.", after=5)
    r.run("bob", "msg", "inbox", after=10)
    r.run("session-1", "msg", "inbox", after=2)
    # Both answer the call at the same moment; bob's claim lands first.
    r.run("bob", "claim", "api-auth", after=5)
    r.run("session-1", "claim", "api-auth", expect=3)
    r.run("bob", "msg", "send", "I've got api-auth.", after=3)
    r.run("session-1", "msg", "send", "bob won api-auth; I'll take the flaky tests instead.", "--to", "bob",
          after=4)
    r.run("session-1", "claim", "flaky-tests", after=1)
    steps = [a for s in DEPLOY_STEPS for a in ("--step", s)]
    r.run("alice", "milestone", "create", "Deploy dashboard", "--priority", "3", *steps, after=10)
    r.run("alice", "milestone", "claim", "deploy-dashboard", after=5)
    r.run("alice", "milestone", "step", "deploy-dashboard", "1", "in-progress", after=20)
    r.run("session-1", "handshake", "propose", "carol", "--reason", "the name from yesterday's notes", after=15)
    r.run("bob", "heartbeat", "--status", "reading the auth spec", after=10)
    r.run("bob", "handshake", "list", after=1)
    r.run("bob", "handshake", "accept", "carol", after=2)
    r.run("alice", "handshake", "accept", "carol", after=20)
    r.run("carol", "heartbeat", "--status", "bisecting test_upload_retry", after=10)
    r.run("alice", "milestone", "step", "deploy-dashboard", "1", "done", "--note", "wireframe in docs/dash.md",
          after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "2", "in-progress", after=5)
    r.run("bob", "heartbeat", "--status", "auth: token endpoint", after=30)
    r.run("carol", "note", "test_upload_retry fails when the fake S3 answers slowly", after=40)
    r.run("alice", "heartbeat", after=50)
    r.run("bob", "heartbeat", "--status", "auth: refresh tokens", after=60)
    r.run("carol", "heartbeat", "--status", "retry timing in upload client", after=30)
    r.run("alice", "milestone", "step", "deploy-dashboard", "2", "done", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "3", "in-progress", after=5)
    r.run("alice", "msg", "send", "Step 3 needs /api/deployments; is the schema final?", "--to", "bob", after=5)
    r.run("bob", "msg", "inbox", after=30)
    r.run("bob", "msg", "send", "Yes, final. Auth endpoints land in ~15 minutes.", "--to", "alice", after=10)
    r.run("carol", "msg", "send", "Found it: the upload retry sleeps on the wall clock. Fixing.", after=20)
    r.run("alice", "msg", "inbox", after=15)
    r.run("carol", "save", "--mode", "quick", "--note", "fix: inject the clock into UploadClient", after=25)
    # carol goes silent from here on, still holding flaky-tests.
    r.run("bob", "heartbeat", "--status", "auth: tests", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "3", "done", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "4", "blocked", "--note", "waiting for api-auth",
          after=5)
    r.run("alice", "save", "--mode", "milestone", after=5)
    r.run("bob", "heartbeat", "--status", "auth: review fixes", after=120)
    r.run("alice", "heartbeat", "--status", "step 5 tests while blocked", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "5", "in-progress", after=5)
    r.run("bob", "release", "api-auth", "--done", "--note", "auth endpoints merged", after=120)
    r.run("bob", "msg", "send", "api-auth is merged; alice, you're unblocked.", "--to", "alice", after=5)
    r.run("bob", "status", after=10)
    # carol, last seen minutes ago, is no longer alive: her flaky-tests claim is stale and bob takes it over.
    r.run("bob", "why", "flaky-tests", after=15)
    r.run("bob", "claim", "flaky-tests", after=5)
    r.run("bob", "msg", "send", "Took over flaky-tests from carol (silent for almost 8 minutes); her note says "
          "inject the clock into UploadClient.", after=5)
    r.run("alice", "msg", "inbox", after=20)
    r.run("alice", "milestone", "step", "deploy-dashboard", "4", "done", after=10)
    r.run("alice", "milestone", "step", "deploy-dashboard", "5", "done", after=120)
    r.run("alice", "milestone", "step", "deploy-dashboard", "6", "in-progress", after=5)
    r.run("alice", "msg", "send", "Dashboard ready for review: branch dash/deploy.", "--to", "bob", after=5)
    r.run("bob", "msg", "inbox", after=40)
    r.run("bob", "heartbeat", "--status", "reviewing dash/deploy", after=5)
    r.run("bob", "msg", "send", "Reviewed: two nits, otherwise good to go.", "--to", "alice", after=180)
    r.run("alice", "msg", "inbox", after=20)
    r.run("alice", "milestone", "step", "deploy-dashboard", "6", "done", "--note", "nits fixed", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "7", "in-progress", after=5)
    r.run("bob", "heartbeat", "--status", "flaky-tests: injecting the clock", after=90)
    r.run("alice", "milestone", "step", "deploy-dashboard", "7", "done", "--note", "staging smoke test green",
          after=120)
    r.run("alice", "milestone", "step", "deploy-dashboard", "8", "in-progress", after=5)
    r.run("bob", "note", "UploadClient now takes a clock; the retry test runs in 40ms", after=60)
    r.run("alice", "milestone", "step", "deploy-dashboard", "8", "done", "--note", "live at /dash", after=120)
    r.run("alice", "release", "3", "--done", "--note", "deploy dashboard live", after=5)
    r.run("alice", "focus", "Stabilise the test suite (flaky-tests)", after=10)
    r.run("alice", "msg", "send", "Dashboard is live. Next focus: the flaky tests; bob has them.", after=5)
    r.run("bob", "msg", "inbox", after=30)
    r.run("bob", "heartbeat", "--status", "flaky-tests: 3 of 5 fixed", after=30)
    r.run("alice", "heartbeat", "--status", "writing the release notes", after=20)


def handshakes(r: Recorder) -> None:
    """Four unnamed sessions negotiate names: one agreed (claims and milestone move with it), one
    rejected then agreed under another name, one left pending by a voter who went silent, a second
    rename of the same session, and messages addressed by old ids."""
    r.run(None, "init", "--alive-ttl", "10m")
    r.run(None, "hello", "--role", "architect", "--about", "the docs site", after=3)  # session-1
    r.run(None, "hello", "--role", "builder", after=7)  # session-2
    r.run(None, "hello", "--role", "tester", after=11)  # session-3
    r.run(None, "hello", "--role", "ops", after=13)  # session-4
    r.run("session-1", "claim", "docs-site", after=5)
    r.run("session-1", "milestone", "create", "Docs site", "--step", "Pick the generator",
          "--step", "Port the pages", "--step", "Publish", after=5)
    r.run("session-1", "milestone", "claim", "docs-site", after=2)
    r.run("session-1", "milestone", "step", "docs-site", "1", "done", "--note", "mkdocs", after=30)
    r.run("session-1", "handshake", "propose", "atlas", "--reason", "I map the docs", after=10)
    r.run("session-2", "handshake", "accept", "atlas", after=20)
    r.run("session-3", "handshake", "list", after=5)
    r.run("session-3", "handshake", "accept", "atlas", after=5)
    r.run("session-4", "handshake", "accept", "atlas", after=40)
    r.run("session-2", "msg", "send", "Welcome, atlas.", "--to", "session-1", after=10)  # the old id still works
    r.run("atlas", "msg", "inbox", after=15)
    r.run(None, "hello", "--role", "reviewer", after=20)  # session-5: session-1 stays taken as an alias
    r.run("session-2", "handshake", "propose", "atlas", after=10, expect=3)  # taken
    r.run("session-2", "handshake", "propose", "builder", "--reason", "it is what I do", after=5)
    r.run("session-3", "handshake", "reject", "builder", "--reason", "too generic: we may have two builders",
          after=30)
    r.run("session-2", "handshake", "propose", "forge", after=20)
    for sid in ("atlas", "session-3", "session-4", "session-5"):
        r.run(sid, "handshake", "accept", "forge", after=15)
    r.run("forge", "claim", "build-pipeline", after=10)
    r.run("session-4", "heartbeat", "--status", "rotating the staging keys", after=30)
    # session-4 goes silent; session-3's proposal waits for it (still listed as a voter) forever.
    r.run("session-3", "handshake", "propose", "scout", "--reason", "I find the bugs", after=60)
    for sid in ("atlas", "forge", "session-5"):
        r.run(sid, "handshake", "accept", "scout", after=20)
    r.run("session-3", "msg", "send", "Still waiting for session-4 on my name.", after=30)
    r.run("atlas", "milestone", "step", "docs-site", "2", "in-progress", after=240)
    r.run("forge", "heartbeat", "--status", "pipeline: caching the wheels", after=60)
    r.run("session-5", "heartbeat", after=30)
    r.run("session-3", "heartbeat", after=30)
    # session-4 has now been silent past the 10-minute TTL, so it is no voter on this one.
    r.run("atlas", "handshake", "propose", "atlas-docs", "--reason", "clearer next to forge", after=120)
    for sid in ("forge", "session-3", "session-5"):
        r.run(sid, "handshake", "accept", "atlas-docs", after=20)
    r.run("forge", "msg", "send", "Renamed again?", "--to", "session-1", after=120)  # two renames back
    r.run("atlas-docs", "msg", "inbox", after=10)
    r.run("atlas-docs", "milestone", "step", "docs-site", "2", "done", after=120)
    r.run("session-5", "heartbeat", "--status", "reviewing forge's pipeline", after=60)
    r.run("forge", "heartbeat", after=30)
    r.run("session-3", "heartbeat", after=10)


def crash_and_resume(r: Recorder) -> None:
    """Context losses: alice resumes and keeps her claims, her ttl claim lapses and bob takes it,
    her stale token is refused; bob restarts afresh and loses his old claim; a forced release; bye."""
    r.run(None, "init")
    r.run(None, "hello", "alice", "--role", "builder", "--about", "database migration", after=1)
    r.run(None, "hello", "bob", "--role", "builder", "--about", "CI", after=4)
    r.run("alice", "milestone", "create", "Migrate to schema v2", "--id", "schema-v2", "--priority", "schema-v2",
          "--step", "Write the migration", "--step", "Backfill", "--step", "Switch reads",
          "--step", "Switch writes", "--step", "Drop the old columns", after=5)
    token = json.loads(r.run("alice", "milestone", "claim", "schema-v2", "--ttl", "15m", "--json", after=2))["token"]
    r.run("bob", "claim", "ci-cache", after=10)
    r.run("alice", "milestone", "step", "schema-v2", "1", "done", after=120)
    r.run("alice", "milestone", "step", "schema-v2", "2", "in-progress", after=5)
    r.run("alice", "save", "--mode", "milestone", "--note", "backfill runs in batches of 10k", after=60)
    r.run("bob", "heartbeat", "--status", "ci cache keys", after=30)
    # alice loses her context and is silent for 6 minutes, then comes back as herself.
    r.run("bob", "heartbeat", "--status", "ci cache keys", after=240)
    r.run("alice", "hello", "alice", "--resume", after=180)
    r.run("alice", "recall", after=5)
    r.run("alice", "milestone", "step", "schema-v2", "2", "done", after=60)
    r.run("bob", "msg", "send", "alice: the backfill locked the users table for a second; batches smaller?",
          "--to", "alice", after=30)
    r.run("alice", "msg", "inbox", "--peek", after=30)
    r.run("bob", "heartbeat", after=90)
    # alice keeps working but never refreshes her 15-minute claim; it lapses and bob takes the priority.
    r.run("alice", "milestone", "step", "schema-v2", "3", "in-progress", after=200)
    r.run("bob", "heartbeat", "--status", "ci cache keys", after=120)
    r.run("alice", "heartbeat", "--status", "switching reads", after=60)
    r.run("bob", "claim", "schema-v2", after=60)
    r.run("alice", "release", "schema-v2", "--token", str(token), after=5, expect=3)  # her token is stale now
    r.run("alice", "milestone", "step", "schema-v2", "3", "done", after=5, expect=3)  # bob holds it
    r.run("alice", "msg", "send", "My claim on schema-v2 lapsed and you have it: finish from step 3?",
          "--to", "bob", after=10)
    r.run("bob", "msg", "inbox", after=10)
    r.run("bob", "milestone", "claim", "schema-v2", after=10)
    r.run("bob", "milestone", "step", "schema-v2", "3", "done", after=180)
    # bob's process dies; a fresh bob (no --resume) starts 10 minutes later: the old ci-cache claim is gone.
    r.run("alice", "heartbeat", after=60)
    r.run("alice", "heartbeat", after=240)
    r.run(None, "hello", "bob", "--role", "builder", "--about", "CI again, fresh context", after=300)
    r.run("bob", "claims", after=5)
    r.run("bob", "claim", "ci-cache", after=5)
    r.run("bob", "milestone", "claim", "schema-v2", after=5)
    r.run(None, "hello", "carol", "--role", "lead", after=20)
    r.run("carol", "claim", "release-notes", after=5)
    r.run("alice", "release", "release-notes", "--force", "--note", "carol asked me to take it", after=30)
    r.run("alice", "claim", "release-notes", after=2)
    r.run("carol", "bye", after=20)
    r.run("bob", "milestone", "step", "schema-v2", "4", "in-progress", after=40)


SCENARIOS: dict[str, tuple[datetime, Callable[[Recorder], None]]] = {
    "three-sessions-day": (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), three_sessions_day),
    "handshakes": (datetime(2026, 11, 26, 14, 0, tzinfo=UTC), handshakes),
    "crash-and-resume": (datetime(2026, 11, 27, 8, 30, tzinfo=UTC), crash_and_resume),
}


def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        start, scenario = SCENARIOS[name]
        with tempfile.TemporaryDirectory(prefix=f"evhub-{name}-") as tmp:
            r = Recorder(Path(tmp), start)
            scenario(r)
            out = SAMPLES / f"{name}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            log = r.log()
            out.write_bytes(log)
            print(f"{out}: {len(log.splitlines())} events, the last at {r.clock:%Y-%m-%dT%H:%M:%SZ}")


if __name__ == "__main__":
    main(sys.argv[1:])
