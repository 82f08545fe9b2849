"""`evhub watch`: the dashboard recorded headless, the follower fed by other processes, and the real
thing in tmux (send-keys, capture-pane)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from clock import at, wait_until
from command import EVHUB, Runner, clean_env, ok, run
from logs import bye_hub, damaged
from rich.console import Console

from evhub import Hub
from evhub._state import fold
from evhub._watch import Follower, dashboard, watch


def shown(hub: Hub, now: str) -> str:
    console = Console(record=True, width=120, force_terminal=False)
    console.print(dashboard(fold(list(hub.events())), list(hub.events())[-5:], now))
    return console.export_text()


def test_the_dashboard_shows_sessions_claims_progress_messages_and_events(evhub: Runner) -> None:
    evhub.ok("hello", "alice", now=at(0))
    evhub.ok("hello", "bob", now=at(0))
    evhub.ok("claim", "api", session="alice", now=at(1))
    evhub.ok("claim", "docs", session="bob", now=at(1))
    evhub.ok("milestone", "create", "Ship the dashboard", "--step", "build", "--step", "test", "--step", "ship",
             session="alice", now=at(2))
    evhub.ok("milestone", "step", "ship-the-dashboard", "1", "done", session="alice", now=at(3))
    evhub.ok("msg", "send", "docs are half done", session="bob", now=at(4))
    evhub.ok("heartbeat", session="alice", now=at(400))  # bob falls silent
    text = shown(Hub(evhub.root), at(400))
    assert "event #9" in text and "1 live" in text
    assert "alice" in text and "silent" in text
    assert "bob (stale)" in text and "api" in text, "a claim held by a silent session stands out"
    assert "███░░░░░░░ 1/3" in text and "Ship the dashboard" in text
    assert "docs are half done" in text
    assert "heartbeat" in text and "message_posted" in text


def test_the_follower_sees_what_other_processes_append(evhub: Runner) -> None:
    evhub.ok("hello", "alice")
    follower = Follower(Hub(evhub.root))
    assert follower.state.seq == 2 and not follower.poll()
    evhub.ok("claim", "api", session="alice")
    assert follower.poll()
    assert follower.state.claims["api"].session == "alice"
    assert [type(e).__name__ for e in follower.feed][-1] == "PriorityClaimed"


def test_at_shows_the_hub_as_it_stood_then(evhub: Runner) -> None:
    evhub.ok("hello", "alice", now=at(0))
    evhub.ok("claim", "api", session="alice", now=at(10))
    evhub.ok("release", "api", session="alice", now=at(20))
    then = evhub.ok("watch", "--at", at(15), now=at(30)).stdout
    assert "api" in then and "event #3" in then
    assert "api" not in evhub.ok("watch", "--at", at(25), now=at(30)).stdout


def test_without_a_terminal_or_with_once_watch_prints_one_frame_and_exits(evhub: Runner) -> None:
    """An agent's shell runs `evhub watch` with its output in a pipe: a live display there would never end."""
    evhub.ok("hello", "alice")
    evhub.ok("claim", "api", session="alice")
    frame = ok(run("--hub", evhub.root, "watch", env={"FORCE_COLOR": "1"}, timeout=30)).stdout
    assert "event #3" in frame and "api" in frame and "q quits" not in frame
    console = Console(record=True, width=120, force_terminal=True)
    watch(Hub(evhub.root), None, console=console, once=True)  # a terminal, yet one frame and back
    assert "event #3" in console.export_text()


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30, check=True).stdout


def wait_for(pane: str, text: str, within: float = 30.0) -> str:
    """The pane's screen once it shows TEXT; fails, showing the screen, when it has not within WITHIN seconds."""
    screen = ""

    def shows() -> bool:
        nonlocal screen
        screen = tmux("capture-pane", "-p", "-t", pane)
        return text in screen

    try:
        wait_until(f"{text!r} in the pane", shows, timeout=within)
    except AssertionError as e:
        raise AssertionError(f"{e}; the pane shows:\n{screen}") from None
    return screen


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed here (.ci/run installs it)")
def test_watch_in_a_real_terminal_follows_appends_survives_a_resize_and_quits_on_q(
    evhub: Runner, tmp_path: Path
) -> None:
    evhub.ok("hello", "alice")
    name = f"evhub-watch-{tmp_path.name}"
    env = clean_env()
    command = " ".join([f"PATH={env['PATH']}", EVHUB, "--hub", str(evhub.root), "watch", "; echo watch-exited-$?;",
                        "sleep 30"])
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "60", command], check=True,
                   timeout=30, env=env)
    try:
        pane = f"{name}:0.0"
        assert "event #2" in wait_for(pane, "event #2")
        started = time.monotonic()
        evhub.ok("claim", "deploy-dashboard", session="alice")
        screen = wait_for(pane, "deploy-dashboard")
        assert "deploy-dashboard" in screen, screen
        assert time.monotonic() - started < 3, "redrawn within a second of the append (plus the CLI's start)"
        tmux("resize-window", "-t", name, "-x", "70", "-y", "40")
        evhub.ok("msg", "send", "after the resize", session="alice")
        assert "after the resize" in wait_for(pane, "after the resize")
        tmux("send-keys", "-t", pane, "q")
        assert "watch-exited-0" in wait_for(pane, "watch-exited-"), "watch did not quit cleanly on q"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed here (.ci/run installs it)")
def test_the_demo_arrives_live_in_a_watch_started_beside_it(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = clean_env()
    demo = subprocess.Popen([EVHUB, "demo", str(root), "--pace", "0.5"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    name = f"evhub-demo-{tmp_path.name}"
    try:

        def demo_started() -> bool:
            assert demo.poll() is None, "the demo exited before it made its hub"
            return (root / "SESSIONS" / "events" / "readmodel.sqlite3").exists()

        wait_until("the demo to make its hub", demo_started, timeout=30)
        command = f"PATH={env['PATH']} {EVHUB} --hub {root} watch"
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "150", "-y", "80", command], check=True,
                       timeout=30, env=env)
        pane = f"{name}:0.0"
        first = wait_for(pane, "evhub · event #")
        assert "took over" not in first, "the watch started after the story was over"
        # The story's sessions are seen alive as it goes (its clock is the real one, not 21 minutes ago).
        live = wait_for(pane, "alive")
        assert "You went silent" not in live, "the sessions were seen alive only once the story was over"
        # The last act of the story: a silent session's claim taken over, and the message about it.
        later = wait_for(pane, "You went silent", within=60)
        assert "You went silent" in later and "deploy-dashboard" in later, later
        assert demo.wait(timeout=60) == 0, demo.stderr.read() if demo.stderr else ""
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, timeout=30)
        if demo.poll() is None:
            demo.kill()
            demo.wait()


@pytest.mark.parametrize("damage", ["written in place", "a new file"])
def test_the_follower_goes_on_through_a_repair(tmp_path: Path, damage: str) -> None:
    """Repair rewrites the log under the follower (damaged in place, or replaced by a damaged copy): it
    notices, folds again from what holds, and goes on with what other processes append after it."""
    hub, _ = bye_hub(tmp_path)
    evhub = Runner(tmp_path)
    evhub.ok("hello", "alice", now=at(10))
    follower = Follower(Hub(tmp_path))
    evhub.ok("claim", "api", session="alice", now=at(11))
    assert follower.poll() and follower.state.claims["api"].session == "alice"
    log = hub.log_path.read_bytes().splitlines(keepends=True)
    target = hub.log_path if damage == "written in place" else hub.log_path.with_name("damaged")
    target.write_bytes(b"".join(damaged("damaged middle line", log).lines))
    target.replace(hub.log_path)
    evhub.ok("repair", now=at(12))
    evhub.ok("claim", "docs", session="alice", now=at(13))
    for n in range(1, 9):
        evhub.ok("msg", "send", f"after the repair {n}", session="alice", now=at(13 + n))
    final = fold(list(Hub(tmp_path).events()))

    def caught_up() -> bool:
        follower.poll()
        return follower.state.seq == final.seq
    wait_until("the follower reaches the end of the log", caught_up)
    assert sorted(follower.state.claims) == ["api", "docs"]
    assert [m.text for m in follower.state.messages[-8:]] == [f"after the repair {n}" for n in range(1, 9)]
    assert [e.seq for e in follower.feed] == list(range(final.seq - len(follower.feed) + 1, final.seq + 1))
