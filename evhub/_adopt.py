"""`init --adopt`: the events that reproduce a hand-kept SESSIONS/ folder, and what could not be carried.

The folder's files are read where they are (`read_folder`, the only part that touches the disk) and
the events decided before init moves the files, untouched, into the hub's `legacy-<time>/`, so that
nothing moves when anything fails. `plan` turns what was read into commands, each at the time the
files give it (a heartbeat at its time, a claim at its lock's...), and `adopted` decides them in
time order through `decide`, so the usual rules hold: a lock of a session whose last sign of life is
old gives a claim that is stale now, by the time rule, as any other. The log keeps those old times:
the hub is created at the earliest of them, so times never run backwards, and `replay --at` shows
the folder as it stood. Every adopted event says `origin: "adopted"`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import msgspec

from . import _decide as cmd
from . import _events as ev
from ._errors import EvhubError, Unreadable
from ._legacy import (
    HandshakeFile,
    HeartbeatFile,
    HelloFile,
    LockFile,
    MessageLine,
    MilestoneFile,
    RegistryEntry,
    parse_current_priority,
    parse_handshake,
    parse_heartbeat,
    parse_hello,
    parse_lock,
    parse_messages,
    parse_milestone,
    parse_registry,
)
from ._state import Milestone, State, evolve
from ._values import format_ts

ORIGIN = "adopted"
# The kinds a report lists, in this order.
KINDS = ("sessions", "heartbeats", "claims", "milestones", "messages", "discovery", "handshakes", "priority")
# Files of the seed's layout that hold nothing to carry over: evhub renders its own in their place.
_NOTHING_TO_CARRY = ("README.md", "SAVE.md", "Save.md", "MILESTONES/README.md")
# Who acts for a milestone the folder names no creator or owner of: the person, as the seed's
# scripts do when run from a plain shell.
PERSON = "human"


class Problem(msgspec.Struct, frozen=True):
    """A file (relative to the legacy folder), or a part of one, that was not carried over, and why."""

    file: str
    reason: str


class Folder(msgspec.Struct, kw_only=True):
    """What a hand-kept folder holds, read file by file."""

    registry: tuple[RegistryEntry, ...] = ()
    # Each file's values by its path in the folder.
    heartbeats: dict[str, HeartbeatFile] = {}
    locks: dict[str, LockFile] = {}
    milestones: dict[str, MilestoneFile] = {}
    messages: tuple[MessageLine, ...] = ()
    hellos: dict[str, HelloFile] = {}
    handshakes: dict[str, HandshakeFile] = {}
    priority: str | None = None
    problems: list[Problem] = []


class Adoption(msgspec.Struct, kw_only=True):
    """What `init --adopt` carried over (names by kind), what it could not (file and why), and where
    the originals are kept."""

    legacy: str
    carried: dict[str, list[str]]
    not_carried: list[Problem]
    notes: list[str] = []


def _mtime(path: Path) -> str:
    return format_ts(datetime.fromtimestamp(path.stat().st_mtime, UTC))


def read_folder(folder: Path, kept: list[Path]) -> Folder:
    """The files of the hand-kept FOLDER under KEPT (its entries to adopt) that the seed's layout knows,
    read; each one that cannot be read, and each file the layout does not know, is a Problem."""
    found = Folder()
    paths = [p for p in kept if p.is_symlink() or not p.is_dir()]
    for entry in kept:
        if entry.is_symlink() or not entry.is_dir():
            continue
        for top, dirs, names in os.walk(entry):  # links to folders are listed as names, never followed
            paths += [Path(top, name) for name in names + [d for d in dirs if Path(top, d).is_symlink()]]
    # MESSAGES.md last: a line `alice: text` is a message when alice is a session the other files name.
    for path in sorted(paths, key=lambda p: (p == folder / "MESSAGES.md", p)):
        rel = path.relative_to(folder).as_posix()
        try:
            if path.is_symlink():
                raise Unreadable("a symbolic link: not followed")
            _read_one(found, rel, path)
        except Unreadable as e:
            found.problems.append(Problem(rel, str(e)))
        except (OSError, UnicodeDecodeError) as e:
            found.problems.append(Problem(rel, f"cannot read it: {getattr(e, 'strerror', None) or e}"))
    found.problems.sort(key=lambda p: p.file.partition(":")[0])  # by file, as listed; a file's lines in order
    return found


def _read_one(found: Folder, rel: str, path: Path) -> None:
    folder, _, name = rel.rpartition("/")
    if rel in _NOTHING_TO_CARRY or (folder in ("", "scripts") and name.endswith(".sh")):
        return
    if folder == "HEARTBEATS" and name.endswith(".json"):
        beat = parse_heartbeat(path.read_bytes(), name)
        # The seed's `ls -lt HEARTBEATS/` reads a heartbeat's time from the file itself when it has none.
        found.heartbeats[rel] = beat if beat.time else msgspec.structs.replace(beat, time=_mtime(path))
    elif folder == "PRIORITIES" and name.endswith(".lock"):
        found.locks[rel] = parse_lock(path.read_bytes(), name)
    elif folder == "MILESTONES" and name.endswith(".json"):
        found.milestones[rel] = parse_milestone(path.read_bytes(), name)
    elif folder == "DISCOVERY" and name.endswith("-HELLO.md"):
        found.hellos[rel] = parse_hello(path.read_bytes(), name)
    elif folder == "HANDSHAKES" and name.endswith(".json"):
        found.handshakes[rel] = parse_handshake(path.read_bytes(), name)
    elif rel == "REGISTRY.json":
        registry = parse_registry(path.read_bytes())
        found.registry = registry.sessions
        found.problems += [Problem(rel, why) for why in registry.skipped]
    elif rel == "MESSAGES.md":
        senders = [e.id for e in found.registry] + [b.session for b in found.heartbeats.values()] + [
            h.session for h in found.hellos.values()]
        board = parse_messages(path.read_bytes(), senders)
        found.messages = board.messages
        found.problems += [Problem(f"{rel}:{s.line}", f"not a message: {s.text}") for s in board.stray]
    elif rel == "CURRENT_STATE.md":
        found.priority = parse_current_priority(path.read_bytes())
    else:
        raise Unreadable("not a file of the seed's layout")


AtFn = Callable[..., str]  # plan's `at`: a time from the folder, clamped (see plan)


class Planned(NamedTuple):
    """A command to decide at time AT: what it carries (KIND, NAME, for the report) from file SOURCE."""

    at: str
    command: cmd.Command | None  # None: nothing to decide, the log already says it (an agreed rename)
    kind: str | None  # None: a step of a larger item (a milestone's claim or steps), reported with it
    name: str
    source: str


def plan(found: Folder, now: str) -> list[Planned]:
    """The commands that reproduce FOUND, in the order to decide them: by time (none later than NOW),
    each no earlier than what it needs (a claim after its holder's hello)."""
    out: list[Planned] = []
    times: dict[str, list[str]] = {}  # every time the folder gives each session

    def seen(sid: str | None, *at: str | None) -> None:
        if sid is not None:
            times.setdefault(sid, []).extend(t for t in at if t)

    registry = {r.id: r for r in found.registry}
    hellos = {h.session: h for h in found.hellos.values()}
    named: dict[str, str] = {}  # session -> the file that first names it
    for r in found.registry:
        named.setdefault(r.id, "REGISTRY.json")
        seen(r.id, r.first_seen, r.last_seen)
    for source, b in found.heartbeats.items():
        named.setdefault(b.session, source)
        seen(b.session, b.time)
    for source, h in found.hellos.items():
        named.setdefault(h.session, source)
    for source, lock in found.locks.items():
        named.setdefault(lock.session, source)
        seen(lock.session, lock.time)
    for source, m in found.milestones.items():
        for sid in (m.owner, m.created_by, *(s.by for s in m.steps)):
            if sid is not None:
                named.setdefault(sid, source)
        seen(m.created_by or m.owner, m.created)
        for s in m.steps:
            seen(s.by or m.owner, s.updated)
        if m.owner is None and m.created_by is None:
            named.setdefault(PERSON, source)
    for msg in found.messages:
        for sid in (msg.sender, msg.to):
            if sid != "all":
                named.setdefault(sid, f"MESSAGES.md:{msg.line}")
        seen(msg.sender, msg.time)

    every = sorted(t for ts in times.values() for t in ts)
    start = min(every[0], now) if every else now
    first = {sid: min(times[sid]) if times.get(sid) else start for sid in named}
    last = {sid: max(times.get(sid) or [first[sid]]) for sid in named}

    def at(t: str | None, *after: str) -> str:
        return min(max((t or start, *after)), now)

    for sid in named:
        r, h = registry.get(sid, RegistryEntry(id=sid)), hellos.get(sid, HelloFile(session=sid))
        out.append(Planned(at(first[sid]), cmd.Hello(session=sid, role=r.role or h.role,
                                                     specialization=r.specialization, about=r.about or h.work),
                           "sessions", sid, named[sid]))
    beats = {b.session: b.time for b in found.heartbeats.values()}
    for source, b in found.heartbeats.items():
        out.append(Planned(at(b.time, first[b.session]), cmd.Heartbeat(session=b.session, status=b.status),
                           "heartbeats", b.session, source))
    for r in found.registry:
        if r.last_seen and r.last_seen > (beats.get(r.id) or ""):  # the registry saw it after its heartbeat
            out.append(Planned(at(r.last_seen, first[r.id]), cmd.Heartbeat(session=r.id), None, r.id,
                               "REGISTRY.json"))
    for source, lock in found.locks.items():
        # A lock that gives no time was taken while its holder was last seen: no later sign of life.
        out.append(Planned(at(lock.time or last[lock.session], first[lock.session]),
                           cmd.ClaimPriority(session=lock.session, priority=lock.priority, ttl_s=lock.ttl_s),
                           "claims", f"{lock.priority} ({lock.session})", source))
    for source, m in found.milestones.items():
        out += _milestone(source, m, first, at)
    for msg, when in zip(found.messages, _message_times(found.messages, start), strict=True):
        out.append(Planned(at(when, first[msg.sender], first.get(msg.to, start)),
                           cmd.SendMessage(session=msg.sender, text=msg.text, to=msg.to),
                           "messages", f"{msg.sender} → {msg.to}", f"MESSAGES.md:{msg.line}"))
    for source, hs in found.handshakes.items():
        if hs.status == "withdrawn":
            continue  # replaced by a later proposal: nothing to carry (adopted() says so)
        if hs.status == "agreed" and hs.proposed in named and hs.session not in named:
            # Agreed before: the folder knows the session by its new id only, and so will the hub.
            out.append(Planned(at(hs.time), None, "handshakes", f"{hs.session} → {hs.proposed} (agreed)", source))
            continue
        # Its voters are the sessions live when it is decided, which the folder cannot tell for its time:
        # it is decided last, when the folder's latest signs of life make those live that are now.
        out += _handshake(source, hs, first.get(hs.session), at(every[-1] if every else None))
    if found.priority is not None and last:
        # Set by the session seen last, when it was last seen: the folder says no more about who set it.
        sid = max(last, key=lambda s: (last[s], s))
        out.append(Planned(at(last[sid]), cmd.SetFocus(session=sid, text=found.priority), "priority",
                           found.priority, "CURRENT_STATE.md"))
    # Sorted by time; at one time, in the order made above (a hello before its session's claim).
    return [p for _, p in sorted(enumerate(out), key=lambda item: (item[1].at, item[0]))]


def _milestone(source: str, m: MilestoneFile, first: dict[str, str], at: AtFn) -> list[Planned]:
    creator = m.created_by or m.owner or PERSON
    created = at(m.created or min((s.updated for s in m.steps if s.updated), default=None), first[creator])
    out = [Planned(created, cmd.CreateMilestone(session=creator, title=m.title, milestone=m.id, priority=m.priority,
                                                steps=tuple(s.text for s in m.steps)),
                   "milestones", m.id, source)]
    if m.owner is not None:
        created = at(created, first[m.owner])
        out.append(Planned(created, cmd.ClaimMilestone(session=m.owner, milestone=m.id), None, m.id, source))
    for n, s in enumerate(m.steps, 1):
        if s.status == "pending" and not s.note:
            continue
        # The owner holds the milestone's claim: a step by anyone else would be refused while it holds.
        by = m.owner or s.by or creator
        out.append(Planned(at(s.updated, created, first[by]),
                           cmd.UpdateStep(session=by, milestone=m.id, step=n, status=s.status, note=s.note),
                           None, f"{m.id} step {n}", source))
    return out


def _message_times(messages: tuple[MessageLine, ...], start: str) -> list[str]:
    """Each message's time; one without takes the time of the message above it (the board is in order)."""
    out, previous = [], start
    for msg in messages:
        previous = max(msg.time or previous, previous)
        out.append(previous)
    return out


def _handshake(source: str, hs: HandshakeFile, first: str | None, when: str) -> list[Planned]:
    name = f"{hs.session} → {hs.proposed} ({hs.status})"
    when = max(when, first or when)
    out = [Planned(when, cmd.ProposeId(session=hs.session, proposed=hs.proposed, reason=hs.reason), "handshakes",
                   name, source)]
    out += [Planned(when, cmd.AcceptId(session=a, proposed=hs.proposed), None, name, source) for a in hs.accepted]
    if hs.rejected_by is not None:
        out.append(Planned(when, cmd.RejectId(session=hs.rejected_by, proposed=hs.proposed, reason=hs.reject_reason),
                           None, name, source))
    return out


def adopted(state: State, planned: list[Planned], found: Folder, legacy: str,
            now: str) -> tuple[list[ev.Event], Adoption]:
    """The events PLANNED gives when decided in turn against STATE (which they are folded into), each
    marked adopted, and the report: what was carried over, and each command refused with the rule's
    reason (its item is not carried, and its file is kept in LEGACY)."""
    events: list[ev.Event] = []
    carried: dict[str, list[str]] = {kind: [] for kind in KINDS}
    problems = list(found.problems)
    refused: set[tuple[str, str]] = set()
    for p in planned:
        try:
            decided = [] if p.command is None else cmd.decide(p.command, state, p.at)
        except EvhubError as err:
            problems.append(Problem(p.source, f"{p.name}: {err}"))
            refused.add((p.source, p.name))
            continue
        for e in decided:
            e.origin = ORIGIN
            evolve(state, e)
        events += decided
        if p.kind is not None:
            carried[p.kind].append(p.name)
    # Claims and milestones are named with what the hub now says of them: stale or not, progress, owner.
    for c in state.claims.values():
        reason = state.stale_reason(c, now)
        name = f"{c.priority} ({c.session})"
        if reason and name in carried["claims"]:
            carried["claims"][carried["claims"].index(name)] = f"{c.priority} ({c.session}, stale: {reason})"
    carried["milestones"] = [_progress(state.milestones[mid]) for mid in carried["milestones"]]
    carried["discovery"] = [h.session for h in found.hellos.values() if state.resolve(h.session) in state.sessions]
    for kind in KINDS:
        if kind != "messages":  # the board's order is its story; the rest reads best by name
            carried[kind].sort()
    if found.priority is not None and not carried["priority"]:
        problems.append(Problem("CURRENT_STATE.md", f"the priority {found.priority!r} needs a session to set it, "
                                "and the folder names none"))
    # A session no registry entry, heartbeat or hello introduces is registered all the same (its claim or
    # message is carried), and said so.
    notes = [f"{p.source} names no creator or owner: {PERSON} made it, registered for that"
             if p.name == PERSON and p.source.startswith("MILESTONES/") else
             f"{p.name} is named only in {p.source.split(':')[0]}, and registered from it" for p in planned
             if p.kind == "sessions" and not p.source.startswith(("REGISTRY", "HEARTBEATS", "DISCOVERY"))
             and (p.source, p.name) not in refused]
    notes += [f"{source}: {hs.session} → {hs.proposed} was withdrawn, nothing to carry over"
              for source, hs in found.handshakes.items() if hs.status == "withdrawn"]
    return events, Adoption(legacy=legacy, carried=carried, not_carried=problems, notes=notes)


def _progress(m: Milestone) -> str:
    owner = f", owner {m.owner}" if m.owner else ""
    return f"{m.id} ({m.done_count}/{len(m.steps)}{owner})"


def hub_events(found: Folder, legacy: str, alive_ttl_s: int, now: str) -> tuple[list[ev.Event], Adoption]:
    """A new hub's first events: its creation, at the earliest time FOUND gives (else NOW), and the
    events that reproduce FOUND (ids left to the shell), with the report."""
    planned = plan(found, now)
    created = ev.HubCreated(seq=1, id="", ts=planned[0].at if planned else now, alive_ttl_s=alive_ttl_s)
    state = evolve(State(), created)
    events, adoption = adopted(state, planned, found, legacy, now)
    return [created, *events], adoption


def summary(names: list[str]) -> str:
    """NAMES for one line of the report: in order, a name met again counted once with ×N."""
    counts = Counter(names)
    return ", ".join(n if counts[n] == 1 else f"{n} ×{counts[n]}" for n in dict.fromkeys(names))


