"""The hot commands (`heartbeat`, `claim`, `msg send`) answered without typer say what the CLI says.

An agent runs them in a loop from its shell, so their plain command lines skip typer's start-up
(`evhub._entry`); each line below runs both ways, on two hubs kept step for step alike, and must
print the same, exit the same and leave the same log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clock import at
from command import clean_env, log_bytes, ok, run

from evhub._entry import hot_call

# Through the CLI itself (typer), as the console script ran every command line before.
VIA_TYPER = "import sys; from evhub._cli import main; sys.argv[0] = 'evhub'; main()"

LINES: list[tuple[list[str], dict[str, str]]] = [
    (["heartbeat", "-s", "alice"], {}),
    (["heartbeat", "--status", "writing tests", "--session", "alice"], {}),
    (["--json", "heartbeat", "-s", "alice"], {}),
    (["heartbeat", "--session=alice", "--status=", "--json"], {}),
    (["heartbeat"], {"EVHUB_SESSION": "alice"}),
    (["heartbeat"], {}),
    (["heartbeat", "-s", "bob"], {"EVHUB_SESSION": "alice"}),
    (["heartbeat", "-s", "carol", "--on-behalf"], {"EVHUB_SESSION": "alice"}),
    (["claim", "api", "-s", "alice"], {}),
    (["claim", "api", "-s", "carol"], {}),
    (["--json", "claim", "api", "-s", "carol"], {}),
    (["claim", "db", "--ttl", "5m", "-s", "alice", "--json"], {}),
    (["claim", "db", "--ttl", "soon", "-s", "alice"], {}),
    (["claim", "web", "-s", "nobody"], {}),
    (["msg", "send", "staging is up", "-s", "alice"], {}),
    (["msg", "send", "for you\tonly", "--to", "carol", "-s", "alice", "--json"], {}),
    (["msg", "send", "", "-s", "alice"], {}),
    (["msg", "send", "hi", "--to", "", "-s", "alice"], {}),
]


def _both(hubs: tuple[Path, Path], args: list[str], env: dict[str, str]
          ) -> tuple[subprocess.CompletedProcess[str], ...]:
    hot = run(*args, env={"EVHUB_NOW": at(0), **env}, cwd=hubs[0])
    cli = subprocess.run([sys.executable, "-c", VIA_TYPER, *args], capture_output=True, text=True,
                         env=clean_env({"EVHUB_NOW": at(0), **env}), cwd=hubs[1], timeout=60)
    return hot, cli


def test_each_hot_line_prints_exits_and_writes_as_the_cli_does(tmp_path: Path) -> None:
    hubs = (tmp_path / "hot", tmp_path / "cli")
    for root in hubs:
        root.mkdir()
        ok(run("init", cwd=root, env={"EVHUB_NOW": at(0)}))
        for sid in ("alice", "carol"):
            ok(run("hello", sid, cwd=root, env={"EVHUB_NOW": at(0)}))
    for args, env in LINES:
        assert hot_call(args) is not None, args  # the line is a hot one: it was answered without typer
        hot, cli = _both(hubs, args, env)
        assert (hot.returncode, hot.stdout, hot.stderr.replace(str(hubs[0]), "HUB")) == \
            (cli.returncode, cli.stdout, cli.stderr.replace(str(hubs[1]), "HUB")), args
    lines = [log.splitlines() for log in map(log_bytes, hubs)]
    assert [len(log) for log in lines] == [len(lines[0])] * 2 and len(lines[0]) > 8


@pytest.mark.parametrize("args", [
    ["heartbeat", "--help"], ["claim", "-h"], ["claim"], ["claim", "a", "b"], ["claim", "-x"],
    ["heartbeat", "-s", "a", "-s", "b"], ["msg", "send", "--", "-dash"], ["msg", "send", "-dash"],
    ["msg", "list"], ["heartbeat", "--status"], ["heartbeat", "-s=alice"], ["--version", "heartbeat"],
    ["status"], [],
])
def test_any_other_line_is_left_to_the_cli(args: list[str]) -> None:
    assert hot_call(args) is None


def test_a_hot_line_never_loads_typer(tmp_path: Path) -> None:
    ok(run("init", cwd=tmp_path, env={"EVHUB_NOW": at(0)}))
    ok(run("hello", "alice", cwd=tmp_path, env={"EVHUB_NOW": at(0)}))
    script = ("import sys; from evhub.__main__ import main; sys.argv = ['evhub', 'heartbeat', '-s', 'alice']; main(); "
              "print(sorted({'typer', 'pydantic', 'evhub._cli'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env({"EVHUB_NOW": at(0)}), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
