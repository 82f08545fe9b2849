"""The command line's edge, without typer: how a command prints its answer, its warnings and its error,
and which hub it opens.  The CLI (`_cli`) and the commands answered without typer (`_entry`: the hot
ones an agent runs in a loop) both print through here, so a command says the same either way."""

from __future__ import annotations

import os
import re
import sys
from typing import Any, NoReturn

import msgspec

from ._documents import one_line
from ._errors import BadInput, CorruptLog, EvhubError
from ._hub import Hub
from ._results import Claimed
from ._values import parse_duration

# Control characters would let text from the log drive the reader's terminal.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Place:
    """The global options of a command line: the hub folder (--hub) and --on-behalf."""

    hub_dir: str | None = None
    on_behalf = False


opened: list[Hub] = []  # the hubs this command opened: their warnings are printed when it ends


def out(text: str) -> None:
    sys.stdout.write(CONTROL.sub("\N{REPLACEMENT CHARACTER}", text) + "\n")


def out_stored(raw: bytes) -> None:
    """A line of the log as it is stored: JSON escapes the controls that could drive a terminal (C0);
    the rest (U+0085, U+2028...) is the text's, and a reader of the log gets it unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(raw if raw.endswith(b"\n") else raw + b"\n")


def out_json(doc: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")


def warn(hub: Hub) -> None:
    """Print the hub's warnings (once) on stderr."""
    for w in hub.warnings:
        say(w)
    hub.warnings.clear()


def say(warning: str) -> None:
    """Print one warning on stderr."""
    sys.stderr.write(f"warning: {CONTROL.sub('?', warning)}\n")


def hub() -> Hub:
    """The hub this command works on; its warnings are printed when the command ends."""
    h = Hub.find(Place.hub_dir)
    # EVHUB_SESSION is the shell's own session (the hook sets it for each agent): --session naming
    # another one acts for it, which needs --on-behalf.
    h.caller, h.on_behalf = os.environ.get("EVHUB_SESSION") or None, Place.on_behalf
    opened.append(h)
    return h


def need_session(session: str | None) -> str:
    if not session:
        raise BadInput("no session: pass --session ID or set EVHUB_SESSION")
    return session


def duration(value: str | None) -> int | None:
    return None if value is None else parse_duration(value)


def said_done(json: bool, events: list[Any], message: str) -> None:
    if json:
        out_json({"events": [e.number for e in events]})
    elif events:
        out(f"{message} (seq {events[-1].number})")
    else:
        out(f"{message} (nothing changed)")


def said_claimed(claimed: Claimed, json: bool, what: str, **extra: str) -> None:
    """A claim's outcome: its token, and a takeover in words (whom from, and why its claim was stale)."""
    if json:
        out_json({**extra, **claimed._asdict()})
    elif claimed.took_over_from is None:
        out(f"claimed {what} (token {claimed.token})")
    else:
        out(f"claimed {what} (token {claimed.token}), taking it over from {claimed.took_over_from} "
            f"({claimed.took_over_because})")


# The hot commands, as both the CLI and the typer-free entry (_entry) run them.


def heartbeat(session: str | None, status: str, json: bool) -> None:
    said_done(json, hub().heartbeat(need_session(session), status), "heartbeat recorded")


def claim(session: str | None, priority: str, ttl: str | None, json: bool) -> None:
    said_claimed(hub().claim(need_session(session), priority, duration(ttl)), json, priority)


def send(session: str | None, text: str, to: str, json: bool) -> None:
    seq = hub().send(need_session(session), text, to)
    if json:
        out_json({"seq": seq})
    else:
        out(f"sent #{seq} to {to}")


def fail(error: EvhubError, json: bool = False) -> NoReturn:
    said_error(str(error), error.exit_code, json)


def said_error(text: str, code: int, json: bool) -> NoReturn:
    """The one line an error is: `error: TEXT`, or under --json `{"error": TEXT, "exit": CODE}`."""
    if json:
        sys.stderr.write(msgspec.json.encode({"error": text, "exit": code}).decode() + "\n")
    else:
        sys.stderr.write(f"error: {CONTROL.sub('?', one_line(text))}\n")
    raise SystemExit(code)


def finished() -> None:
    """A command that ran to its end: the warnings of every hub it opened, and exit 4 when an answer came
    from before a damaged line."""
    for h in opened:
        warn(h)
    if any(h.damage is not None for h in opened):
        raise SystemExit(CorruptLog.exit_code)
