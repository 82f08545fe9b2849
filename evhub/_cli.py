"""The `evhub` command: a thin layer over evhub.Hub. Errors become one `error: ...` line here."""


import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import msgspec
import typer

from ._documents import one_line
from ._errors import BadInput, CorruptLog, EvhubError, StorageError, ViewsDisagree
from ._hub import Hub
from ._pgstore import PASSWORD_PLACES, StoreSettings  # already imported by _hub
from ._state import State  # already imported by _hub
from ._values import parse_duration

if TYPE_CHECKING:
    from ._adopt import Adoption

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="evhub: an event-sourced coordination hub for AI coding sessions sharing one repository.",
)
milestone_app = typer.Typer(no_args_is_help=True, help="Multi-step work: create, claim, step, list, show.")
msg_app = typer.Typer(no_args_is_help=True, help="The message board: send, inbox, list.")
handshake_app = typer.Typer(no_args_is_help=True, help="ID negotiations: propose, accept, reject, list.")
app.add_typer(milestone_app, name="milestone")
app.add_typer(msg_app, name="msg")
app.add_typer(handshake_app, name="handshake")

_hub_dir: str | None = None
_on_behalf = False

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

# Control characters would let text from the log drive the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def out(text: str) -> None:
    sys.stdout.write(_CONTROL.sub("\N{REPLACEMENT CHARACTER}", text) + "\n")


def out_stored(raw: bytes) -> None:
    """A line of the log as it is stored: JSON escapes the controls that could drive a terminal (C0);
    the rest (U+0085, U+2028...) is the text's, and a reader of the log gets it unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(raw if raw.endswith(b"\n") else raw + b"\n")


def out_json(doc: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")


_opened: list[Hub] = []


def warn(hub: Hub) -> None:
    """Print the hub's warnings (once) on stderr."""
    for w in hub.warnings:
        sys.stderr.write(f"warning: {_CONTROL.sub('?', w)}\n")
    hub.warnings.clear()


def hub() -> Hub:
    """The hub this command works on; its warnings are printed when the command ends."""
    h = Hub.find(_hub_dir)
    # EVHUB_SESSION is the shell's own session (the hook sets it for each agent): --session naming
    # another one acts for it, which needs --on-behalf.
    h.caller, h.on_behalf = os.environ.get("EVHUB_SESSION") or None, _on_behalf
    _opened.append(h)
    return h


def need_session(session: str | None) -> str:
    if not session:
        raise BadInput("no session: pass --session ID or set EVHUB_SESSION")
    return session


def duration(value: str | None) -> int | None:
    return None if value is None else parse_duration(value)


@app.callback()
def _root(
    hub_dir: Annotated[
        str | None,
        typer.Option("--hub", help="The folder holding SESSIONS/ (else $EVHUB_HUB, else found upward)."),
    ] = None,
    on_behalf: Annotated[
        bool,
        typer.Option("--on-behalf", help="Let --session name a session other than yours ($EVHUB_SESSION): "
                     "its events record you as `by`."),
    ] = False,
) -> None:
    global _hub_dir, _on_behalf
    _hub_dir, _on_behalf = hub_dir, on_behalf


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
    """Create a hub: DIR/SESSIONS/ with its log, read model and views (the log on PostgreSQL with --store)."""
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
) -> None:
    """Write the hub's log as standard JSONL, whatever store holds it."""
    h = hub()
    if out_file is None:
        h.export(sys.stdout.buffer)
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
    """Make a new hub whose log is FILE, byte for byte (on PostgreSQL with --store)."""
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
    """Move a hub an earlier evhub kept in the work tree (SESSIONS/events/) out of git's reach."""
    from ._place import migrate as move

    root = Hub.find(_hub_dir).root
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
    """Where the hub is: its root, its log, its read model and the SESSIONS/ folders it keeps live."""
    found = hub().where()
    if json:
        out_json(found._asdict())
        return
    out(f"root: {found.root}")
    out(f"log: {found.log}")
    out(f"read model: {found.read_model}")
    for folder in found.views:
        out(f"views: {folder}")


@app.command()
def hello(
    session_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="Id (default: first free session-N).")
    ] = None,
    role: Annotated[str, typer.Option("--role")] = "",
    spec: Annotated[str, typer.Option("--spec", help="Specialization.")] = "",
    about: Annotated[str, typer.Option("--about", help="What you are working on.")] = "",
    resume: Annotated[
        bool, typer.Option("--resume", help="The same session coming back after a context loss.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Register a session (say hello)."""
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
        out(sid)
        out(f"export EVHUB_SESSION={sid}")


@app.command()
def heartbeat(
    status: Annotated[str, typer.Option("--status", help="What you are doing now.")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Prove you are alive (refresh every 30 seconds while active)."""
    events = hub().heartbeat(need_session(session), status)
    _done(json, events, "heartbeat recorded")


@app.command()
def bye(session: SessionOpt = None, json: JsonOpt = False) -> None:
    """Leave the hub, releasing everything you hold."""
    events = hub().bye(need_session(session))
    _done(json, events, "left the hub")


@app.command()
def sessions(
    all_: Annotated[bool, typer.Option("--all", help="Include sessions that are not alive.")] = False,
    json: JsonOpt = False,
) -> None:
    """Who is alive (or, with --all, every session ever registered)."""
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
    """Claim a priority before starting work on it (exit 3 when someone holds it)."""
    h = hub()
    token = h.claim(need_session(session), priority, duration(ttl))
    if json:
        out_json({"priority": priority, "token": token})
    else:
        out(f"claimed {priority} (token {token})")


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
    """Release a claimed priority."""
    events = hub().release(need_session(session), priority, done=done, note=note, force=force, token=token)
    _done(json, events, f"released {priority}")


@app.command()
def claims(json: JsonOpt = False) -> None:
    """Every claim, with holder, token and whether it is stale."""
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
    """Set the hub's current priority (CURRENT_STATE.md)."""
    events = hub().focus(need_session(session), text)
    _done(json, events, "focus set")


@app.command()
def note(text: str, session: SessionOpt = None, json: JsonOpt = False) -> None:
    """Add a note to your session (shown by recall)."""
    events = hub().note(need_session(session), text)
    _done(json, events, "note added")


@app.command()
def status(json: JsonOpt = False) -> None:
    """The seed's quick-status: focus, sessions, claims, milestones, completed, messages."""
    from ._documents import status as doc
    from ._report import status_markdown

    state = hub().state()
    now = _read_time(state)
    if json:
        out_json(doc(state, now))
    else:
        sys.stdout.write(_CONTROL.sub("\N{REPLACEMENT CHARACTER}", status_markdown(state, now)))


@app.command()
def recall(
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="Default: $EVHUB_SESSION.")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """What a session needs after a context loss (unread messages stay unread)."""
    from ._documents import recall as doc
    from ._report import recall_markdown

    found = hub().recall(need_session(session_id or session))
    if json:
        out_json(doc(found))
    else:
        sys.stdout.write(_CONTROL.sub("\N{REPLACEMENT CHARACTER}", recall_markdown(found)[0]))


@app.command()
def save(
    mode: Annotated[
        str, typer.Option("--mode", help="auto, quick, milestone or full (full commits SESSIONS/).")
    ] = "auto",
    note_text: Annotated[str, typer.Option("--note")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """The seed's save-progress: record where you are (full also commits SESSIONS/ to git)."""
    saved = hub().save(need_session(session), mode, note_text)
    if json:
        out_json(saved._asdict())
        return
    if saved.git_commit:
        out(f"saved ({saved.mode}); committed SESSIONS/ as {saved.git_commit[:12]}")
    elif saved.mode == "full":
        out("saved (full); nothing to commit: SESSIONS/ holds no change git tracks")
    else:
        out(f"saved ({saved.mode})")


@app.command()
def log(
    session: Annotated[str | None, typer.Option("--session", "-s", help="Only this session's events.")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this event type (claim, msg... or full name).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="10m ago or an RFC 3339 time.")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the last N matching events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print the stored lines.")] = False,
) -> None:
    """The history, one line an event."""
    from ._history import LogFilter

    h = hub()
    flt = LogFilter.make(session=session, type_=type_, since=since, until=until, now=_now())
    shown, offset = h.log(flt, limit)
    for line in shown:
        out_stored(line.raw) if json else out(flt.describe(line))
    warn(h)
    if follow:
        try:
            for line in h.follow(flt, offset):
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
    """Rebuild every view from the log alone (in place, or into a folder)."""
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
    """Who held PRIORITY when, who took it over, who released it."""
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
    """Check the log: every line parses, seq is gap-free, ids unique, the read model and views agree (exit 4 if not)."""
    report = hub().verify()
    if json:
        out_json(report)
    else:
        for w in report["warnings"]:
            sys.stderr.write(f"warning: {_CONTROL.sub('?', w)}\n")
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
    """Copy the log aside, quarantine what cannot be read, leave a log that verifies."""
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
) -> None:
    """A live dashboard of sessions, claims, milestones, messages and events; q or Ctrl-C quits."""
    from ._values import now, parse_when
    from ._watch import watch as run_watch

    run_watch(hub(), None if at is None else parse_when(at, now()))


@app.command()
def timeline(
    out_file: Annotated[str, typer.Option("--out", help="The HTML file to write.")],
    since: Annotated[str | None, typer.Option("--since", help="From then on (30m, 2h, or RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to then.")] = None,
) -> None:
    """Draw the hub's history (who was alive, who held what when, steps, messages) as one HTML file."""
    from ._timeline import history, write
    from ._values import now, parse_when

    h = hub()
    clock = now()
    data = history(h.events(), None if since is None else parse_when(since, clock),
                   None if until is None else parse_when(until, clock))
    target = Path(out_file)
    write(target, data, f"evhub timeline of {h.root.name}")
    out(f"wrote {target} ({len(data['sessions'])} sessions, {len(data['priorities'])} priorities, "
        f"{len(data['steps'])} step changes, {len(data['messages'])} messages)")


@app.command()
def hook(
    agent: Annotated[str, typer.Option("--agent", help="The agent sending the event: claude or codex.")] = "claude",
) -> None:
    """Handle one agent hook event (JSON on stdin); never fails the agent (see `install`)."""
    from ._entry import hook as handle  # the console script answers hooks without typer; this is for -m and help

    handle(_hub_dir, agent)


@app.command()
def mcp() -> None:
    """Serve the hub's coordination actions as MCP tools over stdio (for `claude mcp` and the like)."""
    from ._mcp import serve

    serve(_hub_dir)


@app.command()
def install(
    target: Annotated[str, typer.Argument(help="The agent to wire evhub into: claude or codex.")],
    remove: Annotated[bool, typer.Option("--remove", help="Take out what install added, and only that.")] = False,
    mcp: Annotated[bool, typer.Option(
        "--mcp", help="Also register `evhub mcp` as the project's MCP server (codex: always).")] = False,
    project: Annotated[str, typer.Option("--project", help="The project folder.")] = ".",
    local: Annotated[bool, typer.Option(
        "--local", help="Into your personal files (.claude/settings.local.json, CLAUDE.local.md), not the "
                        "shared ones teammates without evhub would get too.")] = False,
) -> None:
    """Add evhub's hooks and instructions to an agent's project configuration (or --remove them)."""
    from ._install import TARGETS

    if target not in TARGETS:
        raise BadInput(f"unknown target {target!r}: use {', '.join(sorted(TARGETS))}")
    add, take_out = TARGETS[target]
    folder = Path(project).absolute()
    changed = take_out(folder) if remove else add(folder, mcp, local)
    for path in changed:
        out(f"{'updated' if Path(path).exists() else 'removed'} {path}")
    if not changed:
        out("nothing to change")


@app.command()
def sql(query: str, json: JsonOpt = False) -> None:
    """A read-only SQL query against the read model (tables: sessions, claims, milestones, steps, messages)."""
    from ._history import query_readmodel

    h = hub()
    h.state()  # bring the read model up to date first
    rows = query_readmodel(h.readmodel.path, query)
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
    pace: Annotated[float, typer.Option("--pace", help="Seconds to pause after each step (to watch it live).")] = 0.0,
) -> None:
    """A realistic run: sessions as real processes say hello, race for a claim, work, talk, go silent."""
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
    """Create a milestone (exit 3 when its id exists)."""
    mid = hub().create_milestone(
        need_session(session), title, milestone=milestone_id, priority=priority, steps=step or ()
    )
    if json:
        out_json({"milestone": mid})
    else:
        out(f"created milestone {mid}")


@milestone_app.command("claim")
def milestone_claim(
    milestone_id: Annotated[str, typer.Argument(metavar="ID")],
    ttl: Annotated[str | None, typer.Option("--ttl")] = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Own a milestone and claim its priority (exit 3 when a live session holds it)."""
    token = hub().claim_milestone(need_session(session), milestone_id, duration(ttl))
    if json:
        out_json({"milestone": milestone_id, "token": token})
    else:
        out(f"claimed milestone {milestone_id} (token {token})")


@milestone_app.command("step", context_settings={"ignore_unknown_options": True})
def milestone_step(
    milestone_id: Annotated[str, typer.Argument(metavar="ID")],
    n: Annotated[int, typer.Argument(metavar="N", help="Step number, from 1.")],
    status_: Annotated[str, typer.Argument(metavar="STATUS", help="pending, in-progress, done, blocked or skipped.")],
    note_text: Annotated[str, typer.Option("--note")] = "",
    token: TokenOpt = None,
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set the status of step N of a milestone."""
    events = hub().update_step(need_session(session), milestone_id, n, status_, note=note_text, token=token)
    _done(json, events, f"step {n} of {milestone_id} is {status_}")


@milestone_app.command("list")
def milestone_list(
    all_: Annotated[bool, typer.Option("--all", help="Include completed milestones.")] = False,
    json: JsonOpt = False,
) -> None:
    """Milestones with progress."""
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
    """One milestone, step by step."""
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
    """Post a message to one session or to all."""
    seq = hub().send(need_session(session), text, to)
    if json:
        out_json({"seq": seq})
    else:
        out(f"sent #{seq} to {to}")


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
    """Unread messages to you or to all; then marks them read (unless --peek)."""
    from ._documents import message_dicts

    _print_messages(message_dicts(hub().inbox(need_session(session), peek=peek)), json, "no unread messages")


@msg_app.command("list")
def msg_list(
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    json: JsonOpt = False,
) -> None:
    """The last messages on the board."""
    from ._documents import message_dicts

    _print_messages(message_dicts(hub().last_messages(limit)), json, "no messages")


# -- handshake ------------------------------------------------------------------------------


@handshake_app.command("propose")
def handshake_propose(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Ask to be known as ID; every other live session answers."""
    events = hub().propose_id(need_session(session), proposed, reason)
    _done(json, events, f"proposed {proposed}")


@handshake_app.command("accept")
def handshake_accept(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Accept another session's proposed ID."""
    events = hub().accept_id(need_session(session), proposed)
    _done(json, events, f"accepted {proposed}")


@handshake_app.command("reject")
def handshake_reject(
    proposed: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    session: SessionOpt = None,
    json: JsonOpt = False,
) -> None:
    """Reject another session's proposed ID."""
    events = hub().reject_id(need_session(session), proposed, reason)
    _done(json, events, f"rejected {proposed}")


@handshake_app.command("list")
def handshake_list(json: JsonOpt = False) -> None:
    """Proposals, pending and decided."""
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


def _done(json: bool, events: list[Any], message: str) -> None:
    if json:
        out_json({"events": [e.seq for e in events]})
    elif events:
        out(f"{message} (seq {events[-1].seq})")
    else:
        out(f"{message} (nothing changed)")


def fail(error: EvhubError) -> NoReturn:
    sys.stderr.write(f"error: {_CONTROL.sub('?', str(error))}\n")
    raise SystemExit(error.exit_code)


def _keep_only_the_command_named(argv: list[str], group: typer.Typer = app) -> None:
    """Drop every command but the one ARGV names: typer reads the signature of each registered
    command on every run (about 30 ms for all of ours), so a hot command should pay for itself
    alone.  With no name, an option first (--help) or an unknown name, all are kept, so help and
    typer's own errors are unchanged."""
    words = iter(argv)
    for word in words:
        if word == "--hub":
            next(words, None)
        elif not word.startswith("--hub="):
            break
    else:
        return
    if word.startswith("-"):
        return
    commands = [c for c in group.registered_commands
                if (c.name or getattr(c.callback, "__name__", "").replace("_", "-")) == word]
    groups = [g for g in group.registered_groups if g.name == word]
    if len(commands) + len(groups) != 1:
        return
    group.registered_commands, group.registered_groups = commands, groups
    if groups and groups[0].typer_instance is not None:
        _keep_only_the_command_named(list(words), groups[0].typer_instance)


def main() -> None:
    _keep_only_the_command_named(sys.argv[1:])
    try:
        app()
    except EvhubError as e:
        fail(e)  # an error is its one line: the warnings that led to it would only bury it
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except SystemExit as e:
        if not e.code:
            for h in _opened:
                warn(h)
            if any(h.damage is not None for h in _opened):
                raise SystemExit(CorruptLog.exit_code) from None  # an answer from before a damaged line
        raise
