"""`evhub mcp`, driven by the MCP SDK's own client over stdio: the server is a real `evhub mcp` process."""

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from clock import at
from command import EVHUB, Runner, clean_env, error_line
from command import run as evhub_run
from mcp import ClientSession, StdioServerParameters, stdio_client
from test_hook import AGENT_SESSION, context, hook, payload, types

from evhub._entry import mcp_call
from evhub._values import STEP_STATUSES

TOOLS = {"hello", "heartbeat", "claim", "release", "milestone_create", "milestone_claim", "milestone_step",
         "milestone_add_steps",
         "milestone_show", "msg_send", "inbox", "wait_for_messages", "status", "recall", "log", "why"}


@asynccontextmanager
async def server(root: Path, env: Mapping[str, str] | None = None, errlog: TextIO = sys.stderr,
                 ) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=EVHUB, args=["mcp"], cwd=str(root), env=clean_env(env))
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


class Tools:
    """Calls to one server's tools: `await tools("claim", priority="api", session="alice")`."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def __call__(self, name: str, **arguments: Any) -> dict[str, Any]:
        result = await self.session.call_tool(name, arguments)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return result.structured_content

    async def error(self, name: str, **arguments: Any) -> str:
        result = await self.session.call_tool(name, arguments)
        assert result.is_error, result.structured_content
        text: str = result.content[0].text  # type: ignore[union-attr]
        return text


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(120):
            await main()

    anyio.run(bounded)


def test_every_coordination_action_is_a_tool_with_structured_results(evhub: Runner) -> None:
    async def main() -> None:
        async with server(evhub.root) as session:
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
            tools = Tools(session)
            assert await tools("hello", session="alice", role="backend") == {"session": "alice"}
            assert (await tools("hello"))["session"] == "session-1"
            claimed = await tools("claim", priority="api", session="alice")
            assert claimed["token"] > 0
            assert "api is held by alice" in await tools.error("claim", priority="api", session="session-1")
            await tools("heartbeat", session="alice", status="building")
            await tools("msg_send", text="api is mine", session="alice")
            assert [m["text"] for m in (await tools("inbox", session="session-1", peek=True))["messages"]] == \
                ["api is mine"]
            recalled = await tools("recall", session="session-1")
            assert [m["text"] for m in recalled["unread"]] == ["api is mine"], "recall leaves them unread"
            assert len((await tools("inbox", session="session-1"))["messages"]) == 1
            assert (await tools("inbox", session="session-1"))["messages"] == []
            mid = (await tools("milestone_create", title="Ship it", steps=["build", "ship"], session="alice"))
            await tools("milestone_claim", milestone=mid["milestone"], session="alice")
            shown = await tools("milestone_step", milestone=mid["milestone"], step=1, status="done", session="alice")
            assert shown["progress"] == {"done": 1, "total": 2}
            added = await tools("milestone_add_steps", milestone=mid["milestone"], steps=["announce"], session="alice")
            assert [s["text"] for s in added["steps"]] == ["build", "ship", "announce"]
            status = await tools("status")
            assert {c["priority"] for c in status["claims"]} == {"api", mid["milestone"]}
            claims = (await tools("log", type="claim", session="alice", limit=10))["events"]
            assert [e["priority"] for e in claims] == ["api", mid["milestone"]]
            assert [row["action"] for row in (await tools("why", priority="api"))["history"]] == ["claimed"]
            await tools("release", priority="api", session="alice", done=True)
            # errors carry the CLI's message
            assert "unknown milestone" in await tools.error("milestone_show", milestone="nope")
            assert "greater than or equal to 1" in await tools.error("log", limit=0)
            assert "no session" in await tools.error("heartbeat")

    run(main)
    # the CLI sees what the tools did, in the same log
    assert "session-1" in evhub.ok("sessions").stdout


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # the schema, whatever the store
def test_every_parameter_is_described_closed_sets_are_enums_and_reads_are_marked(evhub: Runner) -> None:
    """An LLM sees only the schema: before, no parameter had a description, step status was prose, no tool
    was marked read-only and serverInfo.version was empty."""
    async def main() -> None:
        async with server(evhub.root) as session:
            assert session.server_info is not None and session.server_info.version == version("evhub")
            tools = {t.name: t for t in (await session.list_tools()).tools}
            for tool in tools.values():
                assert tool.description and "  " not in tool.description, tool.name
                for name, prop in tool.input_schema["properties"].items():
                    assert prop.get("description"), f"{tool.name}.{name} has no description"
            claim = tools["claim"].input_schema["properties"]
            assert claim["session"]["description"].startswith("Your session id. Defaults to you")
            assert "token" in tools["release"].input_schema["properties"]["token"]["description"]
            assert {"type": "integer", "minimum": 1} in claim["ttl_s"]["anyOf"]
            assert tools["milestone_step"].input_schema["properties"]["status"]["enum"] == list(STEP_STATUSES)
            read_only = {n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
            assert read_only == {"status", "recall", "log", "why", "milestone_show"}
            assert all(t.annotations and t.annotations.destructive_hint is False
                       for n, t in tools.items() if n not in read_only)

    run(main)


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # the rules are the core's, whatever the store
def test_bad_arguments_are_refused_as_the_cli_refuses_them_and_change_nothing(evhub: Runner) -> None:
    """ttl_s=-5 was recorded and `log type=bogus` answered nothing (`evhub log --type clam` printed nothing and
    exited 0): the core refuses both now, for every caller, with one line naming what was meant."""
    evhub.ok("hello", "alice")
    evhub.ok("claim", "api", session="alice")
    before = evhub.log_bytes()

    async def main() -> None:
        async with server(evhub.root) as session:
            tools = Tools(session)
            assert "ttl_s" in await tools.error("claim", priority="web", session="alice", ttl_s=-5)
            assert "unknown event type 'clam': did you mean claim?" in await tools.error("log", type="clam")
            assert "unknown event type 'bogus': use one of hello" in await tools.error("log", type="bogus")
            assert "'in-progress'" in await tools.error("milestone_step", milestone="m", step=1, status="finished",
                                                        session="alice")
            assert [e["type"] for e in (await tools("log", type="claim"))["events"]] == ["priority_claimed"]

    run(main)
    assert evhub.log_bytes() == before
    cli = evhub("log", "--type", "clam")
    assert error_line(cli, 1) == "error: unknown event type 'clam': did you mean claim?" and cli.stdout == ""
    assert "'-5s'" in error_line(evhub("claim", "web", "--ttl", "-5s", session="alice"), 1)
    assert evhub.log_bytes() == before


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # one store suffices: the hook's tests cover both
def test_one_agent_reaching_the_hub_by_hook_mcp_and_shell_is_one_session(evhub: Runner, tmp_path: Path) -> None:
    """Claude Code gives its stdio MCP servers CLAUDE_CODE_SESSION_ID; the server ignored it, so an agent was
    session-1 to its hooks and shell and another session to its MCP tools, each with half its claims."""
    env_file = tmp_path / "claude-env"
    card = context(hook(evhub.root, payload("session_start_startup", evhub.root), at(1), env_file), "SessionStart")
    assert "you are session session-1" in card
    elsewhere = tmp_path / "elsewhere"  # the server finds the hub from CLAUDE_PROJECT_DIR, as Claude Code starts it
    elsewhere.mkdir()

    def agent(agent_session: str) -> dict[str, str]:
        return {"CLAUDE_CODE_SESSION_ID": agent_session, "CLAUDE_PROJECT_DIR": str(evhub.root), "EVHUB_NOW": at(2)}

    async def main() -> None:
        async with server(elsewhere, agent(AGENT_SESSION)) as session:
            tools = Tools(session)
            assert (await tools("claim", priority="api"))["token"] > 0
            assert (await tools("hello"))["session"] == "session-1", "hello names the agent's session"
            assert (await tools("recall"))["session"]["id"] == "session-1"
        # the server may start (and be called) before the agent's SessionStart hook runs
        async with server(elsewhere, agent("second-agent")) as session:
            await Tools(session)("claim", priority="docs")

    run(main)
    shell = subprocess.run(["bash", "-c", f"source {env_file} && evhub claim other"], cwd=elsewhere,
                           env=clean_env({"EVHUB_NOW": at(3)}), capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    second = payload("session_start_startup", evhub.root, session_id="second-agent")
    assert "you are session session-2" in context(hook(evhub.root, second, at(4)), "SessionStart")
    claims = json.loads(evhub.ok("claims", "--json", now=at(5)).stdout)
    assert sorted((c["priority"], c["session"]) for c in claims) == [
        ("api", "session-1"), ("docs", "session-2"), ("other", "session-1")]
    registered = [e for e in map(json.loads, evhub.log_bytes().decode().splitlines())
                  if e["type"] == "session_registered"]
    assert [(e["session"], e.get("resume", False)) for e in registered] == [
        ("session-1", False), ("session-2", False), ("session-2", True)], "the hook resumes what the server joined"
    assert types(evhub).count("agent_attached") == 2


def test_status_lists_the_first_limit_of_each_with_counts_so_a_big_hub_does_not_fill_a_context(
        evhub: Runner) -> None:
    async def main() -> None:
        async with server(evhub.root) as session:
            tools = Tools(session)
            for n in range(1, 5):
                await tools("hello", session=f"agent-{n}")
                await tools("claim", priority=f"task-{n}", session=f"agent-{n}")
            some = await tools("status", limit=2)
            assert [c["priority"] for c in some["claims"]] == ["task-1", "task-2"]
            assert [s["id"] for s in some["sessions"]] == ["agent-1", "agent-2"]
            assert some["sessions"][0]["holds"] == ["task-1"]
            assert some["counts"] == {"sessions": 4, "claims": 4, "milestones": 0}
            for every in (await tools("status"), await tools("status", limit=0)):
                assert [c["priority"] for c in every["claims"]] == [f"task-{n}" for n in range(1, 5)]
                assert every["counts"]["claims"] == 4
            assert "greater than or equal to 0" in await tools.error("status", limit=-1)

    run(main)


def test_the_views_follow_the_calls_while_the_server_waits_and_hold_every_call_when_it_exits(evhub: Runner) -> None:
    """A call leaves the views for later when they were refreshed less than a second ago (rendering every
    view costs as much as the hub is big); the server refreshes them itself soon after, though no call
    comes, and at its exit."""
    views = evhub.root / "SESSIONS" / "PRIORITIES"

    async def main() -> None:
        async with server(evhub.root) as session:
            tools = Tools(session)
            await tools("hello", session="alice")  # the first call refreshes the views
            await tools("claim", priority="api", session="alice")  # within a second of it: left for later
            with anyio.fail_after(60):
                while not (views / "api.lock").exists():
                    await anyio.sleep(0.05)  # polling for the server's own refresh
            await tools("claim", priority="db", session="alice")
            await tools("claim", priority="docs", session="alice")
        assert {p.name for p in views.iterdir()} >= {"api.lock", "db.lock", "docs.lock"}

    run(main)


def test_the_server_starts_without_the_command_line_interface(evhub: Runner, tmp_path: Path) -> None:
    """An agent waits for `evhub mcp` to start once per session: the server is not typer's CLI."""
    imports = tmp_path / "imports"

    async def main() -> None:
        with imports.open("w") as errlog:
            async with server(evhub.root, {"PYTHONPROFILEIMPORTTIME": "1"}, errlog) as session:
                assert (await Tools(session)("hello", session="alice")) == {"session": "alice"}

    run(main)
    loaded = {line.split("|")[-1].strip() for line in imports.read_text().splitlines()
              if line.startswith("import time:")}
    assert {"evhub._mcp", "evhub._hub"} <= loaded, "the import times were read"
    assert not loaded & {"typer", "evhub._cli"}


def test_the_server_reads_its_command_line_as_the_cli_does_and_leaves_the_rest_to_it(tmp_path: Path) -> None:
    assert mcp_call(["mcp"]) == (None,)
    assert mcp_call(["mcp", "--hub", "d"]) == mcp_call(["--hub=d", "mcp"]) == mcp_call(["mcp", "--hub=d"]) == ("d",)
    for other in (["mcp", "--help"], ["mcp", "-h"], ["mcp", "x"], ["mcp", "--hub"], ["--on-behalf", "mcp"],
                  ["status"], []):
        assert mcp_call(other) is None, other  # for the CLI: its help, its usage errors, its commands
    # No hub to serve: the CLI says so, as for any command.
    assert "no hub here or above" in error_line(evhub_run("mcp", cwd=tmp_path), 1)
    assert "no hub at" in error_line(evhub_run("--hub", tmp_path, "mcp", cwd=tmp_path), 1)
    assert "unexpected extra argument" in error_line(evhub_run("mcp", "x", cwd=tmp_path), 2)


def test_several_servers_racing_for_one_claim_have_one_winner(evhub: Runner) -> None:
    racers = [f"agent-{n}" for n in range(1, 5)]
    for sid in racers:
        evhub.ok("hello", sid)
    outcomes: dict[str, bool] = {}

    started: list[str] = []
    all_started = anyio.Event()

    async def race(sid: str, go: anyio.Event) -> None:
        async with server(evhub.root) as session:
            started.append(sid)
            if len(started) == len(racers):
                all_started.set()
            await go.wait()
            result = await session.call_tool("claim", {"priority": "deploy", "session": sid})
            outcomes[sid] = not result.is_error
            if result.is_error:
                assert "deploy is held by" in result.content[0].text  # type: ignore[union-attr]

    async def main() -> None:
        go = anyio.Event()
        async with anyio.create_task_group() as tg:
            for sid in racers:
                tg.start_soon(race, sid, go)
            with anyio.move_on_after(60):
                await all_started.wait()  # every server started and initialized
            assert all_started.is_set(), f"only {started} of the servers started within 60 s"
            go.set()

    run(main)
    assert sorted(outcomes) == racers
    assert sum(outcomes.values()) == 1, outcomes
    winner = next(sid for sid, won in outcomes.items() if won)
    assert f"deploy\t{winner}" in evhub.ok("claims").stdout


def test_waiting_for_messages_wakes_when_one_is_sent_from_another_process(evhub: Runner) -> None:
    """On PostgreSQL the wait is woken by the append's notification; on a JSONL hub by polling the file."""
    evhub.ok("hello", "alice")
    evhub.ok("hello", "bob")
    waited: dict[str, Any] = {}

    async def main() -> None:
        async with server(evhub.root) as session:
            tools = Tools(session)
            started = time.monotonic()
            assert await tools("wait_for_messages", session="bob", timeout_s=0.5) == {"messages": []}
            assert time.monotonic() - started >= 0.5
            assert "less than or equal to 600" in await tools.error("wait_for_messages", session="bob", timeout_s=601)

            async def send_later() -> None:
                await anyio.sleep(1)
                await anyio.to_thread.run_sync(lambda: evhub.ok("msg", "send", "wake up", "--to", "bob",
                                                                session="alice", now=None))
            async with anyio.create_task_group() as tg:
                tg.start_soon(send_later)
                started = time.monotonic()
                waited.update(await tools("wait_for_messages", session="bob", timeout_s=60))
                waited["after_s"] = time.monotonic() - started
            assert (await tools("inbox", session="bob"))["messages"] == []  # they were marked read

    run(main)
    assert [m["text"] for m in waited["messages"]] == ["wake up"]
    assert waited["after_s"] >= 1  # it waited for the message, and returned with it well before timeout_s


@pytest.mark.parametrize("store", ["jsonl"], indirect=True)  # damages the file itself
def test_a_tool_reading_a_damaged_log_says_so_rather_than_answer_in_part(evhub: Runner) -> None:
    """The CLI exits 4 on a read that stopped at a damaged line; the MCP tools answered as if whole."""
    evhub.ok("hello", "alice")
    evhub.ok("claim", "api", session="alice")
    lines = evhub.log_path.read_bytes().splitlines(keepends=True)
    evhub.log_path.write_bytes(b"".join(lines[:2] + [b"not an event\n"] + lines[2:]))
    (evhub.sessions_dir / "events" / "readmodel.sqlite3").unlink()

    async def main() -> None:
        async with server(evhub.root) as session:
            tools = Tools(session)
            for name, arguments in (("status", {}), ("recall", {"session": "alice"})):
                said = await tools.error(name, **arguments)
                assert "line 3" in said and "evhub repair" in said, said

    run(main)
    evhub.ok("repair")

    async def repaired() -> None:
        async with server(evhub.root) as session:
            assert {c["priority"] for c in (await Tools(session)("status"))["claims"]} == {"api"}

    run(repaired)
