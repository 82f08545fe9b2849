"""`evhub demo`: a realistic run for a first-time user, told by real concurrent processes.

Three sessions (alice, bob and carol) are separate `evhub` processes working on a new hub: they
say hello at once, race for one priority (the hub lock lets exactly one win), work through a
milestone, talk, and the winner goes silent, so another session takes its claim over.  Every
process gets its own EVHUB_NOW: the story starts 21 minutes ago and ends now, so afterwards
`evhub status` shows the silent session dead and the others alive, as they would be.

Paced (`--pace S`), the story runs on the real clock instead, so that a `watch` beside it sees it
live: a story minute lasts about S seconds, and the hub's alive ttl is five of them.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import BadInput, EvhubError, StorageError
from ._place import repository
from ._values import now, ts_minus

PRIORITY = "deploy-dashboard"
TITLE = "Deploy dashboard"
STEPS = (
    "Build the dashboard bundle",
    "Run the database migration on staging",
    "Deploy to staging",
    "Smoke-test staging",
    "Deploy to production",
    "Announce the release",
)
STORY_MINUTES = 21
DEAD_AFTER_MINUTES = 5  # the hub's alive ttl, in story minutes
PROCESS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Agent:
    id: str
    role: str
    spec: str
    own_work: str
    news: str


AGENTS = (
    Agent("alice", "backend", "API and database", "metrics-api",
          "The /api/metrics endpoint is on staging; the dashboard can read from it."),
    Agent("bob", "frontend", "dashboard UI", "dashboard-ui",
          "The dashboard UI builds clean against the staging API."),
    Agent("carol", "tests", "end-to-end tests", "e2e-tests",
          "The end-to-end tests for the dashboard are written; ping me before production."),
)


@dataclass(frozen=True)
class Done:
    """One finished `evhub` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error(self) -> str:
        """Its `error: ...` line, without the prefix."""
        lines = self.stderr.strip().splitlines()
        return lines[-1].removeprefix("error: ") if lines else f"exit {self.returncode}"


Codes = tuple[int, ...]


class Story:
    """Runs `evhub` processes against one hub, each at a moment of the story's clock."""

    def __init__(self, root: Path, pace_s: float = 0.0) -> None:
        self.root = root
        self.pace_s = pace_s
        self.end = now()
        self.processes = 0
        self.env = dict(os.environ)
        # Paced, the processes read the real clock, and a story minute is a fifth of the alive ttl.
        self.alive_ttl_s = max(1, math.ceil(DEAD_AFTER_MINUTES * pace_s)) if pace_s else DEAD_AFTER_MINUTES * 60
        self.minute_s = self.alive_ttl_s / DEAD_AFTER_MINUTES
        self.last_step: tuple[float, float] | None = None  # (its minutes ago, when it ended: monotonic)
        if pace_s:
            self.env.pop("EVHUB_NOW", None)
        # The child processes must import this very evhub, even when it runs from a source tree.
        package_parent = str(Path(__file__).resolve().parent.parent)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))

    def moment(self, minutes_ago: float) -> str:
        """The story's clock: MINUTES_AGO before the end; 0 is the real now, read afresh."""
        return now() if minutes_ago <= 0 else ts_minus(self.end, minutes_ago * 60)

    def say(self, minutes_ago: float, text: str) -> None:
        label = "now" if minutes_ago <= 0 else f"-{minutes_ago:g}m"
        print(f"[{label:>4}] {text}", flush=True)

    def clock(self) -> str:
        """How the story's clock runs, in words."""
        if not self.pace_s:
            return f"the clock (EVHUB_NOW) starts {STORY_MINUTES}m ago"
        return (f"the story runs on the real clock, a minute of it every {self.minute_s:g}s; the hub's alive ttl "
                f"is {self.alive_ttl_s}s ({DEAD_AFTER_MINUTES} story minutes)")

    def _wait_for(self, minutes_ago: float) -> None:
        """Paced, wait until as many story minutes have passed on the real clock since the last step
        ended as the story says, never fewer: a session the story leaves silent for five minutes is dead."""
        if self.pace_s and self.last_step is not None:
            then, ended = self.last_step
            time.sleep(max(0.0, ended + (then - minutes_ago) * self.minute_s - time.monotonic()))

    def together(
        self, minutes_ago: float, *commands: tuple[str, ...], ok: Codes | list[Codes] = (0,)
    ) -> list[Done]:
        """Start every command at once (each its own process, all at the same moment) and wait for all.
        OK is the exit codes expected of every command, or a list of them, one a command."""
        expected = ok if isinstance(ok, list) else [ok] * len(commands)
        self._wait_for(minutes_ago)
        env = self.env if self.pace_s else {**self.env, "EVHUB_NOW": self.moment(minutes_ago)}
        started: list[tuple[tuple[str, ...], subprocess.Popen[str]]] = []
        try:
            for args in commands:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "evhub", "--hub", str(self.root), *args],
                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True,
                )
                started.append((args, proc))
            results = []
            for args, proc in started:
                try:
                    stdout, stderr = proc.communicate(timeout=PROCESS_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    limit = f"{PROCESS_TIMEOUT_S:g}s"
                    raise EvhubError(f"demo: `evhub {shlex.join(args)}` ran over {limit}") from None
                results.append(Done(args, proc.returncode, stdout, stderr))
        except OSError as e:
            raise EvhubError(f"demo: cannot start evhub: {e}") from e
        finally:
            for _, proc in started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.processes += len(results)
        self.last_step = (minutes_ago, time.monotonic())
        for done, codes in zip(results, expected, strict=True):
            if done.returncode not in codes:
                raise EvhubError(
                    f"demo: `evhub {shlex.join(done.args)}` exited {done.returncode}: {done.stderr.strip()}"
                )
        return results

    def run(self, minutes_ago: float, *args: str, ok: Codes = (0,)) -> Done:
        [done] = self.together(minutes_ago, args, ok=ok)
        return done


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _names(agents: list[Agent]) -> str:
    ids = [a.id for a in agents]
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def _prepare(directory: Path | None) -> Path:
    """The folder for the demo hub: a new temp dir, or DIRECTORY when it holds no hub yet."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="evhub-demo-")).resolve()
    root = directory.expanduser().absolute()
    if (root / "SESSIONS").exists():
        raise BadInput(f"{root} already holds a SESSIONS/ folder: give the demo a new folder")
    if (root / "events" / "log.jsonl").exists():
        raise BadInput(f"{root} is a hub's SESSIONS/ folder: give the demo a new folder")
    if root.exists() and not root.is_dir():
        raise BadInput(f"{root} is not a folder")
    if repository(root) is not None:
        raise BadInput(f"{root} is in a git repository, whose own hub the demo would become: "
                       "give the demo a folder outside any repository")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create {root}: {e.strerror or e}") from e
    return root


def run_demo(directory: Path | None, pace_s: float = 0.0) -> None:
    """Run the demo story in DIRECTORY (default: a new temporary folder), pausing PACE_S seconds after
    each step, then print `status`."""
    if not 0 <= pace_s <= 60:
        raise BadInput("the pace must be between 0 and 60 seconds")
    root = _prepare(directory)
    started = time.monotonic()
    story = Story(root, pace_s)
    story.run(STORY_MINUTES, "init", str(root), "--alive-ttl", f"{story.alive_ttl_s}s")
    story.say(STORY_MINUTES, f"a new hub in {root}; {story.clock()}")

    everyone = list(AGENTS)
    story.together(20, *(
        ("hello", a.id, "--role", a.role, "--spec", a.spec, "--about", f"{a.role} for the metrics dashboard")
        for a in everyone
    ))
    story.say(20, f"{_names(everyone)} say hello ({len(everyone)} processes at once)")

    lead = everyone[0]
    focus = "Ship the metrics dashboard today"
    story.run(19, "focus", focus, "-s", lead.id)
    story.say(19, f'{lead.id} sets the focus: "{focus}"')

    # The race: every session claims the same priority at the same moment; the hub lock lets one win.
    race = story.together(18, *(("claim", PRIORITY, "--json", "-s", a.id) for a in everyone), ok=(0, 3))
    story.say(18, f"{_names(everyone)} race to claim {PRIORITY} ({len(everyone)} processes at once)")
    winners = [a for a, r in zip(everyone, race, strict=True) if r.returncode == 0]
    if len(winners) != 1:
        raise EvhubError(f"demo: the race for {PRIORITY} had {len(winners)} winners, not one")
    winner = winners[0]
    losers = [a for a in everyone if a is not winner]
    token = int(race[everyone.index(winner)].json()["token"])
    story.say(18, f"  {winner.id} won (token {token}); {_names(losers)} got exit 3:")
    for a in losers:
        story.say(18, f"    {a.id}: {race[everyone.index(a)].error()}")

    steps = [arg for text in STEPS for arg in ("--step", text)]
    story.together(
        17,
        *(("claim", a.own_work, "-s", a.id) for a in losers),
        ("milestone", "create", TITLE, "--priority", PRIORITY, *steps, "-s", winner.id),
    )
    story.say(17, f'{winner.id} creates the milestone "{TITLE}" ({len(STEPS)} steps); {_names(losers)} '
                  "claim other work (3 processes at once)")
    story.run(17, "milestone", "claim", PRIORITY, "-s", winner.id)
    story.say(17, f"{winner.id} owns the milestone (`milestone claim` refreshes its claim: token {token})")

    fence = ("--token", str(token), "-s", winner.id)
    story.run(16, "milestone", "step", PRIORITY, "1", "done", *fence)
    story.run(15, "milestone", "step", PRIORITY, "2", "done", *fence)
    story.run(15, "milestone", "step", PRIORITY, "3", "in-progress", *fence)
    story.say(15, f"{winner.id} works with its token {token}: step 1 done, step 2 done, step 3 in progress")

    helper, other = losers
    silent_at = 14
    story.together(
        silent_at,
        ("msg", "send", f"Migration done on staging; deploying next ({PRIORITY} 2/{len(STEPS)}).",
         "-s", winner.id),
        ("msg", "send", helper.news, "--to", winner.id, "-s", helper.id),
        ("msg", "send", other.news, "-s", other.id),
    )
    story.say(silent_at, f"they talk: {winner.id} → all, {helper.id} → {winner.id}, {other.id} → all "
                         "(3 processes at once)")
    story.say(silent_at, f"{winner.id} goes silent (no more events from it); "
                         f"a session is dead after {DEAD_AFTER_MINUTES}m of silence")

    story.together(11, *(("heartbeat", "--status", f"on {a.own_work}", "-s", a.id) for a in losers))
    story.say(11, f"{_names(losers)} heartbeat; {winner.id} says nothing")

    takeover_at = 8
    claims = {c["priority"]: c for c in story.run(takeover_at, "claims", "--json").json()}
    held = claims[PRIORITY]
    quiet = silent_at - takeover_at
    story.say(takeover_at, f"{helper.id} runs `evhub claims`: {PRIORITY} held by {held['session']}, "
                           f"stale={str(held['stale']).lower()} ({winner.id} silent for {quiet}m)")
    taken = story.run(takeover_at, "milestone", "claim", PRIORITY, "--json", "-s", helper.id).json()
    new_token = int(taken["token"])
    story.say(takeover_at, f"{helper.id} takes it over: `milestone claim {PRIORITY}` → token {new_token}, "
                           f"took_over_from {taken['took_over_from']}")

    new_fence = ("--token", str(new_token), "-s", helper.id)
    story.run(7, "milestone", "step", PRIORITY, "3", "done", "--note", f"after {winner.id}", *new_fence)
    story.together(
        7,
        ("milestone", "step", PRIORITY, "4", "in-progress", *new_fence),
        ("msg", "send", f"You went silent, so I took over {PRIORITY} at step 3.", "--to", winner.id,
         "-s", helper.id),
    )
    story.say(7, f"{helper.id} finishes step 3, starts step 4 and tells {winner.id}")

    zombie, _ = story.together(
        5,
        ("milestone", "step", PRIORITY, "4", "done", *fence),
        ("release", other.own_work, "--done", "--note", "all green", "-s", other.id),
        ok=[(3,), (0,)],
    )
    story.say(5, f"a leftover {winner.id} process writes step 4 with its old token {token}: refused, exit 3:")
    story.say(5, f"    {zombie.error()}")
    story.say(5, f"meanwhile {other.id} finishes {other.own_work} (release --done)")

    _, inbox = story.together(
        0,
        ("heartbeat", "--status", f"on {PRIORITY} step 4", "-s", helper.id),
        ("msg", "inbox", "--json", "-s", other.id),
    )
    story.say(0, f"{helper.id} heartbeats while {other.id} reads its inbox "
                 f"({_count(len(inbox.json()), 'message')}; 2 processes at once)")

    status = story.run(0, "status")
    elapsed = time.monotonic() - started
    print(f"\n{story.processes} evhub processes in {elapsed:.1f}s. `evhub status` now:\n", flush=True)
    print(status.stdout.rstrip("\n"))
    _show_where(root, winner.id)


def _show_where(root: Path, silent: str) -> None:
    s = root / "SESSIONS"
    hub = shlex.quote(str(root))
    views = (
        ("CURRENT_STATE.md", "what is happening now (the seed's SSOT)"),
        ("REGISTRY.json", "who exists, alive or not"),
        ("MESSAGES.md", "the message board"),
        ("HEARTBEATS/", "one file a live session"),
        ("PRIORITIES/", "one .lock a claim"),
        ("MILESTONES/", "one .json a milestone"),
        ("events/log.jsonl", "the log: the only source of truth; every file above is rendered from it"),
    )
    width = max(len(f"{s}/{name}") for name, _ in views)
    print("\nThe views, rendered from the log:")
    for name, what in views:
        print(f"  {f'{s}/{name}':<{width}}  {what}")
    tries = (
        ("log", "the whole story, one line an event"),
        (f"why {PRIORITY}", "who held it, who took it over"),
        (f"recall {silent}", f"what {silent} would read after its context loss"),
        ("replay", "rebuild every view from the log alone"),
        ("verify", "check the log"),
    )
    width = max(len(command) for command, _ in tries)
    print("\nTry next:")
    for command, what in tries:
        print(f"  evhub --hub {hub} {command:<{width}}  # {what}")
    sys.stdout.flush()
