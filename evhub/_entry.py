"""The commands an agent waits for, without typer: the console script (evhub.__main__) sends every
`evhub [--hub DIR] hook [--agent NAME]` and every `evhub [--hub DIR] mcp` here (`--hub DIR` may come
after the command name too), and the CLI's own `hook` command (reached by `hook --help`) comes here too.

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
