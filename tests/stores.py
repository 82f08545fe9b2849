"""Where a test's hubs keep their log: `HubStore`, the JSONL file or a fresh schema of the test
PostgreSQL cluster per hub (the `store` fixture in conftest.py hands out one of each), and
`free_port` for a cluster of a test's own."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from pgserver import Cluster, free_port

from evhub._pgstore import StoreSettings

__all__ = ["HubStore", "free_port"]

_schemas = itertools.count(1)


class HubStore:
    """Where a test's hubs keep their log: the JSONL file, or a fresh schema of the test cluster per hub."""

    def __init__(self, kind: str, cluster: Cluster | None = None, dsn_file: Path | None = None) -> None:
        self.kind = kind
        self.cluster = cluster
        self.dsn_file = dsn_file

    def __repr__(self) -> str:
        return self.kind

    def settings(self) -> StoreSettings | None:
        """A new hub's store settings (a schema of its own), for Hub.init; None for JSONL."""
        if self.kind == "jsonl":
            return None
        return StoreSettings(f"t{os.getpid()}_{next(_schemas)}", self.dsn_file)

    def init_args(self) -> list[str]:
        """What `evhub init` needs to put a new hub on this store."""
        settings = self.settings()
        if settings is None:
            return []
        return ["--store-file", str(self.dsn_file), "--schema", settings.schema]
