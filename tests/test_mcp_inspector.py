"""`evhub mcp` driven by a client evhub did not write: the MCP Inspector's CLI (npm's
@modelcontextprotocol/inspector, as `npx @modelcontextprotocol/inspector --cli` runs it), one Inspector
process per call, each starting a real `evhub mcp` on a real hub.

`.ci/run` installs the pinned Inspector into .ci/node and names it in EVHUB_TEST_INSPECTOR; given that
name, a missing Inspector fails the test rather than skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from command import EVHUB, Runner, clean_env
from test_mcp import TOOLS

from evhub import Hub

LOCAL = Path(__file__).parent.parent / ".ci" / "node" / "node_modules" / ".bin" / "mcp-inspector"
TOOL_ERROR = 5  # the Inspector's exit status for a result with isError


def inspector() -> Path:
    named = os.environ.get("EVHUB_TEST_INSPECTOR")
    found = Path(named) if named else LOCAL
    if not found.is_file():
        if named:
            pytest.fail(f"EVHUB_TEST_INSPECTOR names {named}, which is not there: run .ci/run's npm install")
        pytest.skip("the MCP Inspector is not installed: .ci/run installs it into .ci/node")
    return found


class Inspector:
    """`evhub mcp` on the hub at ROOT, called through the Inspector CLI."""

    def __init__(self, root: Path) -> None:
        self.root, self.cli = root, inspector()

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The Inspector CLI run with ARGS (--method ...) against a fresh `evhub mcp`."""
        argv = [str(self.cli), "--cli", "--cwd", str(self.root), EVHUB, "mcp", *args]
        # The Inspector runs on Node: a node installed beside it (.ci/run's, when the system's is too old) first.
        env = clean_env({"PATH": f"{self.cli.parent}{os.pathsep}{clean_env()['PATH']}"})
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    def _call(self, tool: str, arguments: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        # Values are read as JSON where they parse (numbers, lists, booleans), else as strings.
        pairs = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in arguments.items()]
        return self("--method", "tools/call", "--tool-name", tool, *(["--tool-arg", *pairs] if pairs else []))

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        done = self._call(tool, arguments)
        assert done.returncode == 0, (tool, done.stdout, done.stderr)
        result = json.loads(done.stdout)
        assert result["isError"] is False, (tool, result)
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    def error(self, tool: str, **arguments: Any) -> str:
        done = self._call(tool, arguments)
        assert done.returncode == TOOL_ERROR, (tool, done.returncode, done.stdout, done.stderr)
        result = json.loads(done.stdout)
        assert result["isError"] is True
        text: str = result["content"][0]["text"]
        return text


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # the client is under test here, not the store
def test_the_inspector_lists_every_tool_and_calls_each_one(evhub: Runner) -> None:
    tools = Inspector(evhub.root)
    hub = Hub(evhub.root)  # the scene is set through the Python API: the Inspector is what is under test
    for sid in ("alice", "bob", "dave"):
        hub.hello(sid)
    hub.claim("alice", "api")
    hub.claim("alice", "locked")
    hub.create_milestone("alice", "Owned", milestone="owned", steps=["build"])
    hub.claim_milestone("alice", "owned")
    hub.create_milestone("alice", "Free", milestone="free", steps=["build"])
    hub.send("alice", "for dave", to="dave")

    listed = tools("--method", "tools/list", "--strict")  # --strict: exit 6 on a schema other clients reject
    assert listed.returncode == 0, listed.stderr
    schemas = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert set(schemas) == TOOLS
    assert schemas["status"]["annotations"]["readOnlyHint"] is True

    # Each call acts on its own things, so they run side by side (separate processes, one hub, its lock).
    calls: dict[str, dict[str, Any]] = {
        "hello": {"session": "carol", "role": "reviewer"},
        "heartbeat": {"session": "bob", "status": "testing"},
        "claim": {"priority": "web", "session": "bob", "ttl_s": 600},
        "release": {"priority": "api", "session": "alice", "done": True, "note": "merged"},
        "milestone_create": {"title": "Ship it", "steps": ["build", "ship"], "session": "bob"},
        "milestone_claim": {"milestone": "free", "session": "bob"},
        "milestone_step": {"milestone": "owned", "step": 1, "status": "in-progress", "session": "alice"},
        "milestone_show": {"milestone": "owned"},
        "milestone_add_steps": {"milestone": "free", "steps": ["ship"], "session": "bob"},
        "msg_send": {"text": "hello all", "session": "bob"},
        "inbox": {"session": "dave", "peek": True},
        "wait_for_messages": {"session": "dave", "timeout_s": 0},
        "status": {},
        "recall": {"session": "alice"},
        "log": {"type": "claim", "limit": 10},
        "why": {"priority": "locked"},
    }
    assert set(calls) == TOOLS
    with ThreadPoolExecutor(max_workers=4) as pool:
        called = {name: pool.submit(tools.call, name, **arguments) for name, arguments in calls.items()}
        refused = pool.submit(tools.error, "claim", priority="locked", session="bob")
        negative = pool.submit(tools.error, "claim", priority="web2", session="bob", ttl_s=-5)
    results = {name: future.result() for name, future in called.items()}

    assert results["hello"] == {"session": "carol"}
    assert results["claim"]["token"] > 0 and results["milestone_claim"]["token"] > 0
    assert results["release"] == {"priority": "api", "released": True}
    assert results["milestone_create"] == {"milestone": "ship-it"}
    assert results["milestone_step"]["steps"][0]["status"] == "in-progress"
    assert results["milestone_show"]["id"] == "owned"
    assert [s["text"] for s in results["milestone_add_steps"]["steps"]] == ["build", "ship"]
    assert "for dave" in [m["text"] for m in results["wait_for_messages"]["messages"]]
    assert "messages" in results["inbox"]  # empty or not: the wait beside it marks them read
    assert results["recall"]["session"]["id"] == "alice"
    assert {e["priority"] for e in results["log"]["events"]} >= {"api", "locked"}
    assert [row["action"] for row in results["why"]["history"]] == ["claimed"]
    assert "locked is held by alice" in refused.result()
    assert "ttl_s" in negative.result()
    claims = {(c.priority, c.session) for c in hub.state().claims.values()}
    assert claims == {("locked", "alice"), ("owned", "alice"), ("web", "bob"), ("free", "bob")}
