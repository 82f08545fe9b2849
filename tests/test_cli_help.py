"""The CLI's parsing, help and error format, through the installed `evhub`: help without typer's raw
metavars and with an example that runs, `help`, `-h`, `--version`, one-line usage errors with valid
suggestions, errors as JSON under --json, --hub after the command, `eval "$(evhub hello ID)"`."""

from __future__ import annotations

import json
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from clock import at
from command import EVHUB, clean_env, finished, init_hub, ok, run, started
from typer._click.core import Command

from evhub._cli import parser
from evhub._entry import hook_call

# typer's own display of a parameter: `<bool>`, `<list[str]>`, `{priority}`, `[[ID]]`, `x>=1`.
RAW_METAVAR = re.compile(r"<(?:bool|str|int|float|Path|list\[\w+\])>|\{[a-z_]+\}|\[\[|\bx[<>]=")
EXAMPLE = re.compile(r"^\s*Example: (.+)$", re.MULTILINE)

# The examples not run here, and why: the rest run, in this order, in one shell (ORDER below).
NOT_RUN = {
    ("demo",): "a realistic run of real processes: it takes seconds; tests/test_demo.py runs it",
    ("mcp",): "the example is claude's own command (`claude mcp add`); tests/test_mcp.py serves",
    ("sync",): "it needs a git remote and clones of the repository: tests/test_sync.py runs it",
}
# The commands whose examples run, in order, in one hub; shell lines between them set up what the
# next example needs (another session's proposal, a file to import).
ORDER: list[tuple[str, ...] | str] = [
    ("init",),
    "evhub hello session-1 >/dev/null && evhub hello session-2 >/dev/null",
    ("hello",),
    'test "$EVHUB_SESSION" = alice',
    ("heartbeat",), ("focus",), ("note",), ("claim",), ("claims",), ("sessions",), ("status",), ("recall",),
    ("save",),
    ("milestone", "create"), ("milestone", "claim"), ("milestone", "step"), ("milestone", "add-step"),
    ("milestone", "list"),
    ("milestone", "show"),
    "EVHUB_SESSION=session-1 evhub handshake propose bob >/dev/null",
    "EVHUB_SESSION=session-2 evhub handshake propose carol >/dev/null",
    "EVHUB_SESSION=session-2 evhub handshake accept bob >/dev/null",
    ("handshake", "accept"), ("handshake", "reject"), ("handshake", "propose"), ("handshake", "list"),
    ("msg", "send"), ("msg", "inbox"), ("msg", "list"),
    ("log",), ("why",), ("release",), ("replay",), ("verify",), ("repair",), ("where",), ("export",),
    ("import",), "cp backup.jsonl laptop.jsonl", ("merge",),
    ("migrate",), ("timeline",), ("watch",), ("sql",), ("install",), ("hook",), ("bye",),
]


def commands() -> dict[tuple[str, ...], Command]:
    """Every command and group of the app, by the words that name it (the app itself is ())."""
    found: dict[tuple[str, ...], Command] = {}

    def walk(cmd: Command, path: tuple[str, ...]) -> None:
        found[path] = cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(parser(), ())
    return found


def helps(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, ...], str]:
    """The help of every command and group, as `evhub ... --help` prints it (in this process: a process
    for each would cost the suite seconds; the test below runs a few)."""
    app = parser()
    found = {}
    for path in commands():
        assert app.main([*path, "--help"], prog_name="evhub", standalone_mode=False) == 0
        found[path] = capsys.readouterr().out
    return found


def test_every_help_is_plain_and_every_command_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    shown, docs = helps(capsys), commands()
    groups = {p[:-1] for p in shown if p}
    for path, text in shown.items():
        assert not RAW_METAVAR.search(text), (path, RAW_METAVAR.findall(text))
        if path not in groups:
            examples = EXAMPLE.findall(docs[path].help or "")
            assert len(examples) == 1 and f"evhub {' '.join(path)}" in examples[0], (path, text)
            assert f"Example: {examples[0]}" in text, (path, text)  # on one line, as it is to be typed
    # The installed command prints the same, for -h, --help and `help COMMAND`.
    short, long, spelled = started("-h"), started("--help"), started("help", "milestone", "step")
    assert ok(finished(short)).stdout == ok(finished(long)).stdout == shown[()]
    assert ok(finished(spelled)).stdout == shown[("milestone", "step")]
    assert "Usage: evhub milestone step [OPTIONS] ID N STATUS" in shown[("milestone", "step")]


def test_every_example_runs(tmp_path: Path) -> None:
    examples = {p: found[0] for p, c in commands().items() if p and (found := EXAMPLE.findall(c.help or ""))}
    ordered = [p for p in ORDER if isinstance(p, tuple)]
    assert sorted([*ordered, *NOT_RUN]) == sorted(examples) and len(set(ordered)) == len(ordered)
    script = "\n".join(["set -e", *(examples[p] if isinstance(p, tuple) else p for p in ORDER)])
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=clean_env({"EVHUB_FSYNC": "0"}),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "error" not in done.stderr, done.stderr
    assert (tmp_path / "history.html").is_file() and (tmp_path / "copy" / "SESSIONS").is_dir()


def test_version_and_mistakes_get_one_line_and_valid_advice(tmp_path: Path) -> None:
    procs = {
        "version": started("--version"), "V": started("-V"),
        "help typo": started("hel"), "group typo": started("milestone", "crate"), "nonsense": started("zzzz"),
        "option typo": started("claim", "api", "--tll", "5m"),
        "missing": started("claim"), "missing json": started("claim", "--json"),
        "no hub json": started("status", "--hub", tmp_path / "nowhere", "--json"),
        "no hub": started("status", "--hub", tmp_path / "nowhere"),
    }
    done = {k: finished(p) for k, p in procs.items()}
    assert ok(done["version"]).stdout == ok(done["V"]).stdout == f"evhub {version('evhub')}\n"
    said = {k: (p.returncode, p.stderr) for k, p in done.items() if k not in ("version", "V")}
    assert said["help typo"] == (2, "error: no such command 'hel': did you mean `evhub hello`?\n")
    assert said["group typo"] == (2, "error: no such command 'crate': did you mean `evhub milestone create`?\n")
    assert said["nonsense"] == (2, "error: no such command 'zzzz'; `evhub -h` lists the commands\n")
    assert said["option typo"] == (2, "error: no such option: --tll: did you mean --ttl?\n")
    usage = "missing argument 'PRIORITY' (usage: evhub claim [OPTIONS] PRIORITY; `evhub claim -h` for help)"
    assert said["missing"] == (2, f"error: {usage}\n")
    assert said["missing json"][0] == 2 and json.loads(said["missing json"][1]) == {"error": usage, "exit": 2}
    nowhere = tmp_path / "nowhere"
    assert said["no hub"] == (1, f"error: no hub at {nowhere}: run `evhub init {nowhere}`\n")
    assert json.loads(said["no hub json"][1]) == {"error": f"no hub at {nowhere}: run `evhub init {nowhere}`",
                                                  "exit": 1}
    for k in ("no hub json", "missing json"):
        assert len(said[k][1].splitlines()) == 1 and done[k].stdout == ""


def test_hub_after_the_command_and_eval_of_hello(tmp_path: Path) -> None:
    root = init_hub(tmp_path / "repo")
    env = clean_env({"EVHUB_NOW": at(1)})
    said = subprocess.run(["bash", "-c", f'eval "$("{EVHUB}" hello dave --hub "{root}")" && '
                                         f'echo "$EVHUB_SESSION"'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert said.returncode == 0 and said.stdout == "dave\n", said.stderr
    after = ok(run("sessions", "--hub", root, "--json", cwd=tmp_path, env=env))
    before = ok(run("--json", "--hub", root, "sessions", cwd=tmp_path, env=env))
    assert [s["id"] for s in json.loads(after.stdout)] == ["dave"] and after.stdout == before.stdout
    # --on-behalf, a global option too, after the command as well.
    ok(run("hello", "erin", "--hub", root, cwd=tmp_path, env=env))
    acted = run("note", "hi", "-s", "erin", "--on-behalf", "--hub", root, cwd=tmp_path,
                env={**env, "EVHUB_SESSION": "dave"})
    assert ok(acted).stdout.startswith("note added")
    # The hook's own parser (no typer) takes --hub on either side of `hook` too.
    assert hook_call(["hook", "--hub", "d", "--agent", "codex"]) == hook_call(["--hub", "d", "hook", "--agent=codex"])
    assert hook_call(["hook", "--hub=d"]) == ("d", "claude")
    assert hook_call(["hook", "--hub"]) == "--hub needs a DIR"


def test_export_and_timeline_say_what_they_wrote_as_json(tmp_path: Path) -> None:
    root = init_hub(tmp_path / "repo")
    env = {"EVHUB_NOW": at(1)}
    exported = started("export", "--out", tmp_path / "log.jsonl", "--json", cwd=root, env=env)
    drawn = started("timeline", "--out", tmp_path / "t.html", "--json", cwd=root, env=env)
    assert json.loads(ok(finished(exported)).stdout) == {"events": 1, "out": str(tmp_path / "log.jsonl")}
    assert json.loads(ok(finished(drawn)).stdout) == {"out": str(tmp_path / "t.html"), "sessions": 0,
                                                      "priorities": 0, "steps": 0, "messages": 0}
