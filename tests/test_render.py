"""The SESSIONS/ views: what `render` builds from a folded log and how `write_views` puts it on disk."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clock import at
from command import SEED_SHIMS as SHIMS
from command import clean_env, init_hub, js, ok, run
from hypothesis import given, settings
from hypothesis import strategies as st

from evhub import _events as ev
from evhub._errors import StorageError
from evhub._render import View, render, write_views
from evhub._state import State, fold

FAKE_HEADER = "# Big heading\n### #999 2026-11-25T12:00:00.000000Z from mallory to all\r### also fake\n\nend"


class Log:
    """Events built by hand, with gap-free seq, as the shell would append them."""

    def __init__(self) -> None:
        self.events: list[ev.AnyEvent] = []

    def add(self, cls: type[ev.Event], t: float, **fields: Any) -> None:
        seq = len(self.events) + 1
        # Every cls passed is one of the AnyEvent members; mypy only sees the base class.
        self.events.append(cls(seq=seq, id=f"E{seq:05d}", ts=at(t), **fields))  # type: ignore[arg-type]

    def state(self) -> State:
        return fold(self.events)


def day() -> Log:
    """Three sessions: alice builds and owns a milestone, bob reviews, carol holds a short-ttl claim."""
    log = Log()
    log.add(ev.HubCreated, 0, alive_ttl_s=300)
    log.add(ev.SessionRegistered, 1, session="alice", role="builder", about="the dashboard")
    log.add(ev.SessionRegistered, 2, session="bob", role="reviewer", specialization="code review")
    log.add(ev.SessionRegistered, 3, session="carol", role="ops")
    log.add(ev.PriorityClaimed, 10, session="alice", priority="deploy")
    log.add(ev.PriorityClaimed, 11, session="carol", priority="api", ttl_s=60)
    log.add(ev.FocusSet, 12, session="alice", text="Ship the\ndashboard")
    log.add(
        ev.MilestoneCreated,
        13,
        session="alice",
        milestone="dash",
        title="Dashboard",
        priority="deploy",
        steps=["build", "test", "ship"],
    )
    log.add(ev.MilestoneClaimed, 14, session="alice", milestone="dash")
    log.add(ev.StepUpdated, 15, session="alice", milestone="dash", step=1, status="done")
    log.add(ev.PriorityClaimed, 16, session="bob", priority="docs")
    log.add(ev.PriorityReleased, 17, session="bob", priority="docs", done=True, note="written")
    log.add(ev.MessagePosted, 18, session="bob", to="alice", text=FAKE_HEADER)
    log.add(ev.IdProposed, 19, session="bob", proposed="robert", reason="nicer")
    log.add(ev.Heartbeat, 100, session="alice", status="testing")
    log.add(ev.Heartbeat, 101, session="bob", status="reviewing")
    return log


def test_render_is_deterministic_and_text_is_utf8_with_one_final_newline() -> None:
    log = day()
    first = render(log.state(), at(200))
    assert first == render(log.state(), at(200)) == render(day().state(), at(200))
    for path, view in first.items():
        view.content.decode("utf-8")
        assert view.content.endswith(b"\n") and not view.content.endswith(b"\n\n"), path
    assert {p for p, v in first.items() if v.executable} == set(SHIMS)


def test_output_changes_only_with_state_or_liveness() -> None:
    state = day().state()
    # Between 200s and 300s nobody's liveness or claim validity changes (carol's ttl ran out at 71s), and
    # the ages beside the times are counted to the last event, so nothing changes with the clock alone.
    assert render(state, at(200)) == render(state, at(300))
    assert render(state, at(200)) != render(state, at(400))
    md = render(state, at(200))["CURRENT_STATE.md"].content.decode()
    assert f"As of event #16 ({at(101)}); the ages below are as of that event." in md
    assert f"last seen {at(100)} (1s ago)" in md and f"since {at(10)} (1m ago)" in md


def test_heartbeats_only_for_live_sessions() -> None:
    log = day()
    views = render(log.state(), at(200))
    assert {p for p in views if p.startswith("HEARTBEATS/")} == {
        "HEARTBEATS/alice.json",
        "HEARTBEATS/bob.json",
        "HEARTBEATS/carol.json",
    }
    assert json.loads(views["HEARTBEATS/alice.json"].content) == {
        "id": "alice",
        "time": at(100),
        "status": "testing",
    }
    # carol was last heard of at 11s (her claim): at 350s she is silent past the 300s ttl.
    later = render(log.state(), at(350))
    assert "HEARTBEATS/carol.json" not in later
    assert "DISCOVERY/carol-HELLO.md" in later
    log.add(ev.SessionLeft, 360, session="bob")
    gone = render(log.state(), at(361))
    assert "HEARTBEATS/bob.json" not in gone and "HEARTBEATS/alice.json" in gone


def test_messages_are_quoted_so_no_text_reads_as_a_header() -> None:
    md = render(day().state(), at(200))["MESSAGES.md"].content.decode()
    headers = [line for line in md.splitlines() if line.startswith("#")]
    assert headers == ["# Messages", "### #13 2026-11-25T12:00:18.000000Z from bob to alice"]
    quoted = "> # Big heading\n> ### #999 2026-11-25T12:00:00.000000Z from mallory to all\n"
    assert quoted + "> ### also fake\n>\n> end\n" in md


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")),
        min_size=1,
        max_size=5,
    )
)
def test_any_message_text_stays_inside_its_quote(texts: list[str]) -> None:
    log = Log()
    log.add(ev.HubCreated, 0)
    log.add(ev.SessionRegistered, 1, session="a")
    for i, text in enumerate(texts):
        log.add(ev.MessagePosted, 2 + i, session="a", text=text)
    md = render(log.state(), at(5))["MESSAGES.md"].content.decode()
    body = md.splitlines()[md.splitlines().index("### #3 2026-11-25T12:00:02.000000Z from a to all") :]
    assert sum(line.startswith("### ") for line in body) == len(texts)
    assert all(line == "" or line.startswith((">", "### #")) for line in body)


def test_old_messages_are_cut_with_a_pointer_to_msg_list() -> None:
    log = Log()
    log.add(ev.HubCreated, 0)
    log.add(ev.SessionRegistered, 1, session="a")
    for i in range(105):
        log.add(ev.MessagePosted, 2, session="a", text=f"m{i}")
    md = render(log.state(), at(5))["MESSAGES.md"].content.decode()
    assert "5 older messages are not shown" in md and "`evhub msg list`" in md
    assert "> m4\n" not in md and "> m5\n" in md and md.endswith("> m104\n")


def test_json_views_parse_and_carry_the_state() -> None:
    views = render(day().state(), at(200))
    docs = {p: json.loads(v.content) for p, v in views.items() if p.endswith((".json", ".lock"))}
    registry = docs["REGISTRY.json"]
    assert [s["id"] for s in registry["sessions"]] == ["alice", "bob", "carol"]
    assert registry["alive_ttl_s"] == 300
    bob = registry["sessions"][1]
    assert bob["alive"] and bob["agreement"] == "proposed" and bob["specialization"] == "code review"
    (proposal,) = registry["proposals"]
    assert proposal["session"] == "bob" and proposal["status"] == "pending"
    assert sorted(proposal["voters"]) == ["alice", "carol"]
    assert docs["HANDSHAKES/bob.json"]["proposed"] == "robert"
    assert docs["HANDSHAKES/bob.json"]["reason"] == "nicer"
    deploy, api = docs["PRIORITIES/deploy.lock"], docs["PRIORITIES/api.lock"]
    assert deploy["session"] == "alice" and deploy["token"] == 5 and not deploy["stale"]
    assert api["alive"] and api["stale"] and api["ttl_s"] == 60
    assert "PRIORITIES/docs.lock" not in views
    dash = docs["MILESTONES/dash.json"]
    assert dash["progress"] == {"done": 1, "total": 3} and dash["owner"] == "alice"
    assert [s["status"] for s in dash["steps"]] == ["done", "pending", "pending"]
    assert [s["n"] for s in dash["steps"]] == [1, 2, 3]


def test_current_state_and_hello() -> None:
    views = render(day().state(), at(200))
    md = views["CURRENT_STATE.md"].content.decode()
    # The focus's line break is shown, on the focus's one line.
    assert [line for line in md.splitlines() if "Priority:" in line] == ["**Priority:** Ship the⏎dashboard"]
    assert "- `api`: carol, token 6, since 2026-11-25T12:00:11.000000Z (1m ago), ttl 1m; **stale**: ttl expired" in md
    assert "  - owns milestone `dash` (1/3)" in md
    assert "- 2026-11-25T12:00:17.000000Z (1m ago) priority `docs` by bob: written" in md
    assert "Updated" not in md
    later = render(day().state(), at(350)).get("CURRENT_STATE.md")
    assert later is not None and "**stale**: holder not alive" in later.content.decode()
    hello = views["DISCOVERY/bob-HELLO.md"].content.decode()
    assert hello.startswith("# Hello, I'm bob\nMy role: reviewer\nMy work: code review\nFirst seen: ")


def test_a_crowded_hub_lists_the_first_hundred_of_each_section_and_says_how_many_more() -> None:
    log = Log()
    log.add(ev.HubCreated, 0, alive_ttl_s=300)
    for n in range(1, 106):
        log.add(ev.SessionRegistered, 1, session=f"agent-{n:03d}")
        log.add(ev.PriorityClaimed, 2, session=f"agent-{n:03d}", priority=f"task-{n:03d}")
    log.add(ev.SessionRegistered, 3, session="zed")
    log.add(ev.SessionLeft, 4, session="zed")
    md = render(log.state(), at(60))["CURRENT_STATE.md"].content.decode()
    sessions = md.split("## Live sessions (105)\n\n")[1].split("\n\n")[0].splitlines()
    assert [line for line in sessions if line.startswith("- **")] == [
        f"- **agent-{n:03d}**: last seen 2026-11-25T12:00:02.000000Z (2s ago)" for n in range(1, 101)]
    assert sessions[-1] == "- ... and 5 more, not shown here: `evhub status` lists every one"
    claims = md.split("## Claims (105)\n\n")[1].split("\n\n")[0].splitlines()
    assert claims[0].startswith("- `task-001`: agent-001, token 3, since") and len(claims) == 101
    assert claims[-1] == "- ... and 5 more, not shown here: `evhub status` lists every one"
    assert "## Other known sessions (1)\n\n- zed: left, last seen" in md  # a short section: all of it, no tail


def test_active_milestones_show_the_step_in_progress_with_its_note_else_the_next() -> None:
    log = day()
    line = "- `dash` Dashboard: 1/3, owner alice, priority `deploy`, "
    assert line + "next: step 2 test\n" in render(log.state(), at(200))["CURRENT_STATE.md"].content.decode()
    log.add(ev.StepUpdated, 102, session="alice", milestone="dash", step=2, status="in-progress", note="uploading")
    log.add(ev.StepUpdated, 103, session="alice", milestone="dash", step=3, status="blocked", note="no keys")
    md = render(log.state(), at(200))["CURRENT_STATE.md"].content.decode()
    assert line + "now: step 2 test (in progress: uploading), blocked: step 3 ship (no keys)\n" in md


def test_after_a_rename_handshakes_and_discovery_follow_the_session() -> None:
    log = Log()
    log.add(ev.HubCreated, 0)
    log.add(ev.SessionRegistered, 1, session="session-1", role="tester")
    log.add(ev.SessionRegistered, 2, session="alice")
    log.add(ev.IdProposed, 3, session="session-1", proposed="carol")
    log.add(ev.IdAccepted, 4, session="alice", proposed="carol")
    # A newcomer takes up the old id: the proposal and the hello of session-1 are carol's, not its.
    log.add(ev.SessionRegistered, 5, session="session-1", role="ops")
    views = render(log.state(), at(6))
    assert sorted(p for p in views if p.startswith("HANDSHAKES/")) == ["HANDSHAKES/carol.json"]
    proposal = json.loads(views["HANDSHAKES/carol.json"].content)
    assert (proposal["session"], proposal["known_as"], proposal["status"]) == ("session-1", "carol", "agreed")
    carol = views["DISCOVERY/carol-HELLO.md"].content.decode()
    assert "My role: tester" in carol and "Also known as: session-1" in carol
    newcomer = views["DISCOVERY/session-1-HELLO.md"].content.decode()
    assert "My role: ops" in newcomer
    assert "Not the earlier session-1: that session is now carol (DISCOVERY/carol-HELLO.md)." in newcomer


def test_save_md_and_the_milestones_readme_run_as_written(tmp_path: Path) -> None:
    views = render(State(), at(0))
    docs = {p: views[p].content.decode() for p in ("SAVE.md", "MILESTONES/README.md")}
    for doc in docs.values():
        for shim in re.findall(r"\./SESSIONS/(\S+\.sh)", doc):
            assert shim in SHIMS, shim
    # Every evhub command the two show (but those with a placeholder) runs, in the order shown.
    shown = [line.split("#")[0].strip() for doc in (docs["MILESTONES/README.md"], docs["SAVE.md"])
             for block in re.findall(r"```bash\n(.*?)```", doc, re.S) for line in block.splitlines()]
    commands = [c for c in shown if c.startswith("evhub ") and "<" not in c]
    assert len(commands) >= 10
    root = init_hub(tmp_path / "hub")
    ok(run("hello", "alice", env={"EVHUB_NOW": at(1)}, cwd=root))
    script = "set -e\n" + "\n".join(commands) + "\n"
    done = subprocess.run(["bash", "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                          env=clean_env({"EVHUB_SESSION": "alice", "EVHUB_NOW": at(2)}))
    assert done.returncode == 0, done.stderr
    m = js(run("milestone", "show", "deploy-dashboard", "--json", env={"EVHUB_NOW": at(3)}, cwd=root))
    assert [s["status"] for s in m["steps"]] == ["done", "in-progress", "done"]


def test_recently_completed_is_newest_first() -> None:
    log = day()
    log.add(ev.StepUpdated, 102, session="alice", milestone="dash", step=2, status="done")
    log.add(ev.StepUpdated, 103, session="alice", milestone="dash", step=3, status="skipped")
    md = render(log.state(), at(200))["CURRENT_STATE.md"].content.decode()
    section = md.split("## Recently completed")[1]
    assert section.index("milestone `dash`") < section.index("priority `docs`")
    assert "## Active milestones (0)" in md


def make_hub(tmp_path: Path) -> Path:
    sessions = tmp_path / "hub" / "SESSIONS"
    (sessions / "events").mkdir(parents=True)
    (sessions / "events" / "log.jsonl").write_bytes(b'{"seq":1}\n')
    (sessions / "HEARTBEATS").mkdir()
    (sessions / "HEARTBEATS" / "ghost.json").write_text("{}")
    (sessions / "PRIORITIES" / "keep-dir").mkdir(parents=True)
    (sessions / "notes.txt").write_text("mine")
    (tmp_path / "outside.txt").write_text("outside")
    return sessions


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_views_makes_the_folder_hold_exactly_the_views(tmp_path: Path) -> None:
    sessions = make_hub(tmp_path)
    log = day()
    views = render(log.state(), at(200))
    assert write_views(sessions, views) == len(views) + 1  # every view, plus ghost.json removed
    for rel, view in views.items():
        path = sessions / rel
        assert path.read_bytes() == view.content
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if view.executable else 0o644)
    assert not (sessions / "HEARTBEATS" / "ghost.json").exists()
    assert (sessions / "PRIORITIES" / "keep-dir").is_dir()
    assert (sessions / "notes.txt").read_text() == "mine"
    assert (sessions / "events" / "log.jsonl").read_bytes() == b'{"seq":1}\n'
    assert (tmp_path / "outside.txt").read_text() == "outside"

    assert write_views(sessions, views) == 0
    os.chmod(sessions / "README.md", 0o600)
    assert write_views(sessions, views) == 1

    # carol falls silent: her heartbeat goes, and with it her claim turns stale.
    before = snapshot(sessions / "events")
    later = render(log.state(), at(350))
    write_views(sessions, later)
    assert not (sessions / "HEARTBEATS" / "carol.json").exists()
    assert json.loads((sessions / "PRIORITIES" / "api.lock").read_bytes())["alive"] is False
    assert snapshot(sessions / "events") == before


def test_planted_symlinks_are_replaced_never_followed(tmp_path: Path) -> None:
    sessions = make_hub(tmp_path)
    target = tmp_path / "outside.txt"
    (sessions / "PRIORITIES" / "deploy.lock").symlink_to(target)
    (sessions / "PRIORITIES" / "gone.lock").symlink_to(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.json").write_text("keep")
    (sessions / "HANDSHAKES").symlink_to(elsewhere)
    (sessions / "MILESTONES").symlink_to(elsewhere)

    views = render(day().state(), at(200))
    write_views(sessions, views)

    lock = sessions / "PRIORITIES" / "deploy.lock"
    assert not lock.is_symlink() and lock.read_bytes() == views["PRIORITIES/deploy.lock"].content
    assert not (sessions / "PRIORITIES" / "gone.lock").exists()
    assert target.read_text() == "outside"
    assert not (sessions / "MILESTONES").is_symlink()
    assert (sessions / "MILESTONES" / "dash.json").is_file()
    assert not (sessions / "HANDSHAKES").is_symlink()
    assert sorted(os.listdir(elsewhere)) == ["precious.json"]
    assert (elsewhere / "precious.json").read_text() == "keep"


def test_a_view_folder_link_with_no_views_is_replaced_by_the_folder_not_followed(tmp_path: Path) -> None:
    sessions = make_hub(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.json").write_text("keep")
    (sessions / "HANDSHAKES").symlink_to(elsewhere)
    log = Log()
    log.add(ev.HubCreated, 0)
    write_views(sessions, render(log.state(), at(1)))
    assert (sessions / "HANDSHAKES").is_dir() and not (sessions / "HANDSHAKES").is_symlink()
    assert list((sessions / "HANDSHAKES").iterdir()) == []
    assert (elsewhere / "precious.json").read_text() == "keep"


def test_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    too_long = "x" * 300
    with pytest.raises(StorageError, match=f"cannot write .*{too_long}: File name too long"):
        write_views(tmp_path / "SESSIONS", {too_long: View(b"x\n")})
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("a file")
    with pytest.raises(StorageError, match="cannot write .*file: File exists"):
        write_views(not_a_dir, {"README.md": View(b"x\n")})


def test_write_views_creates_a_missing_sessions_folder(tmp_path: Path) -> None:
    views = render(day().state(), at(200))
    out = tmp_path / "replayed" / "SESSIONS"
    assert write_views(out, views) == len(views)
    assert snapshot(out) == {rel: v.content for rel, v in views.items()}


def test_shims_are_executable_bash(tmp_path: Path) -> None:
    views = render(day().state(), at(200))
    for name in SHIMS:
        text = views[name].content.decode()
        assert text.startswith("#!/usr/bin/env bash\n# ") and "set -euo pipefail\n" in text
        subprocess.run(["bash", "-n", "-c", text], check=True)
    sessions = make_hub(tmp_path)
    write_views(sessions, views)
    for name in SHIMS:
        assert os.access(sessions / name, os.X_OK)


@pytest.fixture
def fake_evhub(tmp_path: Path) -> dict[str, str]:
    """An `evhub` on PATH that prints its arguments one a line, so a shim's exec can be checked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "evhub"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.parametrize(
    ("shim", "args", "expected"),
    [
        ("quick-status.sh", [], ["status"]),
        ("milestone-status.sh", [], ["milestone", "list"]),
        ("milestone-status.sh", ["dash"], ["milestone", "show", "dash"]),
        ("claim-milestone.sh", ["dash", "alice"], ["milestone", "claim", "dash", "--session", "alice"]),
        ("update-milestone.sh", ["dash", "2", "done"], ["milestone", "step", "dash", "2", "done"]),
        (
            "update-milestone.sh",
            ["dash", "2", "done", "a note"],
            ["milestone", "step", "dash", "2", "done", "--note", "a note"],
        ),
        (
            "update-milestone.sh",
            ["dash", "2", "completed", "a note", "alice"],
            ["milestone", "step", "dash", "2", "completed", "--note", "a note", "--session", "alice"],
        ),
        (
            "create-milestone.sh",
            ["T", "HIGH", "alice", "one"],
            ["milestone", "create", "--session", "alice", "--step", "one", "--", "T"],
        ),
        (
            "create-milestone.sh",
            ["-Odd title", "p1"],
            ["milestone", "create", "--priority", "p1", "--", "-Odd title"],
        ),
        (
            "create-milestone.sh",
            ["T", "p1", "one", "two"],
            ["milestone", "create", "--priority", "p1", "--step", "one", "--step", "two", "--", "T"],
        ),
        ("save-progress.sh", ["auto", "alice"], ["save", "--mode", "auto", "--session", "alice"]),
        ("scripts/register-session.sh", ["alice"], ["hello", "alice"]),
        ("scripts/claim-priority.sh", ["p1", "alice"], ["claim", "p1", "--session", "alice"]),
    ],
)
def test_shims_exec_evhub_on_the_hub(
    tmp_path: Path, fake_evhub: dict[str, str], shim: str, args: list[str], expected: list[str]
) -> None:
    sessions = make_hub(tmp_path)
    write_views(sessions, render(day().state(), at(200)))
    out = subprocess.run(
        [str(sessions / shim), *args], env=fake_evhub, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "--hub"
    assert Path(out[1]).resolve() == sessions.parent.resolve()
    assert out[2:] == expected


@pytest.mark.parametrize(
    ("shim", "args"),
    [
        ("claim-milestone.sh", ["dash"]),
        ("update-milestone.sh", ["dash", "2"]),
        ("create-milestone.sh", ["T"]),
        ("save-progress.sh", []),
        ("scripts/register-session.sh", []),
        ("scripts/claim-priority.sh", ["p1"]),
    ],
)
def test_shims_without_required_args_print_usage_and_exit_2(
    tmp_path: Path, fake_evhub: dict[str, str], shim: str, args: list[str]
) -> None:
    sessions = make_hub(tmp_path)
    write_views(sessions, render(day().state(), at(200)))
    done = subprocess.run([str(sessions / shim), *args], env=fake_evhub, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"usage: {Path(shim).name} ")


def test_every_seed_folder_is_there_even_when_empty(tmp_path: Path) -> None:
    sessions = tmp_path / "SESSIONS"
    log = Log()
    log.add(ev.HubCreated, 0)
    write_views(sessions, render(log.state(), at(1)))
    for folder in ("HEARTBEATS", "PRIORITIES", "MILESTONES", "DISCOVERY", "HANDSHAKES"):
        held = [p.name for p in (sessions / folder).iterdir()]
        assert (sessions / folder).is_dir() and held == (["README.md"] if folder == "MILESTONES" else []), folder
