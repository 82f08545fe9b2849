"""Moving a hub between stores: `evhub export` writes any hub's log as standard JSONL, `evhub import`
loads one into a new hub on either store, and the round trip JSONL -> PostgreSQL -> JSONL gives back
the same bytes and the same views."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from clock import at, fixed_now
from command import Runner, error_line, init_hub, ok, run
from histories import histories
from hypothesis import HealthCheck, given, settings
from stores import HubStore

from evhub import Hub
from evhub import _events as ev
from evhub._store import parse_log


def views(root: Path) -> dict[str, bytes]:
    """Every rendered file of the hub in ROOT (all of SESSIONS/ but events/)."""
    sessions = root / "SESSIONS"
    return {p.relative_to(sessions).as_posix(): p.read_bytes() for p in sorted(sessions.rglob("*"))
            if p.is_file() and p.relative_to(sessions).parts[0] != "events"}


def spaced(line: bytes) -> bytes:
    """LINE as another writer might spell it: the same event, with spaces and keys in another order."""
    doc = json.loads(line)
    return json.dumps(dict(reversed(doc.items())), ensure_ascii=False).encode() + b"\n"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(max_steps=40))
def test_a_log_moved_to_postgresql_and_back_is_byte_identical_with_identical_views(
    history: list[ev.AnyEvent], pg_store: HubStore
) -> None:
    lines = [ev.encode(e) for e in history]
    lines[1::3] = [spaced(line) for line in lines[1::3]]  # kept byte for byte, whatever their spelling
    data = b"".join(lines)
    with tempfile.TemporaryDirectory() as d, fixed_now(at(10_000)):
        root = Path(d)
        on_pg, _ = Hub.init(root / "pg", store=pg_store.settings(), events=parse_log(data, "exported"))
        with open(root / "from-pg.jsonl", "wb") as f:
            assert on_pg.store.dump(f) == len(history)
        assert (root / "from-pg.jsonl").read_bytes() == data
        back, _ = Hub.init(root / "back", events=parse_log((root / "from-pg.jsonl").read_bytes(), "from-pg"))
        assert back.log_path.read_bytes() == data
        assert views(root / "pg") == views(root / "back")
        assert Hub(root / "pg").verify()["events"] == Hub(root / "back").verify()["events"] == len(history)


def test_a_hub_moves_to_postgresql_and_back_to_a_file_through_the_cli_and_keeps_working(
    evhub: Runner, tmp_path: Path, pg_store: HubStore
) -> None:
    evhub.ok("hello", "alice")
    evhub.ok("hello", "bob", now=at(1))
    evhub.ok("claim", "api", session="alice", now=at(2))
    evhub.ok("milestone", "create", "Ship it", "--step", "build", "--step", "ship", session="bob", now=at(3))
    evhub.ok("msg", "send", "api is mine \u2713", session="alice", now=at(4))
    evhub.ok("save", "--note", "halfway", session="alice", now=at(5))  # one write of two events
    exported = tmp_path / "hub.jsonl"
    assert ok(run("export", "--out", exported, cwd=evhub.root)).stdout.startswith("exported 8 events")
    assert exported.read_bytes() == evhub.log_bytes()

    on_pg = tmp_path / "on-pg"
    moved = ok(run("import", exported, on_pg, *pg_store.init_args(), "--json"))
    assert json.loads(moved.stdout) | {"hub": ""} == {"hub": "", "created": True, "store": "postgresql", "events": 8}
    assert ok(run("export", cwd=on_pg)).stdout.encode() == exported.read_bytes()
    (tmp_path / "from-pg.jsonl").write_bytes(ok(run("export", cwd=on_pg)).stdout.encode())
    back = tmp_path / "back"
    assert "imported 8 events" in ok(run("import", tmp_path / "from-pg.jsonl", back)).stdout
    assert (back / "SESSIONS" / "events" / "log.jsonl").read_bytes() == exported.read_bytes()

    for root in (evhub.root, on_pg, back):
        ok(run("status", cwd=root, env={"EVHUB_NOW": at(60)}))
    assert views(on_pg) == views(evhub.root) == views(back)
    # The moved hub goes on where the old one stopped: seq, claims and fencing tokens carry over.
    refused = run("claim", "api", "-s", "bob", cwd=on_pg, env={"EVHUB_NOW": at(61)})
    assert "api is held by alice" in error_line(refused, 3)
    ok(run("release", "api", "-s", "alice", cwd=on_pg, env={"EVHUB_NOW": at(62)}))
    assert "#9" in ok(run("log", "--type", "release", cwd=on_pg)).stdout


def test_import_refuses_a_damaged_file_or_a_place_that_holds_a_hub_and_changes_nothing(
    tmp_path: Path, store: HubStore, pg_store: HubStore
) -> None:
    source = init_hub(tmp_path / "source")
    ok(run("hello", "alice", cwd=source))
    good = (source / "SESSIONS" / "events" / "log.jsonl").read_bytes()
    lines = good.splitlines(keepends=True)
    cases = {
        "torn.jsonl": (good[:-5], 4, "no newline"),
        "garbage.jsonl": (lines[0] + b"{not json}\n", 4, "line 2"),
        "gap.jsonl": (lines[0] + lines[1].replace(b'"seq":2', b'"seq":3'), 4, "line 2: seq 3 where 2 was expected"),
        "twice.jsonl": (lines[0] + lines[0].replace(b'"seq":1', b'"seq":2'), 4, "line 2"),
        "empty.jsonl": (b"", 4, "starts with a hub_created event"),
        "headless.jsonl": (lines[1].replace(b'"seq":2', b'"seq":1'), 4, "starts with a hub_created event"),
    }
    for name, (data, code, says) in cases.items():
        (tmp_path / name).write_bytes(data)
        target = tmp_path / f"into-{name}"
        assert says in error_line(run("import", tmp_path / name, target, *store.init_args()), code), name
        assert not target.exists(), name
    assert "cannot read" in error_line(run("import", tmp_path / "missing.jsonl", tmp_path / "x"), 1)

    (tmp_path / "good.jsonl").write_bytes(good)
    holder = init_hub(tmp_path / "holder", store)
    before = views(holder)
    assert "already" in error_line(run("import", tmp_path / "good.jsonl", holder), 3)
    assert views(holder) == before
    # A schema that already holds a hub is refused before any folder is made.
    args = pg_store.init_args()
    ok(run("import", tmp_path / "good.jsonl", tmp_path / "first", *args))
    assert "already holds a hub" in error_line(run("import", tmp_path / "good.jsonl", tmp_path / "second", *args), 3)
    assert not (tmp_path / "second").exists()


def test_export_leaves_out_a_torn_tail_and_a_bad_target_is_one_error_line(evhub: Runner, tmp_path: Path) -> None:
    evhub.ok("hello", "alice")
    whole = evhub.log_bytes()
    if (evhub.sessions_dir / "events" / "log.jsonl").exists():
        with open(evhub.log_path, "ab") as f:
            f.write(b'{"type":"heartbeat","seq":3')  # a write that did not finish
    assert evhub.ok("export").stdout.encode() == whole
    assert "cannot write" in error_line(evhub("export", "--out", tmp_path / "no" / "such" / "dir.jsonl"), 1)
