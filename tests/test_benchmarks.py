"""`python -m benchmarks --quick` runs and prints every row with figures; its synthetic hubs are valid.

No timing is asserted: the targets are for the table, not for CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from benchmarks.__main__ import LOG, MILESTONE, SESSIONS, mix_counts, synthetic_log
from evhub import Hub
from evhub import _decide as cmd
from evhub import _events as ev
from evhub._state import fold

REPO = Path(__file__).resolve().parent.parent
HEADER = "| figure | evhub median (min–max) | floor | floor median (min–max) | ratio | target |"
# (figure, floor) of every row, as patterns; the sizes change with --quick.
ROWS = [
    (r"`evhub replay`, [\d,]+ events", r"msgspec decode of the same log"),
    (r"`evhub replay`, [\d,]+ events", r"msgspec decode of the [\d,]+ events log"),
    (r"`evhub status`, [\d,]+ events", r"`evhub status`, 1,000 events"),
    (r"`evhub status`, [\d,]+ events", r"`evhub status`, 1,000 events"),
    *[(rf"`evhub {name}`, [\d,]+ events", r"a trivial typer command") for name in ("heartbeat", "claim", "msg send")],
    *[(rf"`evhub {name}`, [\d,]+ events", r"a script: msgspec encode of one event")
      for name in ("heartbeat", "claim", "msg send")],
    (r"4 processes × [\d,]+ `hub.heartbeat` \(Python API, a new hub\), fsync on", r"flock \+ write \+ fsync"),
    (r"4 processes × [\d,]+ `hub.heartbeat` \(Python API, a new hub\), EVHUB_FSYNC=0",
     r"flock \+ write of the same lines"),
    (r"peak RSS of `evhub replay`", r"peak RSS of the decode floor"),
    (r"`evhub log --type claim --session session-7`", r"the decode floor"),
    (r"`evhub verify`", r"the decode floor"),
    (r"`evhub status` just after deleting the read model", r"the replay row"),
    *[(rf"`evhub hook` PostToolUse, [\d,]+ events, {case}", r"a script: msgspec encode of one event")
      for case in (r"throttled \(nothing to push\)", "heartbeat due", "3 messages waiting")],
    (r"MCP `heartbeat` tool call in a running `evhub mcp`, per call", r"minimal MCP server \(same SDK\)"),
    (r"`evhub mcp` start to the first answered tool call \(`heartbeat`\)", r"`python -c 'import mcp'`"),
    *[(rf"MCP `{tool}` tool call in a running `evhub mcp`, 1,000 active claims held by others",
       r"the same with none") for tool in ("claim", "status")],
    (r"`evhub heartbeat` on a hub of [\d,]+ live sessions, each holding a claim and a milestone",
     r"the same on a hub of 50"),
    (r"read model growth for 1,000 messages", r"log growth for the same 1,000 messages"),
    (r"1 process, `hub.heartbeat` \(Python API\) on a PostgreSQL hub", r"BEGIN; INSERT of the same row"),
    (r"8 processes at once, `hub.heartbeat` \(Python API\) on one PostgreSQL hub", r"the same 1-connection INSERT"),
    (r"8 machines \(8 hub folders on one schema\), `hub.heartbeat` \(Python API\) at once",
     r"the same 1-connection INSERT"),
]
FIGURE = re.compile(r"^[\d,.]+ (ms|s|KiB|MiB|events/s) \(")


def test_quick_prints_every_row() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert len(done.stdout.strip().splitlines()) == len(lines), "stdout holds only the table"
    assert lines[0] == HEADER
    assert lines[1] == "|---|---|---|---|---|---|"
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]
    assert len(rows) == len(ROWS), done.stdout
    for (figure_re, floor_re), cells in zip(ROWS, rows, strict=True):
        assert len(cells) == 6, cells
        figure, mine, floor, floors, ratio, target = cells
        assert re.match(figure_re, figure), (figure_re, figure)
        assert re.search(floor_re, floor), (floor_re, floor)
        if mine.startswith("skipped: "):  # the PostgreSQL rows, where no PostgreSQL server is installed
            assert not os.environ.get("EVHUB_TEST_PG_REQUIRED"), f"a PostgreSQL row skipped in CI: {cells}"
            assert floors == mine and ratio == "–" and target.endswith(mine), cells
            continue
        assert FIGURE.match(mine), mine
        assert FIGURE.match(floors), floors
        assert re.fullmatch(r"\d+\.\d+(e-\d+)?×", ratio), ratio
        assert float(ratio[:-1]) > 0
        assert re.fullmatch(r"[≤≥] \d\.\d×: (met|missed by \d+\.\d\d×)|reported \(no target\)", target), target


def test_synthetic_hub_has_the_mix_and_verifies(tmp_path: Path) -> None:
    counts = synthetic_log(tmp_path / LOG, 20_000)
    assert counts == mix_counts(20_000)
    assert counts == {"heartbeat": 13_998, "message": 2_000, "claim": 1_600, "release": 1_400, "step": 600,
                      "hello": 400}
    result = Hub.find(tmp_path).verify()
    assert result["events"] == 20_000
    assert result["warnings"] == []


def test_synthetic_events_are_what_evhub_itself_would_decide(tmp_path: Path) -> None:
    """Every event, decided again by evhub's own rules against the state before it at its time, comes
    out the same: no claim of a priority a live session holds, no release by another session."""
    synthetic_log(tmp_path / LOG, 5_000, seed=3)
    events = list(Hub(tmp_path).events())
    texts = [e.text for e in events if isinstance(e, ev.MessagePosted)]
    assert texts and all(150 <= len(t.encode()) <= 250 for t in texts)
    assert {e.session for e in events if isinstance(e, ev.SessionRegistered)} == set(SESSIONS)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["PriorityClaimed"] == 400 and kinds["PriorityReleased"] == 350
    state = fold(events[:52])
    takeovers = 0
    for e in events[52:]:
        command: cmd.Command
        if isinstance(e, ev.PriorityClaimed):
            command = cmd.ClaimPriority(session=e.session, priority=e.priority)
            takeovers += e.took_over_from is not None
        elif isinstance(e, ev.PriorityReleased):
            command = cmd.ReleasePriority(session=e.session, priority=e.priority, done=e.done)
        elif isinstance(e, ev.StepUpdated):
            command = cmd.UpdateStep(session=e.session, milestone=MILESTONE, step=e.step, status=e.status)
        elif isinstance(e, ev.SessionRegistered):
            command = cmd.Hello(session=e.session, resume=True)
        elif isinstance(e, ev.MessagePosted):
            command = cmd.SendMessage(session=e.session, text=e.text, to=e.to)
        else:
            assert isinstance(e, ev.Heartbeat), e
            command = cmd.Heartbeat(session=e.session, status=e.status)
        (decided,) = cmd.decide(command, state, e.ts)
        decided.id = e.id
        assert ev.encode(decided) == ev.encode(e)
        fold([e], state)
    assert takeovers > 0
