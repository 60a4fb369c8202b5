"""A throwaway local PostgreSQL server for benchmarks.

Self-contained on purpose: benchmarks must not depend on test fixtures that
change under them. The server keeps PostgreSQL's durable defaults (fsync on,
synchronous_commit on, full_page_writes on): a benchmark of commit throughput
is only honest if every commit really reaches the disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

DEFAULT_BIN_DIR = Path("/usr/lib/postgresql/15/bin")

# Only settings that do not touch durability. max_connections leaves room for
# 32 writers plus each client library's pool overflow and an admin session.
DEFAULT_SETTINGS = {"max_connections": "300"}


class LocalPostgres:
    """initdb + pg_ctl in a temporary directory, on a free localhost port.

    PostgreSQL refuses to run as root, so as root every server command runs
    as the ``postgres`` system user.
    """

    def __init__(self, bin_dir: Path = DEFAULT_BIN_DIR, settings: dict[str, str] | None = None) -> None:
        self.bin_dir = Path(bin_dir)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.port = 0
        self.root: Path | None = None

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def start(self) -> LocalPostgres:
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        self.port = _free_port()
        # --no-sync only skips flushing initdb's own files; the running server
        # still fsyncs every commit.
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._write_settings()
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_settings(self) -> None:
        lines = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            # A private socket directory: /var/run/postgresql may not exist.
            f"unix_socket_directories = '{self.root}'",
            *(f"{name} = '{value}'" for name, value in self.settings.items()),
        ]
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# bench settings\n" + "\n".join(lines) + "\n")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}{tail}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
