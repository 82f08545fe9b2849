"""README.md is true: its console samples run and print what it shows, every evhub command it shows
elsewhere parses, and its other samples say what the code does.

A sample is a ```console block: `$ COMMAND` lines, each followed by what it prints (stdout and stderr
as a terminal shows them). The blocks of one README section are one story (a block can join another
section's: see _sections), run in order in one scratch folder: "A day with three sessions" in a git
repository, the adoption of tests/seedfolders/messy/, "Where the hub lives" in one with worktrees,
Codex's install, and the hook, MCP server and shell of "The MCP server" (through the MCP Inspector,
skipped as test_mcp_inspector.py is when it is not installed). Command N of a story runs at its own
fixed moment (EVHUB_NOW, see `moment`), so times and ages are exact. Output may differ from the
README only where the README says it does:
- a line `...` stands for lines left out ("trimmed where it says `...`");
- `/home/me/` and `/tmp/` stand for the scratch folder of the test.
A command whose sample shows no `error:` line must exit 0.

When an output changes on purpose, the failure names each README line whose sample differs and shows
what was expected and what the command printed: paste the latter over the former, or run this file
with EVHUB_README_FIX=1 to have it do so (for every sample but trimmed ones), then read the diff.

Not checked here: the demo's sample (its race changes it from run to run, and a run takes seconds;
test_demo.py checks the story).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer.main
from clock import at, fixed_now
from command import EVHUB, GIT_ENV, clean_env, ok, run
from test_mcp_inspector import inspector

from evhub import _events as ev
from evhub._cli import app, main

README = Path(__file__).parent.parent / "README.md"
PLACES = re.compile(r"/home/me/|/tmp/")  # the README's stand-ins for the test's scratch folder


@dataclass
class Command:
    line: int  # of `$ ...` in README.md, 1-based
    text: str
    expected: list[str] = field(default_factory=list)
    output_line: int = 0  # where EXPECTED starts

    def trimmed(self) -> bool:
        return "..." in self.expected


@dataclass
class Block:
    story: str
    commands: list[Command]


STORY = re.compile(r"<!-- story: (.+) -->")


def _sections() -> Iterator[tuple[str, int, list[str]]]:
    """(story, first line, lines) of each fenced block of README.md, with the language tag as the first
    line. A block's story is its section's title, unless a `<!-- story: NAME -->` line comes between
    the section's title and the block (a sample that goes on with another section's story)."""
    section, story, block, start = "", "", None, 0
    for n, line in enumerate(README.read_text().splitlines(), 1):
        if block is None:
            if line.startswith("## "):
                section = story = line[3:]
            elif named := STORY.fullmatch(line.strip()):
                story = named[1]
            elif line.startswith("```"):
                block, start = [line[3:]], n
        elif line.startswith("```"):
            yield story, start, block
            block, story = None, section
        else:
            block.append(line)


def console_blocks() -> list[Block]:
    blocks = []
    for story, start, lines in _sections():
        if lines[0] != "console":
            continue
        commands: list[Command] = []
        for n, line in enumerate(lines[1:], start + 1):
            if line.startswith("$ "):
                commands.append(Command(n, line[2:], output_line=n + 1))
            elif commands and commands[-1].text.endswith("\\"):
                commands[-1].text = commands[-1].text[:-1] + line.strip()
                commands[-1].output_line = n + 1
            else:
                assert commands, f"README.md:{n}: a console block starts with a `$ ` command"
                commands[-1].expected.append(line)
        blocks.append(Block(story, commands))
    return blocks


def moment(n: int) -> str:
    """When the Nth command of a story runs: a little over a second after the one before."""
    return at(n * 1.1 + 0.483921)


def matches(expected: list[str], actual: str) -> bool:
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, actual) is not None


class Story:
    """Runs the commands of one README story in SCRATCH's ROOT, collecting every mismatch."""

    def __init__(self, scratch: Path, root: Path, tools: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, shown_as: str = "/home/me/",
                 clock: Callable[[int], str] = moment) -> None:
        self.scratch, self.root = scratch, root
        self.clock = clock  # when the Nth command runs
        self.shown_as = shown_as  # how the README names SCRATCH in this story's outputs
        self.tools = tools or {}  # a program the README runs one way (npx NAME) and the tests another
        self.env = env or {}
        self.n = 0
        self.status = 0
        self.failures: list[str] = []
        self.fixes: list[tuple[Command, str]] = []

    def here(self, text: str) -> str:
        return PLACES.sub(lambda m: f"{self.scratch}/", text)

    def command(self, text: str) -> str:
        # The README's paths first: a tool's own path may itself be under /tmp/ (a clone in CI).
        text = self.here(text)
        for shown, used in self.tools.items():
            text = text.replace(shown, used)
        return text

    def run(self, block: Block) -> None:
        for cmd in block.commands:
            self.n += 1
            done = subprocess.run(["bash", "-c", f"(exit {self.status}); {self.command(cmd.text)}"], cwd=self.root,
                                  env=clean_env({**GIT_ENV, **self.env, "EVHUB_NOW": self.clock(self.n)}), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.status = done.returncode
            expected = [self.here(line) for line in cmd.expected]
            actual = done.stdout.replace(f"{self.scratch}/", self.shown_as)
            if not matches(expected, done.stdout):
                self.fixes.append((cmd, actual))
                self.failures.append(f"README.md:{cmd.line}: $ {cmd.text}\n--- the README shows:\n"
                                     + "".join(f"{line}\n" for line in cmd.expected)
                                     + f"--- the command printed (exit {done.returncode}):\n{actual}")
            elif done.returncode != 0 and not any(line.startswith(("error:", '{"error":')) for line in cmd.expected):
                self.failures.append(f"README.md:{cmd.line}: $ {cmd.text}\nexited {done.returncode}:\n{actual}")

    def check(self) -> None:
        """Fail naming every mismatch; with EVHUB_README_FIX=1, first write what the commands printed
        into README.md in place of the samples that differ (not of trimmed ones: trim those by hand)."""
        if self.fixes and os.environ.get("EVHUB_README_FIX") == "1":
            lines = README.read_text().splitlines(keepends=True)
            for cmd, actual in sorted(self.fixes, key=lambda f: -f[0].line):
                if not cmd.trimmed():
                    start = cmd.output_line - 1
                    lines[start:start + len(cmd.expected)] = actual.splitlines(keepends=True)
            README.write_text("".join(lines))
        assert not self.failures, "\n\n".join(self.failures)


def blocks_of(story: str) -> list[Block]:
    found = [b for b in console_blocks() if b.story == story]
    assert found, f"README.md has no console sample in the story {story!r}"
    return found


def git(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["git", *map(str, args)], cwd=cwd, env=clean_env(GIT_ENV), check=True, capture_output=True)


def test_every_console_sample_belongs_to_a_story_this_file_runs() -> None:
    """A new sample in another section is run only once a test here runs its story (or the sample
    names one that a test runs: `<!-- story: A day with three sessions -->` on a line before it)."""
    told = {b.story for b in console_blocks()}
    assert told <= {"A day with three sessions", "From the seed's folder to evhub", "Where the hub lives",
                    "Clones: one hub across machines, through git", "Using evhub with Claude Code and Codex",
                    "The MCP server"}, told


def test_a_day_with_three_sessions(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    git("init", "-q", cwd=shop)
    story = Story(tmp_path, shop)
    for block in blocks_of("A day with three sessions"):
        story.run(block)
    story.check()


def test_adopting_a_hand_kept_folder(tmp_path: Path) -> None:
    """The messy folder of tests/seedfolders/, adopted at T0 (as test_adopt.py adopts it)."""
    app_dir = tmp_path / "app"
    shutil.copytree(Path(__file__).parent / "seedfolders" / "messy", app_dir / "SESSIONS")
    story = Story(tmp_path, app_dir, clock=lambda n: at(0))
    for block in blocks_of("From the seed's folder to evhub"):
        story.run(block)
    story.check()


def test_where_the_hub_lives(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    git("init", "-q", cwd=app_dir)
    git("commit", "-q", "--allow-empty", "-m", "start", cwd=app_dir)
    git("worktree", "add", "-q", ".claude/worktrees/w1", cwd=app_dir)
    git("worktree", "add", "-q", tmp_path / "app-feature", cwd=app_dir)
    ok(run("init", cwd=app_dir))
    story = Story(tmp_path, app_dir)
    for block in blocks_of("Where the hub lives"):
        story.run(block)
    story.check()


def test_clones(tmp_path: Path) -> None:
    """Two clones of a repository whose remote is a bare one in the scratch folder."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", remote, cwd=tmp_path)
    git("clone", "-q", remote, "app", cwd=tmp_path)
    app_dir = tmp_path / "app"
    git("commit", "-q", "--allow-empty", "-m", "start", cwd=app_dir)
    git("push", "-q", "origin", "main", cwd=app_dir)
    story = Story(tmp_path, app_dir)
    for block in blocks_of("Clones: one hub across machines, through git"):
        story.run(block)
    story.check()


# -- every other evhub command the README shows parses ---------------------------------------------

# A shown command holding one of these is a synopsis (`evhub claim P [--ttl]`, `evhub handshake
# propose/accept`), not a command to run.
SYNOPSIS = re.compile(r"[\[\]<>|…{}]|\.\.\.|\$\(|(?:^|\s)[a-z-]+/[a-z]")


def shown_commands() -> list[tuple[int, str]]:
    """(line, argv text) of each `evhub ...` the README shows outside console samples: in bash blocks,
    and in inline code."""
    found: list[tuple[int, str]] = []
    in_bash = False
    for n, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_bash = not in_bash and line[3:] == "bash"
            continue
        pieces = [line.split(" #")[0]] if in_bash else re.findall(r"`([^`]+)`", line)
        for piece in pieces:
            for part in re.split(r"&&|;|\|\|", piece):
                words = part.strip().split()
                while words and "=" in words[0]:  # VAR=value before the command
                    words.pop(0)
                if words[:1] == ["evhub"] and len(words) > 1 and not SYNOPSIS.search(part):
                    found.append((n, " ".join(words)))
    return found


def parse(argv: list[str]) -> str | None:
    """None when evhub parses ARGV, else what it says (it would exit 2). The CLI's own entry point runs
    in this process with --help added, which ends every command before it acts (and before its values
    are read: an unknown command or option is what this finds). An option shown without its value takes
    --help for it, and its command runs: in the test's empty folder it finds no hub (exit 1, not 2)."""
    kept = _registered(app)  # main() drops every command but the one named, for speed: put them back
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said), \
                mock.patch.object(sys, "argv", ["evhub", *argv, "--help"]):
            main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        _restore(kept)
    return None if code != 2 else said.getvalue().strip()


def _registered(group: typer.Typer) -> list[tuple[typer.Typer, list[Any], list[Any]]]:
    kept = [(group, list(group.registered_commands), list(group.registered_groups))]
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            kept += _registered(sub.typer_instance)
    return kept


def _restore(kept: list[tuple[typer.Typer, list[Any], list[Any]]]) -> None:
    for group, commands, groups in kept:
        group.registered_commands, group.registered_groups = commands, groups


def test_every_evhub_command_shown_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no hub here: should --help be taken for an option's value, the command fails
    monkeypatch.delenv("EVHUB_HUB", raising=False)
    monkeypatch.delenv("EVHUB_SESSION", raising=False)
    shown = shown_commands()
    assert len(shown) > 20, shown  # the extraction still finds the README's commands
    lines = README.read_text().splitlines()
    wrong = [f"README.md:{line}: {text}\n  {error}" for line, text in shown
             if (error := parse(shlex.split(text)[1:])) is not None
             and not re.search(r"(?i:no such command) '[A-Z_]+'", error)  # a metavar: `evhub help COMMAND`
             and "did you mean" not in lines[line - 1]]  # a mistake shown with evhub's answer to it
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("text", ["evhub nosuch", "evhub claim api --nosuch", "evhub msg nosuch"])
def test_a_command_evhub_would_refuse_does_not_parse(text: str) -> None:
    assert parse(shlex.split(text)[1:]) is not None


def test_codex(tmp_path: Path) -> None:
    root = tmp_path / "your-repo"
    root.mkdir()
    ok(run("init", cwd=root))
    story = Story(tmp_path, root, shown_as="/tmp/")
    for block in blocks_of("Using evhub with Claude Code and Codex"):
        story.run(block)
    story.check()


def test_the_mcp_server(tmp_path: Path) -> None:
    """The hook, the MCP server (through the Inspector, as test_mcp_inspector.py finds it; the server is
    handed the story's clock) and the shell acting as one session, and a refused `log` type."""
    cli = inspector()
    root = tmp_path / "your-repo"
    root.mkdir()
    ok(run("init", env={"EVHUB_NOW": at(0)}, cwd=root))
    payload = (Path(__file__).parent / "hooks" / "session_start_startup.json").read_text()
    (root / "session_start.json").write_text(payload.replace("{cwd}", str(root)))
    story = Story(tmp_path, root, tools={"npx @modelcontextprotocol/inspector --cli":
                                         f'{cli} --cli -e EVHUB_NOW="$EVHUB_NOW"'},
                  env={"PATH": f"{cli.parent}{os.pathsep}{clean_env()['PATH']}"}, shown_as="/tmp/")
    for block in blocks_of("The MCP server"):
        story.run(block)
    story.check()


# -- the other samples ------------------------------------------------------------------------------


def fenced(lang: str, section: str) -> list[tuple[int, list[str]]]:
    found = [(start, lines[1:]) for story, start, lines in _sections() if lines[0] == lang and story == section]
    assert found, f"README.md has no {lang} block in section {section!r}"
    return found


def test_the_python_api_sample_runs_and_prints_what_its_comments_say(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `print(...)  # OUTPUT` line prints OUTPUT (`...` there stands for what varies)."""
    [(start, lines)] = fenced("python", "The Python API")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with fixed_now(at(0)), contextlib.redirect_stdout(printed):
        exec(compile("\n".join(lines), "README.md", "exec"), {})
    said = [(start + n, line.partition("  # ")[2]) for n, line in enumerate(lines, 1)
            if "print(" in line.partition("  # ")[0]]
    wrong = [f"README.md:{line}: the comment says {comment!r}, the call printed {out!r}"
             for (line, comment), out in zip(said, printed.getvalue().splitlines(), strict=True)
             if not re.fullmatch(".*".join(map(re.escape, comment.split("..."))), out)]
    assert not wrong, "\n".join(wrong)


def test_the_log_format_sample_is_events_as_the_log_stores_them() -> None:
    [(start, lines)] = fenced("json", "The log format")
    for n, line in enumerate(lines, start + 1):
        event = ev.decode(line.encode() + b"\n")
        assert ev.encode(event) == line.encode() + b"\n", f"README.md:{n}: not as evhub writes it"


def test_the_commands_said_to_take_no_json_are_those_that_take_none() -> None:
    def leaves(cmd: object, path: str) -> Iterator[tuple[str, object]]:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            yield path, cmd
        for name, sub in (subs or {}).items():
            yield from leaves(sub, f"{path} {name}".strip())

    without = {path for path, cmd in leaves(typer.main.get_command(app), "")
               if not any("--json" in p.opts for p in getattr(cmd, "params", []))}
    [said] = [line for line in README.read_text().splitlines() if "take no `--json`:" in line]
    assert set(re.findall(r"`([a-z ]+)`", said.partition("take no `--json`:")[2])) == without, said


def test_the_hooks_push_sample_is_what_the_hook_injects(tmp_path: Path) -> None:
    """session-1 (an agent's session, joined by its SessionStart hook) gets bob's two messages on its next prompt."""
    from evhub import Hub

    [(start, lines)] = [b for b in fenced("text", "Using evhub with Claude Code and Codex") if "unread" in b[1][0]]
    ok(run("init", cwd=tmp_path))
    hooks = Path(__file__).parent / "hooks"

    def hook(payload: str, n: int) -> str:
        text = (hooks / payload).read_text().replace("{cwd}", str(tmp_path))
        done = subprocess.run([EVHUB, "hook"], input=text, cwd=tmp_path, env=clean_env({"EVHUB_NOW": at(n)}),
                              capture_output=True, text=True, timeout=60)
        return str(json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]) if done.stdout else ""

    hook("session_start_startup.json", 1)
    with fixed_now(at(2)):
        hub = Hub(tmp_path)
        hub.hello("bob")
        hub.send("bob", "the schema changed, rebase first", to="session-1")
        hub.send("bob", "lunch at noon")
        hub.flush()
    assert hook("user_prompt_submit.json", 3).splitlines() == lines, f"README.md:{start}: the push differs"
