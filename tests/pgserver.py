"""A throwaway PostgreSQL cluster on a local port, for the tests and the benchmarks.

`python -m tests.pgserver start DIR PORT` makes one in DIR (initdb, trust on loopback only) and
prints `export` lines naming it; `stop DIR` ends it.  The server refuses to run as root, so when
we are root every server command runs as the unprivileged `postgres` user that Debian's package
creates.  The tests use the cluster named by EVHUB_TEST_PGDATA / EVHUB_TEST_PG when .ci/run
started one, else start their own.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bindir() -> Path | None:
    """The folder of initdb and pg_ctl, or None when no PostgreSQL server is installed."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if versions:  # Debian's layout: every server tool in one folder
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(os.path.realpath(found)).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One cluster: its data folder, port and the user its server runs as."""

    def __init__(self, data: Path, port: int) -> None:
        bins = bindir()
        if bins is None:
            raise RuntimeError("no PostgreSQL server is installed (Debian: apt-get install postgresql)")
        self.bin = bins
        self.data = data.absolute()
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def create(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            self.data.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.data}'\nmax_connections = 200\n"
                       "fsync = on\nsynchronous_commit = on\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} did not start")
            time.sleep(0.1)

    def password_role(self, role: str, password: str) -> str:
        """The connection string of ROLE, a login that must give PASSWORD (every other login is trusted),
        made unless it is there: a test can then tell a password libpq found from none at all."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
                conn.execute(f"GRANT CREATE ON DATABASE postgres TO {role}")
        hba = self.data / "pg_hba.conf"
        line = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        if line not in hba.read_text():
            hba.write_text(line + hba.read_text())  # the first line that matches decides
            self._run("pg_ctl", "-D", str(self.data), "reload")
        return f"postgresql://{role}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def temporary(cls, port: int | None = None) -> Cluster:
        """A new cluster in a new folder under the system's temp folder, which the server's user can
        reach (pytest's own temp folders are private to us), on PORT or a free one."""
        folder = Path(tempfile.mkdtemp(prefix="evhub-pg-"))
        folder.chmod(0o755)
        return cls.make(folder / "data", port or free_port())

    def remove(self) -> None:
        """Stop the server and delete its folder (made by temporary())."""
        self.stop()
        shutil.rmtree(self.data.parent, ignore_errors=True)

    @classmethod
    def make(cls, data: Path, port: int) -> Cluster:
        """A new cluster in DATA (which must not hold one), started and ready."""
        cluster = cls(data, port)
        cluster.create()
        cluster.start()
        cluster.wait_ready()
        return cluster


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "start":
        cluster = Cluster.make(Path(argv[1]), int(argv[2]))
        print(f"export EVHUB_TEST_PGDATA={cluster.data}\nexport EVHUB_TEST_PGPORT={cluster.port}")
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        data = Path(argv[1])
        if (data / "postmaster.pid").exists() or (data / "PG_VERSION").exists():
            Cluster(data, 0).stop()
        return 0
    print("usage: python -m tests.pgserver start DIR PORT | stop DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
