"""The installed `evhub` command, driven in subprocesses as a user drives it.

`run(*args, env=..., cwd=...)` runs it with a clean environment (no EVHUB_* variable leaks in from
the caller); `ok` and `error_line` judge what it did; a `Runner` is bound to one hub folder. Racing
processes start held at a gate (`gated`) and are released together (`release`); independent ones run
side by side (`started`, `finished`). `log_bytes` and `checked_log` read a hub's log whatever store holds
it; `init_hub` makes a hub at T0 (through the API); `built_once` copies setup that many tests share.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clock import at, fixed_now
from stores import HubStore

if TYPE_CHECKING:
    from evhub import Hub

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


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without EVHUB_* settings or an agent's own session (when the suite runs
    inside one), the evhub command's folder first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVHUB_", "CLAUDE_", "CODEX_"))}
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
    return finished(started(*args, env=env, cwd=cwd), timeout)


def started(
    *args: str | Path, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.Popen[str]:
    """The installed `evhub ARGS`, started and not waited for: commands that cannot affect one another
    run side by side (the suite's wall time is mostly these processes starting), `finished` collects each."""
    return subprocess.Popen([EVHUB, *map(str, args)], env=clean_env(env), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """What PROC did, once it exited (killed, and TimeoutExpired raised, when it runs past TIMEOUT seconds)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def together(
    root: Path, argvs: Sequence[Sequence[str | Path]], now: str = at(1)
) -> list[subprocess.CompletedProcess[str]]:
    """Start one `evhub` process for each argv, all before waiting for any, then collect them in order."""
    procs = [started(*argv, env={"EVHUB_NOW": now}, cwd=root) for argv in argvs]
    return [finished(p) for p in procs]


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
        return run(*args, env=self._env(session, now, env), cwd=cwd or self.root)

    @contextlib.contextmanager
    def api(self, now: str | None = None) -> Iterator[Hub]:
        """The Python API on this hub, its clock at NOW (default T0), its views written on leaving as a
        process's are at exit: for a test's setup, which a process per step makes slow and checks nothing."""
        from evhub import Hub

        with fixed_now(now or at(0)):
            hub = Hub(self.root)
            yield hub
            hub.flush()

    @staticmethod
    def _env(session: str | None, now: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
        full = {"EVHUB_NOW": now or at(0)}
        if session is not None:
            full["EVHUB_SESSION"] = session
        full.update(env or {})
        return full

    def ok(self, *args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        return ok(self(*args, **kw))  # type: ignore[arg-type]

    def start(
        self,
        *args: str | Path,
        session: str | None = None,
        now: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """As a call, but started and not waited for (see `started`)."""
        return started(*args, env=self._env(session, now, env), cwd=self.root)

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


_built: dict[Callable[[Path], object], Path] = {}


def built_once(build: Callable[[Path], object], dest: Path) -> Path:
    """DEST (made when missing) holding a copy of the folder BUILD(folder) fills, BUILD run once per test
    run: setup that many tests share and none of them checks."""
    if build not in _built:
        folder = Path(tempfile.mkdtemp(prefix="evhub-built-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        build(folder)
        _built[build] = folder
    shutil.copytree(_built[build], dest, symlinks=True, dirs_exist_ok=True)
    return dest


def init_hub(root: Path, store: HubStore | None = None) -> Path:
    """ROOT, made and holding a hub created at T0 (alive TTL 5 minutes), its log on STORE (default: the
    JSONL file). Through the Python API: `evhub init` is Hub.init and a print, and its own tests
    (test_cli.py, test_store.py) run it as a process; a process per hub here would cost every test one."""
    from evhub import Hub

    root.mkdir()
    with fixed_now(at(0)):
        Hub.init(root, store=store.settings() if store else None)
    return root


# A git identity and no system config, for the tests that drive real git.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def js(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a command that succeeded printed."""
    return json.loads(ok(proc).stdout)

