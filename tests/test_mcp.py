"""`evhub mcp`, driven by the MCP SDK's own client over stdio: the server is a real `evhub mcp` process."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from command import EVHUB, Runner, clean_env
from mcp import ClientSession, StdioServerParameters, stdio_client

TOOLS = {"hello", "heartbeat", "claim", "release", "milestone_create", "milestone_claim", "milestone_step",
         "milestone_show", "msg_send", "inbox", "wait_for_messages", "status", "recall", "log", "why"}


@asynccontextmanager
async def server(root: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=EVHUB, args=["mcp"], cwd=str(root), env=clean_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
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
            status = await tools("status")
            assert {c["priority"] for c in status["claims"]} == {"api", mid["milestone"]}
            claims = (await tools("log", type="claim", session="alice", limit=10))["events"]
            assert [e["priority"] for e in claims] == ["api", mid["milestone"]]
            assert [row["action"] for row in (await tools("why", priority="api"))["history"]] == ["claimed"]
            await tools("release", priority="api", session="alice", done=True)
            # errors carry the CLI's message
            assert "unknown milestone" in await tools.error("milestone_show", milestone="nope")
            assert "between 1 and" in await tools.error("log", limit=0)
            assert "no session" in await tools.error("heartbeat")

    run(main)
    # the CLI sees what the tools did, in the same log
    assert "session-1" in evhub.ok("sessions").stdout


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
            assert "between 0 and 600" in await tools.error("wait_for_messages", session="bob", timeout_s=601)

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
