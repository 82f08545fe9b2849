"""Issue 3, through the installed `evhub` command: one winner per race, nothing lost or doubled by
writers racing through the CLI and the Python API at once, hostile and careless input refused with
the log byte-for-byte unchanged, text that cannot break the views or the terminal, files that stay
inside SESSIONS/, repair, logs from a newer evhub, and a write that runs out of space.

Setup that is not the point of a test goes through the Python API in this process (fast); what is
the point runs as real `evhub` processes.  The store-level, read-model, lock and claim-race tests
live in test_store.py, test_hub.py and test_cli.py and are not repeated here.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from clock import at
from command import EVHUB, GATED_EVHUB, checked_log, clean_env, error_line, gated, log_bytes, ok, release, together
from stores import HubStore

from evhub import Hub
from evhub._values import MAX_TEXT_BYTES, new_id

Arg = str | bytes | Path


@contextmanager
def api(root: Path, now: str, store: HubStore | None = None) -> Iterator[Hub]:
    """The Python API on the hub in ROOT (made when missing, on STORE), its clock fixed at NOW, without fsync."""
    saved = {k: os.environ.get(k) for k in ("EVHUB_NOW", "EVHUB_FSYNC")}
    os.environ.update(EVHUB_NOW=now, EVHUB_FSYNC="0")
    try:
        made = Hub(root).exists()
        yield Hub(root) if made else Hub.init(root, store=store.settings() if store else None)[0]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def log_path(root: Path) -> Path:
    return root / "SESSIONS" / "events" / "log.jsonl"


def call(
    root: Path, *args: Arg, now: str = at(1), env: Mapping[str, str | bytes] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """`evhub ARGS` in ROOT; unlike conftest.run, an argument or a variable may be raw bytes (not UTF-8)."""
    full: dict[str, Any] = clean_env({"EVHUB_NOW": now})
    full.update(env or {})
    argv = [EVHUB, *(os.fspath(a) if isinstance(a, Path) else a for a in args)]
    return subprocess.run(argv, env=full, cwd=root, capture_output=True, text=True, timeout=60, **kw)


def racing(root: Path, argvs: Sequence[Sequence[str]], now: str = at(1)) -> list[subprocess.CompletedProcess[str]]:
    """One `evhub` process for each argv, started, held until all are ready, then released together."""
    return release([gated(GATED_EVHUB, argv, root, {"EVHUB_NOW": now}) for argv in argvs])


def verified(root: Path, events: int) -> None:
    assert ok(call(root, "verify", now=at(100))).stdout.startswith(f"ok: {events} events, log verified")


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every file under FOLDER (its bytes), folder and symlink (its target), never following a link."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "a folder"
            else:
                out[rel] = p.read_bytes()
    return out


# -- 1. one winner -----------------------------------------------------------------------------------


def test_eight_processes_saying_hello_as_one_id_one_wins_the_rest_get_exit_3(
    tmp_path: Path, store: HubStore
) -> None:
    with api(tmp_path, at(0), store):
        pass
    racers = racing(tmp_path, [["hello", "racer", "--role", f"racer {n}"] for n in range(8)])
    assert sorted(p.returncode for p in racers) == [0] + [3] * 7, [(p.returncode, p.stderr) for p in racers]
    [winner] = [n for n, p in enumerate(racers) if p.returncode == 0]
    for p in racers:
        if p.returncode == 3:
            assert "session racer is alive" in error_line(p, 3)
    docs = checked_log(tmp_path)
    assert [(d["type"], d.get("role")) for d in docs] == [
        ("hub_created", None), ("session_registered", f"racer {winner}")
    ]
    verified(tmp_path, 2)


def test_eight_sessions_creating_one_milestone_id_one_wins_the_rest_get_exit_3(
    tmp_path: Path, store: HubStore
) -> None:
    ids = [f"s{n}" for n in range(8)]
    with api(tmp_path, at(0), store) as hub:
        for sid in ids:
            hub.hello(sid)
    racers = racing(tmp_path, [["milestone", "create", f"Title by {sid}", "--id", "m", "--step", "one",
                                  "--session", sid] for sid in ids])
    assert sorted(p.returncode for p in racers) == [0] + [3] * 7, [(p.returncode, p.stderr) for p in racers]
    [winner] = [sid for sid, p in zip(ids, racers, strict=True) if p.returncode == 0]
    for p in racers:
        if p.returncode == 3:
            assert f"milestone m exists (created by {winner})" in error_line(p, 3)
    created = [d for d in checked_log(tmp_path) if d["type"] == "milestone_created"]
    assert [(d["session"], d["milestone"], d["title"]) for d in created] == [(winner, "m", f"Title by {winner}")]
    verified(tmp_path, 10)


# -- 2. no lost or doubled events ------------------------------------------------------------------------

API_WRITER = textwrap.dedent(
    """
    import sys, time
    from evhub import Hub
    from evhub import _decide as cmd
    hub = Hub(sys.argv[1])
    for n in range(int(sys.argv[2])):
        [event] = hub.execute(cmd.Heartbeat(session="api", status=f"api {n}"))
        print(event.seq, flush=True)
        time.sleep(0.05)  # spread over the CLI writers' run, so the two kinds of writer interleave
    """
)


def test_cli_and_api_writers_at_once_lose_and_double_nothing(tmp_path: Path, store: HubStore) -> None:
    cli_ids, per_cli, api_count = ["cli-0", "cli-1", "cli-2"], 20, 100
    with api(tmp_path, at(0), store) as hub:
        for sid in [*cli_ids, "api"]:
            hub.hello(sid)
    acked: dict[str, int] = {}  # status -> the seq its command reported
    failures: list[str] = []
    lock = threading.Lock()

    def cli_writer(sid: str) -> None:
        for n in range(per_cli):
            p = call(tmp_path, "heartbeat", "--status", f"{sid} {n}", "--json", env={"EVHUB_SESSION": sid})
            with lock:
                if p.returncode == 0:
                    [acked[f"{sid} {n}"]] = json.loads(p.stdout)["events"]
                else:
                    failures.append(p.stderr)

    api_proc = subprocess.Popen([sys.executable, "-c", API_WRITER, str(tmp_path), str(api_count)],
                                env=clean_env({"EVHUB_NOW": at(1)}), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=cli_writer, args=(sid,)) for sid in cli_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = api_proc.communicate(timeout=60)
    assert api_proc.returncode == 0, err
    for n, seq in enumerate(out.split()):
        acked[f"api {n}"] = int(seq)

    assert failures == []
    assert len(acked) == len(cli_ids) * per_cli + api_count
    by_api = [seq for status, seq in acked.items() if status.startswith("api")]
    by_cli = [seq for status, seq in acked.items() if status.startswith("cli")]
    assert min(by_cli) < max(by_api) and min(by_api) < max(by_cli)  # the two kinds of writer did overlap
    docs = checked_log(tmp_path)  # every line parses, seq runs 1..N
    beats = [d for d in docs if d["type"] == "heartbeat"]
    assert len(docs) == 1 + 4 + len(acked) and len(beats) == len(acked)  # nothing doubled, nothing extra
    for status, seq in acked.items():  # every acknowledged event is in the log, at the seq it was given
        d = docs[seq - 1]
        assert (d["type"], d["status"], d["session"]) == ("heartbeat", status, status.split()[0])
    verified(tmp_path, len(docs))


# -- 3. hostile and careless input --------------------------------------------------------------------------

HOSTILE: list[tuple[str, list[Arg], dict[str, str | bytes], str]] = [
    # (name, arguments, environment, what the error line says); the acting session is alice.
    ("id empty", ["hello", ""], {}, "invalid session id"),
    ("id 65 chars", ["hello", "a" * 65], {}, "invalid session id"),
    ("id with a slash", ["claim", "a/b"], {}, "invalid priority"),
    ("id with ..", ["milestone", "create", "T", "--id", "a..b"], {}, "invalid milestone id"),
    ("id with a space", ["hello", "a b"], {}, "invalid session id"),
    ("id in upper case", ["msg", "send", "hi", "--to", "Bob"], {}, "invalid recipient"),
    ("proposed id in upper case", ["handshake", "propose", "Carol"], {}, "invalid proposed id"),
    ("id not UTF-8", ["hello", b"caf\xe9"], {}, "invalid session id"),
    ("priority not UTF-8", ["claim", b"p\xff"], {}, "invalid priority"),
    ("session not UTF-8", ["heartbeat"], {"EVHUB_SESSION": b"caf\xe9"}, "unknown session"),
    # A NUL cannot reach the CLI at all (argv and the environment are C strings); test_decide refuses
    # ids and text holding one at the domain level.
    ("unknown step status", ["milestone", "step", "t", "1", "finished"], {}, "unknown status"),
    ("step status in upper case", ["milestone", "step", "t", "1", "Done"], {}, "unknown status"),
    ("unknown save mode", ["save", "--mode", "everything"], {}, "unknown save mode"),
    ("step 0", ["milestone", "step", "t", "0", "done"], {}, "step 0 is out of range"),
    ("step negative", ["milestone", "step", "--", "t", "-1", "done"], {}, "step -1 is out of range"),
    ("step past the end", ["milestone", "step", "t", "3", "done"], {}, "step 3 is out of range"),
    ("duration 5x", ["claim", "q", "--ttl", "5x"], {}, "invalid duration '5x'"),
    ("duration -5m", ["claim", "q", "--ttl=-5m"], {}, "invalid duration '-5m'"),
    ("duration 99999999d", ["claim", "q", "--ttl", "99999999d"], {}, "'99999999d' is out of range"),
    ("milestone ttl 5x", ["milestone", "claim", "t", "--ttl", "5x"], {}, "invalid duration"),
    ("since 5x", ["log", "--since", "5x"], {}, "invalid time '5x'"),
    ("EVHUB_NOW a word", ["heartbeat"], {"EVHUB_NOW": "yesterday"}, "EVHUB_NOW: invalid time"),
    ("EVHUB_NOW month 13", ["claim", "q"], {"EVHUB_NOW": "2026-13-45T09:00:00Z"}, "EVHUB_NOW: invalid time"),
    ("EVHUB_NOW on a read", ["status"], {"EVHUB_NOW": "25/11/2026 09:00"}, "EVHUB_NOW: invalid time"),
    ("message over 64 KiB", ["msg", "send", "x" * (MAX_TEXT_BYTES + 1)], {}, "the limit is 65536"),
    # 32769 characters, 65538 bytes: the limit counts bytes.
    ("note over 64 KiB of UTF-8", ["note", "é" * (MAX_TEXT_BYTES // 2 + 1)], {}, "the limit is 65536"),
    ("status over 64 KiB", ["heartbeat", "--status", "s" * (MAX_TEXT_BYTES + 1)], {}, "the limit is 65536"),
    ("message not UTF-8", ["msg", "send", b"caf\xe9"], {}, "message is not valid UTF-8"),
    ("role not UTF-8", ["hello", "carol", "--role", b"\xff"], {}, "role is not valid UTF-8"),
    ("empty focus", ["focus", " "], {}, "focus is empty"),
]


@pytest.fixture(scope="module", params=["jsonl", "postgresql"])
def hostile_hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice and bob, alice's two-step milestone t: a hub every hostile input is tried on (on each store)."""
    store = request.getfixturevalue("pg_store") if request.param == "postgresql" else HubStore("jsonl")
    root = tmp_path_factory.mktemp("hostile")
    with api(root, at(0), store) as hub:
        hub.hello("alice")
        hub.hello("bob")
        hub.create_milestone("alice", "T", milestone="t", steps=["one", "two"])
    return root


@pytest.mark.parametrize(("args", "env", "says"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_input_is_one_error_line_and_the_log_is_unchanged(
    hostile_hub: Path, args: list[Arg], env: dict[str, str | bytes], says: str
) -> None:
    before = log_bytes(hostile_hub)
    done = call(hostile_hub, *args, env={"EVHUB_SESSION": "alice", **env})
    assert says in error_line(done, 1)
    assert done.stdout == ""
    assert log_bytes(hostile_hub) == before


def test_the_text_limit_is_64_kib_exactly(tmp_path: Path, store: HubStore) -> None:
    with api(tmp_path, at(0), store) as hub:
        hub.hello("alice")
    before = log_bytes(tmp_path)
    assert "65537 bytes" in error_line(call(tmp_path, "note", "x" * (MAX_TEXT_BYTES + 1), "-s", "alice"), 1)
    assert log_bytes(tmp_path) == before
    ok(call(tmp_path, "note", "x" * MAX_TEXT_BYTES, "-s", "alice"))
    assert checked_log(tmp_path)[-1]["text"] == "x" * MAX_TEXT_BYTES


def test_a_missing_hub_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    writes = [["hello", "alice"], ["heartbeat", "-s", "alice"], ["claim", "p", "-s", "alice"]]
    for p in together(empty, writes + [["--hub", empty, *args] for args in writes]):
        assert "no hub" in error_line(p, 1), p.args
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_hub_folder_without_write_permission_refuses_writes_and_still_reads(tmp_path: Path) -> None:
    with api(tmp_path, at(0)) as hub:
        hub.hello("alice")
        hub.claim("alice", "p")
    before = tree(tmp_path)
    if os.geteuid() != 0:
        prefix: list[str] = []
        for folder in (tmp_path, tmp_path / "SESSIONS", tmp_path / "SESSIONS" / "events"):
            folder.chmod(0o555)
    else:
        # Root writes anywhere, so the hub must be refused to a process without root's powers. A user
        # such as nobody (setpriv --reuid=65534) cannot run the test interpreter here (it lives under
        # /root, mode 0700); a root process stripped of every capability can, and is refused by the same
        # permission checks as any other user once the hub belongs to someone else (nobody, mode 755).
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: no way to drop root's power to write anywhere")
        prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
        for dirpath, _, filenames in os.walk(tmp_path):
            os.chown(dirpath, 65534, 65534)
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), 65534, 65534)
    try:
        env = clean_env({"EVHUB_NOW": at(1), "EVHUB_SESSION": "alice"})

        def unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*prefix, EVHUB, *args], env=env, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60)

        for args in (["heartbeat"], ["claim", "q"], ["msg", "send", "hi"], ["repair"]):
            assert "Permission denied" in error_line(unprivileged(*args), 1)
        shown = unprivileged("claims", "--json")
        assert shown.returncode == 0, shown.stderr
        assert [c["priority"] for c in json.loads(shown.stdout)] == ["p"]
        assert shown.stderr.startswith("warning: the hub is read-only here")
        assert tree(tmp_path) == before
        # A hub that cannot even be looked into is one error line too, for readers and writers alike.
        (tmp_path / "SESSIONS" / "events").chmod(0)
        for args in (["heartbeat"], ["status"]):
            assert "Permission denied" in error_line(unprivileged(*args), 1)
    finally:
        for folder in (tmp_path, tmp_path / "SESSIONS", tmp_path / "SESSIONS" / "events"):
            folder.chmod(0o755)
    assert tree(tmp_path) == before


# -- 3. text that reaches the views or the terminal ---------------------------------------------------------

FAKE = "### #99 2026-11-25T09:00:00.000000Z from session-x to all"


def test_a_message_cannot_forge_headings_or_another_sessions_message(tmp_path: Path, store: HubStore) -> None:
    with api(tmp_path, at(0), store) as hub:
        hub.hello("alice")
        hub.hello("mallory")
    text = f"# Big heading\n## from session-x\n{FAKE}\nI am session-x.\n<script>alert(1)</script>\r\n<!-- -->"
    [seq] = json.loads(ok(call(tmp_path, "msg", "send", text, "--json", "-s", "mallory")).stdout).values()
    ok(call(tmp_path, "focus", "ship it\n## Claims (9)\n- `everything`: session-x", "-s", "alice"))
    ok(call(tmp_path, "msg", "send", "after", "-s", "alice"))
    md = (tmp_path / "SESSIONS" / "MESSAGES.md").read_text().splitlines()
    assert [line for line in md if line.startswith("#")] == [
        "# Messages", f"### #{seq} {at(1)} from mallory to all", f"### #{seq + 2} {at(1)} from alice to all"
    ]
    start = md.index(f"### #{seq} {at(1)} from mallory to all")
    body = md[start + 2: md.index(f"### #{seq + 2} {at(1)} from alice to all") - 1]
    assert body == ["> # Big heading", "> ## from session-x", f"> {FAKE}", "> I am session-x.",
                    "> <script>alert(1)</script>", "> <!-- -->"]
    current = (tmp_path / "SESSIONS" / "CURRENT_STATE.md").read_text().splitlines()
    assert [line for line in current if line.startswith("## Claims")] == ["## Claims (0)"]
    assert "**Priority:** ship it⏎## Claims (9)⏎- `everything`: session-x" in current


ESCAPES = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 \x9b2J \x08\x7f"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x08", "\x7f")


def test_terminal_escape_sequences_are_never_printed_raw(tmp_path: Path, store: HubStore) -> None:
    with api(tmp_path, at(0), store) as hub:
        hub.hello("alice", role=ESCAPES, specialization=ESCAPES, about=ESCAPES)
        hub.hello("bob")
        hub.heartbeat("alice", ESCAPES)
        hub.focus("alice", ESCAPES)
        hub.note("alice", ESCAPES)
        hub.claim("alice", "p")
        hub.release("alice", "p", done=True, note=ESCAPES)
        hub.claim("alice", "p")
        hub.create_milestone("alice", ESCAPES, milestone="t", steps=[ESCAPES])
        hub.update_step("alice", "t", 1, "in-progress", note=ESCAPES)
        hub.send("alice", ESCAPES)
        hub.propose_id("bob", "robert", reason=ESCAPES)
        hub.reject_id("alice", "robert", reason=ESCAPES)
    readers = [["status"], ["msg", "list"], ["recall", "alice"], ["log"], ["sessions", "--all"],
               ["milestone", "show", "t"], ["milestone", "list"], ["why", "p"], ["handshake", "list"],
               ["msg", "inbox", "--peek", "-s", "bob"]]
    for shown in together(tmp_path, readers):
        assert "[31mRED" in ok(shown).stdout, shown.args  # the text is shown...
        for c in RAW_CONTROLS:  # ...but never the control characters that would drive the terminal
            assert c not in shown.stdout and c not in shown.stderr, (shown.args, c)
    as_json = together(tmp_path, [["status", "--json"], ["msg", "list", "--json"], ["recall", "alice", "--json"]])
    for shown in as_json:
        assert "\x1b" not in ok(shown).stdout and "\x07" not in shown.stdout
    status, messages, recalled = (json.loads(shown.stdout) for shown in as_json)  # escaped as JSON, the same text
    assert status["focus"]["text"] == messages[-1]["text"] == recalled["session"]["role"] == ESCAPES
    refused = call(tmp_path, "milestone", "step", "t", "1", ESCAPES, "-s", "alice")
    assert "unknown status" in error_line(refused, 1)
    assert not any(c in refused.stderr for c in RAW_CONTROLS)


TRICKY = 'say "hi" \\ back\\slash\\" \n new line\r\n\ttab \u2028 </script> {"a": 1} \\u0000 \U0001f600'


def test_json_views_stay_valid_json_with_quotes_backslashes_and_newlines(tmp_path: Path, store: HubStore) -> None:
    with api(tmp_path, at(0), store) as hub:
        hub.hello("alice", role=TRICKY, specialization=TRICKY)
        hub.hello("bob", role=TRICKY)
        hub.claim("alice", "p")
        hub.create_milestone("alice", TRICKY, milestone="t", steps=[TRICKY])
        hub.claim_milestone("alice", "t")
        hub.update_step("alice", "t", 1, "blocked", note=TRICKY)
        hub.propose_id("bob", "robert", reason=TRICKY)
    ok(call(tmp_path, "heartbeat", "--status", TRICKY, "-s", "alice"))
    sessions = tmp_path / "SESSIONS"

    def load(rel: str) -> Any:
        return json.loads((sessions / rel).read_bytes())

    registry = {s["id"]: s for s in load("REGISTRY.json")["sessions"]}
    assert registry["alice"]["role"] == registry["alice"]["status"] == registry["bob"]["role"] == TRICKY
    assert load("HEARTBEATS/alice.json") == {"id": "alice", "time": at(1), "status": TRICKY}
    assert load("PRIORITIES/p.lock")["session"] == "alice" and load("PRIORITIES/t.lock")["priority"] == "t"
    milestone = load("MILESTONES/t.json")
    assert milestone["title"] == milestone["steps"][0]["text"] == milestone["steps"][0]["note"] == TRICKY
    assert load("HANDSHAKES/bob.json")["reason"] == TRICKY


# -- 4. files stay in their place ---------------------------------------------------------------------------


def test_no_id_makes_evhub_write_outside_sessions(tmp_path: Path, store: HubStore) -> None:
    root = tmp_path / "repo"
    with api(root, at(0), store) as hub:
        hub.hello("alice")
    outside = {k: v for k, v in tree(tmp_path).items() if not k.startswith("repo/SESSIONS")}
    before_log = log_bytes(root)
    refused = together(root, [
        ["hello", "../x"], ["hello", "../../x"], ["claim", "../x", "-s", "alice"], ["claim", "..", "-s", "alice"],
        ["milestone", "create", "T", "--id", "../x", "-s", "alice"],
        ["milestone", "create", "T", "--priority", "../../x", "-s", "alice"],
        ["msg", "send", "hi", "--to", "../x", "-s", "alice"], ["handshake", "propose", "../x", "-s", "alice"],
        ["release", "../x", "-s", "alice"], ["milestone", "claim", "../x", "-s", "alice"],
        ["why", "../x"], ["milestone", "show", "../x"], ["recall", "../x"], ["log", "-s", "../x"],
    ])
    for p in refused:
        assert "../x" in error_line(p, 1) or "'..'" in p.stderr, p.args
    assert log_bytes(root) == before_log
    # A title full of dots and slashes makes a slug, and the milestone lands inside MILESTONES/.
    ok(call(root, "milestone", "create", "../../../escape", "-s", "alice"))
    assert (root / "SESSIONS" / "MILESTONES" / "escape.json").is_file()
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("repo/SESSIONS")} == outside
    assert not [k for k in after if Path(k).name in ("x", "x.json", "x.lock", "x-HELLO.md")]


def test_planted_view_symlinks_are_replaced_and_their_targets_untouched(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    with api(root, at(0)) as hub:
        hub.hello("alice")
        hub.create_milestone("alice", "M", milestone="m")
    sessions, outside = root / "SESSIONS", tmp_path / "outside"
    outside.mkdir()
    victims = {name: outside / name for name in ("lock", "heartbeat", "registry", "messages", "readmodel")}
    for name, victim in victims.items():
        victim.write_text(f"precious {name}\n" if name != "readmodel" else "")  # SQLite would fill an empty file
    (outside / "milestones").mkdir()
    (outside / "milestones" / "keep.json").write_text("{}\n")
    planted = {
        "PRIORITIES/x.lock": victims["lock"],
        "PRIORITIES/y.lock": outside / "created-through-a-dangling-link",
        "HEARTBEATS/alice.json": victims["heartbeat"],
        "REGISTRY.json": victims["registry"],
        "MESSAGES.md": victims["messages"],
        "MILESTONES": outside / "milestones",
        "events/readmodel.sqlite3": victims["readmodel"],
        "events/readmodel.sqlite3-journal": outside / "journal",
    }
    shutil.rmtree(sessions / "MILESTONES")
    (sessions / "PRIORITIES").mkdir(exist_ok=True)
    for rel, target in planted.items():
        (sessions / rel).unlink(missing_ok=True)
        (sessions / rel).symlink_to(target)
    before = tree(outside)
    ok(call(root, "claim", "x", "-s", "alice"))
    ok(call(root, "claim", "y", "-s", "alice"))
    ok(call(root, "msg", "send", "hi", "-s", "alice"))
    assert tree(outside) == before
    for rel in planted:
        assert not (sessions / rel).is_symlink(), rel
    assert json.loads((sessions / "PRIORITIES" / "x.lock").read_text())["priority"] == "x"
    assert json.loads((sessions / "PRIORITIES" / "y.lock").read_text())["priority"] == "y"
    assert json.loads((sessions / "HEARTBEATS" / "alice.json").read_text())["id"] == "alice"
    assert json.loads((sessions / "MILESTONES" / "m.json").read_text())["id"] == "m"
    assert "> hi" in (sessions / "MESSAGES.md").read_text().splitlines()
    verified(root, 6)


def test_init_replaces_links_planted_in_an_empty_sessions_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    events = root / "SESSIONS" / "events"
    events.mkdir(parents=True)
    outside.mkdir()
    for name in (".gitignore", "readmodel.sqlite3"):
        (events / name).symlink_to(outside / name)
    assert "created a hub" in ok(call(root, "init", now=at(0))).stdout
    assert list(outside.iterdir()) == []
    for name in (".gitignore", "readmodel.sqlite3"):
        assert (events / name).is_file() and not (events / name).is_symlink(), name
    verified(root, 1)


@pytest.mark.parametrize("planted", ["log.jsonl", "lock"])
def test_a_planted_log_or_lock_symlink_fails_the_command_and_leaves_its_target_alone(
    tmp_path: Path, planted: str
) -> None:
    root = tmp_path / "repo"
    with api(root, at(0)) as hub:
        hub.hello("alice")
    link = root / "SESSIONS" / "events" / planted
    victim = tmp_path / f"outside-{planted}"
    shutil.copyfile(link, victim)  # a real log (or lock) outside the hub, for it to be tempting
    link.unlink()
    link.symlink_to(victim)
    before = victim.read_bytes()
    for args in (["heartbeat", "-s", "alice"], ["claim", "p", "-s", "alice"], ["status"], ["repair"]):
        assert "symbolic links" in error_line(call(root, *args), 1), args
    assert victim.read_bytes() == before
    assert link.is_symlink()


# -- 5. repair -----------------------------------------------------------------------------------------------

UNKNOWN_TYPE = 6  # index of the line (seq 7) of an event type from a newer evhub
UNKNOWN_FIELDS = 7  # index of the line (seq 8) of a heartbeat with fields from a newer evhub


def repairable(root: Path) -> list[bytes]:
    """A hub of 12 events, two of them from a newer evhub; its log lines."""
    with api(root, at(0)) as hub:
        hub.hello("alice")
        hub.hello("bob")
        assert hub.claim("alice", "p").token == 4
        hub.send("alice", "hello bob", to="bob")
        hub.heartbeat("bob", "working")
    with open(log_path(root), "ab") as f:
        f.write(json.dumps({"type": "mood_set", "seq": 7, "id": new_id(), "ts": at(1), "session": "alice",
                            "mood": "happy"}, separators=(",", ":")).encode() + b"\n")
        f.write(json.dumps({"type": "heartbeat", "seq": 8, "id": new_id(), "ts": at(1), "session": "bob",
                            "status": "ok", "cpu": 0.5, "gpu": [1, 2]}, separators=(",", ":")).encode() + b"\n")
    with api(root, at(2)) as hub:
        hub.heartbeat("alice", "after")
        hub.note("bob", "a note")
        hub.heartbeat("bob", "still here")
        hub.focus("alice", "ship it")
    lines = log_path(root).read_bytes().splitlines(keepends=True)
    assert len(lines) == 12
    return lines


TORN = b'{"type":"heartbeat","seq":13,"id":"01KZZ'


def damage(kind: str, lines: list[bytes]) -> tuple[list[bytes], set[int], list[bytes]]:
    """The damaged log's lines, the seqs repair must mark lost, and the lines it must set aside."""
    bad = lines[5][:30] + b"\xff not an event\n"
    if kind == "damaged middle line":
        return lines[:5] + [bad] + lines[6:], {6}, [bad]
    if kind == "duplicated line":
        return lines[:5] + [lines[4]] + lines[5:], set(), [lines[4]]
    if kind == "gap":
        return lines[:5] + lines[6:], {6}, []
    if kind == "torn tail":
        return [*lines, TORN], set(), [TORN]
    assert kind == "all at once"  # bob's hello damaged, seq 9 repeated after 10, seq 11 gone, a torn tail
    bad3 = lines[2][:20] + b"\n"
    return [*lines[:2], bad3, *lines[3:10], lines[8], lines[11], TORN], {3, 11}, [bad3, lines[8], TORN]


@pytest.mark.parametrize("kind", ["damaged middle line", "duplicated line", "gap", "torn tail", "all at once"])
def test_repair_quarantines_marks_lost_keeps_the_rest_and_deletes_nothing(tmp_path: Path, kind: str) -> None:
    lines = repairable(tmp_path)
    damaged, lost, set_aside = damage(kind, lines)
    log = log_path(tmp_path)
    log.write_bytes(b"".join(damaged))
    events_dir = log.parent
    before = tree(events_dir)

    report = json.loads(ok(call(tmp_path, "repair", "--json", now=at(10))).stdout)
    assert report["repaired"] is True and report["events"] == 12 and report["lost"] == len(lost)
    assert (events_dir / report["backup"]).read_bytes() == b"".join(damaged)  # the old log, copied aside first
    quarantined = []
    for rel in report["set_aside"]:
        quarantined.append((events_dir / rel).read_bytes())
        note = (events_dir / rel).with_suffix(".txt").read_text()
        assert "log.jsonl" in note and "evhub repair" in note
    assert sorted(quarantined) == sorted(set_aside)

    repaired = log.read_bytes().splitlines(keepends=True)
    assert len(repaired) == 12
    for seq, line in enumerate(repaired, 1):
        if seq in lost:
            placeholder = json.loads(line)
            assert (placeholder["type"], placeholder["seq"], "session" in placeholder) == ("event_lost", seq, False)
        else:  # every other event keeps its line byte for byte, so its seq and its token; unknown ones too
            assert line == lines[seq - 1], seq
    assert repaired[UNKNOWN_TYPE] == lines[UNKNOWN_TYPE] and repaired[UNKNOWN_FIELDS] == lines[UNKNOWN_FIELDS]
    after = tree(events_dir)
    for rel, content in before.items():  # nothing under events/ is deleted
        assert rel in after, rel
        caches = ("log.jsonl", "lock", "views.json", "views-base.json")
        if rel not in caches and not rel.startswith("readmodel"):
            assert after[rel] == content, rel

    verified(tmp_path, 12)
    assert json.loads(ok(call(tmp_path, "heartbeat", "--json", "-s", "alice", now=at(11))).stdout) == {"events": [13]}
    [claim] = json.loads(ok(call(tmp_path, "claims", "--json", now=at(11))).stdout)
    assert (claim["priority"], claim["session"], claim["token"]) == ("p", "alice", 4)
    healthy, listing = log.read_bytes(), sorted(tree(events_dir))
    assert ok(call(tmp_path, "repair", now=at(12))).stdout == "nothing to repair: 13 events\n"
    assert log.read_bytes() == healthy and sorted(tree(events_dir)) == listing
    verified(tmp_path, 13)


def test_repair_on_a_healthy_log_changes_nothing_and_says_so(tmp_path: Path) -> None:
    repairable(tmp_path)
    events_dir = log_path(tmp_path).parent
    before = tree(events_dir)
    assert ok(call(tmp_path, "repair", now=at(10))).stdout == "nothing to repair: 12 events\n"
    after = tree(events_dir)
    after.pop("lock"), before.pop("lock")  # the lock file names its last holder's pid
    assert after == before


def test_two_repairs_at_one_moment_keep_both_backups_and_every_quarantined_line(tmp_path: Path) -> None:
    # EVHUB_NOW fixes the clock (reproducing a moment, tests): the names repair makes from it must
    # still never land on an earlier backup or quarantined line.
    lines = repairable(tmp_path)
    log, events_dir = log_path(tmp_path), log_path(tmp_path).parent
    first = [*lines[:5], b"first damage\n", *lines[6:]]
    log.write_bytes(b"".join(first))
    one = json.loads(ok(call(tmp_path, "repair", "--json", now=at(10))).stdout)
    second = log.read_bytes().splitlines(keepends=True)
    second[8] = b"second damage\n"
    log.write_bytes(b"".join(second))
    two = json.loads(ok(call(tmp_path, "repair", "--json", now=at(10))).stdout)
    assert one["backup"] != two["backup"]
    assert (events_dir / one["backup"]).read_bytes() == b"".join(first)
    assert (events_dir / two["backup"]).read_bytes() == b"".join(second)
    assert [(events_dir / rel).read_bytes() for rel in one["set_aside"] + two["set_aside"]] == [
        b"first damage\n", b"second damage\n"
    ]
    verified(tmp_path, 12)


# -- 6. a log from a newer evhub ------------------------------------------------------------------------------


def line(**fields: Any) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def test_a_log_from_a_newer_evhub_is_read_replayed_verified_and_written_to(tmp_path: Path) -> None:
    newer = [
        line(type="hub_created", seq=1, id=new_id(), ts=at(0), alive_ttl_s=300, v=2, features=["moods"]),
        line(type="session_registered", seq=2, id=new_id(), ts=at(0), session="alice", role="backend",
             specialization="", about="", resume=False, model="gpt-9"),
        line(type="mood_set", seq=3, id=new_id(), ts=at(0), session="alice", mood="happy"),
        line(type="priority_claimed", seq=4, id=new_id(), ts=at(0), session="alice", priority="p", ttl_s=None,
             took_over_from=None, lease={"kind": "soft"}),
        line(type="hub_renamed", seq=5, id=new_id(), ts=at(0), name="shop"),
        line(type="heartbeat", seq=6, id=new_id(), ts=at(0), session="alice", status="ok", cpu=0.5),
    ]
    log = log_path(tmp_path)
    log.parent.mkdir(parents=True)
    log.write_bytes(b"".join(newer))

    status = ok(call(tmp_path, "status", "--json"))
    doc = json.loads(status.stdout)
    assert doc["events"] == 6 and [s["id"] for s in doc["sessions"]] == ["alice"]
    assert [(c["priority"], c["token"]) for c in doc["claims"]] == [("p", 4)]
    assert doc["sessions"][0]["status"] == "ok"
    assert len(ok(call(tmp_path, "log")).stdout.splitlines()) == 6
    assert "mood_set" in ok(call(tmp_path, "log", "--type", "mood_set")).stdout
    ok(call(tmp_path, "recall", "alice"))
    assert ok(call(tmp_path, "replay")).stdout.startswith("replayed 6 events")
    checked = ok(call(tmp_path, "verify"))
    assert checked.stdout == "ok: 6 events, log verified\n"
    warnings = checked.stderr.splitlines()
    assert len(warnings) == 6 and all(w.startswith("warning: line ") for w in warnings)
    assert "mood_set" in warnings[2] and "hub_renamed" in warnings[4] and "cpu" in warnings[5]

    assert json.loads(ok(call(tmp_path, "heartbeat", "--json", "-s", "alice")).stdout) == {"events": [7]}
    assert json.loads(ok(call(tmp_path, "claim", "q", "--json", "-s", "alice")).stdout)["token"] == 8
    assert ok(call(tmp_path, "repair")).stdout == "nothing to repair: 8 events\n"
    assert log.read_bytes().splitlines(keepends=True)[:6] == newer  # kept byte for byte
    assert checked_log(tmp_path)[0]["v"] == 2
    verified(tmp_path, 8)


# -- 7. out of space ------------------------------------------------------------------------------------------


def test_a_write_past_the_file_size_limit_fails_cleanly_and_the_next_one_works(tmp_path: Path) -> None:
    with api(tmp_path, at(0)) as hub:
        hub.hello("alice")
    log = log_path(tmp_path)
    before = log.read_bytes()
    # Room for a part of the heartbeat's line but not all of it: the part written must be taken back.
    limit = len(before) + 40

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = call(tmp_path, "heartbeat", "--status", "x" * 200, "-s", "alice", preexec_fn=small_disk)
    assert "cannot append to the log" in error_line(full, 1)
    assert log.read_bytes() == before
    assert json.loads(ok(call(tmp_path, "heartbeat", "--json", "-s", "alice")).stdout) == {"events": [3]}
    assert log.read_bytes().startswith(before)
    verified(tmp_path, 3)
