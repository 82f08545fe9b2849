"""Hand edits of the views: people and agents that still follow the seed's README write
`HEARTBEATS/x.json`, a `PRIORITIES/p.lock` or a line at the end of `MESSAGES.md` by hand.

evhub keeps, beside the log (never in SESSIONS/, where it would be a view of itself), a record of what
it last wrote into each views folder: every file's size, mtime, inode, mode and digest. A command finds
the files changed since by their stat alone and reads only those (and the new files in the view
folders); `commands_for` says which commands the seed's protocol meant by one, and why a part of it
cannot be taken. The shell (the Hub) decides those by the usual rules, keeps a copy of whatever it
could not take, and only then renders over it.
"""

from __future__ import annotations

import itertools
import os
import stat
from _blake2 import blake2b  # hashlib's own, without hashlib's import of OpenSSL (some ms on every command)
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

import msgspec

from . import _decide as cmd
from ._errors import EvhubError, StorageError
from ._state import State, Step
from ._store import Checkpoint
from ._values import seconds_between

if TYPE_CHECKING:
    from ._legacy import HeartbeatFile, LockFile, MessagesFile, MilestoneFile, StepFile

RECORD = "views.json"  # in the hub's events folder
# Likewise: the render each views folder shows. A release that changes how a view file reads renames it, so that
# its first render is whole (the files a render leaves alone would keep the older form).
BASES = "views-base.json"
T = TypeVar("T")
COPIES = "hand-edits"  # likewise: hand-edits/<time>/<file>, what evhub could not take from a hand edit


class Written(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A view file as evhub left it: a file whose stat still matches is unchanged, and is not read."""

    size: int
    mtime_ns: int
    ino: int
    mode: int
    digest: str

    def matches(self, st: os.stat_result) -> bool:
        # Asked of every view file by every command: no tuples built.
        return (self.mtime_ns == st.st_mtime_ns and self.size == st.st_size and self.ino == st.st_ino
                and self.mode == st.st_mode)


def digest(content: bytes) -> str:
    return blake2b(content, digest_size=16).hexdigest()


def written(st: os.stat_result, content_digest: str) -> Written:
    return Written(st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, content_digest)


Files = dict[str, Written]  # a views folder's files, by path relative to it


class Base(msgspec.Struct, array_like=True, frozen=True):
    """The state a views folder shows (where it stands in the log) and the time it was rendered at: a
    render of a later state redraws only what changed since (see _changed)."""

    seq: int
    offset: int
    line_len: int
    line_crc: int
    at: str

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.seq, self.offset, self.line_len, self.line_crc)


class _Kept(Generic[T]):
    """One JSON file of the record, of type KIND, written whole (a temp file renamed over it) and decoded
    again only when its bytes changed since this process read or wrote it (a hub of thousands of sessions:
    some ms to decode)."""

    def __init__(self, path: Path, kind: type[T]) -> None:
        self.path = path
        self.kind = kind
        self._raw = b""
        self._value: T | None = None

    def load(self) -> T | None:
        """What the file holds (the object last read or saved, when the file did not change since); None when
        it is missing or unreadable (it is a cache)."""
        try:
            raw = self.path.read_bytes()
            if raw != self._raw or not raw:
                self._raw, self._value = raw, msgspec.json.decode(raw, type=self.kind)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            self._raw, self._value = b"", None
        return self._value

    def save(self, value: T) -> None:
        raw = msgspec.json.encode(value)
        if raw == self._raw:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(raw)
            os.replace(tmp, self.path)
        except OSError as e:
            raise StorageError(f"cannot write {self.path}: {e.strerror or e}") from e
        self._raw, self._value = raw, value


class Record:
    """What evhub last wrote into each views folder, by the folder's absolute path. Read afresh under
    the hub lock by every command (other processes render too); a folder it does not know yet (a new
    worktree, a hub from before the record, a record lost) is taken as it stands, as before.

    The render each folder shows (its Base) is kept in a file of its own, so that an evhub from before
    it still reads the files' record (and still finds hand edits) in a hub a later one also uses."""

    def __init__(self, events_dir: Path) -> None:
        self._files = _Kept(events_dir / RECORD, dict[str, Files])
        self._bases = _Kept(events_dir / BASES, dict[str, Base])
        self.folders: dict[str, Files] = {}
        self.bases: dict[str, Base] = {}  # by folder, as folders

    def load(self, folders: Iterable[Path]) -> None:
        """Read the record afresh, for the views FOLDERS kept live now."""
        # What this process changed and has not saved yet stays, unless another process wrote the file since.
        self.folders = self._files.load() or {}
        self.bases = self._bases.load() or {}
        self._follow_moves(folders)

    def _follow_moves(self, folders: Iterable[Path]) -> None:
        """Give each of FOLDERS that the record does not know the record of a folder that is gone, when that
        one's files are here: the same inodes, sizes and times (a repository moved with `mv`, views and all).
        Else a hand edit made before the move would be rendered over as if evhub had never written there."""
        unknown = [folder for folder in folders if str(folder) not in self.folders]
        gone = [key for key in self.folders if not os.path.isdir(key)] if unknown else []
        for folder in unknown:
            moved = next((key for key in gone if _same_files(folder, self.folders[key])), None)
            if moved is not None:
                gone.remove(moved)
                self.folders[str(folder)] = self.folders.pop(moved)
                if moved in self.bases:
                    self.bases[str(folder)] = self.bases.pop(moved)

    def files(self, folder: Path) -> Files | None:
        return self.folders.get(str(folder))

    def save(self) -> None:
        """Write what changed: the files first, so that a crash between the two leaves a base that no longer
        matches them (a whole render), never files that a base says are older than they are."""
        self._files.save(self.folders)
        self._bases.save(self.bases)


MOVED_SAMPLE = 16  # files of a folder's record compared with a folder it may have moved to


def _same_files(folder: Path, files: Files) -> bool:
    """Whether most of a sample of FILES are in FOLDER as the record has them (a few may be hand edits)."""
    sample = list(itertools.islice(files.items(), MOVED_SAMPLE))
    same = 0
    for rel, before in sample:
        try:
            same += before.matches(os.lstat(folder / rel))
        except OSError:
            continue
    return same > 0 and 2 * same >= len(sample)


class Edit(NamedTuple):
    """FOLDER/REL differs from what evhub wrote there (BEFORE; None for a file evhub did not write).
    CONTENT is what it holds now, read after its stat ST (so a write since shows as another change);
    both None when it is gone."""

    folder: Path
    rel: str
    content: bytes | None
    before: Written | None
    st: os.stat_result | None = None

    def taken(self) -> Written:
        """The record's entry for the file as it was read."""
        assert self.content is not None and self.st is not None
        return written(self.st, digest(self.content))


def find_edits(folder: Path, files: Files, view_dirs: Iterable[str], unchanged: set[str] | None = None,
               leftovers: list[str] | None = None) -> list[Edit]:
    """The files of FOLDER that changed since evhub wrote them (FILES), and the new files in its
    VIEW_DIRS (the folders whose every file is evhub's). A file only touched (same content) gets its
    new stat in FILES and is no edit. UNCHANGED, when given, is told each file found as evhub wrote it;
    LEFTOVERS, each killed writer's temp file found in VIEW_DIRS (no edit: the render removes it)."""
    edits = []
    base = os.fspath(folder) + "/"  # paths stay strings: a hub of thousands of sessions has tens of thousands of views
    lstat = os.lstat
    for rel, before in files.items():
        path = base + rel
        try:
            st = lstat(path)
        except FileNotFoundError:
            edits.append(Edit(folder, rel, None, before))
            continue
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror or e}") from e
        if before.matches(st):
            if unchanged is not None:
                unchanged.add(rel)
            continue
        content = _read(path, st)
        if content is not None and digest(content) == before.digest and stat.S_IMODE(st.st_mode) == stat.S_IMODE(
                before.mode):
            files[rel] = written(st, before.digest)
        else:
            edits.append(Edit(folder, rel, content, before, st))
    edits.sort(key=_rel)
    for rel in _new_files(folder, view_dirs, files):
        path = base + rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # gone since it was listed
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror or e}") from e
        if not stat.S_ISREG(st.st_mode):
            continue  # a folder or a link in a view folder is no edit (a link is never followed)
        name = rel.rpartition("/")[2]
        if name.startswith(".") and name.endswith(".tmp"):
            if leftovers is not None:
                leftovers.append(path)
            continue
        content = _read(path, st)
        if content is not None:
            edits.append(Edit(folder, rel, content, None, st))
    return edits


def _rel(edit: Edit) -> str:
    return edit.rel


def _new_files(folder: Path, view_dirs: Iterable[str], files: Files) -> list[str]:
    """The entries of FOLDER's VIEW_DIRS that FILES does not hold, by path relative to FOLDER. Listed by
    name and set apart from FILES in C: the view folders of a large hub hold tens of thousands of files."""
    new: list[str] = []
    for name in view_dirs:
        try:
            if not stat.S_ISDIR(os.lstat(folder / name).st_mode):
                continue  # a planted link is never followed (the render removes it)
            prefix = name + "/"
            new += sorted({prefix + entry for entry in os.listdir(folder / name)}.difference(files))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise StorageError(f"cannot read {folder / name}: {e.strerror or e}") from e
    return new


def _read(path: str, st: os.stat_result) -> bytes | None:
    """A regular file's content; None for anything else (a link is never followed)."""
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror or e}") from e


# -- what the seed's protocol meant by an edit --------------------------------------------------------


class Meant(NamedTuple):
    """The commands an edit stands for, and why some of it (or all: no commands) cannot be taken."""

    commands: list[cmd.Command]
    problem: str | None = None


def commands_for(edit: Edit, state: State) -> Meant:
    """What the seed's protocol meant by EDIT (its content is not None), against STATE."""
    from . import _legacy  # the seed's formats are read only when a hand edit is found

    assert edit.content is not None
    folder, _, name = edit.rel.rpartition("/")
    try:
        if folder == "HEARTBEATS":
            return Meant(_heartbeat(_legacy.parse_heartbeat(edit.content, name), state))
        if folder == "PRIORITIES":
            return Meant(_lock(_legacy.parse_lock(edit.content, name), state))
        if folder == "MILESTONES":
            return _milestone(_legacy.parse_milestone(edit.content, name), state)
        if edit.rel == "REGISTRY.json":  # the seed's "add yourself when you first appear"
            registry = _legacy.parse_registry(edit.content)
            return _register([(e.id, e.role, e.specialization, e.about) for e in registry.sessions], state,
                             registry.skipped)
        if folder == "DISCOVERY":  # the seed's introduction of a new session
            hello = _legacy.parse_hello(edit.content, name)
            if state.resolve(hello.session) in state.sessions:
                return Meant([], f"{hello.session} is known: `evhub hello {hello.session} --resume --role R "
                                 "--about A` changes its introduction")
            return _register([(hello.session, hello.role, "", hello.work)], state)
        if edit.rel == "MESSAGES.md":
            added = _added(edit)
            if added is None:
                return Meant([], "it was changed above its end; only lines added at the end are read as messages")
            return _messages(_legacy.parse_messages(added, state.sessions))
    except EvhubError as e:
        return Meant([], str(e))
    return Meant([], "evhub renders this file from the log and reads nothing back from it")


def _heartbeat(beat: HeartbeatFile, state: State) -> list[cmd.Command]:
    sid = state.resolve(beat.session)
    known = state.sessions.get(sid)
    if known is not None and beat.time is not None and seconds_between(beat.time, known.last_seen) >= 0:
        return []  # no later than the log has seen it (an old copy put back): says nothing new
    # The seed's first step for a new session is its heartbeat file: that registers it.
    hello: list[cmd.Command] = [] if known is not None and not known.left else [cmd.Hello(session=sid, resume=True)]
    return [*hello, cmd.Heartbeat(session=sid, status=beat.status)]


def _register(entries: list[tuple[str, str, str, str]], state: State, skipped: Iterable[str] = ()) -> Meant:
    """Hellos of the sessions of ENTRIES (id, role, specialization, about) that the log does not know;
    what the file says otherwise of known ones is not read back."""
    commands: list[cmd.Command] = []
    changed, problems = [], list(skipped)
    for sid, role, specialization, about in entries:
        known = state.sessions.get(state.resolve(sid))
        if known is None:
            commands.append(cmd.Hello(session=sid, role=role, specialization=specialization, about=about))
        elif (role, specialization, about) != (known.role, known.specialization, known.about):
            changed.append(sid)
    if changed:
        problems.append(f"what it says of {', '.join(changed)} is not read back (`evhub hello ID --resume --role R` "
                        "changes it)")
    return Meant(commands, "; ".join(problems) or None)


def _lock(lock: LockFile, state: State) -> list[cmd.Command]:
    held = state.claims.get(lock.priority)
    if held is not None and lock.time is not None:
        older = seconds_between(lock.time, held.since)
        if older > 0 or (older == 0 and held.session == state.resolve(lock.session)):
            return []  # from before the claim the log holds (an old copy put back), or that claim: nothing new
    return [cmd.ClaimPriority(session=lock.session, priority=lock.priority, ttl_s=lock.ttl_s)]


def _older(step: StepFile, ours: Step) -> bool:
    """Whether STEP, as a file shows it, is from before the log's last update of it (an old copy)."""
    return bool(ours.updated) and (step.updated is None or seconds_between(step.updated, ours.updated) > 0)


def _milestone(m: MilestoneFile, state: State) -> Meant:
    """The step updates that make the milestone what its file now says."""
    ours = state.milestones.get(m.id)
    if ours is None:
        return Meant([], f"there is no milestone {m.id!r} (`evhub milestone create` makes one)")
    if len(m.steps) != len(ours.steps):
        return Meant([], f"it has {len(m.steps)} steps where {m.id} has {len(ours.steps)}")
    claim = state.claims.get(ours.priority)
    # Whoever works on it acts; else its owner; else its creator.
    actor = claim.session if claim is not None else ours.owner or m.owner or ours.created_by
    if not actor:
        return Meant([], "no session owns the milestone to act for the change")
    return Meant([cmd.UpdateStep(session=actor, milestone=m.id, step=n, status=new.status, note=new.note)
                  for n, (new, old) in enumerate(zip(m.steps, ours.steps, strict=True), 1)
                  if (new.status, new.note) != (old.status, old.note) and not _older(new, old)])


def _added(edit: Edit) -> bytes | None:
    """What was added at the end of the file evhub wrote; None when it changed above its end."""
    assert edit.content is not None
    if edit.before is None or digest(edit.content[:edit.before.size]) != edit.before.digest:
        return None
    return edit.content[edit.before.size:]


def _messages(board: MessagesFile) -> Meant:
    """The messages of lines added at the end of MESSAGES.md."""
    commands: list[cmd.Command] = [cmd.SendMessage(session=m.sender, to=m.to, text=m.text) for m in board.messages]
    if not board.messages:
        return Meant([], "the lines added are no message (`from -> to: text`, or `id: text` from a known session)")
    if board.stray:
        lines = ", ".join(str(s.line) for s in board.stray)
        return Meant(commands, f"added lines {lines} are no message (`from -> to: text`)")
    return Meant(commands)


def describe(edit: Edit) -> str:
    """How EDIT's file differs from what evhub wrote, in a few words (for `verify`)."""
    if edit.content is None:
        return "removed (evhub wrote it)" if edit.st is None else "replaced by something that is no file"
    if edit.before is None:
        return "written by hand (evhub did not write it)"
    added = _added(edit)
    if added:
        n = added.count(b"\n") or 1
        return f"{n} line{'s' if n > 1 else ''} added at the end by hand"
    if edit.content == b"":
        return "emptied by hand"
    return "changed by hand since evhub wrote it"
