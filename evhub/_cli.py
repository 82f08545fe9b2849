"""The `evhub` command: a thin layer over evhub.Hub. Errors become one `error: ...` line here."""


import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import msgspec
import typer
import typer.main
from typer._click.core import Command, Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, NoSuchOption, UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from . import _edge
from . import _events as ev  # already imported by _hub
from ._documents import one_line
from ._edge import (
    CONTROL,
    Place,
    duration,
    fail,
    finished,
    hub,
    need_session,
    out,
    out_json,
    out_stored,
    said_claimed,
    said_done,
    said_error,
    say,
    warn,
)
from ._errors import BadInput, EvhubError, StorageError, ViewsDisagree
from ._hub import Hub
from ._pgstore import PASSWORD_PLACES, StoreSettings  # already imported by _hub
from ._state import State  # already imported by _hub
from ._values import parse_duration

if TYPE_CHECKING:
    from ._adopt import Adoption

_HELP_OPTIONS = ["-h", "--help"]
app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    suggest_commands=False,  # main suggests whole commands, valid ones (`evhub milestone create`)
    context_settings={"help_option_names": _HELP_OPTIONS},
    help="evhub: an event-sourced coordination hub for AI coding sessions sharing one repository.\n\n"
         "`evhub help COMMAND` (or `evhub COMMAND -h`) shows a command's help.\n\n"
         "Example: evhub hello alice --role backend",
)
milestone_app = typer.Typer(no_args_is_help=True, help="Multi-step work: create, claim, step, add-step, list, show.")
msg_app = typer.Typer(no_args_is_help=True, help="The message board: send, inbox, list.")
handshake_app = typer.Typer(no_args_is_help=True, help="ID negotiations: propose, accept, reject, list.")
app.add_typer(milestone_app, name="milestone")
app.add_typer(msg_app, name="msg")
app.add_typer(handshake_app, name="handshake")

SessionOpt = Annotated[
    str | None,
    typer.Option("--session", "-s", envvar="EVHUB_SESSION", help="Acting session id (else $EVHUB_SESSION)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="EVHUB_STORE", show_envvar=False,
                 help="Keep the log on PostgreSQL: a postgresql:// string (else $EVHUB_STORE), kept "
                      "without a password."),
]
StoreFileOpt = Annotated[
    str | None, typer.Option("--store-file", help="A file holding the postgresql:// string (its path is saved).")
]
SchemaOpt = Annotated[str, typer.Option("--schema", help="The PostgreSQL schema of this hub's tables.")]
TokenOpt = Annotated[
    int | None, typer.Option("--token", help="Refuse unless N is the current claim's fencing token.")
]

def _say_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        out(f"evhub {version('evhub')}")
        raise typer.Exit()


@app.callback()
def _root(
    hub_dir: Annotated[
        str | None,
        typer.Option("--hub", help="The folder holding SESSIONS/ (else $EVHUB_HUB, else found upward); "
                     "before or after the command."),
    ] = None,
    on_behalf: Annotated[
        bool,
        typer.Option("--on-behalf", help="Let --session name a session other than yours ($EVHUB_SESSION): "
                     "its events record you as `by`."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", "-V", is_eager=True, callback=_say_version, help="Print evhub's version.")
    ] = False,
) -> None:
    Place.hub_dir, Place.on_behalf = hub_dir, on_behalf


@app.command()
def init(
    directory: Annotated[str, typer.Argument(help="Where to make SESSIONS/.")] = ".",
    alive_ttl: Annotated[str, typer.Option("--alive-ttl", help="Silence after which a session is dead.")] = "5m",
    adopt: Annotated[
        bool, typer.Option("--adopt", help="Carry a hand-kept SESSIONS/ (the seed's layout) into the log, keeping "
                           "its files in SESSIONS/events/legacy-<time>/.")
    ] = False,
    store: StoreOpt = None,
    store_file: StoreFileOpt = None,
    schema: SchemaOpt = "evhub",
    json: JsonOpt = False,
) -> None:
    """Create a hub: DIR/SESSIONS/ with its log, read model and views (the log on PostgreSQL with --store).

    Example: evhub init
    """
    settings = _store_settings(store, store_file, schema)
    h, created = Hub.init(directory, parse_duration(alive_ttl), adopt=adopt, store=settings)
    _said_init(h, created, json, settings)


def _store_settings(store: str | None, store_file: str | None, schema: str) -> StoreSettings | None:
    """The PostgreSQL settings the options name, or None for a hub whose log is a JSONL file."""
    if store is None and store_file is None:
        return None
    return StoreSettings(schema, Path(store_file).absolute() if store_file else None, store)


def _said_init(h: Hub, created: bool, json: bool, settings: StoreSettings | None, imported: int | None = None) -> None:
    if settings is not None and settings.password_dropped():  # on stderr, so --json stays one document
        sys.stderr.write(f"the password is not kept with the connection string: put it in {PASSWORD_PLACES}\n")
    where = h.store.where
    # A log out of the views' folder (a git repository's hub keeps it in the common git dir) is named too.
    log_elsewhere = None if where or h.log_path.is_relative_to(h.dir) else h.log_path
    adopted = h.adopted
    if json:
        out_json({"hub": str(h.dir), "created": created, "store": h.store.name,
                  **({} if imported is None else {"events": imported}),
                  **({} if adopted is None else {"adopted": adopted})})
        return
    if imported is not None:
        out(f"imported {imported} events into a new hub at {h.dir}" + (f", its log in {where}" if where else ""))
    elif created:
        out(f"created a hub at {h.dir}" + (f", its log in {where or log_elsewhere}" if where or log_elsewhere else ""))
    elif where:
        out(f"{h.dir} follows the hub in {where}")
    else:
        out(f"a hub is already at {h.dir}; nothing changed")
    if adopted is not None:
        _said_adopted(adopted)


def _said_adopted(adopted: "Adoption") -> None:
    """What init --adopt carried over, by kind, and each file (or line) it could not, with why."""
    from ._adopt import summary

    out(f"adopted the hand-kept SESSIONS/: its files are kept, untouched, in {adopted.legacy}")
    out("carried over:")
    for kind, names in adopted.carried.items():
        out(f"  {kind} ({len(names)}): {one_line(summary(names))}" if names else f"  {kind}: none")
    for note in adopted.notes:
        out(f"note: {one_line(note)}")
    if adopted.not_carried:
        out(f"not carried over ({len(adopted.not_carried)}; kept in {Path(adopted.legacy).name}/):")
    for problem in adopted.not_carried:
        out(f"  {problem.file}: {one_line(problem.reason)}")


@app.command("export")
def export_(
    out_file: Annotated[str | None, typer.Option("--out", "-o", help="Write here (default: stdout).")] = None,
    json: Annotated[bool, typer.Option("--json", help="With --out: say what was written as JSON.")] = False,
) -> None:
    """Write the hub's log as standard JSONL, whatever store holds it.

    Example: evhub export --out backup.jsonl
    """
    h = hub()
    if out_file is None:
        h.export(sys.stdout.buffer)  # the log itself, JSON Lines with or without --json
        return
    target = Path(out_file)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            count = h.export(f)
        tmp.replace(target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {target}: {e.strerror}") from e
    if json:
        out_json({"events": count, "out": str(target)})
    else:
        out(f"exported {count} events to {target}")


@app.command("import")
def import_(
    log_file: Annotated[str, typer.Argument(metavar="FILE", help="A log written by `evhub export` (or a log.jsonl).")],
    directory: Annotated[str, typer.Argument(help="Where to make SESSIONS/.")] = ".",
    store: StoreOpt = None,
    store_file: StoreFileOpt = None,
    schema: SchemaOpt = "evhub",
    json: JsonOpt = False,
) -> None:
    """Make a new hub whose log is FILE, byte for byte (on PostgreSQL with --store).

    Example: evhub import backup.jsonl copy
    """
    from ._store import parse_log

    settings = _store_settings(store, store_file, schema)
    try:
        data = Path(log_file).read_bytes()
    except OSError as e:
        raise StorageError(f"cannot read {log_file}: {e.strerror}") from e
    lines, events = parse_log(data, log_file)
    h, _ = Hub.init(directory, adopt=False, store=settings, events=(lines, events))
    _said_init(h, True, json, settings, imported=len(events))


@app.command()
def migrate() -> None:
    """Move a hub an earlier evhub kept in the work tree (SESSIONS/events/) out of git's reach.

    Example: evhub migrate
    """
    from ._place import migrate as move

    root = Hub.find(Place.hub_dir).root
    moved = move(root)
    if moved is None:
        out(f"nothing to migrate: the hub's log is at {Hub(root).log_path}")
        return
    source, target, untracked = moved
    Hub(root).flush(force=True)  # the views, now in every worktree and ignored by git
    out(f"moved the hub's log from {source} to {target}")
    if untracked:
        out("git no longer tracks SESSIONS/ (staged: commit it; history keeps every old version)")


@app.command()
def where(json: JsonOpt = False) -> None:
    """Where the hub is: its root, its log, its read model and the SESSIONS/ folders it keeps live.

    Example: evhub where --json
    """
    from ._sync import last_sync

    h = hub()
    found = h.where()
    synced = last_sync(h.events_dir)
    if json:
        out_json({**found._asdict(), "synced": synced})
        return
    out(f"root: {found.root}")
    out(f"log: {found.log}")
    out(f"read model: {found.read_model}")
    for folder in found.views:
        out(f"views: {folder}")
    out("synced: never" if synced is None else
        f"synced: {synced.remote} ({synced.url}) {synced.at}: took {_n_events(synced.took)}, gave {synced.gave}")


@app.command()
def sync(
    remote: Annotated[str | None, typer.Argument(help="A git remote (default: the branch's upstream remote, else "
                                                      "origin, else the only one).")] = None,
    json: JsonOpt = False,
) -> None:
    """Exchange events with the hub's other clones through a git remote (joins its hub when there is none here).

    Each clone keeps its log on a ref of its own on the remote (refs/evhub/...): branches are never touched.

    A sync adds no events of its own: syncing again with nothing new changes nothing.

    Example: evhub sync origin
    """
    from ._errors import HubNotFound
    from ._sync import sync as exchange

    try:
        h: Hub | None = hub()
    except HubNotFound:
        h = None  # a fresh clone of the repository: join the hub its remote holds
    root = h.root if h is not None else Path(Place.hub_dir or ".").absolute()
    done = exchange(root, remote, h)
    if json:
        out_json(done)
        return
    clones = ", ".join(str(k) for k in done.clones)
    joined = f"joined the hub as clone {done.clone}, " if done.joined else ""
    out(f"synced with {done.remote}: {joined}took {_n_events(done.took)}, gave {done.gave} (clones {clones})")


@app.command()
def merge(
    log_file: Annotated[str, typer.Argument(metavar="FILE", help="A log of this hub written by `evhub export` "
                                                                  "elsewhere (- for stdin).")],
    json: JsonOpt = False,
) -> None:
    """Take the events of another clone's log that this hub lacks (joins that hub when there is none here).

    Example: evhub merge laptop.jsonl
    """
    from ._errors import HubNotFound

    try:
        data = sys.stdin.buffer.read() if log_file == "-" else Path(log_file).read_bytes()
    except OSError as e:
        raise StorageError(f"cannot read {log_file}: {e.strerror}") from e
    name = "stdin" if log_file == "-" else log_file
    try:
        h = hub()
    except HubNotFound:
        from ._place import join
        from ._sync import free_clone

        root = Path(Place.hub_dir or ".").absolute()
        clone = free_clone(data, name)
        join(root, data, clone, name)
        h = hub()
        said = {"joined": True, "clone": clone, "added": h.state().seq, "known": 0}
    else:
        from ._sync import merge as take

        said = {"joined": False, **take(h, data, name)._asdict()}
    if json:
        out_json(said)
    elif said["joined"]:
        out(f"made this hub from {name} as clone {said['clone']}: took {_n_events(said['added'])}")
    else:
        out(f"merged {name}: took {_n_events(said['added'])} ({said['known']} known already)")


@app.command()
def hello(
    session_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="Id (default: first free session-N).")
    ] = None,
    role: Annotated[str, typer.Option("--role", help="What you do (backend, tests...).")] = "",
    spec: Annotated[str, typer.Option("--spec", help="Specialization.")] = "",
    about: Annotated[str, typer.Option("--about", help="What you are working on.")] = "",
    resume: Annotated[
        bool, typer.Option("--resume", help="The same session coming back after a context loss.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Register a session (say hello).

    Example: eval "$(evhub hello alice --role backend)"
    """
    h = hub()
    # A known id starting again without --resume drops its claims (decide's rule); say which, on
    # stderr so that `eval "$(evhub hello ID)"` still reads only the export line.
    held = [] if resume or session_id is None else h.state().claims_of(session_id)
    sid = h.hello(session_id, role=role, specialization=spec, about=about, resume=resume)
    if held:
        h.warnings.append(f"{sid} started again without --resume: dropped its claims on "
                          f"{', '.join(c.priority for c in held)} (to keep them: evhub hello {sid} --resume)")
    if json:
        out_json({"session": sid, "export": f"export EVHUB_SESSION={sid}"})
    else:
        out(f"export EVHUB_SESSION={sid}")  # shell, so that `eval "$(evhub hello ID)"` sets it


@app.command()
def heartbeat(
    status: Annotated[str, typer.Option("--status", help="What you are doing now.")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Prove you are alive (refresh every 30 seconds while active).

    Example: evhub heartbeat --status 'writing tests'
    """
    _edge.heartbeat(session, status, json)


@app.command()
def bye(session: SessionOpt = None, json: JsonOpt = False) -> None:
    """Leave the hub, releasing everything you hold.

    Example: evhub bye
    """
    events = hub().bye(need_session(session))
    said_done(json, events, "left the hub")


@app.command()
def sessions(
    all_: Annotated[bool, typer.Option("--all", help="Include sessions that are not alive.")] = False,
    json: JsonOpt = False,
) -> None:
    """Who is alive (or, with --all, every session ever registered).

    Example: evhub sessions --all
    """
    from ._documents import sessions as rows

    h = hub()
    state = h.state()
    docs = rows(state, _read_time(state), include_all=all_)
    if json:
        out_json(docs)
        return
    for r in docs:
        life = "alive" if r["alive"] else ("left" if r["left"] else "silent")
        status = f" [{one_line(r['status'])}]" if r["status"] else ""
        out(f"{r['id']}\t{life}\t{one_line(r['role'])}\tlast seen {r['last_seen']}{status}")
    if not docs:
        out("no live sessions" if not all_ else "no sessions")


@app.command()
def claim(
    priority: str,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Let the claim lapse after this long unrefreshed.")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Claim a priority before starting work on it (exit 3 when someone holds it).

    A claim is exclusive at once within one hub, and across clones only after they sync (`evhub sync`).

    For claims exclusive at once across machines, use PostgreSQL (`evhub init --store`).

    Example: evhub claim api --ttl 30m
    """
    _edge.claim(session, priority, ttl, json)


@app.command()
def release(
    priority: str,
    done: Annotated[bool, typer.Option("--done", help="The work is finished: list it as completed.")] = False,
    note: Annotated[str, typer.Option("--note")] = "",
    force: Annotated[bool, typer.Option("--force", help="Release another session's claim (recorded).")] = False,
    token: TokenOpt = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Release a claimed priority.

    Example: evhub release api --done --note 'GET /api/metrics is live'
    """
    events = hub().release(need_session(session), priority, done=done, note=note, force=force, token=token)
    told = events[-1]  # a forced release tells the holder in a message
    if isinstance(told, ev.MessagePosted) and not json:
        out(f"released {priority} (seq {events[0].number}); told {told.to} in message #{told.number}")
    else:
        said_done(json, events, f"released {priority}")


@app.command()
def claims(json: JsonOpt = False) -> None:
    """Every claim, with holder, token and whether it is stale.

    Example: evhub claims --json
    """
    from ._documents import claims as rows

    state = hub().state()
    docs = rows(state, _read_time(state))
    if json:
        out_json(docs)
        return
    for c in docs:
        flag = "\tSTALE" if c["stale"] else ""
        out(f"{c['priority']}\t{c['session']}\ttoken {c['token']}\tsince {c['since']}{flag}")
    if not docs:
        out("no claims")


@app.command()
def focus(text: str, session: SessionOpt = None, json: JsonOpt = False) -> None:
    """Set the hub's current priority (CURRENT_STATE.md).

    Example: evhub focus 'Ship the metrics dashboard'
    """
    events = hub().focus(need_session(session), text)
    said_done(json, events, "focus set")


@app.command()
def note(text: str, session: SessionOpt = None, json: JsonOpt = False) -> None:
    """Add a note to your session (shown by recall).

    Example: evhub note 'the staging database is read-only today'
    """
    events = hub().note(need_session(session), text)
    said_done(json, events, "note added")


@app.command()
def status(json: JsonOpt = False) -> None:
    """The seed's quick-status: focus, sessions, claims, milestones, completed, messages.

    Example: evhub status
    """
    from ._documents import status as doc
    from ._report import status_markdown

    state = hub().state()
    now = _read_time(state)
    if json:
        out_json(doc(state, now))
    else:
        sys.stdout.write(CONTROL.sub("\N{REPLACEMENT CHARACTER}", status_markdown(state, now)))


@app.command()
def recall(
    session_id: Annotated[str | None, typer.Argument(metavar="ID", help="Default: $EVHUB_SESSION.")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """What a session needs after a context loss (unread messages stay unread).

    Example: evhub recall
    """
    from ._documents import recall as doc
    from ._report import recall_markdown

    found = hub().recall(need_session(session_id or session))
    if json:
        out_json(doc(found))
    else:
        sys.stdout.write(CONTROL.sub("\N{REPLACEMENT CHARACTER}", recall_markdown(found)[0]))


@app.command()
def save(
    mode: Annotated[
        str, typer.Option("--mode", help="auto, quick, milestone or full (full commits SESSIONS/).")
    ] = "auto",
    note_text: Annotated[str, typer.Option("--note")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """The seed's save-progress: record where you are (full also commits SESSIONS/ to git).

    Example: evhub save --mode quick --note 'tests pass'
    """
    h = hub()
    saved = h.save(need_session(session), mode, note_text)
    synced = _synced_quietly(h) if saved.mode == "full" else None
    if json:
        out_json({**saved._asdict(), **({} if saved.mode != "full" else {"synced": synced})})
        return
    if saved.git_commit:
        out(f"saved ({saved.mode}); committed SESSIONS/ as {saved.git_commit[:12]}")
    elif saved.mode == "full":
        out("saved (full); nothing to commit: SESSIONS/ holds no change git tracks")
    else:
        out(f"saved ({saved.mode})")
    if synced is not None:
        out(f"synced with {synced.remote}: took {_n_events(synced.took)}, gave {synced.gave}")


def _synced_quietly(h: Hub) -> Any:
    """A sync nobody typed (`save --mode full`): when the repository has a remote; failing is a warning."""
    from ._sync import sync_if_remote

    try:
        return sync_if_remote(h)
    except EvhubError as e:
        h.warnings.append(f"not synced: {e}")
        return None


@app.command()
def log(
    session: Annotated[str | None, typer.Option("--session", "-s", help="Only this session's events.")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this event type (claim, msg... or full name).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="10m ago or an RFC 3339 time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to then (10m ago or RFC 3339).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the last N matching events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print the stored lines.")] = False,
) -> None:
    """The history, one line an event.

    Example: evhub log --type claim --since 1h
    """
    from ._history import LogFilter

    h = hub()
    flt = LogFilter.make(session=session, type_=type_, since=since, until=until, now=_now())
    shown, offset = h.log(flt, limit)
    for line in shown:
        out_stored(line.raw) if json else out(flt.describe(line))
    warn(h)
    if follow:
        try:
            for line in h.follow(flt, offset, tell=say):
                out_stored(line.raw) if json else out(flt.describe(line))
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass


@app.command()
def replay(
    at: Annotated[str | None, typer.Option("--at", help="As the hub stood at this time (or 10m ago).")] = None,
    upto: Annotated[int | None, typer.Option("--upto", min=0, help="As the hub stood after this seq.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write the views here, not into SESSIONS/.")] = None,
    json: JsonOpt = False,
) -> None:
    """Rebuild every view from the log alone (in place, or into a folder).

    Example: evhub replay --upto 5 --out then
    """
    if at is not None and upto is not None:
        raise BadInput("give --at or --upto, not both")
    h = hub()
    state = h.replay(at=at, upto=upto, out=out_dir)
    target = out_dir or h.dir
    if json:
        out_json({"events": state.seq, "views": str(target)})
    else:
        out(f"replayed {state.seq} events into {target}")


@app.command()
def why(priority: str, json: JsonOpt = False) -> None:
    """Who held PRIORITY when, who took it over, who released it.

    Example: evhub why api
    """
    rows = hub().why(priority)
    if json:
        out_json(rows)
        return
    for r in rows:
        details = {
            "took over": f" from {r.get('took_over_from')}",
            "dropped": " (its session started again without --resume)",
            "renamed": f" (renamed from {r.get('renamed_from')})",
        }.get(r["action"], "")
        ttl = f" (ttl {r['ttl_s']}s)" if r.get("ttl_s") else ""
        note_text = f": {one_line(r['note'])}" if r.get("note") else ""
        verb = {"took over": "took it over", "renamed": "holds it under its new id",
                "left": "left, which released it"}.get(r["action"], f"{r['action']} it")
        out(f"#{r['seq']} {r['ts']} {r['session']} {verb}{details}{ttl}{note_text}")


@app.command()
def verify(json: JsonOpt = False) -> None:
    """Check the log: every line parses, seq is gap-free, ids unique, the read model and views agree (exit 4 if not).

    Example: evhub verify
    """
    report = hub().verify()
    if json:
        out_json(report)
    else:
        for w in report["warnings"]:
            sys.stderr.write(f"warning: {CONTROL.sub('?', w)}\n")
        out(f"ok: {report['events']} events, log verified")
        for v in report["views"]:
            out(f"{v['file']}: {v['differs']}")
    if report["views"]:
        n = len(report["views"])
        raise ViewsDisagree(f"{n} view file{'s disagree' if n > 1 else ' disagrees'} with the log: the next evhub "
                            "command takes what it understands of the hand edits as events, and keeps a copy of "
                            "the rest")


@app.command()
def repair(json: JsonOpt = False) -> None:
    """Copy the log aside, quarantine what cannot be read, leave a log that verifies.

    Example: evhub repair
    """
    h = hub()
    result = h.repair()
    if json:
        out_json(result)
    elif not result["repaired"]:
        out(f"nothing to repair: {result['events']} events")
    else:
        restored = "put back every event the hub had seen; " if result["restored"] else ""
        out(f"repaired: {restored}{len(result['set_aside'])} lines set aside in {h.events_dir / 'quarantine'}/, "
            f"{result['lost']} seq marked event_lost; the old log is {h.events_dir / result['backup']}")


@app.command()
def watch(
    at: Annotated[str | None, typer.Option("--at", help="Show the hub as it stood then (30m, or RFC 3339).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Print the dashboard once and exit (as without a terminal).")
                    ] = False,
) -> None:
    """A live dashboard of sessions, claims, milestones, messages and events; q or Ctrl-C quits.

    Example: evhub watch --at 1m
    """
    from ._values import now, parse_when
    from ._watch import watch as run_watch

    run_watch(hub(), None if at is None else parse_when(at, now()), once=once)


@app.command()
def timeline(
    out_file: Annotated[str, typer.Option("--out", help="The HTML file to write.")],
    since: Annotated[str | None, typer.Option("--since", help="From then on (30m, 2h, or RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to then.")] = None,
    json: JsonOpt = False,
) -> None:
    """Draw the hub's history (who was alive, who held what when, steps, messages) as one HTML file.

    Example: evhub timeline --out history.html --since 2h
    """
    from ._timeline import history, write
    from ._values import now, parse_when

    h = hub()
    clock = now()
    data = history(h.events(), None if since is None else parse_when(since, clock),
                   None if until is None else parse_when(until, clock))
    target = Path(out_file)
    write(target, data, f"evhub timeline of {h.root.name}")
    drawn = {"out": str(target), **{k: len(data[k]) for k in ("sessions", "priorities", "steps", "messages")}}
    if json:
        out_json(drawn)
    else:
        out(f"wrote {target} ({drawn['sessions']} sessions, {drawn['priorities']} priorities, "
            f"{drawn['steps']} step changes, {drawn['messages']} messages)")


@app.command()
def hook(
    agent: Annotated[str, typer.Option("--agent", help="The agent sending the event: claude or codex.")] = "claude",
) -> None:
    """Handle one agent hook event (JSON on stdin); never fails the agent (see `install`).

    Example: echo '{"hook_event_name": "Stop", "session_id": "s1"}' | evhub hook
    """
    from ._entry import hook as handle  # the console script answers hooks without typer; this is for -m and help

    handle(Place.hub_dir, agent)


@app.command()
def mcp() -> None:
    """Serve the hub's coordination actions as MCP tools over stdio (for `claude mcp` and the like).

    Example: claude mcp add evhub -- evhub mcp
    """
    from ._mcp import serve

    serve(Place.hub_dir)


@app.command()
def install(
    target: Annotated[str, typer.Argument(help="The agent to wire evhub into: claude or codex.")],
    remove: Annotated[bool, typer.Option("--remove", help="Take out what install added, and only that.")] = False,
    mcp: Annotated[bool, typer.Option(
        "--mcp", help="Also register `evhub mcp` as the project's MCP server (codex: always).")] = False,
    project: Annotated[str, typer.Option("--project", help="The project folder.")] = ".",
    local: Annotated[bool, typer.Option(
        "--local", help="Into your personal files (.claude/settings.local.json, CLAUDE.local.md, which git "
                        "is told to ignore in this clone), not the shared ones teammates without evhub would "
                        "get too.")] = False,
    sync: Annotated[bool, typer.Option(
        "--sync", help="Also sync with the git remote at each session's start and end (sets `git config "
                       "evhub.sync true` in this clone; --remove unsets it).")] = False,
) -> None:
    """Add evhub's hooks and instructions to an agent's project configuration (or --remove them).

    Example: evhub install claude --mcp
    """
    from ._install import TARGETS

    if target not in TARGETS:
        raise BadInput(f"unknown target {target!r}: use {', '.join(sorted(TARGETS))}")
    add, take_out = TARGETS[target]
    folder = Path(project).absolute()
    changed = take_out(folder) if remove else add(folder, mcp, local)
    for path in changed:
        out(f"{'updated' if Path(path).exists() else 'removed'} {path}")
    if (sync or remove) and _set_sync(folder, not remove):
        out("unset git config evhub.sync" if remove else "set git config evhub.sync true: the hook syncs at each "
            "session's start and end")
    elif not changed:
        out("nothing to change")


def _set_sync(folder: Path, on: bool) -> bool:
    from ._place import repository
    from ._sync import set_wanted

    if not on and repository(folder) is None:
        return False  # --remove outside a repository: there is no setting to take out
    return set_wanted(folder, on)


@app.command()
def sql(query: str, json: JsonOpt = False) -> None:
    """A read-only SQL query against the read model (tables: sessions, claims, milestones, steps, messages).

    Example: evhub sql 'SELECT id, role FROM sessions'
    """
    rows = hub().sql(query)
    if json:
        out_json(rows)
        return
    if rows:
        out("\t".join(rows[0]))
    for r in rows:
        out("\t".join("" if v is None else one_line(str(v)) for v in r.values()))


@app.command()
def demo(
    directory: Annotated[
        Path | None, typer.Argument(help="Where to make the demo hub (default: a new temp dir).")
    ] = None,
    pace: Annotated[float, typer.Option(
        "--pace", help="Seconds a story minute lasts: the story then runs on the real clock, to watch it live.")] = 0.0,
) -> None:
    """A realistic run: sessions as real processes say hello, race for a claim, work, talk, go silent.

    Example: evhub demo
    """
    from ._demo import run_demo

    run_demo(directory, pace)


# -- milestone ----------------------------------------------------------------------------


@milestone_app.command("create")
def milestone_create(
    title: str,
    priority: Annotated[str | None, typer.Option("--priority", help="Default: the milestone id.")] = None,
    step: Annotated[list[str] | None, typer.Option("--step", help="One per step, in order.")] = None,
    milestone_id: Annotated[str | None, typer.Option("--id", help="Default: a slug of the title.")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create a milestone (exit 3 when its id exists).

    Example: evhub milestone create 'Deploy dashboard' --step Build --step Deploy
    """
    from ._decide import CreateMilestone

    [e] = _write(hub(), session, lambda sid: CreateMilestone(
        session=sid, title=title, milestone=milestone_id, priority=priority, steps=tuple(step or ())))
    mid = e.milestone
    if json:
        out_json({"milestone": mid})
    else:
        out(f"created milestone {mid}")


@milestone_app.command("claim")
def milestone_claim(
    milestone_id: Annotated[str, typer.Argument(metavar="ID")],
    ttl: Annotated[str | None, typer.Option("--ttl", help="Let the claim lapse after this long unrefreshed.")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Own a milestone and claim its priority (exit 3 when a live session holds it).

    Example: evhub milestone claim deploy-dashboard
    """
    claimed = hub().claim_milestone(need_session(session), milestone_id, duration(ttl))
    said_claimed(claimed, json, f"milestone {milestone_id}", milestone=milestone_id)


@milestone_app.command("step", context_settings={"ignore_unknown_options": True})
def milestone_step(
    milestone_id: Annotated[str, typer.Argument(metavar="ID")],
    n: Annotated[int, typer.Argument(metavar="N", help="Step number, from 1.")],
    status_: Annotated[str, typer.Argument(metavar="STATUS", help="pending, in-progress, done, blocked or skipped.")],
    note_text: Annotated[str, typer.Option("--note", help="Where the step stands (shown with it).")] = "",
    token: TokenOpt = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set the status of step N of a milestone.

    Example: evhub milestone step deploy-dashboard 1 done --note 'bundle built'
    """
    from ._decide import UpdateStep

    events = _write(hub(), session, lambda sid: UpdateStep(
        session=sid, milestone=milestone_id, step=n, status=status_, note=note_text, token=token), milestone_id)
    said_done(json, events, f"step {n} of {milestone_id} is {events[-1].status if events else status_}")


@milestone_app.command("add-step")
def milestone_add_step(
    milestone_id: Annotated[str, typer.Argument(metavar="ID")],
    text: Annotated[list[str], typer.Argument(metavar="TEXT...", help="One argument per step, in order.")],
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add steps at the end of a milestone (exit 3 while another live session holds its priority).

    Example: evhub milestone add-step deploy-dashboard 'Deploy to production'
    """
    from ._decide import AddSteps

    h = hub()
    events = _write(h, session, lambda sid: AddSteps(session=sid, milestone=milestone_id, steps=tuple(text)),
                    milestone_id)
    said_done(json, events, f"{milestone_id} has {len(h.milestone(milestone_id).steps)} steps")


def _write(h: Hub, session: str | None, make: Any, milestone: str | None = None) -> list[Any]:
    """The events of MAKE(acting session). With no SESSION the person acts: as `human`, registered in
    the same write when it is not yet; on MILESTONE, as its owner while the owner is alive (its claim
    would refuse anyone else), recorded as done by `human`."""
    if session:
        return h.execute(make(session))
    # A person at a plain shell has no session (no --session, no EVHUB_SESSION): the milestone commands
    # then act as the person adoption names too, so the seed's scripts work as they did (README: "Who acts").
    from ._adopt import PERSON
    from ._decide import Hello

    state = h.state()
    acting = PERSON
    owner = h.milestone(milestone).owner if milestone is not None else None
    if owner is not None and owner != PERSON and state.is_alive(owner, _read_time(state)):
        acting = owner
        h.caller, h.on_behalf = PERSON, True
    me = state.sessions.get(PERSON)
    first = [] if me is not None and not me.left else [Hello(session=PERSON, resume=True)]
    return h.execute(*first, make(acting))[len(first):]


@milestone_app.command("list")
def milestone_list(
    all_: Annotated[bool, typer.Option("--all", help="Include completed milestones.")] = False,
    json: JsonOpt = False,
) -> None:
    """Milestones with progress.

    Example: evhub milestone list --all
    """
    from ._documents import milestones, progress_bar

    h = hub()
    docs = milestones(h.state(), include_complete=all_)
    if json:
        out_json(docs)
        return
    for m in docs:
        p = m["progress"]
        out(f"{m['id']}\t{progress_bar(p['done'], p['total'])} {p['done']}/{p['total']}\t"
            f"{m['owner'] or 'unclaimed'}\t{one_line(m['title'])}")
    if not docs:
        out("no milestones")


@milestone_app.command("show")
def milestone_show(milestone_id: Annotated[str, typer.Argument(metavar="ID")], json: JsonOpt = False) -> None:
    """One milestone, step by step.

    Example: evhub milestone show deploy-dashboard
    """
    from ._documents import milestone_dict

    h = hub()
    m = milestone_dict(h.milestone(milestone_id))
    if json:
        out_json(m)
        return
    p = m["progress"]
    out(f"{m['id']}: {one_line(m['title'])} ({p['done']}/{p['total']}, priority {m['priority']}, "
        f"owner {m['owner'] or 'none'})")
    for s in m["steps"]:
        note_text = f" ({one_line(s['note'])})" if s["note"] else ""
        out(f"  {s['n']}. [{s['status']}] {one_line(s['text'])}{note_text}")


# -- msg ------------------------------------------------------------------------------------


@msg_app.command("send")
def msg_send(
    text: str,
    to: Annotated[str, typer.Option("--to", help="A session id, or all.")] = "all",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Post a message to one session or to all.

    Example: evhub msg send 'staging is up' --to bob
    """
    _edge.send(session, text, to, json)


def _print_messages(docs: list[dict[str, Any]], json: bool, empty: str) -> None:
    if json:
        out_json(docs)
        return
    for m in docs:
        out(f"#{m['seq']} {m['ts']} {m['from']} → {m['to']}: {one_line(m['text'])}")
    if not docs:
        out(empty)


@msg_app.command("inbox")
def msg_inbox(
    peek: Annotated[bool, typer.Option("--peek", help="Show without marking read.")] = False,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Unread messages to you or to all; then marks them read (unless --peek).

    Example: evhub msg inbox --peek
    """
    from ._documents import message_dicts

    _print_messages(message_dicts(hub().inbox(need_session(session), peek=peek)), json, "no unread messages")


@msg_app.command("list")
def msg_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, the newest last.")] = 20,
    json: JsonOpt = False,
) -> None:
    """The last messages on the board.

    Example: evhub msg list --limit 5
    """
    from ._documents import message_dicts

    _print_messages(message_dicts(hub().last_messages(limit)), json, "no messages")


# -- handshake ------------------------------------------------------------------------------


@handshake_app.command("propose")
def handshake_propose(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the others to read.")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Ask to be known as ID; every other live session answers.

    Example: evhub handshake propose alice-api --reason 'clearer in the logs'
    """
    events = hub().propose_id(need_session(session), proposed, reason)
    said_done(json, events, f"proposed {proposed}")


@handshake_app.command("accept")
def handshake_accept(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Accept another session's proposed ID.

    Example: evhub handshake accept bob
    """
    events = hub().accept_id(need_session(session), proposed)
    said_done(json, events, f"accepted {proposed}")


@handshake_app.command("reject")
def handshake_reject(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the others to read.")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Reject another session's proposed ID.

    Example: evhub handshake reject carol --reason 'carol is taken'
    """
    events = hub().reject_id(need_session(session), proposed, reason)
    said_done(json, events, f"rejected {proposed}")


@handshake_app.command("list")
def handshake_list(json: JsonOpt = False) -> None:
    """Proposals, pending and decided.

    Example: evhub handshake list
    """
    h = hub()
    docs = [msgspec.to_builtins(p) for p in h.state().proposals]
    if json:
        out_json(docs)
        return
    for p in docs:
        answered = f"{len(p['accepted'])}/{len(p['voters'])} accepted"
        rejected = f", rejected by {p['rejected_by']}: {one_line(p['reject_reason'])}" if p["rejected_by"] else ""
        out(f"{p['session']} → {p['proposed']}\t{p['status']}\t{answered}{rejected}")
    if not docs:
        out("no proposals")


# -- helpers ------------------------------------------------------------------------------


def _now() -> str:
    from ._values import now

    return now()


def _read_time(state: State) -> str:
    from ._values import read_time

    return read_time(state.last_ts)


def _n_events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


# The options of the whole app, and whether each takes a value: main moves them before the command
# name wherever the user typed them (`evhub status --hub DIR`).
_GLOBAL_OPTIONS = {"--hub": True, "--on-behalf": False}


def _arranged(argv: list[str]) -> tuple[list[str], list[str]]:
    """ARGV as the parser reads it: the global options, then the rest, `help [COMMAND...]` read as
    `COMMAND... --help` and a --json typed before the command name (`evhub --json status`) moved
    after it. Words after `--` are left as they are."""
    front: list[str] = []
    rest: list[str] = []
    json = False
    words = iter(argv)
    for word in words:
        name = word.split("=", 1)[0]
        if word == "--":
            rest += [word, *words]
        elif word == "--json" and not rest:
            json = True
        elif name not in _GLOBAL_OPTIONS:
            rest.append(word)
        elif _GLOBAL_OPTIONS[name] and word == name:
            value = next(words, None)
            if value is None:
                raise UsageError(f"option {name!r} requires an argument")
            front += [word, value]
        else:
            front.append(word)
    while rest[:1] == ["help"]:
        rest = [*rest[1:], "--help"]
    if json and rest:
        end = rest.index("--") if "--" in rest else len(rest)
        rest[end:end] = ["--json"]
    return front, rest


def _keep_only_the_command_named(argv: list[str], group: typer.Typer = app) -> None:
    """Drop every command but the one ARGV (the words after the global options) names: typer reads
    the signature of each registered command on every run (about 30 ms for all of ours), so a hot
    command should pay for itself alone.  With no name, an option first (--help) or an unknown name,
    all are kept, so help and the suggestions for a mistyped name see them all."""
    if not argv or argv[0].startswith("-"):
        return
    word, words = argv[0], argv[1:]
    commands = [c for c in group.registered_commands
                if (c.name or getattr(c.callback, "__name__", "").replace("_", "-")) == word]
    groups = [g for g in group.registered_groups if g.name == word]
    if len(commands) + len(groups) != 1:
        return
    group.registered_commands, group.registered_groups = commands, groups
    if groups and groups[0].typer_instance is not None:
        _keep_only_the_command_named(words, groups[0].typer_instance)


class _Argument(TyperArgument):
    """An argument shown as NAME, or [NAME] when optional: not typer's {name}, and no <type>."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


class _Option(TyperOption):
    """An option shown with a word for its value (--ttl DURATION), a flag alone: no <type>."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None if self.is_flag else self.metavar

    def _get_number_range_help_str(self) -> str | None:
        """The bounds in words (`at least 1`), not typer's `x>=1`."""
        if self.max is None:
            return None if self.min is None else f"at least {self.min}"
        return f"at most {self.max}" if self.min is None else f"{self.min} to {self.max}"


# The word help shows for an option's value; options not named here show N (numbers) or TEXT.
_METAVARS = {
    "--hub": "DIR", "--session": "ID", "--ttl": "DURATION", "--alive-ttl": "DURATION", "--store": "URL",
    "--store-file": "FILE", "--schema": "NAME", "--mode": "MODE", "--type": "TYPE", "--since": "TIME",
    "--until": "TIME", "--at": "TIME", "--upto": "SEQ", "--out": "PATH", "--priority": "P", "--id": "ID",
    "--to": "ID", "--agent": "NAME", "--project": "DIR", "--pace": "SECONDS",
}


def _plain_help(command: Command) -> None:
    """Show COMMAND's parameters (and its subcommands') as a person writes them: PRIORITY, [ID],
    --ttl DURATION, --json; typer's own display (`{priority}`, `<bool>`, `<list[str]>`) is its types'."""
    # The help option is made on first use; made here, it is shown like the others.
    for param in [*command.params, command.get_help_option(Context(command, help_option_names=_HELP_OPTIONS))]:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument
            param.metavar = param.metavar or (param.name or "").upper()
        elif isinstance(param, TyperOption):
            param.__class__ = _Option
            long_name = max(param.opts, key=len)
            number = param.type_descriptor.annotation in (int, float)
            param.metavar = param.metavar or _METAVARS.get(long_name, "N" if number else "TEXT")
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def parser() -> Command:
    """The app as typer's click runs it (the commands main kept), each help written plainly."""
    command = typer.main.get_command(app)
    _plain_help(command)
    return command


def _usage_failed(e: UsageError, json: bool) -> NoReturn:
    """A usage error as one line (exit 2): what is wrong, and either a valid command the user may
    have meant or the usage of the command they typed."""
    ctx = e.ctx
    if isinstance(e, NoSuchOption) and e.possibilities:
        said_error(f"no such option: {e.option_name}: did you mean {' or '.join(sorted(e.possibilities))}?",
                    2, json)
    text = one_line(e.format_message()).rstrip(".")
    text = text[:1].lower() + text[1:]
    if ctx is None:
        said_error(text, 2, json)
    path = ctx.command_path
    if text.startswith("no such command") and isinstance(ctx.command, TyperGroup):
        from difflib import get_close_matches

        typed = text.split("'")[1] if "'" in text else ""
        near = get_close_matches(typed, ctx.command.list_commands(ctx), n=2)
        hint = " or ".join(f"`{path} {m}`" for m in near)
        said_error(f"{text}: did you mean {hint}?" if near else f"{text}; `{path} -h` lists the commands", 2, json)
    usage = one_line(ctx.get_usage()).removeprefix("Usage: ")
    said_error(f"{text} (usage: {usage}; `{path} -h` for help)", 2, json)


def main() -> None:
    json = "--json" in sys.argv[1:sys.argv.index("--") if "--" in sys.argv else None]
    try:
        options, words = _arranged(sys.argv[1:])
        _keep_only_the_command_named(words)
        code = parser().main(options + words, standalone_mode=False)
    except EvhubError as e:
        fail(e, json)  # an error is its one line: the warnings that led to it would only bury it
    except NoArgsIsHelpError:
        raise SystemExit(2) from None  # the help is printed
    except UsageError as e:
        _usage_failed(e, json)
    except ClickException as e:
        said_error(e.format_message(), e.exit_code, json)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except SystemExit as e:
        if e.code:
            raise
        code = 0
    if isinstance(code, int) and code:
        raise SystemExit(code)  # typer's answer to Ctrl-C (130)
    finished()
