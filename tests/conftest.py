"""The fixtures: `store`, how a test's hubs keep their log (each test that takes it runs twice: on
the JSONL file and on PostgreSQL), `hub_dir`, a folder holding a fresh hub made at T0 on that store,
and `evhub`, a runner bound to that folder whose calls return the CompletedProcess.

The PostgreSQL half uses the cluster .ci/run started (EVHUB_TEST_PGDATA, EVHUB_TEST_PGPORT), else
starts a throwaway one; with no server installed it skips, saying so, unless EVHUB_TEST_PG_REQUIRED
is set (as in CI), where it fails.

The helpers live in importable modules: clock.py (T0, at, fixed_now, wait_until), command.py (the
installed `evhub` in subprocesses), stores.py (HubStore, free_port), histories.py (generated logs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from command import Runner, init_hub
from pgserver import Cluster, bindir
from stores import HubStore, free_port


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The PostgreSQL cluster the tests share (never restarted: tests that restart a server make their own)."""
    data, port = os.environ.get("EVHUB_TEST_PGDATA"), os.environ.get("EVHUB_TEST_PGPORT")
    if data and port:
        yield Cluster(Path(data), int(port))
        return
    if bindir() is None:
        reason = "no PostgreSQL server installed (Debian: apt-get install postgresql)"
        if os.environ.get("EVHUB_TEST_PG_REQUIRED"):
            pytest.fail(f"{reason}, and EVHUB_TEST_PG_REQUIRED is set")
        pytest.skip(reason)
    cluster = Cluster.temporary(free_port())
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def pg_store(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> HubStore:
    dsn_file = tmp_path_factory.mktemp("dsn") / "store.dsn"
    dsn_file.write_text(pg_cluster.dsn + "\n")
    return HubStore("postgresql", pg_cluster, dsn_file)


@pytest.fixture(params=["jsonl", "postgresql"])
def store(request: pytest.FixtureRequest) -> HubStore:
    """Each test that takes it runs on both stores."""
    if request.param == "jsonl":
        return HubStore("jsonl")
    found: HubStore = request.getfixturevalue("pg_store")
    return found


@pytest.fixture
def hub_dir(tmp_path: Path, store: HubStore) -> Path:
    """A folder holding a freshly initialised hub."""
    return init_hub(tmp_path / "repo", store)


@pytest.fixture
def evhub(hub_dir: Path) -> Runner:
    """A runner for the installed `evhub`, working in `hub_dir`; each call returns the CompletedProcess."""
    return Runner(hub_dir)
