"""Progress bars: drawn on a terminal's stderr for long folds, never into a pipe."""

import io
import os
import pty
import subprocess

from command import EVHUB, Runner, clean_env

from evhub._progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_events_done_of_the_estimate_rate_and_time_left() -> None:
    progress = Progress("replay", 1000, Terminal())
    progress.events = 250
    line = progress.line(bytes_done=500, elapsed=0.5)
    assert line.startswith("replay ████████████░░░░░░░░░░░░ ")
    assert "250 of ~500 events, 500/s, 0.5s left" in line


def test_a_pipe_or_a_small_log_gets_no_bar() -> None:
    piped = io.StringIO()
    Progress("replay", 10**9, piped).update(10, 10)
    small = Terminal()
    Progress("replay", 10, small).update(5, 5)
    assert piped.getvalue() == small.getvalue() == ""


def stderr_of(evhub: Runner, *args: str, terminal: bool) -> str:
    env = clean_env({"EVHUB_PROGRESS_FROM_BYTES": "1"})
    if not terminal:
        done = subprocess.run([EVHUB, *args], cwd=evhub.root, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stderr.decode()
    main, side = pty.openpty()
    try:
        done = subprocess.run([EVHUB, *args], cwd=evhub.root, env=env, stdout=subprocess.DEVNULL, stderr=side,
                              timeout=60)
        assert done.returncode == 0
        os.close(side)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the other side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(main)


def test_replay_verify_and_repair_draw_a_bar_on_a_terminal_and_nothing_into_a_pipe(evhub: Runner) -> None:
    for n in range(20):
        evhub.ok("hello", f"s{n}")
    for command in ("replay", "verify", "repair"):
        drawn = stderr_of(evhub, command, terminal=True)
        assert f"\r{command} " in drawn and " events, " in drawn and "s left" in drawn, drawn
        assert drawn.endswith("\r\x1b[K"), "the bar is cleared when done"
        assert stderr_of(evhub, command, terminal=False) == ""


def test_the_first_command_after_losing_the_read_model_draws_its_catch_up(evhub: Runner) -> None:
    evhub.ok("hello", "alice")
    (evhub.root / "SESSIONS" / "events" / "readmodel.sqlite3").unlink()
    assert "\rbuilding the read model " in stderr_of(evhub, "status", terminal=True)
