"""The commands an agent waits for, without typer: the console script (evhub.__main__) sends every
`evhub [--hub DIR] hook [--agent NAME]` and every `evhub [--hub DIR] mcp` here (`--hub DIR` may come
after the command name too), and the CLI's own `hook` command (reached by `hook --help`) comes here too.
So do the plain command lines of the commands an agent runs in a loop from its shell (`heartbeat`,
`claim`, `msg send`: HOT), which print what the CLI prints, through the same edge (_edge); anything
else on their command line (help, a usage error, an option given twice) goes to the CLI.

An agent runs the hook on every tool call, so its start-up is the agent's wait: this module imports
nothing but the standard library until it has the event, and loads the hub only when the fast path
(_fasthook) cannot answer.  A hook never blocks the agent: whatever goes wrong, it exits 0 with
nothing on stdout and one line on stderr.  An agent starts `evhub mcp` once per session and waits for
its first answer: the server loads the MCP SDK and the hub, not typer's CLI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

DEFAULT_AGENT = "claude"
LOCK_WAIT_S = "0.3"  # EVHUB_LOCK_TIMEOUT for a hook, unless the user set one


def _called(argv: Sequence[str], name: str) -> tuple[str | None, list[str]] | None:
    """(the hub folder of a `--hub DIR` before NAME, the words after NAME) when ARGV is NAME's command
    line with nothing but `--hub DIR` before it and no -h/--help after it; else None, for the CLI."""
    hub_dir: str | None = None
    words = iter(argv)
    for word in words:
        if word == name:
            break
        if word == "--hub":
            hub_dir = next(words, None)
            if hub_dir is None:
                return None
        elif word.startswith("--hub="):
            hub_dir = word.removeprefix("--hub=")
        else:
            return None
    else:
        return None
    rest = list(words)
    return None if "--help" in rest or "-h" in rest else (hub_dir, rest)


def hook_call(argv: Sequence[str]) -> tuple[str | None, str] | str | None:
    """For ARGV `hook [--agent NAME]` with `--hub DIR` before or after `hook`: (hub folder, agent); for
    another hook command line but `hook -h/--help`: what is wrong with it (a hook never fails on a
    usage error); else None, for the CLI."""
    called = _called(argv, "hook")
    if called is None:
        return None
    hub_dir, rest = called
    agent = DEFAULT_AGENT
    words = iter(rest)
    for word in words:
        name, given, value = word.partition("=")
        if name not in ("--agent", "--hub"):
            return f"unexpected {word!r}: the command is `evhub [--hub DIR] hook [--agent NAME]`"
        named = value if given else next(words, None)
        if not named:
            return f"{name} needs a {'NAME' if name == '--agent' else 'DIR'}"
        if name == "--agent":
            agent = named
        else:
            hub_dir = named
    return hub_dir, agent


def mcp_call(argv: Sequence[str]) -> tuple[str | None] | None:
    """For ARGV `mcp` with at most `--hub DIR` before or after it: (hub folder,); else None, for the CLI
    (its help, and its one-line usage errors)."""
    called = _called(argv, "mcp")
    if called is None:
        return None
    hub_dir, rest = called
    words = iter(rest)
    for word in words:
        if word == "--hub":
            hub_dir = next(words, None)
        elif word.startswith("--hub="):
            hub_dir = word.removeprefix("--hub=")
        else:
            return None
        if not hub_dir:
            return None
    return (hub_dir,)


# command words -> (how many arguments it takes, its own option, which takes a value)
HOT = {("heartbeat",): (0, "--status"), ("claim",): (1, "--ttl"), ("msg", "send"): (1, "--to")}
_FLAGS = ("--json", "--on-behalf")


class HotCall(NamedTuple):
    """A hot command's line, read: its command words, its arguments and its options by name."""

    command: tuple[str, ...]
    args: list[str]
    options: dict[str, str | bool]


def hot_call(argv: Sequence[str]) -> HotCall | None:
    """ARGV read when it is a hot command's plain line: global options (--hub, --on-behalf, --json) before
    it, then its arguments and options in any order, each option once, no argument that starts with a
    dash, no `--`, no help; else None, for the CLI (which says what is wrong with a line, and helps)."""
    words = list(argv)
    if "--" in words or "-h" in words or "--help" in words:
        return None
    options: dict[str, str | bool] = {}
    start = 0
    while start < len(words) and words[start].startswith("-"):
        start = _option(words, start, options, ("--hub",))
        if start < 0:
            return None
    command = next((c for c in HOT if tuple(words[start:start + len(c)]) == c), None)
    if command is None:
        return None
    wanted, own = HOT[command]
    args: list[str] = []
    at = start + len(command)
    while at < len(words):
        if not words[at].startswith("-"):
            args.append(words[at])
            at += 1
            continue
        at = _option(words, at, options, ("--hub", "--session", "-s", own))
        if at < 0:
            return None
    return HotCall(command, args, options) if len(args) == wanted else None


def _option(words: list[str], at: int, options: dict[str, str | bool], valued: Sequence[str]) -> int:
    """Read the option at WORDS[AT] into OPTIONS: where the next word is, or -1 when it is not one of
    VALUED (each taking a value, as `--name VALUE` or `--name=VALUE`) or _FLAGS, or is given twice."""
    name, given, value = words[at].partition("=")
    key = "--session" if name == "-s" else name
    if key in options:
        return -1
    if name in _FLAGS and not given:
        options[key] = True
        return at + 1
    if name not in valued or (given and name == "-s"):
        return -1
    if given:
        options[key] = value
        return at + 1
    if at + 1 >= len(words):
        return -1
    options[key] = words[at + 1]
    return at + 2


def hot(call: HotCall) -> None:
    """Run a hot command line as the CLI would, and print what it prints."""
    from . import _edge
    from ._errors import EvhubError

    json = bool(call.options.get("--json"))
    try:
        hub_dir = call.options.get("--hub")
        _edge.Place.hub_dir = hub_dir if isinstance(hub_dir, str) else None
        _edge.Place.on_behalf = bool(call.options.get("--on-behalf"))
        given = call.options.get("--session")
        session = given if isinstance(given, str) else os.environ.get("EVHUB_SESSION") or None  # typer's envvar rule
        own = call.options.get(HOT[call.command][1])
        value = own if isinstance(own, str) else None
        if call.command == ("heartbeat",):
            _edge.heartbeat(session, "" if value is None else value, json)
        elif call.command == ("claim",):
            _edge.claim(session, call.args[0], value, json)
        else:
            _edge.send(session, call.args[0], "all" if value is None else value, json)
    except EvhubError as e:
        _edge.fail(e, json)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    _edge.finished()


def mcp(hub_dir: str | None) -> bool:
    """Serve the hub at HUB_DIR over MCP until the client leaves; False, having done nothing, when there is
    no hub to serve (the CLI then says why, as it says every error)."""
    from ._errors import EvhubError
    from ._mcp import find, run

    try:
        hub = find(hub_dir)
    except EvhubError:
        return False
    run(hub)
    return True


def hook(hub_dir: str | None, agent: str) -> None:
    """Answer the hook event on stdin for AGENT: from the fast path when it is sure, else the full path's."""
    try:
        os.environ.setdefault("EVHUB_LOCK_TIMEOUT", LOCK_WAIT_S)  # a hook must not hold the agent up
        raw = sys.stdin.buffer.read()
        if _fast(raw, hub_dir, agent):
            return
        from ._hook import run

        stdout, stderr = run(raw, os.environ, hub_dir, agent=agent)
        sys.stdout.write(stdout)
        sys.stdout.flush()
        sys.stderr.write(stderr)
    except BaseException as e:  # noqa: BLE001 - an interrupt, a bug or a closed pipe: still no failure for the agent
        _say(f"evhub hook: gave up: {type(e).__name__}: {e}")
    finally:
        sys.stderr.flush()


def _fast(raw: bytes, hub_dir: str | None, agent: str) -> bool:
    """The fast path's verdict; any failure in it is only no verdict."""
    try:
        from ._fasthook import answer

        return answer(raw, os.environ, hub_dir, agent)
    except Exception:  # noqa: BLE001 - the full path decides, and reports what is wrong
        return False


def _say(line: str) -> None:
    try:
        sys.stderr.write(line.replace("\n", " ") + "\n")
    except Exception:  # noqa: BLE001 - no stderr left to say it on
        pass
