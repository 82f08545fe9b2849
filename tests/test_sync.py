"""`evhub sync` and `evhub merge` (issue 17): clones of one repository exchange their hub's events through
the git remote they share, on refs of evhub's own, and converge.

Real git: a bare remote and clones of it made by `git clone`, each with the branch a first commit made;
the installed `evhub` runs in subprocesses with a HOME of the test's own and no git identity, so a sync
needs no user config. A slow git (a wrapper first on PATH that stops at one git subcommand until the test
kills the sync) puts a SIGKILL at chosen moments: the test waits for the wrapper to say it got there.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

from clock import at
from command import EVHUB, GIT_ENV, clean_env, error_line, finished, ok, run, started
from stores import HubStore

from evhub._sync import REFS, TRACKING

GIT = shutil.which("git") or "git"


class Place:
    """A test's temporary folder: a bare remote, and clones of it (each a git work tree)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp.resolve()
        home = self.tmp / "home"
        home.mkdir()
        # The evhub processes get no git identity: a sync writes its commits as evhub.
        self.env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CEILING_DIRECTORIES": str(self.tmp)}
        self.remote = self.tmp / "remote.git"
        self.git(self.tmp, "init", "-q", "--bare", "-b", "main", self.remote)
        first = self.clone("first")
        (first / "README.md").write_text("# a project\n")
        self.git(first, "add", "README.md")
        self.git(first, "commit", "-q", "-m", "first")
        self.git(first, "push", "-q", "origin", "main")
        shutil.rmtree(first)

    def git(self, cwd: Path, *args: str | Path) -> str:
        done = subprocess.run([GIT, *map(str, args)], cwd=cwd, env=clean_env({**self.env, **GIT_ENV}),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"git {args} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def clone(self, name: str) -> Path:
        self.git(self.tmp, "clone", "-q", self.remote, name)
        return self.tmp / name

    def evhub(self, cwd: Path, *args: str | Path, session: str | None = None, now: float = 0,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        extra = {**self.env, "EVHUB_NOW": at(now), **({"EVHUB_SESSION": session} if session else {}), **(env or {})}
        return run(*args, env=extra, cwd=cwd)

    def ok(self, cwd: Path, *args: str | Path, **kw: object) -> str:
        return ok(self.evhub(cwd, *args, **kw)).stdout  # type: ignore[arg-type]

    def refs(self) -> str:
        """The evhub refs on the remote, with their commits."""
        return self.git(self.remote, "for-each-ref", REFS)


def log_of(clone: Path) -> bytes:
    return (clone / ".git" / "evhub" / "log.jsonl").read_bytes()


def ids(clone: Path) -> list[str]:
    return sorted(json.loads(line)["id"] for line in log_of(clone).splitlines())


def views(clone: Path) -> dict[str, bytes]:
    folder = clone / "SESSIONS"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def user_side(place: Place, clone: Path) -> tuple[str, str, str]:
    """What a sync must never touch: the branches and remote-tracking branches, HEAD, the index and work tree."""
    return (place.git(clone, "for-each-ref", "refs/heads", "refs/remotes", "refs/tags"),
            place.git(clone, "rev-parse", "HEAD"), place.git(clone, "status", "--porcelain", "--ignored"))


def joined(tmp: Path, names: str) -> tuple[Place, list[Path]]:
    """A remote and a clone for each of NAMES: the first made the hub, each synced once (the others joined)."""
    place = Place(tmp)
    clones = [place.clone(n) for n in names]
    place.ok(clones[0], "init")
    for clone in clones:
        place.ok(clone, "sync")
    return place, clones


def hook(place: Place, clone: Path, event: str, now: float) -> None:
    """Claude Code's hook EVENT for its session s1 in CLONE, as Claude Code runs it."""
    said = subprocess.run([EVHUB, "hook"], input=json.dumps({"hook_event_name": event, "session_id": "s1",
                                                               "cwd": str(clone)}),
                          cwd=clone, capture_output=True, text=True, timeout=60,
                          env=clean_env({**place.env, "EVHUB_NOW": at(now)}))
    assert said.returncode == 0 and said.stderr == "", said.stderr


def test_clones_join_sync_and_converge_and_a_second_sync_changes_nothing(tmp_path: Path) -> None:
    place = Place(tmp_path)
    a, b, c = (place.clone(n) for n in "abc")
    place.ok(a, "init")
    place.ok(a, "hello", "alice")
    place.ok(a, "claim", "api", session="alice")
    before = user_side(place, a)
    assert place.ok(a, "sync") == "synced with origin: took 0 events, gave 3 (clones 0)\n"
    # Two fresh clones join at once: each claims an index of its own.
    joins = [started("sync", *remote, cwd=clone, env={**place.env, "EVHUB_NOW": at(1)})
             for clone, remote in ((b, ()), (c, ("origin",)))]
    said = sorted(ok(finished(j)).stdout for j in joins)
    assert [s[:60] for s in said] == ["synced with origin: joined the hub as clone 1, took 3 events",
                                      "synced with origin: joined the hub as clone 2, took 3 events"], said
    # While apart: each clone writes; b's save --mode full syncs by itself.
    place.ok(b, "hello", "bob", now=3)
    place.ok(b, "msg", "send", "hello from b", session="bob", now=4)
    place.ok(c, "hello", "carol", now=5)
    place.ok(a, "msg", "send", "hello from a", session="alice", now=6)
    assert place.ok(b, "save", "--mode", "full", session="bob", now=7).splitlines()[-1] == \
        "synced with origin: took 0 events, gave 3"
    for clone in (c, a, b, c):
        place.ok(clone, "sync", now=8)
    assert ids(a) == ids(b) == ids(c) and len(ids(a)) == 8
    statuses = {place.ok(clone, "status", now=9) for clone in (a, b, c)}
    assert len(statuses) == 1 and "hello from b" in statuses.pop()
    assert views(a) == views(b) == views(c)
    for clone in (a, b, c):
        place.ok(clone, "verify", now=9)  # exit 4 if the log, read model or views disagree

    # Nothing new: a second round takes and gives nothing, and writes no commit and no event.
    refs, logs = place.refs(), [log_of(clone) for clone in (a, b, c)]
    for clone in (a, b, c):
        assert place.ok(clone, "sync", now=10).startswith("synced with origin: took 0 events, gave 0 (clones 0, 1, 2)")
    assert place.refs() == refs and [log_of(clone) for clone in (a, b, c)] == logs
    assert user_side(place, a) == before
    assert place.ok(a, "where", now=10).splitlines()[-1] == \
        f"synced: origin ({place.remote}) {at(10)}: took 0 events, gave 0"
    assert json.loads(place.ok(a, "where", "--json"))["synced"]["clones"] == [0, 1, 2]

    # The hook's option: at a session's start the hook syncs first, so the card shows the other clones' work.
    assert "set git config evhub.sync true" in place.ok(c, "install", "claude", "--sync")
    place.ok(a, "hello", "dave", now=11)
    place.ok(a, "sync", now=11)
    hook(place, c, "SessionStart", now=12)
    assert "dave" in place.ok(c, "sessions", now=12)
    assert "unset git config evhub.sync" in place.ok(c, "install", "claude", "--remove")


def test_a_clone_offline_for_long_catches_up_and_gives_what_it_wrote(tmp_path: Path) -> None:
    from evhub import Hub

    place, (a, b) = joined(tmp_path, "ab")
    place.ok(b, "hello", "bob")
    place.ok(b, "claim", "api", session="bob")
    # Meanwhile a writes many events and syncs again and again.
    for round_ in range(3):
        hub = Hub(a)
        for i in range(40):
            hub.hello(f"s{round_}-{i}")
        hub.flush()
        place.ok(a, "sync", now=round_)
    took = place.ok(b, "sync", now=10)
    assert took == "synced with origin: took 120 events, gave 2 (clones 0, 1)\n"
    assert place.ok(a, "sync", now=11).startswith("synced with origin: took 2 events, gave 0")
    assert ids(a) == ids(b) and len(ids(a)) == 123
    assert "bob" in place.ok(a, "claims", now=11)


def slow_git(folder: Path, pattern: str) -> tuple[dict[str, str], Path]:
    """A `git` first on PATH that, for a command line holding the words PATTERN, says so into the returned
    fifo, then waits forever; every other git command runs as usual."""
    folder.mkdir()
    reached, never = folder / "reached", folder / "never"
    for fifo in (reached, never):
        os.mkfifo(fifo)
    (folder / "git").write_text(
        f'#!/bin/sh\ncase "$*" in\n  *"{pattern}"*)\n    echo reached > {reached}\n    read never < {never};;\n'
        f'esac\nexec {GIT} "$@"\n')
    (folder / "git").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}, reached


def killed_at(place: Place, clone: Path, command: str, now: float) -> None:
    """Run `evhub sync` in CLONE and SIGKILL it (and the git it waits on) once it runs a git command
    matching COMMAND."""
    env, reached = slow_git(place.tmp / f"slow-{clone.name}-{len(list(place.tmp.glob('slow-*')))}", command)
    fd = os.open(reached, os.O_RDWR | os.O_NONBLOCK)  # held open: the wrapper's write never blocks
    try:
        sync = subprocess.Popen([EVHUB, "sync"], cwd=clone, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=clean_env({**place.env, "EVHUB_NOW": at(now), **env}))
        assert sync.stderr is not None
        ready, _, _ = select.select([fd, sync.stderr], [], [], 60)
        assert ready == [fd], f"the sync did not reach git {command}: {sync.communicate()}"
        os.killpg(sync.pid, signal.SIGKILL)
        sync.communicate()
        assert sync.returncode == -signal.SIGKILL
    finally:
        os.close(fd)


def test_a_sync_killed_at_any_step_loses_nothing_and_the_next_completes(tmp_path: Path) -> None:
    place, (a, b) = joined(tmp_path, "ab")
    c = place.clone("c")
    # Killed before fetching, before reading what it fetched, before pushing, and between the push and
    # tracking what it pushed (for a join: between creating its ref and making the hub): a sync of a
    # clone, and a fresh clone's join.
    steps = [" fetch ", " cat-file ", " push ", " update-ref refs/evhub-remotes/"]
    for n, command in enumerate(steps):
        place.ok(a, "hello", f"a{n}", now=n)
        place.ok(b, "hello", f"b{n}", now=n)
        killed_at(place, b, command, now=n)
        killed_at(place, c, command, now=n)
        for clone in (b, a, b):
            place.ok(clone, "sync", now=n)
        assert ids(a) == ids(b) and len(ids(a)) == 3 + 2 * n
    assert place.ok(c, "sync", now=5).startswith("synced with origin: joined the hub as clone 2")
    assert ids(c) == ids(a)
    assert [ref.rsplit("/", 1)[1] for ref in place.refs().splitlines()] == ["0", "1", "2"]  # no index lost
    for clone in (a, b, c):
        assert place.ok(clone, "sync", now=5).startswith("synced with origin: took 0 events, gave 0")


def test_a_rewritten_ref_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    place, (a, b) = joined(tmp_path, "ab")
    place.ok(b, "hello", "bob")
    place.ok(b, "sync")
    place.ok(a, "sync")
    hub_id = json.loads(log_of(a).splitlines()[0])["id"]
    ref = f"{REFS}/{hub_id}/1"
    # Someone rewrites b's ref: a commit of its own, holding a's log only, force-pushed.
    other = place.clone("other")
    blob = subprocess.run([GIT, "hash-object", "-w", "--stdin"], cwd=other, input=log_of(a), capture_output=True,
                          check=True).stdout.decode().strip()
    tree = subprocess.run([GIT, "mktree"], cwd=other, input=f"100644 blob {blob}\tevents.jsonl\n".encode(),
                       capture_output=True, check=True).stdout.decode().strip()
    commit = place.git(other, "commit-tree", tree, "-m", "rewritten").strip()
    place.git(other, "push", "-q", "--force", "origin", f"{commit}:{ref}")
    place.ok(a, "hello", "alice", now=1)
    logs = log_of(a), log_of(b)

    for clone in (a, b):  # b's own ref: its fetch refuses it too
        said = error_line(place.evhub(clone, "sync", now=2), 3)
        assert f"origin's {ref} was rewritten (force-pushed)" in said and "nothing is lost" in said
        assert f"git update-ref -d {TRACKING}/origin/{hub_id}/1" in said
    assert (log_of(a), log_of(b)) == logs

    # Accepted (as the error says): b's next push continues the rewritten ref with b's whole log.
    for clone in (b, a):
        place.git(clone, "update-ref", "-d", f"{TRACKING}/origin/{hub_id}/1")
        place.ok(clone, "sync", now=3)
    place.ok(b, "sync", now=4)
    assert ids(a) == ids(b) and len(ids(a)) == 3


def test_merge_takes_another_clones_export_and_refuses_an_unrelated_hub(tmp_path: Path) -> None:
    place, (a, b) = joined(tmp_path, "ab")
    place.ok(b, "hello", "bob", now=1)
    place.ok(b, "export", "--out", tmp_path / "b.jsonl")
    assert place.ok(a, "merge", tmp_path / "b.jsonl", now=2) == \
        f"merged {tmp_path / 'b.jsonl'}: took 1 event (1 known already)\n"
    assert ids(a) == ids(b)
    # A folder with no hub joins the hub of the file, as a clone of its own.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = ok(subprocess.run([EVHUB, "merge", "-"], cwd=elsewhere, input=(tmp_path / "b.jsonl").read_text(),
                          capture_output=True, text=True, env=clean_env({**place.env, "EVHUB_NOW": at(3)}))).stdout
    assert made == "made this hub from stdin as clone 2: took 2 events\n"
    # Another hub's log is refused, and changes nothing.
    unrelated = tmp_path / "unrelated"
    place.ok(tmp_path, "init", unrelated)
    place.ok(unrelated, "export", "--out", tmp_path / "u.jsonl")
    before = log_of(a)
    said = error_line(place.evhub(a, "merge", tmp_path / "u.jsonl", now=4), 1)
    assert "another hub" in said or "unrelated" in said, said
    assert log_of(a) == before and not (unrelated / "SESSIONS" / "events" / "clone.json").exists()
    # A hub that never synced, merging a clone's log, becomes clone 0: its next events are numbered in its
    # own class, above those it took.
    place.ok(elsewhere, "hello", "eve", now=5)
    place.ok(elsewhere, "export", "--out", tmp_path / "e.jsonl")
    place.git(tmp_path, "clone", "-q", place.remote, "never")
    place.ok(tmp_path / "never", "import", tmp_path / "b.jsonl")
    place.ok(tmp_path / "never", "merge", tmp_path / "e.jsonl", now=6)
    place.ok(tmp_path / "never", "hello", "fay", now=7)
    numbers = [json.loads(line).get("num") for line in log_of(tmp_path / "never").splitlines()]
    assert numbers[-1] % 1000 == 0 and numbers[-1] > max(n for n in numbers[:-1] if n is not None), numbers


def test_sync_without_a_remote_or_outside_git_is_a_clear_error(tmp_path: Path) -> None:
    place = Place(tmp_path)
    a = place.clone("a")
    place.ok(a, "init")
    place.git(a, "remote", "remove", "origin")
    assert error_line(place.evhub(a, "sync"), 1) == "error: this repository has no git remote to sync with: add " \
        "one (`git remote add origin URL`), then `evhub sync`"
    # save --mode full syncs only when there is a remote; one it cannot reach is a warning, the save done.
    place.ok(a, "hello", "alice")
    assert "synced" not in place.ok(a, "save", "--mode", "full", session="alice")
    place.git(a, "remote", "add", "origin", tmp_path / "nowhere.git")
    saved = place.evhub(a, "save", "--mode", "full", session="alice", now=1)
    assert saved.returncode == 0 and saved.stderr.startswith("warning: not synced: cannot reach origin"), saved.stderr
    assert error_line(place.evhub(a, "sync", "upstream"), 1).startswith("error: no git remote named 'upstream'")
    fresh = place.clone("fresh")
    place.git(fresh, "remote", "set-url", "origin", place.remote)
    assert error_line(place.evhub(fresh, "sync"), 1) == "error: origin holds no hub: run `evhub init` and " \
        "`evhub sync` on the clone that has it"
    plain = tmp_path / "plain"
    place.ok(tmp_path, "init", plain)
    assert "not in a git repository" in error_line(place.evhub(plain, "sync"), 1)


def test_the_hook_syncs_at_a_sessions_end_so_the_other_clones_learn_it_left(tmp_path: Path) -> None:
    place, (a, c) = joined(tmp_path, "ac")
    place.ok(c, "install", "claude", "--sync")
    hook(place, c, "SessionStart", now=1)  # syncs first, then registers the session: c alone knows it
    (session,) = json.loads(place.ok(c, "sessions", "--json", now=2))
    assert place.ok(a, "sync", now=2).startswith("synced with origin: took 0 events")
    hook(place, c, "SessionEnd", now=3)  # says bye, then syncs: the remote holds both
    assert place.ok(a, "sync", now=4).startswith("synced with origin: took 3 events")
    assert json.loads(place.ok(a, "sessions", "--json", now=4)) == []  # not alive: it left
    (seen,) = json.loads(place.ok(a, "sessions", "--all", "--json", now=4))
    assert seen["id"] == session["id"] and seen["left"] is True and session["left"] is False, (session, seen)


def test_sync_refuses_a_hub_whose_log_is_on_postgresql_and_changes_nothing(tmp_path: Path, pg_store: HubStore) -> None:
    """Its log is shared by every machine that reaches the server already: there is nothing to merge."""
    place = Place(tmp_path)
    a = place.clone("a")
    place.ok(a, "init", *pg_store.init_args())
    place.ok(a, "hello", "alice")
    before = user_side(place, a), place.ok(a, "log", "--json")
    refused = place.evhub(a, "sync")
    assert refused.stdout == "", refused
    line = error_line(refused, 1)
    assert line.startswith("error: this hub's log is kept at ") and \
        line.endswith("which every machine that reaches it shares already: sync is for hubs whose log is a file"), line
    assert place.refs() == ""
    assert (user_side(place, a), place.ok(a, "log", "--json")) == before


def test_a_claim_force_released_on_another_clone_is_freed_on_its_holders_and_the_holder_is_told(
        tmp_path: Path) -> None:
    place, (a, b) = joined(tmp_path, "ab")
    place.ok(b, "hello", "bob", now=1)
    token = json.loads(place.ok(b, "claim", "api", "--json", session="bob", now=2))["token"]
    place.ok(b, "sync", now=3)
    place.ok(a, "sync", now=4)
    place.ok(a, "hello", "alice", now=5)
    assert place.ok(a, "release", "api", "--force", session="alice", now=6).startswith("released api")
    place.ok(a, "sync", now=7)
    assert place.ok(b, "sync", now=8).startswith("synced with origin: took 3 events")
    assert ids(a) == ids(b)
    assert json.loads(place.ok(b, "claims", "--json", now=8)) == []
    (told,) = json.loads(place.ok(b, "msg", "inbox", "--json", session="bob", now=9))
    assert (told["from"], told["text"]) == ("alice", f"force-released your claim on api (token {token})")
    # The token is refused on bob's clone too: the fence holds across clones.
    refused = place.evhub(b, "release", "api", "--token", str(token), session="bob", now=10)
    assert error_line(refused, refused.returncode) == "error: api is not claimed"


def test_a_clone_moved_with_mv_keeps_its_index_and_goes_on_syncing(tmp_path: Path) -> None:
    place, (a, b) = joined(tmp_path, "ab")
    place.ok(b, "hello", "bob", now=1)
    moved = b.rename(tmp_path / "b-moved")
    assert place.ok(moved, "sync", now=2).startswith("synced with origin: took 0 events, gave 1 (clones 0, 1)")
    place.ok(moved, "verify", now=2)  # exit 4 if its views or read model disagree with its log
    assert place.ok(a, "sync", now=3).startswith("synced with origin: took 1 event")
    place.ok(moved, "hello", "carol", now=4)
    place.ok(moved, "sync", now=5)
    place.ok(a, "sync", now=6)
    assert ids(a) == ids(moved)
    assert json.loads(place.ok(moved, "where", "--json", now=6))["synced"]["clones"] == [0, 1]
