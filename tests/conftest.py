"""Shared helpers for the tests that drive the installed `evhub` command in subprocesses.

`run(*args, env=..., cwd=...)` runs the installed command with a clean environment (no EVHUB_*
variable leaks in from the caller). The fixtures: `store`, how a test's hubs keep their log (each
test that takes it runs twice: on the JSONL file and on PostgreSQL), `hub_dir`, a folder holding a
fresh hub made at T0 on that store, and `evhub`, a runner bound to that folder whose calls return
the CompletedProcess.

The PostgreSQL half uses the cluster .ci/run started (EVHUB_TEST_PGDATA, EVHUB_TEST_PGPORT), else
starts a throwaway one; with no server installed it skips, saying so, unless EVHUB_TEST_PG_REQUIRED
is set (as in CI), where it fails.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pgserver import Cluster, bindir

from evhub._pgstore import StoreSettings

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
# The seed's scripts, with their paths in SESSIONS/: instructions written for the old folder call these.
SEED_SHIMS = (
    "quick-status.sh",
    "milestone-status.sh",
    "claim-milestone.sh",
    "update-milestone.sh",
    "create-milestone.sh",
    "save-progress.sh",
    "scripts/register-session.sh",
    "scripts/claim-priority.sh",
)
BIN = Path(sys.executable).parent


def _find_evhub() -> str:
    beside = BIN / "evhub"
    if beside.is_file():
        return str(beside)
    found = shutil.which("evhub")
    if found is None:
        raise RuntimeError("the evhub command is not installed: pip install -e '.[test]'")
    return found


EVHUB = _find_evhub()


def at(seconds: float = 0) -> str:
    """The time SECONDS after T0, as EVHUB_NOW takes it."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without EVHUB_* settings, the evhub command's folder first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVHUB_")}
    env["PATH"] = f"{Path(EVHUB).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def run(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `evhub ARGS` and return what it did (never raises on a non-zero exit)."""
    return subprocess.run(
        [EVHUB, *map(str, args)],
        env=clean_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def together(
    root: Path, argvs: Sequence[Sequence[str | Path]], now: str = at(1)
) -> list[subprocess.CompletedProcess[str]]:
    """Start one `evhub` process for each argv, all before waiting for any, then collect them in order."""
    env = clean_env({"EVHUB_NOW": now})
    procs = [subprocess.Popen([EVHUB, *map(str, argv)], env=env, cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in argvs]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


# The installed command's entry point held at a gate after its imports, so that processes started one
# after another reach the store within a millisecond of each other when released.
GATED_EVHUB = (
    "import sys\n"
    "from evhub._cli import main\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.argv[0] = 'evhub'\n"
    "sys.exit(main())\n"
)


def gated(script: str, args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """SCRIPT started in CWD and waiting for `go` on stdin once it prints `ready`."""
    return subprocess.Popen([sys.executable, "-c", script, *args], env=clean_env(env), cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def at_gate(procs: Sequence[subprocess.Popen[str]]) -> None:
    """Wait until every one of PROCS is held at its gate."""
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n", p.stderr and p.stderr.read()


def open_gates(procs: Sequence[subprocess.Popen[str]]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


def collected(procs: Sequence[subprocess.Popen[str]]) -> list[subprocess.CompletedProcess[str]]:
    done = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def release(procs: Sequence[subprocess.Popen[str]]) -> list[subprocess.CompletedProcess[str]]:
    """PROCS held until all are ready, released together, and collected in order."""
    at_gate(procs)
    open_gates(procs)
    return collected(procs)


@contextlib.contextmanager
def fixed_now(value: str) -> Iterator[None]:
    """EVHUB_NOW set to VALUE in this process, for the Python API, and put back afterwards."""
    old = os.environ.get("EVHUB_NOW")
    os.environ["EVHUB_NOW"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["EVHUB_NOW"]
        else:
            os.environ["EVHUB_NOW"] = old


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """PROC, after checking that it exited 0."""
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {proc.stderr}"
    return proc


def error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The one `error: ...` line of a command that failed with CODE."""
    assert proc.returncode == code, f"{proc.args} exited {proc.returncode}, not {code}: {proc.stderr}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


class Runner:
    """`evhub` bound to one hub folder: `runner("claim", "p", session="alice", now=at(60))`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self,
        *args: str | Path,
        session: str | None = None,
        now: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full = {"EVHUB_NOW": now or at(0)}
        if session is not None:
            full["EVHUB_SESSION"] = session
        full.update(env or {})
        return run(*args, env=full, cwd=cwd or self.root)

    def ok(self, *args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        return ok(self(*args, **kw))  # type: ignore[arg-type]

    @property
    def sessions_dir(self) -> Path:
        return self.root / "SESSIONS"

    @property
    def log_path(self) -> Path:
        """The JSONL log (tests that damage the file itself run on the JSONL store only)."""
        return self.root / "SESSIONS" / "events" / "log.jsonl"

    def log_bytes(self) -> bytes:
        return log_bytes(self.root)


def log_bytes(root: Path) -> bytes:
    """The log of the hub in ROOT as `evhub export` writes it, whatever store holds it (a JSONL log
    is read as the file is, torn tail and all)."""
    events = root / "SESSIONS" / "events"
    if not (events / "store.json").exists():
        return (events / "log.jsonl").read_bytes()
    return subprocess.run([EVHUB, "export"], env=clean_env(), cwd=root, capture_output=True,
                          check=True, timeout=60).stdout


_schemas = itertools.count(1)


class HubStore:
    """Where a test's hubs keep their log: the JSONL file, or a fresh schema of the test cluster per hub."""

    def __init__(self, kind: str, cluster: Cluster | None = None, dsn_file: Path | None = None) -> None:
        self.kind = kind
        self.cluster = cluster
        self.dsn_file = dsn_file

    def __repr__(self) -> str:
        return self.kind

    def settings(self) -> StoreSettings | None:
        """A new hub's store settings (a schema of its own), for Hub.init; None for JSONL."""
        if self.kind == "jsonl":
            return None
        return StoreSettings(f"t{os.getpid()}_{next(_schemas)}", self.dsn_file)

    def init_args(self) -> list[str]:
        """What `evhub init` needs to put a new hub on this store."""
        settings = self.settings()
        if settings is None:
            return []
        return ["--store-file", str(self.dsn_file), "--schema", settings.schema]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The PostgreSQL cluster the tests share (never restarted: tests that restart a server make their own)."""
    data, port = os.environ.get("EVHUB_TEST_PGDATA"), os.environ.get("EVHUB_TEST_PGPORT")
    if data and port:
        yield Cluster(Path(data), int(port))
        return
    if bindir() is None:
        reason = "no PostgreSQL server installed (Debian: apt-get install postgresql)"
        if os.environ.get("EVHUB_TEST_PG_REQUIRED"):
            pytest.fail(f"{reason}, and EVHUB_TEST_PG_REQUIRED is set")
        pytest.skip(reason)
    cluster = Cluster.temporary(free_port())
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def pg_store(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> HubStore:
    dsn_file = tmp_path_factory.mktemp("dsn") / "store.dsn"
    dsn_file.write_text(pg_cluster.dsn + "\n")
    return HubStore("postgresql", pg_cluster, dsn_file)


@pytest.fixture(params=["jsonl", "postgresql"])
def store(request: pytest.FixtureRequest) -> HubStore:
    """Each test that takes it runs on both stores."""
    if request.param == "jsonl":
        return HubStore("jsonl")
    found: HubStore = request.getfixturevalue("pg_store")
    return found


def checked_log(root: Path) -> list[dict[str, Any]]:
    """Every event of the hub in ROOT's log, after checking that each line is one whole event, seq runs
    1..N without a gap, and no id comes twice."""
    from evhub import _events as ev

    raw = log_bytes(root)
    assert raw.endswith(b"\n")
    docs = []
    for line in raw.splitlines(keepends=True):
        ev.decode(line)  # raises CorruptLog on a line that is not a whole event
        docs.append(json.loads(line))
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert len({d["id"] for d in docs}) == len(docs)
    return docs


def init_hub(root: Path, store: HubStore | None = None) -> Path:
    """ROOT, made and holding a hub that the installed `evhub init` created at T0 (alive TTL 5 minutes),
    its log on STORE (default: the JSONL file)."""
    root.mkdir()
    ok(run("init", root, *(store.init_args() if store else []), env={"EVHUB_NOW": at(0)}))
    return root


@pytest.fixture
def hub_dir(tmp_path: Path, store: HubStore) -> Path:
    """A folder holding a freshly initialised hub."""
    return init_hub(tmp_path / "repo", store)


@pytest.fixture
def evhub(hub_dir: Path) -> Runner:
    """A runner for the installed `evhub`, working in `hub_dir`; each call returns the CompletedProcess."""
    return Runner(hub_dir)
