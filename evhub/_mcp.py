"""`evhub mcp`: the coordination actions as Model Context Protocol tools, served over stdio.

Every tool goes through the same Hub calls as the CLI (lock, catch up, decide, append), so the
CLI and any number of MCP servers share one hub safely.  The server keeps nothing of its own but
the open hub.  Calls come in bursts: the read model and the views follow within about a second
(publish_later), not at every call.  An evhub error comes back as a tool error carrying the CLI's
message.
"""

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ._agents import AGENTS
from ._documents import message_dicts
from ._errors import EvhubError
from ._hub import Hub
from ._values import StepStatus, now, read_time

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
LOG_LIMIT_MAX = 1000
WAIT_MAX_S = 600
# How soon the read model and views follow the calls: a thread refreshes them (publish_later), not the
# calls, since rendering every view costs about as much as the hub is big (hundreds of ms at 1,000
# claims) and a call's own work a few ms.
PUBLISH_EVERY_S = 1.0
# An agent's glance at a hub of a thousand claims should not fill its context (the whole list is ~400 KB).
STATUS_LIMIT = 10
INSTRUCTIONS = (
    "evhub coordinates the agent sessions working on one repository. Every tool that acts does so as you "
    "when `session` is left out: the session your hooks registered (Claude Code with `evhub install "
    "claude`), else $EVHUB_SESSION. Without either, call hello once and pass the id it returns as "
    "`session`. Claim a priority before you start work on it (a refusal names the live session holding "
    "it), release it when done, heartbeat while you work, read your inbox, and call recall after a "
    "context loss."
)
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Every write appends to the hub's log; none deletes or overwrites what is recorded.
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

You = Annotated[str | None, Field(description=(
    "Your session id. Defaults to you (the session your hooks registered, else $EVHUB_SESSION)."))]
Priority = Annotated[str, Field(description=(
    "The priority (a unit of work) by name: 1-64 of a-z 0-9 . _ - starting with a letter or digit."))]
Milestone = Annotated[str, Field(description="The milestone's id, as milestone_create returned it.")]
Token = Annotated[int | None, Field(description=(
    "The token your claim returned. Given, the call is refused if the claim has since passed to another "
    "session (a fencing token: a stale worker cannot write over the new holder). Omit to skip that check."))]
TtlS = Annotated[int | None, Field(ge=1, description=(
    "Let the claim lapse after this many seconds (at least 1) unless you claim it again to refresh it. "
    "Omitted: it holds while you stay alive (heartbeat)."))]
Note = Annotated[str, Field(description="A note recorded with the change (may be empty).")]


def build(hub: Hub, serial: threading.Lock, env: Mapping[str, str] = os.environ) -> MCPServer:
    """The MCP server for HUB, acting as the agent session ENV names when a call leaves out `session`.
    Tools run in worker threads, one call at a time under SERIAL: that keeps the Hub's kept state
    consistent, and whatever else uses the Hub (publish_later) holds it too."""
    server = MCPServer("evhub", instructions=INSTRUCTIONS, version=version("evhub"), log_level="WARNING")

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

    def agent(join: bool = True) -> str | None:
        """The session of the agent that started this server (read afresh at each call: the server may
        start before the agent's SessionStart hook runs), joined as its hooks would if none is live yet,
        unless JOIN is false."""
        for a in AGENTS.values():
            if a.mcp_session and env.get(a.mcp_session):
                own = env[a.mcp_session]
                return hub.agent_here(a.name, own, role=a.role) if join else hub.live_agent_session(a.name, own)
        return None

    def who(session: str | None, *, join: bool = True) -> str:
        """SESSION, else you (found, not joined, for a read: JOIN false)."""
        sid = session or agent(join) or env.get("EVHUB_SESSION")
        if not sid:
            raise ToolError("no session: pass `session` (your id from hello)")
        return sid

    def tool(annotations: ToolAnnotations) -> Callable[[F], F]:
        """Register a tool described by its docstring as one paragraph (the SDK keeps its indentation)."""
        def register(fn: F) -> F:
            return server.tool(description=" ".join((fn.__doc__ or "").split()), annotations=annotations)(fn)
        return register

    @tool(WRITES)
    def hello(
        session: Annotated[str | None, Field(description=(
            "The id to register. Omitted: the session your hooks registered (joined now if they have not run "
            "yet), else the first free session-N."))] = None,
        role: Annotated[str, Field(description="What you do, such as backend or reviewer.")] = "",
        about: Annotated[str, Field(description="A line about what you are working on.")] = "",
        resume: Annotated[bool, Field(description=(
            "Come back as `session` after a restart; without it, the id of a live session is refused."))] = False,
    ) -> dict[str, Any]:
        """Register as a session on the hub and get its id, which the other tools take as `session`."""
        sid = call(lambda: (None if session else agent()) or hub.hello(session, role=role, about=about,
                                                                        resume=resume))
        return {"session": sid}

    @tool(WRITES)
    def heartbeat(
        session: You = None,
        status: Annotated[str, Field(description="What you are doing now, shown to the others.")] = "",
    ) -> dict[str, Any]:
        """Tell the hub you are alive (and what you are doing); a session silent for the hub's alive TTL
        (5 minutes by default) is dead, and its claims can be taken over."""
        events = call(lambda: hub.heartbeat(who(session), status))
        return {"seq": events[-1].number}

    @tool(WRITES)
    def claim(priority: Priority, session: You = None, ttl_s: TtlS = None) -> dict[str, Any]:
        """Claim a priority before working on it. Refused, naming the holder, while another live session
        holds it; claiming one you hold refreshes it. Returns the claim's token, and the session it was
        taken over from when its claim was stale."""
        claimed = call(lambda: hub.claim(who(session), priority, ttl_s))
        return {"priority": priority, "token": claimed.token, "took_over_from": claimed.took_over_from}

    @tool(WRITES)
    def release(
        priority: Priority,
        session: You = None,
        done: Annotated[bool, Field(description="The work is finished: listed as completed.")] = False,
        note: Note = "",
        token: Token = None,
    ) -> dict[str, Any]:
        """Release your claim on a priority."""
        call(lambda: hub.release(who(session), priority, done=done, note=note, token=token))
        return {"priority": priority, "released": True}

    @tool(WRITES)
    def milestone_create(
        title: Annotated[str, Field(description="The milestone's title.")],
        steps: Annotated[list[str], Field(description="The steps, in order, as short lines.")],
        session: You = None,
        priority: Annotated[str | None, Field(description=(
            "The priority claiming the milestone claims. Omitted: the milestone's id."))] = None,
        milestone: Annotated[str | None, Field(description="Its id. Omitted: made from the title.")] = None,
    ) -> dict[str, Any]:
        """Create a milestone: multi-step work with a priority of its own. Returns its id."""
        mid = call(lambda: hub.create_milestone(who(session), title, milestone=milestone, priority=priority,
                                                steps=steps))
        return {"milestone": mid}

    @tool(WRITES)
    def milestone_claim(milestone: Milestone, session: You = None, ttl_s: TtlS = None) -> dict[str, Any]:
        """Own a milestone and claim its priority (refused while another live session holds it). Returns
        the claim's token."""
        claimed = call(lambda: hub.claim_milestone(who(session), milestone, ttl_s))
        return {"milestone": milestone, "token": claimed.token, "took_over_from": claimed.took_over_from}

    @tool(WRITES)
    def milestone_step(
        milestone: Milestone,
        step: Annotated[int, Field(ge=1, description="The step's number, from 1.")],
        status: Annotated[StepStatus, Field(description="The step's new status.")],
        session: You = None,
        note: Note = "",
        token: Token = None,
    ) -> dict[str, Any]:
        """Set the status of one step of a milestone; returns the milestone as milestone_show does."""
        call(lambda: hub.update_step(who(session), milestone, step, status, note=note, token=token))
        return milestone_show(milestone)

    @tool(WRITES)
    def milestone_add_steps(
        milestone: Milestone,
        steps: Annotated[list[str], Field(min_length=1, description="The steps to add at the end, in order.")],
        session: You = None,
    ) -> dict[str, Any]:
        """Add steps at the end of a milestone; returns the milestone as milestone_show does."""
        call(lambda: hub.add_steps(who(session), milestone, steps))
        return milestone_show(milestone)

    @tool(READS)
    def milestone_show(milestone: Milestone) -> dict[str, Any]:
        """One milestone, step by step, with its owner and progress."""
        from ._documents import milestone_dict

        return call(lambda: milestone_dict(hub.milestone(milestone)))

    @tool(WRITES)
    def msg_send(
        text: Annotated[str, Field(description="The message.")],
        session: You = None,
        to: Annotated[str, Field(description="The recipient's session id, or all.")] = "all",
    ) -> dict[str, Any]:
        """Post a message to one session, or to all. Returns its seq."""
        seq = call(lambda: hub.send(who(session), text, to=to))
        return {"seq": seq}

    @tool(WRITES)
    def inbox(
        session: You = None,
        peek: Annotated[bool, Field(description="Leave them unread.")] = False,
    ) -> dict[str, Any]:
        """Your unread messages (to you or to all), oldest first; they are then marked read."""
        return {"messages": call(lambda: message_dicts(hub.inbox(who(session), peek=peek)))}

    @tool(WRITES)
    def wait_for_messages(
        session: You = None,
        timeout_s: Annotated[float, Field(ge=0, le=WAIT_MAX_S, description=(
            f"How long to wait, in seconds (at most {WAIT_MAX_S})."))] = 60,
    ) -> dict[str, Any]:
        """Wait until you have unread messages, then return them marked read; an empty list when
        timeout_s passes first."""
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

    @tool(READS)
    def status(
        limit: Annotated[int, Field(ge=0, description=(
            "List at most this many live sessions, claims and active milestones each, by id; `counts` says "
            "how many there are. 0 lists them all (on a big hub, a long answer)."))] = STATUS_LIMIT,
    ) -> dict[str, Any]:
        """The hub at a glance: focus, live sessions, claims, milestones (the first `limit` of each, with their
        counts), recent messages."""
        from ._documents import status as status_doc

        def doc() -> dict[str, Any]:
            state = hub.state()
            return status_doc(state, read_time(state.last_ts), limit or None)
        return call(doc)

    @tool(READS)
    def recall(session: You = None) -> dict[str, Any]:
        """What you need after a context loss: your claims, milestones, unread messages (left unread), notes."""
        from ._documents import recall as recall_doc

        return call(lambda: recall_doc(hub.recall(who(session, join=False))))

    @tool(READS)
    def log(
        session: Annotated[str | None, Field(description="Only this session's events (omitted: everyone's).")]
        = None,
        type: Annotated[str | None, Field(description=(
            "Only events of this type: claim, release, hello, bye, msg, step, milestone, focus, note, read, "
            "or a full name such as priority_claimed."))] = None,
        since: Annotated[str | None, Field(description="From this time: 30m ago, or an RFC 3339 time.")] = None,
        until: Annotated[str | None, Field(description="Up to this time: 30m ago, or an RFC 3339 time.")] = None,
        limit: Annotated[int, Field(ge=1, le=LOG_LIMIT_MAX, description="Only the last this many events.")] = 50,
    ) -> dict[str, Any]:
        """The latest events of the hub's log, oldest first, as recorded."""
        from ._history import LogFilter

        def events() -> list[dict[str, Any]]:
            from ._events import decode, to_dict

            flt = LogFilter.make(session=session, type_=type, since=since, until=until, now=now())
            return [to_dict(decode(line.raw)) for line in hub.log(flt, limit)[0]]

        return {"events": call(events)}

    @tool(READS)
    def why(priority: Priority) -> dict[str, Any]:
        """The history of a priority: each claim, refresh, takeover and release."""
        return {"history": call(lambda: hub.why(priority))}

    return server


def serve(hub_dir: str | None) -> None:
    """Serve the hub found at HUB_DIR (see find) over stdio until the client leaves."""
    run(find(hub_dir))


def find(hub_dir: str | None) -> Hub:
    """The hub at HUB_DIR, else as the CLI finds it, from the agent's project when the agent names it."""
    return Hub.find(hub_dir, start=os.environ.get("CLAUDE_PROJECT_DIR") or None)


def run(hub: Hub) -> None:
    """Serve HUB over stdio until the client leaves."""
    # Only the first call publishes: an agent's calls come seconds apart, so any shorter period would
    # have nearly every one of them render every view.
    hub.publish_every = math.inf
    hub.refresh_on_read = False
    serial = threading.Lock()
    stop = threading.Event()
    publisher = threading.Thread(target=publish_later, args=(hub, serial, stop), name="evhub-views", daemon=True)
    publisher.start()
    try:
        build(hub, serial).run("stdio")
    finally:
        stop.set()
        publisher.join()  # what the last calls left is flushed at exit, as by any Hub, with no call to wait for


def publish_later(hub: Hub, serial: threading.Lock, stop: threading.Event) -> None:
    """Refresh the read model and views that HUB's calls left for later, within PUBLISH_EVERY_S of each,
    between two calls (under SERIAL), until STOP: a call pays for a render of every view only when it
    comes during one (it waits for it), and the views follow within about a second though the agent may
    then be silent for hours."""
    while not stop.wait(PUBLISH_EVERY_S):
        with serial:
            try:
                hub.flush()  # nothing to do unless a call left the views for later
            except EvhubError:
                pass  # left for later still: the next call, or the next round, retries
            finally:
                hub.warnings.clear()
