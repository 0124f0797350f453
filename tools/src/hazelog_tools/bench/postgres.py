"""A throwaway PostgreSQL server (the bench's durable stages and the integration tests):
initdb into a temporary directory, listening on a free loopback port (its socket in that
directory), stopped and removed at the end. Never the machine's own cluster. As root, it runs
as user postgres (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hazelog_tools.member import MapStoreDatabase

BIN = Path(os.environ.get("HAZELOG_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "hazelog"
HOST = "127.0.0.1"

_running: list[Postgres] = []


def available() -> bool:
    return (BIN / "initdb").is_file() and (os.geteuid() != 0 or _postgres_user() is not None)


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


class Postgres:
    def __init__(self, base_dir: Path) -> None:
        self.dir = base_dir
        self.data = base_dir / "data"
        self.log_path = base_dir / "server.log"
        self.password = secrets.token_urlsafe(16)
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port = int(probe.getsockname()[1])
        self._as_postgres = os.geteuid() == 0

    @property
    def database(self) -> MapStoreDatabase:
        return MapStoreDatabase(
            jdbc_url=f"jdbc:postgresql://{HOST}:{self.port}/postgres",
            user=USER,
            password=self.password,
        )

    def _run(self, *argv: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        completed = subprocess.run(
            [*prefix, *map(str, argv)], capture_output=True, text=True, timeout=120, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {completed.stdout}{completed.stderr}")

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        password_file = self.dir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if self._as_postgres:
            user = _postgres_user()
            assert user is not None
            for path in (self.dir, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            BIN / "initdb",
            "-D",
            self.data,
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        password_file.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={HOST}"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        if self not in _running:
            _running.append(self)

    def stop(self) -> None:
        """Fast shutdown: sessions are cut at once, as when the server goes away."""
        if (self.data / "postmaster.pid").exists():
            self._run(BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        self.stop()
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def count(self, table: str = "messages") -> int:
        """Rows in `table`, through psql over the server's own socket directory."""
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        completed = subprocess.run(
            [*prefix, str(BIN / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", USER,
             "-d", "postgres", "-tAc", f"SELECT count(*) FROM {table}"],
            capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, "PGPASSWORD": self.password},
        )  # fmt: skip
        return int(completed.stdout.strip())


def start_postgres() -> Postgres:
    # Not under pytest's tmp_path nor the bench's work directory: those may be private to
    # root, and the server may run as postgres.
    server = Postgres(Path(tempfile.mkdtemp(prefix="hazelog-pg-")))
    server.init()
    server.start()
    return server


@atexit.register
def _stop_leftovers() -> None:
    # An interrupted session or bench still leaves no server behind.
    for server in list(_running):
        server.remove()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A started server, stopped and removed on exit."""
    if not available():
        raise RuntimeError(
            f"PostgreSQL binaries not found in {BIN} (`make system-deps` installs them; "
            "HAZELOG_PG_BIN names another directory)"
        )
    server = start_postgres()
    try:
        yield server
    finally:
        server.remove()
