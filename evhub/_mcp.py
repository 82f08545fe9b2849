"""`evhub mcp`: the coordination actions as Model Context Protocol tools, served over stdio.

Every tool goes through the same Hub calls as the CLI (lock, catch up, decide, append), so the
CLI and any number of MCP servers share one hub safely.  The server keeps nothing of its own but
the open hub.  An evhub error comes back as a tool error carrying the CLI's message.
"""

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ._documents import message_dicts
from ._errors import BadInput, EvhubError
from ._hub import Hub
from ._values import now, read_time

T = TypeVar("T")
LOG_LIMIT_MAX = 1000
WAIT_MAX_S = 600
INSTRUCTIONS = (
    "evhub coordinates the agent sessions working on one repository. Say hello once to get your "
    "session id and pass it as `session` to every other tool. Claim a priority before you start work "
    "on it (a refusal names the live session holding it), release it when done, heartbeat while you "
    "work, read your inbox, and call recall after a context loss."
)


def build(hub: Hub) -> MCPServer:
    """The MCP server for HUB."""
    server = MCPServer("evhub", instructions=INSTRUCTIONS, log_level="WARNING")
    # Tools run in worker threads; one call at a time keeps the Hub's kept state consistent.
    serial = threading.Lock()

    def call(fn: Callable[[], T]) -> T:
        with serial:
            try:
                answer = fn()
            except EvhubError as e:
                raise ToolError(str(e)) from e
            finally:
                hub.warnings.clear()
            if hub.damage is not None:
                # An answer from before a damaged line is no whole answer: an agent must not act on it.
                raise ToolError(f"{hub.damage}: the log is damaged there; run `evhub repair`, then ask again")
            return answer

    def who(session: str | None) -> str:
        sid = session or os.environ.get("EVHUB_SESSION")
        if not sid:
            raise ToolError("no session: pass `session` (your id from hello)")
        return sid

    @server.tool()
    def hello(session: str | None = None, role: str = "", about: str = "", resume: bool = False) -> dict[str, Any]:
        """Register a session (no id: the first free session-N); resume=true to come back as the same one."""
        sid = call(lambda: hub.hello(session, role=role, about=about, resume=resume))
        return {"session": sid}

    @server.tool()
    def heartbeat(session: str | None = None, status: str = "") -> dict[str, Any]:
        """Tell the hub you are alive (and what you are doing)."""
        events = call(lambda: hub.heartbeat(who(session), status))
        return {"seq": events[-1].seq}

    @server.tool()
    def claim(priority: str, session: str | None = None, ttl_s: int | None = None) -> dict[str, Any]:
        """Claim a priority before working on it; refused while another live session holds it."""
        token = call(lambda: hub.claim(who(session), priority, ttl_s))
        return {"priority": priority, "token": token}

    @server.tool()
    def release(priority: str, session: str | None = None, done: bool = False, note: str = "",
                token: int | None = None) -> dict[str, Any]:
        """Release your claim on a priority (done=true lists it as completed)."""
        call(lambda: hub.release(who(session), priority, done=done, note=note, token=token))
        return {"priority": priority, "released": True}

    @server.tool()
    def milestone_create(title: str, steps: list[str], session: str | None = None, priority: str | None = None,
                         milestone: str | None = None) -> dict[str, Any]:
        """Create a milestone: multi-step work with a priority of its own."""
        mid = call(lambda: hub.create_milestone(who(session), title, milestone=milestone, priority=priority,
                                                steps=steps))
        return {"milestone": mid}

    @server.tool()
    def milestone_claim(milestone: str, session: str | None = None) -> dict[str, Any]:
        """Own a milestone and claim its priority."""
        token = call(lambda: hub.claim_milestone(who(session), milestone))
        return {"milestone": milestone, "token": token}

    @server.tool()
    def milestone_step(milestone: str, step: int, status: str, session: str | None = None, note: str = "",
                       token: int | None = None) -> dict[str, Any]:
        """Set step N (from 1) of a milestone to pending, in-progress, done, blocked or skipped."""
        call(lambda: hub.update_step(who(session), milestone, step, status, note=note, token=token))
        return milestone_show(milestone)

    @server.tool()
    def milestone_show(milestone: str) -> dict[str, Any]:
        """One milestone, step by step."""
        from ._documents import milestone_dict

        return call(lambda: milestone_dict(hub.milestone(milestone)))

    @server.tool()
    def msg_send(text: str, session: str | None = None, to: str = "all") -> dict[str, Any]:
        """Post a message to one session, or to all."""
        seq = call(lambda: hub.send(who(session), text, to=to))
        return {"seq": seq}

    @server.tool()
    def inbox(session: str | None = None, peek: bool = False) -> dict[str, Any]:
        """Your unread messages (to you or to all); they are then marked read unless peek=true."""
        return {"messages": call(lambda: message_dicts(hub.inbox(who(session), peek=peek)))}

    @server.tool()
    def wait_for_messages(session: str | None = None, timeout_s: float = 60) -> dict[str, Any]:
        """Wait until you have unread messages (then returned and marked read), or timeout_s passes (at most 600)."""
        if not 0 <= timeout_s <= WAIT_MAX_S:
            raise ToolError(f"timeout_s must be between 0 and {WAIT_MAX_S}")
        deadline = time.monotonic() + timeout_s
        listener = hub.open_store()  # its own handle, so waiting never holds up the other tools
        try:
            while True:
                messages = call(lambda: message_dicts(hub.inbox(who(session))))
                left = deadline - time.monotonic()
                if messages or left <= 0:
                    return {"messages": messages}
                # Woken by the store's notification where it has them (PostgreSQL), else by polling.
                listener.wait(min(left, listener.poll_s))
        finally:
            listener.close()

    @server.tool()
    def status() -> dict[str, Any]:
        """The hub at a glance: focus, live sessions, claims, milestones, recent messages."""
        from ._documents import status as status_doc

        def doc() -> dict[str, Any]:
            state = hub.state()
            return status_doc(state, read_time(state.last_ts))
        return call(doc)

    @server.tool()
    def recall(session: str | None = None) -> dict[str, Any]:
        """What you need after a context loss: your claims, milestones, unread messages (left unread), notes."""
        from ._documents import recall as recall_doc

        return call(lambda: recall_doc(hub.recall(who(session))))

    @server.tool()
    def log(session: str | None = None, type: str | None = None, since: str | None = None,
            until: str | None = None, limit: int = 50) -> dict[str, Any]:
        """The latest events (oldest first), filtered by session, type, and time (30m ago, or RFC 3339)."""
        from ._history import LogFilter

        if not 1 <= limit <= LOG_LIMIT_MAX:
            raise ToolError(str(BadInput(f"limit must be between 1 and {LOG_LIMIT_MAX}")))

        def events() -> list[dict[str, Any]]:
            from ._events import decode, to_dict

            flt = LogFilter.make(session=session, type_=type, since=since, until=until, now=now())
            return [to_dict(decode(line.raw)) for line in hub.log(flt, limit)[0]]

        return {"events": call(events)}

    @server.tool()
    def why(priority: str) -> dict[str, Any]:
        """The history of a priority: each claim, refresh, takeover and release."""
        return {"history": call(lambda: hub.why(priority))}

    return server


def serve(hub_dir: str | None) -> None:
    """Serve the hub found at HUB_DIR (or as the CLI finds it) over stdio until the client leaves."""
    hub = Hub.find(hub_dir, start=os.environ.get("CLAUDE_PROJECT_DIR") or None)
    hub.publish_every = 0  # calls come at an agent's pace, and a server may idle for hours after one
    build(hub).run("stdio")
