"""Clones that meet only through a git remote converge: random local commands on three clones and
`evhub sync` in random order always end, once everyone has synced, in the same events, the same state and
byte-identical views, with no event lost or doubled and at most one holder per priority."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from command import clean_env, run
from histories import positionless
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evhub import EvhubError, Hub

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
SESSIONS = ("ann", "ben", "cid")
PRIORITIES = ("api", "web")
FIXED = "2030-01-01T00:00:00.000000Z"  # the views of every clone rendered as of one moment


def git(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run(["git", *map(str, args)], cwd=cwd, env=clean_env(GIT_ENV), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"git {args}: {done.stderr}"


def sync(clone: Path) -> None:
    done = run("sync", cwd=clone, env=GIT_ENV)
    assert done.returncode == 0, done.stderr


def three_clones(tmp: Path) -> list[Path]:
    """A bare remote and three clones of it; the first made the hub, the others joined by `evhub sync`."""
    remote = tmp / "remote.git"
    git("init", "-q", "--bare", "-b", "main", remote, cwd=tmp)
    clones = [tmp / f"clone{n}" for n in range(3)]
    git("clone", "-q", remote, clones[0], cwd=tmp)
    (clones[0] / "README.md").write_text("# project\n")
    git("add", "README.md", cwd=clones[0])
    git("commit", "-q", "-m", "start", cwd=clones[0])
    git("push", "-q", "origin", "main", cwd=clones[0])
    assert run("init", cwd=clones[0], env=GIT_ENV).returncode == 0
    sync(clones[0])
    for clone in clones[1:]:
        git("clone", "-q", remote, clone, cwd=tmp)
        sync(clone)
    return clones


step = st.one_of(
    st.tuples(st.just("claim"), st.integers(0, 2), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("release"), st.integers(0, 2), st.sampled_from(PRIORITIES)),
    st.tuples(st.just("send"), st.integers(0, 2), st.sampled_from(("hi", "done", "help"))),
    st.tuples(st.just("inbox"), st.integers(0, 2), st.just("")),
    st.tuples(st.just("sync"), st.integers(0, 2), st.just("")),
)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=4, max_size=12))
def test_random_commands_and_syncs_converge_once_everyone_synced(steps: list[tuple[str, int, str]]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="evhub-sync-"))
    try:
        clones = three_clones(tmp)
        hubs = [Hub(clone, publish_every=0) for clone in clones]  # published at once: nothing left for exit
        for hub, session in zip(hubs, SESSIONS, strict=True):
            hub.hello(session)
        for action, n, arg in steps:
            hub, session = hubs[n], SESSIONS[n]
            try:
                if action == "claim":
                    hub.claim(session, arg)
                elif action == "release":
                    hub.release(session, arg)
                elif action == "send":
                    hub.send(session, arg)
                elif action == "inbox":
                    hub.inbox(session)
                else:
                    sync(clones[n])
            except EvhubError:
                pass  # refused here, as it would be by a user's command
        for clone in clones * 2:
            sync(clone)
        states = [Hub(clone, publish_every=0).state() for clone in clones]
        logs = [Hub(clone, publish_every=0).log_bytes() for clone in clones]
        ids = [sorted(line.split(b'"id":"')[1][:26] for line in log.splitlines()) for log in logs]
        assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == len(ids[0])
        assert positionless(states[0]) == positionless(states[1]) == positionless(states[2])
        views = []
        for n, clone in enumerate(clones):
            out = tmp / f"views{n}"
            Hub(clone, publish_every=0).render(states[n], at=FIXED, out=out)
            views.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
        assert views[0] == views[1] == views[2]
        holders = [{p: c.session for p, c in s.claims.items()} for s in states]
        assert holders[0] == holders[1] == holders[2]
        for clone in clones:
            done = run("verify", cwd=clone)
            assert done.returncode == 0, done.stdout + done.stderr
        before = logs
        for clone in clones:
            sync(clone)  # nothing new: changes nothing
        assert [Hub(clone, publish_every=0).log_bytes() for clone in clones] == before
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
