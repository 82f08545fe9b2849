"""`evhub sync`: the clones of one hub exchange their events through the git remote they already share.

The design, and why:
- Each clone keeps its whole log, as the blob `events.jsonl` of a commit, on a ref of its own on the
  remote: `refs/evhub/<hub id>/<clone index>`. Each new commit's parent is that ref's previous commit and
  only the clone with that index writes the ref, so every update is a fast-forward and a push never needs
  force. A whole log per clone, not one shared file: the merge is the union of events by id
  (Hub.merge_log), which needs no common ancestor, no three-way merge and no agreement on a file's bytes.
- Outside refs/heads and refs/tags: cloning, fetching and pushing branches never see these refs, and a
  sync touches none of the user's branches, index, work tree, HEAD or remote-tracking branches (plumbing
  only: hash-object, mktree, commit-tree, push, fetch, with evhub's identity and no user hook).
- The others' refs are fetched into `refs/evhub-remotes/<remote>/<hub id>/<k>` atomically and without
  `+`: git refuses a ref that is not a fast-forward of what this clone fetched before, so a ref someone
  force-pushed stops the sync before anything is merged or pushed (RefRewritten). The events it held
  before are in this clone's log already: nothing is lost.
- A clone's index is claimed by creating its ref on the remote (a push that would create a ref someone
  else made first is refused: the next index is tried) BEFORE the hub takes the index, so two clones
  never number events in one residue class. The claim's commit is kept first in a local ref,
  `refs/evhub-claims/<remote>/<hub id>/<k>`, until the hub is clone k: a sync killed between the push and
  taking the index finds its own commit on the remote and takes that index.
- SIGKILL at any moment loses nothing: merge_log appends under the hub lock in one write; a push is
  atomic on the remote; the tracking refs and synced.json are written after what they record, so the
  next sync only redoes work (a merge takes nothing twice, an unchanged log is not pushed again).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from . import _place
from ._errors import BadInput, EvhubError, HubNotFound, RefRewritten, StorageError, SyncFailed, UnrelatedHub
from ._lock import HubLock
from ._state import CLONES
from ._values import new_id, now

if TYPE_CHECKING:
    from ._events import AnyEvent
    from ._hub import Hub
    from ._results import Merged

REFS = "refs/evhub"
TRACKING = "refs/evhub-remotes"
CLAIMS = "refs/evhub-claims"
BLOB = "events.jsonl"
SYNCED_FILE = "synced.json"
_REF = re.compile(rf"^{REFS}/([0-9A-Z]{{26}})/(0|[1-9][0-9]{{0,2}})$")
_REJECTED = re.compile(r"\[rejected\]\s+(\S+)\s+->\s+(\S+)")
# No user config is needed to write a commit, and none of the user's hooks runs (a reference-transaction
# hook would see every ref fetch writes).
_IDENTITY = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
             for what, value in (("NAME", "evhub"), ("EMAIL", "evhub@localhost"))}


class Synced(msgspec.Struct, frozen=True):
    """What a sync did: `evhub sync`, and the record `evhub where` shows."""

    remote: str
    url: str
    at: str
    took: int  # events this clone lacked, now in its log
    gave: int  # events of this clone's log the remote held in none of its refs, now pushed
    clones: list[int]  # the hub's clones the remote knows, this one included
    clone: int  # this clone's index
    joined: bool  # whether this sync made the hub here (a fresh clone of the repository)


class _Record(msgspec.Struct):
    """synced.json: the last sync, and the blob of each ref merged (a ref whose blob is unchanged is not
    read into the hub again)."""

    last: Synced | None = None
    merged: dict[str, str] = {}


class _Id(msgspec.Struct):
    id: str


_read_id = msgspec.json.Decoder(_Id).decode


class _Git:
    """The git commands of a sync, in the work tree at TOP; QUIET for a sync nobody typed (no prompt)."""

    def __init__(self, top: Path, quiet: bool) -> None:
        self.top = top
        self.env = {**os.environ, **_IDENTITY, **({"GIT_TERMINAL_PROMPT": "0"} if quiet else {})}

    def run(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-C", str(self.top), *args],
                                  input=data, capture_output=True, env=self.env)
        except OSError as e:
            raise SyncFailed(f"cannot run git: {e.strerror}") from e

    def out(self, *args: str, data: bytes | None = None) -> str:
        """The output of a git command that must succeed."""
        done = self.run(*args, data=data)
        if done.returncode != 0:
            raise SyncFailed(f"git {args[0]} failed: {_said(done)}")
        return done.stdout.decode().strip()


def _said(done: subprocess.CompletedProcess[bytes]) -> str:
    """Git's own reason, its last error line."""
    lines = [line for line in done.stderr.decode(errors="replace").splitlines()
             if line.startswith(("fatal:", "error:"))] or done.stderr.decode(errors="replace").splitlines()
    return lines[-1].strip() if lines else f"exit {done.returncode}"


def sync(root: Path, remote: str | None = None, hub: Hub | None = None, quiet: bool = False) -> Synced:
    """Sync HUB (the hub at ROOT) with the git remote REMOTE (default: the branch's upstream remote, else
    origin, else the only one); with no HUB, join the hub the remote holds, making it at ROOT."""
    if hub is not None and hub.store.where is not None:
        raise BadInput(f"this hub's log is kept at {hub.store.where}, which every machine that reaches it "
                       "shares already: sync is for hubs whose log is a file")
    repo = _place.repository(root)
    if repo is None:
        raise BadInput(f"{root} is not in a git repository: sync goes through the repository's git remote")
    git = _Git(repo.top, quiet)
    name = _remote(git, remote)
    url = _url(git, name)
    with HubLock(repo.common / "evhub-sync.lock"):  # one sync at a time in a repository
        remote_refs = _ls_remote(git, name)
        if hub is None:
            return _join(git, root, name, url, remote_refs)
        return _sync(git, hub, name, url, remote_refs)


def sync_if_remote(hub: Hub) -> Synced | None:
    """For `save --mode full` and the hook: sync HUB when its repository has a git remote (None when it
    has none, or its log is not a file); raises as sync does."""
    repo = _place.repository(hub.root)
    if hub.store.where is not None or repo is None:
        return None
    if not _Git(repo.top, True).out("remote"):
        return None
    return sync(hub.root, hub=hub, quiet=True)


def wanted(root: Path) -> bool:
    """Whether `git config evhub.sync true` asks the hook to sync at a session's start and end."""
    repo = _place.repository(root)
    return repo is not None and repo.says("sync")


def set_wanted(project: Path, on: bool) -> bool:
    """Set (ON) or unset `git config evhub.sync` in PROJECT's repository; whether it changed."""
    if _place.repository(project) is None:
        raise BadInput(f"{project} is not in a git repository: the hook syncs through its git remote")
    if wanted(project) == on:
        return False
    git = _Git(project, False)
    git.out("config", *(["evhub.sync", "true"] if on else ["--unset", "evhub.sync"]))
    return True


def last_sync(events_dir: Path) -> Synced | None:
    """The last sync recorded in EVENTS_DIR (None when this clone never synced)."""
    return _read_record(events_dir).last


def free_clone(data: bytes, name: str) -> int:
    """The clone index a hub made from DATA (a log read from NAME) takes: the smallest from 1 that no event
    of DATA is numbered in (events numbered by their position are clone 0's)."""
    from ._store import parse_log

    return _free(parse_log(data, name)[1], 1, name)


def merge(hub: Hub, data: bytes, name: str) -> Merged:
    """`evhub merge`: HUB takes the events of DATA (another clone's log, read from NAME) it lacks. A hub that
    never synced becomes a clone first (0 unless DATA has events of clone 0), so that its next events are
    numbered above the ones it takes."""
    from ._store import parse_log

    _, events = parse_log(data, name)
    if hub.clone is None and events and events[0].id == hub.hub_id:  # another hub's log is refused below
        hub.become_clone(_free(events, 0, name))
    return hub.merge_log(data, name)


def _free(events: list[AnyEvent], first: int, name: str) -> int:
    seen = {e.num % CLONES for e in events if isinstance(e.num, int)}
    free = next((k for k in range(first, CLONES) if k not in seen), None)
    if free is None:
        raise BadInput(f"{name} numbers events in every clone index: no index is left for a clone made from it")
    return free


# -- the steps ---------------------------------------------------------------------------------


def _remote(git: _Git, asked: str | None) -> str:
    remotes = git.out("remote").split()
    if asked is not None:
        if asked not in remotes:
            raise BadInput(f"no git remote named {asked!r}: this repository has "
                           f"{', '.join(remotes) or 'none'} (`git remote -v` lists them)")
        return asked
    if not remotes:
        raise BadInput("this repository has no git remote to sync with: add one (`git remote add origin URL`), "
                       "then `evhub sync`")
    branch = git.run("symbolic-ref", "--quiet", "--short", "HEAD").stdout.decode().strip()
    upstream = git.run("config", f"branch.{branch}.remote").stdout.decode().strip() if branch else ""
    for candidate in (upstream, "origin"):
        if candidate in remotes:
            return candidate
    if len(remotes) == 1:
        return remotes[0]
    raise BadInput(f"this repository has several git remotes ({', '.join(remotes)}): name one, `evhub sync REMOTE`")


def _url(git: _Git, remote: str) -> str:
    """REMOTE's URL without a password or token written into it."""
    return re.sub(r"//[^/@]*@", "//", git.out("remote", "get-url", remote))


def _ls_remote(git: _Git, remote: str) -> dict[str, dict[int, str]]:
    """The evhub refs on REMOTE: hub id -> clone index -> commit."""
    done = git.run("ls-remote", remote, f"{REFS}/*")
    if done.returncode != 0:
        raise SyncFailed(f"cannot reach {remote}: {_said(done)}")
    found: dict[str, dict[int, str]] = {}
    for line in done.stdout.decode().splitlines():
        commit, _, ref = line.partition("\t")
        matched = _REF.match(ref)
        if matched:
            found.setdefault(matched[1], {})[int(matched[2])] = commit
    return found


def _fetch(git: _Git, remote: str, hub_id: str) -> dict[int, str]:
    """Fetch the hub's refs on REMOTE into this clone's tracking refs, each only as a fast-forward of what
    it fetched before (all or none: --atomic); clone index -> commit, as now tracked."""
    done = git.run("fetch", "--atomic", "--no-tags", "--no-prune", "--no-write-fetch-head",
                   "--no-recurse-submodules", remote, f"{REFS}/{hub_id}/*:{TRACKING}/{remote}/{hub_id}/*")
    if done.returncode != 0:
        rejected = _REJECTED.search(done.stderr.decode(errors="replace"))
        if rejected:
            raise _rewritten(remote, rejected[1], rejected[2], "was rewritten (force-pushed)")
        raise SyncFailed(f"cannot fetch from {remote}: {_said(done)}")
    return _tracked(git, remote, hub_id)


def _rewritten(remote: str, ref: str, tracking: str, what: str) -> RefRewritten:
    return RefRewritten(
        f"{remote}'s {ref} {what}: it does not continue what this clone fetched before, so nothing was merged "
        f"or pushed; nothing is lost (this clone's log keeps every event it had). Look at it: "
        f"`git fetch {remote} {ref} && git show FETCH_HEAD:{BLOB}`; accept it: `git update-ref -d {tracking}`, "
        "then `evhub sync`")


def _tracked(git: _Git, remote: str, hub_id: str, under: str = TRACKING) -> dict[int, str]:
    """This clone's refs UNDER/REMOTE/HUB_ID/<k>: clone index -> commit."""
    prefix = f"{under}/{remote}/{hub_id}/"
    found: dict[int, str] = {}
    for line in git.out("for-each-ref", "--format=%(objectname) %(refname)", prefix).splitlines():
        commit, _, ref = line.partition(" ")
        index = ref.removeprefix(prefix)
        if index.isdigit() and int(index) < CLONES:
            found[int(index)] = commit
    return found


def _blobs(git: _Git, commits: dict[int, str]) -> dict[int, tuple[str, bytes]]:
    """Each commit's events.jsonl: (blob id, bytes), read by one git process."""
    order = sorted(commits)
    if not order:
        return {}
    asked = "".join(f"{commits[k]}:{BLOB}\n" for k in order).encode()
    done = git.run("cat-file", "--batch", data=asked)
    if done.returncode != 0:
        raise SyncFailed(f"cannot read the fetched logs: {_said(done)}")
    out, at, found = done.stdout, 0, {}
    for k in order:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise SyncFailed(f"clone {k}'s ref ({commits[k]}) holds no {BLOB}: not a ref evhub wrote")
        size = int(header[2])
        found[k] = (header[0], out[header_end + 1:header_end + 1 + size])
        at = header_end + 1 + size + 1
    return found


def _commit(git: _Git, data: bytes, hub_id: str, clone: int, parent: str | None) -> tuple[str, str]:
    """A commit holding DATA as events.jsonl (after PARENT): (commit, blob)."""
    blob = git.out("hash-object", "-w", "--stdin", data=data)
    tree = git.out("mktree", data=f"100644 blob {blob}\t{BLOB}\n".encode())
    parents = ["-p", parent] if parent else []
    # An id of its own: two clones claiming one index with the same log in the same second would otherwise
    # make the same commit, and the second push would succeed as "up to date".
    commit = git.out("commit-tree", "--no-gpg-sign", *parents, "-m", f"evhub: clone {clone} of hub {hub_id}",
                     "-m", f"write {new_id()}", tree)
    return commit, blob


def _push(git: _Git, remote: str, commit: str, ref: str, before: str | None) -> bool:
    """Push COMMIT to REF on REMOTE, never forced; then track it (a kill before that only makes the next
    fetch bring it). False when the remote refused it as no fast-forward (someone else wrote REF)."""
    done = git.run("push", "--porcelain", "--no-verify", "--no-signed", "--recurse-submodules=no", remote,
                   f"{commit}:{ref}")
    if done.returncode != 0:
        if "[rejected]" in done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace"):
            return False
        # A push racing another to one ref may be refused otherwise ("[remote rejected] (failed to update
        # ref)"): the ref as it is now tells whether someone else wrote it.
        now_at = git.run("ls-remote", remote, ref).stdout.decode().split("\t")[0]
        if now_at not in ("", commit, before):
            return False
        raise SyncFailed(f"cannot push to {remote}: {_said(done)}")
    tracking = f"{TRACKING}/{remote}/{ref.removeprefix(REFS + '/')}"
    git.out("update-ref", tracking, commit, *([before] if before else []))
    return True


def _claim(git: _Git, remote: str, hub_id: str, data: bytes, on_remote: dict[int, str], first: int) -> int:
    """Claim the smallest clone index from FIRST that ON_REMOTE (index -> commit) lacks, by creating its ref on
    REMOTE (holding DATA). Each attempt's commit is kept first in a local ref (refs/evhub-claims/...): a sync
    killed after its push and before the hub took the index finds its own commit there and takes that index."""
    for k, commit in _tracked(git, remote, hub_id, CLAIMS).items():
        if on_remote.get(k) == commit:
            git.out("update-ref", f"{TRACKING}/{remote}/{hub_id}/{k}", commit)
            return k  # claimed by a sync killed before it could take it
    _drop_claims(git, remote, hub_id)
    taken = set(on_remote)
    for k in range(first, CLONES):
        if k in taken:
            continue
        commit, _ = _commit(git, data, hub_id, k, None)
        git.out("update-ref", f"{CLAIMS}/{remote}/{hub_id}/{k}", commit)
        if _push(git, remote, commit, f"{REFS}/{hub_id}/{k}", None):
            return k
        taken.add(k)  # another clone created it first
    raise SyncFailed(f"{remote} holds {CLONES} clones of hub {hub_id}: no clone index is left")


def _drop_claims(git: _Git, remote: str, hub_id: str) -> None:
    """Forget the claims of clone indices kept in this repository: the hub is a clone (or claims anew)."""
    for k in _tracked(git, remote, hub_id, CLAIMS):
        git.out("update-ref", "-d", f"{CLAIMS}/{remote}/{hub_id}/{k}")


def _join(git: _Git, root: Path, remote: str, url: str, remote_refs: dict[str, dict[int, str]]) -> Synced:
    """Make the hub REMOTE holds at ROOT, as a new clone of it."""
    from ._hub import Hub

    if not remote_refs:
        raise HubNotFound(f"{remote} holds no hub: run `evhub init` and `evhub sync` on the clone that has it")
    if len(remote_refs) > 1:
        raise BadInput(f"{remote} holds several hubs ({', '.join(sorted(remote_refs))}): evhub joins one hub per "
                       "repository; `evhub init` here and `evhub merge` an export of the one you want")
    (hub_id, indices), = remote_refs.items()
    blobs_commits = _fetch(git, remote, hub_id)
    blobs = _blobs(git, blobs_commits)
    if not blobs:
        raise SyncFailed(f"{remote}'s refs of hub {hub_id} changed while fetching them: run `evhub sync` again")
    first = max(blobs, key=lambda k: len(blobs[k][1]))  # the longest log: the fewest events left to merge
    k = _claim(git, remote, hub_id, blobs[first][1], {**indices, **blobs_commits}, 1)
    _place.join(root, blobs[first][1], k, f"{remote}'s clone {first}")
    synced = _exchange(git, Hub(root), remote, url, hub_id, k, blobs, claimed=True, joined=True)
    return msgspec.structs.replace(synced, took=synced.took + len(_ids(blobs[first][1])))


def _sync(git: _Git, hub: Hub, remote: str, url: str, remote_refs: dict[str, dict[int, str]]) -> Synced:
    hub_id = hub.hub_id
    if hub_id not in remote_refs and remote_refs:
        raise UnrelatedHub(f"{remote} holds another hub ({', '.join(sorted(remote_refs))}), not this one "
                           f"({hub_id}): only clones of one hub sync; sync with another remote")
    k = hub.clone
    claimed = k is None
    if k is None:
        k = _claim(git, remote, hub_id, hub.log_bytes(), remote_refs.get(hub_id, {}), 0)
        hub.become_clone(k)
    return _exchange(git, hub, remote, url, hub_id, k, _blobs(git, _fetch(git, remote, hub_id)), claimed=claimed,
                     joined=False)


def _exchange(git: _Git, hub: Hub, remote: str, url: str, hub_id: str, k: int,
              blobs: dict[int, tuple[str, bytes]], claimed: bool, joined: bool) -> Synced:
    """Merge the others' logs (BLOBS, by clone index) into HUB, clone K, then push its log when it differs
    from what its ref holds; record the sync. CLAIMED: K's ref was created by this sync (what it holds was
    given by it)."""
    record = _read_record(hub.events_dir)
    took = 0
    for i, (blob, data) in sorted(blobs.items()):
        key = f"{remote}/{i}"
        if record.merged.get(key) == blob:
            continue  # merged before (or pushed from here): nothing new in it
        try:
            took += hub.merge_log(data, f"{remote}'s {REFS}/{hub_id}/{i}").added
        except EvhubError as e:
            raise type(e)(f"{e} (the sync stopped there: nothing was pushed)") from e
        record.merged[key] = blob
    ours = hub.log_bytes()
    ref = f"{REFS}/{hub_id}/{k}"
    held = blobs.get(k)
    pushing = held is None or _blob_id(git, ours) != held[0]
    gave = 0
    if pushing or claimed:
        theirs: set[str] = set().union(*(_ids(data) for i, (_, data) in blobs.items() if not (claimed and i == k)))
        gave = len(_ids(ours) - theirs)
    if pushing:
        before = _tracked(git, remote, hub_id).get(k)
        commit, blob = _commit(git, ours, hub_id, k, before)
        if not _push(git, remote, commit, ref, before):
            raise _rewritten(remote, ref, f"{TRACKING}/{remote}/{hub_id}/{k}",
                             "was just written by someone else (another clone with index "
                             f"{k}, or a force-push)")
        record.merged[f"{remote}/{k}"] = blob
    _drop_claims(git, remote, hub_id)  # the hub is clone K: no claim is pending (one a kill left included)
    record.last = Synced(remote=remote, url=url, at=now(), took=took, gave=gave,
                         clones=sorted({*blobs, k}), clone=k, joined=joined)
    _write_record(hub.events_dir, record)
    return record.last


def _blob_id(git: _Git, data: bytes) -> str:
    return git.out("hash-object", "--stdin", data=data)


def _ids(data: bytes) -> set[str]:
    """The ids of the events of a log (lines that are not events are skipped: merge_log judges those)."""
    found = set()
    for line in data.splitlines():
        try:
            found.add(_read_id(line).id)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return found


def _read_record(events_dir: Path) -> _Record:
    try:
        return msgspec.json.decode((events_dir / SYNCED_FILE).read_bytes(), type=_Record)
    except FileNotFoundError:
        return _Record()
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return _Record()  # only a record: the next sync merges every ref again, and writes it anew


def _write_record(events_dir: Path, record: _Record) -> None:
    part = events_dir / f".{SYNCED_FILE}.part"
    try:
        part.write_bytes(msgspec.json.encode(record) + b"\n")
        os.replace(part, events_dir / SYNCED_FILE)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise StorageError(f"cannot write {events_dir / SYNCED_FILE}: {e.strerror}") from e
