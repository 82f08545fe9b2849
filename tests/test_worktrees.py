"""One hub per git repository, out of git's reach (issue 13): the installed `evhub` driven in
subprocesses, with real `git` in temporary repositories and real processes for races.

In a git repository the live hub (log, lock, read model) sits in `<git common dir>/evhub/`, shared by
every worktree; `SESSIONS/` in each worktree holds only views, which git does not track. No git
command on the code (stash, checkout, reset, clean, pull) rewinds the log; a log rewound by hand is refused
for writes (exit 4) until `evhub repair` puts back what the hub had seen; an old hub (its log tracked in
`SESSIONS/events/`) keeps working, warns, and moves with `evhub migrate`.

Every git and evhub process gets a HOME of the test's own, no system git config, and a ceiling at the
test's temporary folder, so no user setting and no enclosing repository leaks in. Times come from
EVHUB_NOW (`at(seconds)` after T0).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from clock import at
from command import GATED_EVHUB, GIT_ENV, clean_env, error_line, gated, js, ok, release, run
from stores import HubStore

from evhub._pgstore import STORE_FILE


def lines_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines()]


class Repo:
    """A folder in a test's temporary directory (a git work tree once `init_git` ran), with `git` and
    `evhub` run in it (or in another CWD) as a user runs them."""

    def __init__(self, tmp: Path, name: str = "repo") -> None:
        tmp = tmp.resolve()
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = {**GIT_ENV, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "GIT_CEILING_DIRECTORIES": str(tmp)}
        self.tmp = tmp
        self.top = tmp / name
        self.top.mkdir()

    def git(self, *args: str | Path, cwd: Path | None = None) -> str:
        """`git ARGS` in CWD (default: the main worktree's top); its stdout, after checking it exited 0."""
        done = subprocess.run(["git", *map(str, args)], cwd=cwd or self.top, env=clean_env(self.env),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"git {args} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def commit(self, name: str, text: str) -> None:
        (self.top / name).write_text(text)
        self.git("add", name)
        self.git("commit", "-q", "-m", f"add {name}")

    def init_git(self) -> Repo:
        self.git("init", "-q", "-b", "main")
        self.commit("README.md", "# a project\n")
        return self

    def evhub(self, *args: str | Path, cwd: Path | None = None, session: str | None = None,
              now: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "EVHUB_NOW": now or at(0)}
        if session is not None:
            env["EVHUB_SESSION"] = session
        return run(*args, env=env, cwd=cwd or self.top)

    def ok(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        return ok(self.evhub(*args, **kw))

    @property
    def common(self) -> Path:
        """The repository's common git directory, absolute, as git itself says."""
        out = self.git("rev-parse", "--git-common-dir").strip()
        return (self.top / out).resolve()

    @property
    def hub_dir(self) -> Path:
        return self.common / "evhub"

    @property
    def log(self) -> Path:
        return self.hub_dir / "log.jsonl"

    def worktrees(self) -> list[Path]:
        """Every worktree `git worktree list` shows, the main one first."""
        listed = self.git("worktree", "list", "--porcelain").splitlines()
        return [Path(line.removeprefix("worktree ")) for line in listed if line.startswith("worktree ")]

    def add_worktree(self, where: str) -> Path:
        self.git("worktree", "add", "-q", where)
        return (self.top / where).resolve()

    def ignored(self, path: str) -> bool:
        """Whether git ignores PATH (relative to the main worktree's top), as `git check-ignore` says."""
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=self.top, env=clean_env(self.env))
        assert done.returncode in (0, 1), f"git check-ignore {path} exited {done.returncode}"
        return done.returncode == 0

    def porcelain(self, cwd: Path | None = None) -> list[str]:
        return self.git("status", "--porcelain", "--untracked-files=all", cwd=cwd).splitlines()


def repo_with_hub(tmp: Path) -> Repo:
    """A git repository with one commit and a hub that `evhub init` made at its top at T0."""
    repo = Repo(tmp).init_git()
    repo.ok("init")
    return repo


def with_worktrees(tmp: Path) -> tuple[Repo, Path, Path]:
    """A repository with a hub and two linked worktrees: one beside it (../wt2), one inside it
    (.claude/worktrees/w1), as `claude --worktree w1` makes."""
    repo = repo_with_hub(tmp)
    return repo, repo.add_worktree("../wt2"), repo.add_worktree(".claude/worktrees/w1")


# -- 1. where the hub lives ---------------------------------------------------------------------


def test_init_in_a_git_repository_puts_the_live_hub_in_the_common_git_dir(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    common = Path(repo.git("rev-parse", "--git-common-dir").strip())
    assert (repo.top / common).resolve() == repo.top / ".git"
    hub = repo.top / ".git" / "evhub"
    for name in ("log.jsonl", "lock", "readmodel.sqlite3"):
        assert (hub / name).is_file(), name
    [created] = lines_of((hub / "log.jsonl").read_bytes())
    assert created["type"] == "hub_created" and created["seq"] == 1
    sessions = repo.top / "SESSIONS"
    assert (sessions / "CURRENT_STATE.md").is_file()
    live = [p.relative_to(sessions).as_posix() for p in sessions.rglob("*")
            if p.name in ("log.jsonl", "lock", "store.json") or p.name.startswith("readmodel")]
    assert live == [], f"SESSIONS/ holds only views, not {live}"


def test_where_names_the_root_the_log_the_read_model_and_every_worktrees_views(tmp_path: Path) -> None:
    repo, wt2, w1 = with_worktrees(tmp_path)
    # Two more, named so that git's order (by path) is not the order of their names.
    feature, alpha = repo.add_worktree("../feature"), repo.add_worktree(".claude/worktrees/alpha")
    worktrees = repo.worktrees()
    assert worktrees[0] == repo.top and sorted(worktrees[1:]) == sorted([wt2, w1, feature, alpha])
    hub = repo.common / "evhub"
    expected = {"root": repo.top, "log": hub / "log.jsonl", "read_model": hub / "readmodel.sqlite3"}
    views = [w / "SESSIONS" for w in worktrees]
    for cwd in (repo.top, wt2, w1, repo.top / "SESSIONS"):
        where = js(repo.evhub("where", "--json", cwd=cwd))
        for key, path in expected.items():
            assert Path(where[key]).is_absolute() and Path(where[key]) == path, (cwd, key, where[key])
        assert all(Path(v).is_absolute() for v in where["views"]), where["views"]
        # Main first; the linked worktrees all there (their order is git's, or at least the same set).
        assert Path(where["views"][0]) == views[0] and sorted(map(Path, where["views"])) == sorted(views), cwd

    plain = repo.ok("where", cwd=w1).stdout.splitlines()
    facts = [line for line in plain if line.split(":", 1)[0] in ("root", "log", "read model")]
    assert facts == [f"root: {repo.top}", f"log: {hub / 'log.jsonl'}", f"read model: {hub / 'readmodel.sqlite3'}"]
    listed = [line.removeprefix("views: ") for line in plain if line.startswith("views: ")]
    assert listed[0] == str(views[0]) and sorted(listed) == sorted(map(str, views)), plain


# -- 2. every worktree shares the hub ---------------------------------------------------------------


def test_sessions_in_three_worktrees_see_each_other_in_status_and_in_every_worktrees_views(tmp_path: Path) -> None:
    repo, wt2, w1 = with_worktrees(tmp_path)
    repo.ok("hello", "alice", cwd=repo.top, now=at(1))
    repo.ok("hello", "bob", cwd=wt2, now=at(2))
    repo.ok("hello", "carol", cwd=w1, now=at(3))

    for cwd in (repo.top, wt2, w1):
        status = js(repo.evhub("status", "--json", cwd=cwd, now=at(4)))
        assert sorted(s["id"] for s in status["sessions"]) == ["alice", "bob", "carol"], cwd
    assert [e["type"] for e in lines_of(repo.log.read_bytes())] == ["hub_created"] + ["session_registered"] * 3
    for wt in (repo.top, wt2, w1):
        state = (wt / "SESSIONS" / "CURRENT_STATE.md").read_text()
        assert all(sid in state for sid in ("alice", "bob", "carol")), (wt, state)

    # A command in one worktree changes the views in another.
    before = (wt2 / "SESSIONS" / "CURRENT_STATE.md").read_bytes()
    repo.ok("focus", "Ship the metrics dashboard", cwd=w1, session="carol", now=at(5))
    after = (wt2 / "SESSIONS" / "CURRENT_STATE.md").read_text()
    assert after.encode() != before and "Ship the metrics dashboard" in after
    assert "Ship the metrics dashboard" in (repo.top / "SESSIONS" / "CURRENT_STATE.md").read_text()


def test_three_worktrees_racing_for_one_claim_one_wins_and_no_token_repeats(tmp_path: Path) -> None:
    repo, wt2, w1 = with_worktrees(tmp_path)
    places = {"alice": repo.top, "bob": wt2, "carol": w1}
    for n, (sid, cwd) in enumerate(places.items()):
        repo.ok("hello", sid, cwd=cwd, now=at(n))

    def race(priority: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
        env = {**repo.env, "EVHUB_NOW": at(10)}
        procs = [gated(GATED_EVHUB, ["claim", priority[sid], "--session", sid, "--json"], cwd, env)
                 for sid, cwd in places.items()]
        return dict(zip(places, release(procs), strict=True))

    same = race({sid: "api" for sid in places})
    codes = sorted(p.returncode for p in same.values())
    assert codes == [0, 3, 3], [(p.returncode, p.stderr) for p in same.values()]
    [winner] = [sid for sid, p in same.items() if p.returncode == 0]
    for sid, p in same.items():
        if sid != winner:  # under --json the refusal is a JSON error on stderr
            assert json.loads(p.stderr) == {"error": ANY, "exit": 3} and f"held by {winner}" in p.stderr
    [held] = js(repo.evhub("claims", "--json", cwd=wt2, now=at(11)))
    assert held["priority"] == "api" and held["session"] == winner
    assert held["token"] == json.loads(same[winner].stdout)["token"]

    # Each worktree claims a priority of its own, all at once: every claim is granted, no token twice.
    own = race({sid: f"own-{sid}" for sid in places})
    assert [p.returncode for p in own.values()] == [0, 0, 0], [p.stderr for p in own.values()]
    claims = js(repo.evhub("claims", "--json", cwd=w1, now=at(11)))
    assert sorted(c["priority"] for c in claims) == ["api", "own-alice", "own-bob", "own-carol"]
    tokens = [c["token"] for c in claims]
    assert len(set(tokens)) == len(tokens) == 4

    events = [json.loads(line) for line in ok(repo.evhub("log", "--json", now=at(12))).stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["id"] for e in events}) == len(events)
    claimed = [e for e in events if e["type"] == "priority_claimed"]
    assert len(claimed) == 4 and len({e["seq"] for e in claimed}) == 4
    assert sorted(e["seq"] for e in claimed) == sorted(tokens)


# -- 3. init refuses a second hub in the same repository --------------------------------------------


def test_init_in_a_subfolder_or_a_linked_worktree_refuses_naming_the_hub_root(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    deep = repo.top / "src" / "deep"
    deep.mkdir(parents=True)
    wt2 = repo.add_worktree("../wt2")
    log = repo.log.read_bytes()

    for cwd, args in ((deep, ["init"]), (wt2, ["init"]), (repo.top, ["init", "src/deep"])):
        line = error_line(repo.evhub(*args, cwd=cwd, now=at(60)), 3)
        assert str(repo.top) in line, (cwd, args, line)
    assert list(deep.rglob("log.jsonl")) == [] and list(wt2.rglob("log.jsonl")) == []
    assert not (deep / "SESSIONS").exists()

    again = repo.ok("init", now=at(60))
    assert "already" in again.stdout, again.stdout
    assert repo.log.read_bytes() == log


# -- 4. git commands never rewind the hub -----------------------------------------------------------


def _stash(repo: Repo) -> None:
    repo.git("stash", "-u")
    assert not (repo.top / "scratch.txt").exists()  # the stash took the work tree's changes


def _checkout_older(repo: Repo) -> None:
    repo.git("checkout", "-q", "HEAD~1")
    assert not (repo.top / "b.txt").exists()


def _reset(repo: Repo) -> None:
    repo.git("reset", "-q", "--hard")
    assert (repo.top / "a.txt").read_text() == "a\n"


def _clean(repo: Repo) -> None:
    repo.git("clean", "-q", "-fdx")
    assert not (repo.top / "scratch.txt").exists()


def _pull(repo: Repo) -> None:
    other = repo.tmp / "other"
    repo.git("clone", "-q", repo.top, other)
    (other / "c.txt").write_text("c\n")
    repo.git("add", "c.txt", cwd=other)
    repo.git("commit", "-q", "-m", "add c.txt", cwd=other)
    repo.git("pull", "-q", "--ff-only", other, "main")
    assert (repo.top / "c.txt").read_text() == "c\n"


def _stash_pop(repo: Repo) -> None:
    repo.git("stash", "pop")
    assert (repo.top / "scratch.txt").read_text() == "scratch\n"


def _checkout_back(repo: Repo) -> None:
    repo.git("checkout", "-q", "main")


GIT_COMMANDS = {
    "stash -u": (_stash, _stash_pop),
    "checkout HEAD~1": (_checkout_older, _checkout_back),
    "reset --hard": (_reset, None),
    "clean -fdx": (_clean, None),
    "pull": (_pull, None),
}


@pytest.mark.parametrize("command", list(GIT_COMMANDS))
def test_git_commands_on_the_code_never_rewind_the_hub(tmp_path: Path, command: str) -> None:
    repo = Repo(tmp_path).init_git()
    repo.commit("a.txt", "a\n")
    repo.commit("b.txt", "b\n")
    repo.ok("init")
    repo.ok("hello", "alice", now=at(1))
    repo.ok("hello", "bob", now=at(2))
    token = js(repo.evhub("claim", "api", "--json", session="alice", now=at(3)))["token"]
    ok(repo.evhub("save", "--mode", "full", session="alice", now=at(4)))
    # Work in progress for git to stash, reset or clean.
    (repo.top / "a.txt").write_text("a, changed\n")
    (repo.top / "scratch.txt").write_text("scratch\n")
    claims = js(repo.evhub("claims", "--json", now=at(5)))
    assert [(c["priority"], c["session"], c["token"]) for c in claims] == [("api", "alice", token)]
    log = repo.log.read_bytes()

    do, undo = GIT_COMMANDS[command]
    do(repo)
    assert repo.log.read_bytes() == log, f"git {command} changed the log"
    assert js(repo.evhub("claims", "--json", now=at(5))) == claims
    assert "held by alice" in error_line(repo.evhub("claim", "api", session="bob", now=at(6)), 3)
    repo.ok("heartbeat", session="alice", now=at(7))
    if undo is not None:
        undo(repo)
    after = lines_of(repo.log.read_bytes())
    assert after[: len(lines_of(log))] == lines_of(log)
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    assert [e["type"] for e in after[len(lines_of(log)):]] == ["heartbeat"]
    assert js(repo.evhub("claims", "--json", now=at(8)))[0]["token"] == token


# -- 5. views are untracked; a full save leaves the tree clean ------------------------------------


def test_views_are_untracked_and_a_full_save_leaves_the_tree_clean(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    repo.ok("hello", "alice", now=at(1))
    repo.ok("claim", "api", session="alice", now=at(2))
    repo.ok("msg", "send", "starting on the API", session="alice", now=at(3))
    assert (repo.top / "SESSIONS" / "CURRENT_STATE.md").is_file()
    assert (repo.top / "SESSIONS" / ".gitignore").is_file()
    assert repo.porcelain() == []  # nothing under SESSIONS/ (nor anywhere else) shows as a change
    assert repo.git("ls-files", "SESSIONS") == ""
    assert repo.ignored("SESSIONS/CURRENT_STATE.md")

    head = repo.git("rev-parse", "HEAD")
    saved = repo.evhub("save", "--mode", "full", session="alice", now=at(4))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip(), "a full save with nothing to commit says so"
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.porcelain() == []
    assert js(repo.evhub("save", "--mode", "full", "--json", session="alice", now=at(5)))["git_commit"] is None
    assert repo.porcelain() == []


def test_views_tracked_by_choice_are_committed_agreeing_with_the_log_and_the_tree_is_clean_after(
        tmp_path: Path) -> None:
    # The documented setting that asks git to track the views (evhub's choice: git config evhub.trackViews).
    repo = Repo(tmp_path).init_git()
    repo.git("config", "evhub.trackViews", "true")
    repo.ok("init")
    repo.ok("hello", "alice", now=at(1))
    repo.ok("claim", "api", session="alice", now=at(2))
    assert not repo.ignored("SESSIONS/CURRENT_STATE.md")
    saved = js(repo.evhub("save", "--mode", "full", "--json", session="alice", now=at(3)))
    assert saved["git_commit"] == repo.git("rev-parse", "HEAD").strip()
    committed = repo.git("show", "--name-only", "--format=", "HEAD").split()
    assert "SESSIONS/CURRENT_STATE.md" in committed
    assert not any(Path(f).name in ("log.jsonl", "lock", STORE_FILE) or "readmodel" in f for f in committed)
    last = lines_of(repo.log.read_bytes())[-1]["seq"]
    state = repo.git("show", "HEAD:SESSIONS/CURRENT_STATE.md")
    assert f"As of event #{last} " in state, "the committed views are behind the log"
    assert repo.porcelain() == []  # clean right after the save


def test_asking_git_to_track_the_views_after_init_takes_effect_on_the_next_command(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    repo.ok("hello", "alice", now=at(1))
    assert repo.ignored("SESSIONS/CURRENT_STATE.md")
    repo.git("config", "evhub.trackViews", "true")
    repo.ok("heartbeat", session="alice", now=at(2))
    assert not repo.ignored("SESSIONS/CURRENT_STATE.md"), (repo.top / "SESSIONS" / ".gitignore").read_text()
    assert "?? SESSIONS/CURRENT_STATE.md" in repo.porcelain()


# -- 6. a log rewound by hand ----------------------------------------------------------------------


def test_a_log_rewound_by_hand_refuses_writes_warns_reads_and_repair_restores_it(tmp_path: Path) -> None:
    repo = repo_with_hub(tmp_path)
    repo.ok("hello", "alice", now=at(1))
    repo.ok("claim", "api", session="alice", now=at(2))
    old = tmp_path / "log.old"
    shutil.copyfile(repo.log, old)
    assert len(lines_of(old.read_bytes())) == 3
    repo.ok("hello", "bob", now=at(3))
    repo.ok("claim", "docs", session="bob", now=at(4))
    full = repo.log.read_bytes()
    assert len(lines_of(full)) == 5
    subprocess.run(["cp", str(old), str(repo.log)], check=True)
    rewound = old.read_bytes()

    for args, session in ((["heartbeat"], "alice"), (["claim", "tests"], "alice"), (["hello", "carol"], None),
                          (["msg", "send", "hello?"], "alice")):
        line = error_line(repo.evhub(*args, session=session, now=at(5)), 4)
        assert "rewound" in line or "replaced" in line, (args, line)
        assert "evhub repair" in line, (args, line)
        assert repo.log.read_bytes() == rewound, f"{args} appended to a rewound log"

    status = repo.evhub("status", now=at(5))
    assert status.returncode == 0, status.stderr
    warnings = [w for w in status.stderr.splitlines() if w.startswith("warning:")]
    assert any("rewound" in w or "replaced" in w for w in warnings), status.stderr
    assert repo.log.read_bytes() == rewound

    ok(repo.evhub("repair", now=at(6)))
    restored = lines_of(repo.log.read_bytes())
    assert restored[:5] == lines_of(full), "repair put back every event the hub had seen"
    assert [e["seq"] for e in restored] == list(range(1, len(restored) + 1))
    ok(repo.evhub("verify", now=at(6)))
    claims = js(repo.evhub("claims", "--json", now=at(6)))
    assert sorted((c["priority"], c["session"]) for c in claims) == [("api", "alice"), ("docs", "bob")]
    assert sorted(s["id"] for s in js(repo.evhub("sessions", "--all", "--json", now=at(6)))) == ["alice", "bob"]

    repo.ok("hello", "carol", now=at(7))
    token = js(repo.evhub("claim", "tests", "--json", session="carol", now=at(8)))["token"]
    after = lines_of(repo.log.read_bytes())
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
    assert token == after[-1]["seq"] and token > 5
    assert len({e["id"] for e in after}) == len(after)


# -- 7. an old hub, its log tracked by git, moves with `evhub migrate` -------------------------------


def test_an_old_hub_tracked_by_git_keeps_working_warns_once_and_migrates(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    repo.ok("init")  # not a git repository yet: the log in SESSIONS/events/, as evhub made hubs before
    repo.ok("hello", "alice", now=at(1))
    repo.ok("claim", "api", session="alice", now=at(2))
    old_log = repo.top / "SESSIONS" / "events" / "log.jsonl"
    assert old_log.is_file()
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "the old hub")
    old_commit = repo.git("rev-parse", "HEAD").strip()
    assert "SESSIONS/events/log.jsonl" in repo.git("ls-files", "SESSIONS").split()

    def warned_once(proc: subprocess.CompletedProcess[str]) -> None:
        said = [line for line in proc.stderr.splitlines() if "evhub migrate" in line]
        assert len(said) == 1, (proc.args, proc.stderr)
        assert said[0].startswith("warning"), said

    for args, session in ((["status"], None), (["hello", "bob"], None), (["claim", "docs"], "bob"),
                          (["heartbeat"], "alice"), (["claims", "--json"], None), (["msg", "send", "hi"], "bob")):
        proc = repo.evhub(*args, session=session, now=at(3))
        assert proc.returncode == 0, (args, proc.stderr)
        warned_once(proc)
    assert "held by alice" in error_line_after_warning(repo.evhub("claim", "api", session="bob", now=at(3)))
    before = repo.evhub("log", "--json", now=at(4))
    warned_once(ok(before))
    assert len(before.stdout.splitlines()) == 7

    migrated = repo.evhub("migrate", now=at(5))
    assert migrated.returncode == 0, migrated.stderr
    assert repo.log.is_file() and repo.hub_dir == repo.top / ".git" / "evhub"
    assert not old_log.exists()
    assert repo.git("ls-files", "SESSIONS") == ""
    assert old_commit in repo.git("log", "--format=%H").split()
    assert repo.git("show", f"{old_commit}:SESSIONS/events/log.jsonl")  # history keeps the old log

    after = repo.evhub("log", "--json", now=at(6))
    assert ok(after).stdout == before.stdout
    assert "migrate" not in after.stderr
    for args, session in ((["status"], None), (["heartbeat"], "bob")):
        proc = repo.evhub(*args, session=session, now=at(7))
        assert proc.returncode == 0 and "migrate" not in proc.stderr, (args, proc.stderr)
    assert lines_of(repo.log.read_bytes())[-1]["type"] == "heartbeat"
    assert Path(js(repo.evhub("where", "--json", now=at(7)))["log"]) == repo.log


def error_line_after_warning(proc: subprocess.CompletedProcess[str]) -> str:
    """The `error:` line of a command refused with exit 3 on an old hub (which also warns once)."""
    assert proc.returncode == 3, (proc.args, proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


# -- the PostgreSQL store: its settings are the repository's too -------------------------------------


def test_a_hub_on_either_store_is_shared_by_a_worktree_and_keeps_its_settings_in_the_common_dir(
        tmp_path: Path, store: HubStore) -> None:
    repo = Repo(tmp_path).init_git()
    args = store.init_args()  # a fresh schema each call: call it once
    init = js(repo.evhub("init", *args, "--json"))
    assert init["created"] is True
    wt2 = repo.add_worktree("../wt2")
    repo.ok("hello", "bob", cwd=wt2, now=at(1))
    assert [s["id"] for s in js(repo.evhub("sessions", "--json", now=at(2)))] == ["bob"]
    assert "bob" in (repo.top / "SESSIONS" / "CURRENT_STATE.md").read_text()
    kept = "log.jsonl" if store.kind == "jsonl" else STORE_FILE
    assert (repo.hub_dir / kept).is_file()
    for wt in (repo.top, wt2):
        assert not list((wt / "SESSIONS").rglob(kept)), f"{kept} is in {wt}'s SESSIONS/"
    where = js(repo.evhub("where", "--json", cwd=wt2, now=at(2)))
    assert Path(where["root"]) == repo.top
    if store.kind == "jsonl":
        assert Path(where["log"]) == repo.log
    else:
        schema = args[args.index("--schema") + 1]
        assert schema in where["log"], where["log"]  # the store and the schema, not a file
    assert repo.porcelain() == [] and repo.porcelain(cwd=wt2) == []
