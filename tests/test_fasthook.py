"""The hook's fast path (issue 15, item 5), driven as Claude Code drives it: `evhub hook` processes fed
recorded payloads.  Which path answered is read from `python -X importtime`: the full path loads the
hub (SQLite among it); the fast path loads none of typer, rich, sqlite3 or the Hub."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clock import at
from command import EVHUB, Runner, clean_env, init_hub
from test_hook import context, hook, payload, silent, types

HEAVY = ("typer", "rich", "sqlite3", "evhub._hub")


@pytest.fixture
def hub(tmp_path: Path) -> Runner:
    """A hub whose log is a JSONL file (on PostgreSQL the fast path never answers)."""
    return Runner(init_hub(tmp_path / "repo"))


def traced(root: Path, stdin: bytes, now: str, *args: str,
           before: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[bytes], bool]:
    """`evhub BEFORE hook ARGS` fed STDIN at NOW, as test_hook.hook runs it, under `python -X importtime`;
    the process (its stderr without the import lines) and whether it loaded the hub."""
    done = subprocess.run([sys.executable, "-X", "importtime", EVHUB, *before, "hook", *args], input=stdin,
                          env=clean_env({"EVHUB_NOW": now}), cwd="/", capture_output=True, timeout=60)
    lines = done.stderr.decode().splitlines()
    modules = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
    loaded = any(m == heavy or m.startswith(heavy + ".") for m in modules for heavy in HEAVY)
    rest = "".join(line + "\n" for line in lines if not line.startswith("import time:")).encode()
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, rest), loaded


def fast(root: Path, name: str, now: str) -> None:
    """The hook event NAME at NOW, answered by the fast path: nothing said, nothing loaded."""
    done, loaded = traced(root, payload(name, root), now)
    assert silent(done) == "" and not loaded, done.stderr


def full(root: Path, name: str, now: str) -> subprocess.CompletedProcess[bytes]:
    """The hook event NAME at NOW, answered by the full path."""
    done, loaded = traced(root, payload(name, root), now)
    assert done.returncode == 0 and loaded, done.stderr
    return done


def started(hub: Runner) -> None:
    """An agent session that joined (session-1), and whose first tool call beat `working` by the full
    path, which left the stamp the fast path answers from."""
    context(hook(hub.root, payload("session_start_startup", hub.root), at(0)), "SessionStart")
    assert silent(full(hub.root, "post_tool_use", at(1))) == ""
    assert types(hub)[-1] == "heartbeat"


def test_a_throttled_tool_call_or_prompt_loads_nothing_and_writes_nothing(hub: Runner) -> None:
    started(hub)
    hub.ok("hello", "bob", now=at(2))
    hub.ok("claim", "docs", session="bob", now=at(3))
    log = hub.log_bytes()
    for name, t in (("post_tool_use", 5), ("user_prompt_submit", 20), ("post_tool_use", 29)):
        fast(hub.root, name, at(t))
    assert hub.log_bytes() == log


def test_a_heartbeat_due_is_written(hub: Runner) -> None:
    started(hub)
    fast(hub.root, "post_tool_use", at(30))  # 29 s after the last beat, at(1)
    silent(full(hub.root, "post_tool_use", at(31)))
    assert types(hub)[-2:] == ["heartbeat", "heartbeat"]
    fast(hub.root, "user_prompt_submit", at(32))


def test_a_status_changed_since_is_beaten_back(hub: Runner) -> None:
    started(hub)
    hub.ok("heartbeat", "--status", "reviewing", session="session-1", now=at(2))  # the agent, in its shell
    silent(full(hub.root, "post_tool_use", at(3)))
    assert [s["status"] for s in json.loads(hub.ok("sessions", "--json", now=at(4)).stdout)] == ["working"]
    silent(hook(hub.root, payload("stop", hub.root), at(5)))
    silent(full(hub.root, "user_prompt_submit", at(6)))
    assert [s["status"] for s in json.loads(hub.ok("sessions", "--json", now=at(7)).stdout)] == ["working"]
    fast(hub.root, "post_tool_use", at(8))


def test_a_message_to_the_session_or_to_all_is_pushed(hub: Runner) -> None:
    started(hub)
    hub.ok("hello", "bob", now=at(2))
    hub.ok("msg", "send", "rebase on main", "--to", "session-1", session="bob", now=at(3))
    assert "rebase on main" in context(full(hub.root, "post_tool_use", at(4)), "PostToolUse")
    hub.ok("msg", "send", "lunch", session="bob", now=at(5))
    assert "lunch" in context(full(hub.root, "user_prompt_submit", at(6)), "UserPromptSubmit")
    fast(hub.root, "post_tool_use", at(7))


def test_a_message_from_the_session_or_to_another_is_not(hub: Runner) -> None:
    started(hub)
    hub.ok("hello", "bob", now=at(2))
    hub.ok("hello", "carol", now=at(3))
    hub.ok("msg", "send", "to carol only", "--to", "carol", session="bob", now=at(4))
    fast(hub.root, "post_tool_use", at(5))
    hub.ok("msg", "send", "my own news", session="session-1", now=at(6))
    assert silent(full(hub.root, "post_tool_use", at(7))) == ""  # the session's own event: it looks again
    fast(hub.root, "post_tool_use", at(8))


def test_a_log_rewritten_rewound_or_being_written_is_left_to_the_full_path(tmp_path: Path) -> None:
    for name in ("rewritten", "rewound", "written into"):
        hub = Runner(init_hub(tmp_path / name))
        started(hub)
        lines = hub.log_path.read_bytes().splitlines(keepends=True)
        if name == "rewritten":
            # The stamp's last event, rewritten in place to the same length: only its bytes tell.
            last = lines[-1].index(b'"id":"') + len(b'"id":"') + 25  # its id's last character
            lines[-1] = lines[-1][:last] + (b"2" if lines[-1][last:last + 1] == b"1" else b"1") + lines[-1][last + 1:]
        elif name == "rewound":
            lines.pop()
        else:
            lines.append(b'{"type":"message_posted","seq":')  # a write under way (or cut short): no verdict
        hub.log_path.write_bytes(b"".join(lines))
        done = full(hub.root, "post_tool_use", at(2))
        assert done.stdout == b"", done.stdout


def test_the_hook_never_fails_the_agent_and_keys_the_agent_it_is_told(hub: Runner) -> None:
    started(hub)
    stamps = list((hub.root / "SESSIONS" / "events" / "hooks").glob("claude-*.json"))
    assert len(stamps) == 1
    stamps[0].write_bytes(b"{not a stamp")
    silent(full(hub.root, "post_tool_use", at(2)))  # a damaged stamp is no verdict
    fast(hub.root, "post_tool_use", at(3))  # and the full path left a good one
    # The hub named by the global --hub, whatever the event's cwd says.
    done, loaded = traced(hub.root, payload("post_tool_use", Path("/")), at(4), before=("--hub", str(hub.root)))
    assert silent(done) == "" and not loaded, done.stderr
    for args in (["--agent"], ["--bogus"], ["--agent="]):
        done, _ = traced(hub.root, payload("post_tool_use", hub.root), at(4), *args)
        assert done.returncode == 0 and done.stdout == b"", done
        assert len(done.stderr.decode().splitlines()) == 1 and "nothing done" in done.stderr.decode(), done.stderr
    done, _ = traced(hub.root, payload("session_start_startup", hub.root, session_id="codex-thread-1"), at(5),
                     "--agent", "codex")
    context(done, "SessionStart")
    attached = json.loads(hub.log_bytes().splitlines()[-1])
    assert (attached["type"], attached["agent"], attached["agent_session"]) == ("agent_attached", "codex",
                                                                                  "codex-thread-1")
    silent(hook(hub.root, payload("session_end", hub.root), at(6)))
    assert not stamps[0].exists(), "a session that ended leaves no stamp behind"
