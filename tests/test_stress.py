"""`python -m benchmarks.stress --quick` passes, and its table says so row by row.

The test reads the figures out of the result column itself rather than trusting the exit code
alone, so a row that reports a lost event, a second winner or a changed log fails it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "events" / "samples" / "three-sessions-day.jsonl"
ROUNDS, RACERS, WRITERS, APPENDS, KILLS, SKEWS = 20, 8, 4, 1_000, 15, 4


def numbers(pattern: str, text: str) -> tuple[int, ...]:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in {text!r}"
    return tuple(int(g.replace(",", "")) for g in m.groups())


def table(stdout: str) -> dict[str, tuple[str, str, str]]:
    """check -> (scale, result, expected), from the one markdown table on stdout."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert lines[0] == "| check | scale | result | expected |", stdout
    assert lines[1] == "|---|---|---|---|"
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 4, line
        rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


def test_stress_quick() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.stress", "--quick"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    check_table(done.stdout)  # first, so a failure names the row
    assert done.returncode == 0, done.stdout + done.stderr


def check_table(stdout: str) -> None:
    """Every row of the quick run's table shows the expected figures."""
    rows = table(stdout)
    assert set(rows) == {"claim race", "hello race", "concurrent appends", "SIGKILL of a busy writer", "torn tail",
                         "damage at every line", "bad-input catalogue", "clock skew (jsonl)", "clock skew (postgresql)",
                         "a follower running through a repair"}, rows

    for check in ("claim race", "hello race"):
        scale, result, _ = rows[check]
        assert f"{ROUNDS} rounds × {RACERS} processes" in scale
        lo, hi, log_lo, log_hi, named, losers, errors = numbers(
            r"winners per round: min (\d+), max (\d+); in the log: min (\d+), max (\d+); "
            r"losers refused naming the [a-z ]+: (\d+) of (\d+); errors (\d+)", result)
        assert (lo, hi, log_lo, log_hi) == (1, 1, 1, 1), result
        assert named == losers == ROUNDS * (RACERS - 1), result
        assert errors == 0, result

    scale, result, _ = rows["concurrent appends"]
    assert f"{WRITERS} processes × {APPENDS:,}" in scale
    (events,) = numbers(r"^([\d,]+) events in", result)
    assert events == WRITERS * APPENDS + WRITERS + 1, result  # plus hub_created and each writer's hello
    assert numbers(r"lost (\d+), doubled (\d+), gaps (\d+); unparsed lines (\d+); failed calls (\d+)",
                   result) == (0, 0, 0, 0, 0), result
    assert "verify ok" in result, result

    scale, result, _ = rows["SIGKILL of a busy writer"]
    assert scale.startswith(f"{KILLS} SIGKILLs"), scale
    acked, lost, doubled, failures, seen, quarantined, partly = numbers(
        r"acknowledged events ([\d,]+): lost (\d+), doubled (\d+); verify failures (\d+) .*"
        r"torn tails seen (\d+), quarantined (\d+); calls cut by the kill found partly in the log (\d+)", result)
    assert acked >= KILLS, result  # each writer was killed after its first acknowledged call
    assert (lost, doubled, failures, partly) == (0, 0, 0, 0), result
    assert seen == quarantined, result

    _, result, _ = rows["torn tail"]
    last = SAMPLE.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[1] + b"\n"
    assert numbers(r"offsets tried (\d+), failures (\d+)", result) == (len(last), 0), result

    scale, result, _ = rows["damage at every line"]
    assert "× 7 kinds" in scale, scale
    cases, failures = numbers(r"cases (\d+), failures (\d+)", result)
    assert cases >= 30 and failures == 0, result  # 5 lines (the first two, the middle, the last two) × 7 kinds

    _, result, _ = rows["bad-input catalogue"]
    tried, good, of, changes, outside = numbers(
        r"inputs tried (\d+); non-zero exit with one `error:` line (\d+) of (\d+); log changes (\d+); "
        r"new files outside SESSIONS/ (\d+)", result)
    assert tried >= 40, result
    assert good == of == tried, result
    assert (changes, outside) == (0, 0), result

    for check in ("clock skew (jsonl)", "clock skew (postgresql)"):
        scale, result, _ = rows[check]
        assert scale.startswith(f"{SKEWS} rounds × 2 writers"), scale
        wrong, named, ahead, errors = numbers(
            r"wrong takeovers (\d+); refused naming the holder (\d+), refused as ahead of the real clock (\d+); "
            r"other errors (\d+)", result)
        assert (wrong, errors, named + ahead) == (0, 0, SKEWS), result
        assert "log times in order: yes; verify ok" in result, result
    _, result, _ = rows["a follower running through a repair"]
    assert numbers(r"(\d+) event_lost; log --follow: missing (\d+), twice (\d+), out of order (\d+), lost events "
                   r"not said (\d+)", result) == (1, 0, 0, 0, 0), result
    assert "state equals a full fold" in result, result
    assert numbers(r"feed out of order (\d+), errors (\d+); tracebacks (\d+); failed calls (\d+)",
                   result) == (0, 0, 0, 0), result
