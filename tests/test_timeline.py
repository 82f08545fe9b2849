"""`evhub timeline`: the lanes it computes from the log, the self-contained file, and the page as
headless Chromium renders it."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from clock import at
from command import Runner

from evhub import Hub
from evhub._timeline import history, seconds


def day(evhub: Runner) -> None:
    evhub.ok("hello", "alice", now=at(0))
    evhub.ok("hello", "bob", now=at(0))
    evhub.ok("claim", "deploy", session="bob", now=at(10))
    evhub.ok("milestone", "create", "Ship", "--step", "build", "--step", "ship", session="alice", now=at(20))
    evhub.ok("milestone", "step", "ship", "1", "done", session="alice", now=at(30))
    evhub.ok("msg", "send", "</script><b>not markup</b>", session="alice", now=at(40))
    for t in range(100, 1000, 100):
        evhub.ok("heartbeat", session="alice", now=at(t))  # bob falls silent after 10 s + 300 s
    evhub.ok("claim", "deploy", session="alice", now=at(1000))  # a takeover
    evhub.ok("release", "deploy", "--done", "--note", "shipped", session="alice", now=at(1100))
    evhub.ok("bye", session="alice", now=at(1200))


def test_lanes_fold_heartbeats_into_spans_and_show_who_held_what_when(evhub: Runner) -> None:
    day(evhub)
    data = history(Hub(evhub.root).events())
    t0 = seconds(at(0))
    alice = [(s[0] - t0, s[1] - t0, s[5]) for s in data["sessions"]["alice"]["spans"]]
    assert alice == [(0, 1200, 16)], "one span: her heartbeats were never 300 s apart; bye ends it"
    bob = [(s[0] - t0, s[1] - t0) for s in data["sessions"]["bob"]["spans"]]
    assert bob == [(0, 310)], "silent a ttl after he was last seen"
    assert [m[1] for m in data["sessions"]["alice"]["marks"]] == ["hello", "bye"]
    deploy = data["priorities"]["deploy"]
    assert [(s[2], s[0] - t0, s[1] - t0, s[6]) for s in deploy["spans"]] == [
        ("bob", 10, 1000, "taken over by alice"), ("alice", 1000, 1100, "finished: shipped")]
    assert [m[1] for m in deploy["marks"]] == ["alice took over from bob"]
    assert [(p[1], p[2], p[3]) for p in data["steps"]] == [("ship", 1, "done")]
    assert [m[3] for m in data["messages"]] == ["</script><b>not markup</b>"]
    since = history(Hub(evhub.root).events(), since=at(900))
    assert since["messages"] == [] and since["start"] == seconds(at(900))


def page_of(evhub: Runner, tmp_path: Path) -> Path:
    out = tmp_path / "t.html"
    assert "1 priorities" in evhub.ok("timeline", "--out", out, now=at(1300)).stdout
    return out


def test_the_file_is_self_contained_and_holds_what_the_log_says(evhub: Runner, tmp_path: Path) -> None:
    day(evhub)
    text = page_of(evhub, tmp_path).read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "nothing is fetched from the network"
    assert text.count("</script>") == 2, "no text from the log closes a script element"
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert data == json.loads(json.dumps(history(Hub(evhub.root).events())))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's chromium package)")
def test_headless_chromium_draws_the_lanes_without_a_console_error(evhub: Runner, tmp_path: Path) -> None:
    day(evhub)
    page = page_of(evhub, tmp_path).as_uri()
    dom = chromium("--dump-dom", page)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stderr[-2000:]
    assert 'data-drawn="true"' in body[0] and "data-errors" not in body[0], body[0]
    lanes = int(re.search(r'data-lanes="(\d+)"', body[0])[1])  # type: ignore[index]
    assert lanes == 2 + 1 + 2, "two sessions, one priority, the steps and the messages"
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "t.png"
    chromium(f"--screenshot={shot}", "--window-size=1100,400", page)
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000, "a picture, not a blank page"
