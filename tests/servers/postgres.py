"""A throwaway local PostgreSQL cluster: initdb + pg_ctl in a temp directory."""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.servers._util import free_port, log_tail, run_sync

# Durability is pointless for throwaway test data and costs a lot of time.
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def find_bindir() -> Path:
    """PG_BINDIR, else the newest /usr/lib/postgresql/N/bin, else PATH."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if candidates:
        newest = max(candidates, key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
        return Path(newest).parent
    if found := shutil.which("initdb"):
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


class PostgresServer:
    """Start with start() or ``with PostgresServer() as pg:``; stop() keeps the
    data so start() can bring the same cluster back on the same port; close()
    also deletes the directory."""

    def __init__(
        self,
        settings: dict[str, str] | None = None,
        user: str = "test",
        password: str = "test",
        port: int | None = None,
    ) -> None:
        self.settings = {**TEST_SETTINGS, **(settings or {})}
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.bindir = find_bindir()
        self.base_dir = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self._initialised = False
        self.running = False
        atexit.register(self.close)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> PostgresServer:
        if self.running:
            return self
        if not self._initialised:
            self._initdb()
        try:
            self._run("pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-w", "-t", "60", "start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log_tail(self.log_path)}") from None
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop")
            self.running = False

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- use ---------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str | None = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name`; returns its asyncpg SQLAlchemy URL."""
        create_database(self.url(driver=None), name, template)
        return self.url(name)

    # -- internals -----------------------------------------------------------

    def _initdb(self) -> None:
        as_root = os.geteuid() == 0
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if as_root:
            # PostgreSQL refuses to run as root; hand the directory to `postgres`.
            shutil.chown(self.base_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._run(
                "initdb", "-D", self.data_dir, "-U", self.user, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
        finally:
            pwfile.unlink()
        conf = {
            "port": str(self.port),
            "listen_addresses": self.host,
            # Keep the socket private to this cluster, not /var/run/postgresql.
            "unix_socket_directories": str(self.base_dir),
            **self.settings,
        }
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# tests/servers/postgres.py\n")
            for key, value in conf.items():
                f.write(f"{key} = '{value}'\n")
        self._initialised = True

    def _run(self, tool: str, *args: object) -> None:
        cmd = [str(self.bindir / tool), *map(str, args)]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # cwd: the postgres user may not be allowed into the caller's cwd.
        proc = subprocess.run(cmd, cwd=self.base_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stdout}{proc.stderr}".strip())


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """CREATE DATABASE through a plain ``postgresql://`` URL (works for any server)."""
    import asyncpg

    def quote(ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    sql = f"CREATE DATABASE {quote(name)}" + (f" TEMPLATE {quote(template)}" if template else "")

    async def go() -> None:
        conn = await asyncpg.connect(admin_url, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_sync(go)
