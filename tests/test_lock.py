"""The hub lock (evhub/_lock.py) with real processes: one holder at a time, HubBusy naming the holder
once EVHUB_LOCK_TIMEOUT has run out, a killed holder never blocking anyone, a replaced or planted
lock file, and the timeout setting checked before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from command import clean_env, error_line, run

from evhub import BadInput, Hub, HubBusy, StorageError
from evhub._lock import DEFAULT_TIMEOUT_S, HubLock, lock_timeout

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from evhub._lock import HubLock
    with HubLock(Path(sys.argv[1]), timeout=5):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_a_held_lock_gives_hub_busy_naming_the_holder_and_a_killed_holder_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, _ = Hub.init(tmp_path)
    hub.hello("alice")
    lock = hub.events_dir / "lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", "0.5")
        log = hub.log_path.read_bytes()
        started = time.monotonic()
        with pytest.raises(HubBusy) as info:
            hub.heartbeat("alice", "blocked")
        assert time.monotonic() - started >= 0.5, "gave up before its timeout"
        assert f"pid {holder.pid}" in str(info.value) and "for over 0.5s" in str(info.value)
        assert hub.log_path.read_bytes() == log
        with pytest.raises(HubBusy):
            Hub(tmp_path).claim("alice", "api")
    finally:
        holder.kill()
        holder.wait()
    assert str(holder.pid) in lock.read_text(), "the dead holder's pid is still in the lock file"
    monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", "0")  # not a moment's wait: HubBusy if the dead holder still held it
    Hub(tmp_path).heartbeat("alice", "free again")
    assert Hub(tmp_path).state().sessions["alice"].status == "free again"


def test_a_hub_that_kept_its_lock_file_open_still_waits_when_the_file_was_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, _ = Hub.init(tmp_path)
    hub.hello("alice")  # the Hub now keeps SESSIONS/events/lock open
    lock = hub.events_dir / "lock"
    lock.unlink()  # a hand deletes it; the next writer makes a new one and holds it
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", "0.5")
        with pytest.raises(HubBusy):
            hub.heartbeat("alice", "would have written beside the holder")
    finally:
        holder.kill()
        holder.wait()
    hub.heartbeat("alice", "after the holder")
    assert Hub(tmp_path).state().sessions["alice"].status == "after the holder"


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "99999"])
def test_a_bad_lock_timeout_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    hub, _ = Hub.init(tmp_path)
    hub.hello("alice")
    log = hub.log_path.read_bytes()
    monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", value)
    with pytest.raises(BadInput):
        hub.heartbeat("alice")
    assert hub.log_path.read_bytes() == log



def test_a_planted_lock_symlink_is_never_followed(tmp_path: Path) -> None:
    hub, _ = Hub.init(tmp_path / "hub")
    hub.hello("alice")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lock = hub.events_dir / "lock"
    lock.unlink()
    lock.symlink_to(victim)
    log = hub.log_path.read_bytes()
    with pytest.raises(StorageError):
        hub.heartbeat("alice")
    assert victim.read_text() == "precious\n"
    assert hub.log_path.read_bytes() == log


COUNTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from evhub._lock import HubLock
    lock, counter, rounds = HubLock(Path(sys.argv[1]), timeout=60), Path(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(rounds):
        with lock:  # read, then write back one more: two holders at once would lose increments
            n = int(counter.read_text())
            counter.write_text(str(n + 1))
    """
)


def started(script: str, args: Sequence[str | Path]) -> subprocess.Popen[str]:
    """SCRIPT in a new Python process, held until it is sent a line once it has printed `ready`."""
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=clean_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.communicate()
    return proc


def test_processes_taking_turns_never_hold_the_lock_at_once(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    rounds = 300
    procs = [started(COUNTER, [tmp_path / "lock", counter, rounds]) for _ in range(3)]
    for p in procs:  # released together, so their turns interleave
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert int(counter.read_text()) == 3 * rounds, "two processes held the lock at once and an increment was lost"


def test_a_lock_with_no_wait_allowed_is_hub_busy_at_once_naming_its_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], env=clean_env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(HubBusy) as info, HubLock(lock, timeout=0):
            pytest.fail("the lock was granted while another process held it")
        assert str(info.value) == (f"hub busy: the lock is held by pid {holder.pid} for over 0s "
                                   "(raise EVHUB_LOCK_TIMEOUT to wait longer)")
    finally:
        holder.kill()
        holder.wait()
    with HubLock(lock, timeout=0):  # the kernel let go of the killed holder's lock
        assert lock.read_text() == f"{os.getpid():>10}\n", "the lock file names its new holder"


def test_a_lock_file_whose_holder_is_not_a_pid_is_hub_busy_naming_another_process(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], env=clean_env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        lock.write_text("\N{SUPERSCRIPT TWO}\n")  # a digit to str.isdigit(), not to int()
        with pytest.raises(HubBusy, match="held by another process"), HubLock(lock, timeout=0):
            pytest.fail("the lock was granted while another process held it")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(("value", "seconds"), [(None, DEFAULT_TIMEOUT_S), ("", DEFAULT_TIMEOUT_S), ("0", 0.0),
                                                ("2.5", 2.5), ("3600", 3600.0)])
def test_the_lock_timeout_setting(monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float) -> None:
    if value is None:
        monkeypatch.delenv("EVHUB_LOCK_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("EVHUB_LOCK_TIMEOUT", value)
    assert lock_timeout() == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "3600.5", "1e9"])
def test_a_bad_lock_timeout_is_refused_by_the_command_with_one_line_naming_it(tmp_path: Path, value: str) -> None:
    root = tmp_path / "repo"
    hub, _ = Hub.init(root)
    hub.hello("alice")
    log = hub.log_path.read_bytes()
    done = run("heartbeat", "-s", "alice", env={"EVHUB_LOCK_TIMEOUT": value}, cwd=root)
    assert error_line(done, BadInput.exit_code) == (
        f"error: EVHUB_LOCK_TIMEOUT must be seconds between 0 and 3600, not {value!r}")
    assert hub.log_path.read_bytes() == log
