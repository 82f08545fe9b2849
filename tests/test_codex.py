"""Codex: `evhub install codex` merged into a project's own files and undone exactly, and `evhub hook
--agent codex` fed recorded Codex hook inputs as Codex runs it (the command from the installed
hooks.json, through a shell, JSON on stdin).

The payloads (tests/hooks/codex_*.json) follow Codex's hook engine, openai/codex
codex-rs/hooks/src/schema.rs (the `*CommandInput` structs) and its generated
codex-rs/hooks/schema/generated/*.command.input.schema.json: SessionStart's `source` is one of
startup, resume, clear, compact; turn events add `turn_id`; there is no SessionEnd.  Codex reads
`hookSpecificOutput.additionalContext` (session-start.command.output.schema.json) and gives a
SessionStart hook CODEX_ENV_FILE (and CLAUDE_ENV_FILE, the same file) to write exports into
(codex-rs/hooks/src/events/session_start_env_file.rs).  The hook logic does not depend on the
store, so these run on the JSONL one only.
"""

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from clock import at
from command import EVHUB, Runner, clean_env, error_line, init_hub, ok, run
from test_hook import context, payload, silent, types
from test_install import files

from evhub._install import CODEX_HOOK_COMMAND, CODEX_HOOKS

CODEX_SESSION = "019d036d-c7fa-72d2-b6fd-78878bfe34e4"
USER_HOOKS = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done", "timeout": 5}]}]}}
USER_CONFIG = """# the team's Codex settings
model = "gpt-5-codex"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
"""
USER_AGENTS_MD = "# Agents\n\nRun `cargo test` before you commit.\n"


@pytest.fixture
def evhub(tmp_path: Path) -> Runner:
    return Runner(init_hub(tmp_path / "repo"))


def user_project(project: Path) -> dict[str, bytes]:
    (project / ".codex").mkdir(parents=True)
    (project / ".codex" / "hooks.json").write_text(json.dumps(USER_HOOKS, indent=2) + "\n")
    (project / ".codex" / "config.toml").write_text(USER_CONFIG)
    (project / "AGENTS.md").write_text(USER_AGENTS_MD)
    return files(project)


def test_install_merges_with_the_users_files_twice_changes_nothing_and_remove_restores_them(tmp_path: Path) -> None:
    before = user_project(tmp_path)
    ok(run("install", "codex", "--project", tmp_path))
    hooks = json.loads((tmp_path / ".codex" / "hooks.json").read_text())["hooks"]
    assert hooks["Stop"][0] == USER_HOOKS["hooks"]["Stop"][0]
    mine = {event: [g for g in groups if any(h["command"] == CODEX_HOOK_COMMAND for h in g["hooks"])]
            for event, groups in hooks.items()}
    assert {e for e, groups in mine.items() if len(groups) == 1} == set(CODEX_HOOKS)
    assert mine["SessionStart"][0]["matcher"] == "startup|resume|clear|compact"
    assert all(g[0]["hooks"][0]["timeout"] <= 10 for g in mine.values()), "Codex's own default is 600 s"
    config = tomllib.loads((tmp_path / ".codex" / "config.toml").read_text())
    assert config["model"] == "gpt-5-codex" and config["mcp_servers"]["docs"]["command"] == "npx"
    assert config["mcp_servers"]["evhub"] == {"command": "evhub", "args": ["mcp"], "cwd": str(tmp_path)}
    md = (tmp_path / "AGENTS.md").read_text()
    assert md.startswith(USER_AGENTS_MD) and "evhub claim" in md

    installed = files(tmp_path)
    assert "nothing to change" in ok(run("install", "codex", "--project", tmp_path)).stdout
    assert files(tmp_path) == installed
    ok(run("install", "codex", "--remove", "--project", tmp_path))
    assert files(tmp_path) == before
    assert "nothing to change" in ok(run("install", "codex", "--remove", "--project", tmp_path)).stdout


def test_install_into_a_bare_project_and_remove_leave_nothing_behind(tmp_path: Path) -> None:
    ok(run("install", "codex", "--project", tmp_path))
    assert set(files(tmp_path)) == {".codex/hooks.json", ".codex/config.toml", "AGENTS.md"}
    ok(run("install", "codex", "--remove", "--project", tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("config", "why"), [
    ('model = "gpt-5-codex\n', "not valid TOML"),
    ('[mcp_servers.evhub]\ncommand = "my-evhub-fork"\n', "not evhub's"),
    ('mcp_servers = { docs = { command = "npx" } }\n', "does not fit"),  # an inline table cannot grow
])
def test_a_config_evhub_cannot_merge_into_is_refused_and_nothing_is_written(tmp_path: Path, config: str,
                                                                            why: str) -> None:
    user_project(tmp_path)
    (tmp_path / ".codex" / "config.toml").write_text(config)
    before = files(tmp_path)
    assert why in error_line(run("install", "codex", "--project", tmp_path), 1)
    assert files(tmp_path) == before


def codex(evhub: Runner, name: str, now: str, env_file: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed hook command run as Codex runs it: through a shell, in the session's cwd, JSON on stdin."""
    [group] = json.loads((evhub.root / ".codex" / "hooks.json").read_text())["hooks"]["Stop"]
    command = group["hooks"][0]["command"]  # the same for every event
    extra = {"EVHUB_NOW": now, **({"CODEX_ENV_FILE": str(env_file)} if env_file else {})}
    env = {k: v for k, v in clean_env(extra).items() if k != "CLAUDE_PROJECT_DIR"}
    return subprocess.run([os.environ.get("SHELL", "/bin/sh"), "-c", command], input=payload(name, evhub.root),
                          env=env, cwd=evhub.root, capture_output=True, timeout=60)


def test_a_codex_session_is_registered_as_codex_kept_alive_and_leaves_by_the_alive_ttl(evhub: Runner,
                                                                                      tmp_path: Path) -> None:
    ok(run("install", "codex", "--project", evhub.root))
    env_file = tmp_path / "codex-env"
    card = context(codex(evhub, "codex_session_start_startup", at(0), env_file), "SessionStart")
    assert "you are session session-1" in card
    assert env_file.read_text().startswith("export EVHUB_SESSION=session-1\n")
    attached = json.loads(evhub.log_bytes().decode().splitlines()[-1])
    assert (attached["type"], attached["agent"], attached["agent_session"]) == ("agent_attached", "codex",
                                                                                CODEX_SESSION)
    evhub.ok("hello", "bob", now=at(1))
    evhub.ok("msg", "send", "the exporter's API changed", "--to", "session-1", session="bob", now=at(2))
    assert "the exporter's API changed" in context(codex(evhub, "codex_post_tool_use", at(40)), "PostToolUse")
    silent(codex(evhub, "codex_user_prompt_submit", at(41)))
    silent(codex(evhub, "codex_stop", at(100)))
    assert types(evhub)[-1] == "heartbeat"
    # a compaction brings the same session back, with its card
    assert "you are session session-1" in context(codex(evhub, "codex_session_start_compact", at(120)),
                                                  "SessionStart")

    def session_1(now: str) -> dict[str, object]:
        [s] = [s for s in json.loads(evhub.ok("sessions", "--all", "--json", now=now).stdout) if s["id"] == "session-1"]
        return s

    # Codex has no SessionEnd: the session is alive until the hub's alive TTL (5 minutes) passes in silence
    assert session_1(at(120 + 300))["alive"] is True
    gone = session_1(at(120 + 301))
    assert gone["alive"] is False and gone["left"] is False


def test_an_unknown_agent_is_ignored_and_writes_nothing(evhub: Runner) -> None:
    log = evhub.log_bytes()
    start = payload("codex_session_start_startup", evhub.root)
    done = subprocess.run([EVHUB, "hook", "--agent", "gemini"], input=start, env=clean_env({"EVHUB_NOW": at(0)}),
                          cwd="/", capture_output=True, timeout=60)
    assert "unknown agent 'gemini'" in silent(done)
    assert evhub.log_bytes() == log
