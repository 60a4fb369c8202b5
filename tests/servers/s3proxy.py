"""S3Proxy: a real S3-compatible server (Apache-2.0, Java), run from its Maven Central jar.

    python -m tests.servers.s3proxy fetch [VERSION]   # download the jar once (CI)
    python -m tests.servers.s3proxy run [VERSION]     # serve until Ctrl-C

It stores objects on the local file system and checks AWS signatures (v2 and
v4, presigned URLs included), so uploads are tested against a server that
speaks S3 over HTTP, multipart uploads and all. Why S3Proxy rather than MinIO
is in docs/workers.md ("Testing uploads").
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.servers._util import free_port, log_tail, port_open

VERSION = os.environ.get("TEST_S3PROXY_VERSION", "4.1.0")
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO_ROOT / ".cache" / "s3proxy"


def fetch(version: str = VERSION, cache_root: Path = CACHE_ROOT) -> Path:
    """The runnable jar (jar-with-dependencies) of ``version``, downloaded if missing."""
    jar = cache_root / f"s3proxy-{version}-jar-with-dependencies.jar"
    if jar.is_file():
        return jar
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache_root))
    try:
        proc = subprocess.run(
            ["mvn", "-B", "-q", "dependency:copy", f"-Dartifact=org.gaul:s3proxy:{version}:jar:jar-with-dependencies",
             f"-DoutputDirectory={staging}"],
            cwd=staging, capture_output=True, text=True,
        )  # fmt: skip
        fetched = staging / jar.name
        if proc.returncode != 0 or not fetched.is_file():
            raise RuntimeError(f"mvn could not fetch S3Proxy {version}:\n{proc.stdout}{proc.stderr}")
        fetched.rename(jar)  # atomic: a reader sees no jar or a whole one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return jar


class S3ProxyServer:
    """Objects live in a temporary directory that close() deletes."""

    def __init__(self, version: str = VERSION, startup_timeout: float = 60.0) -> None:
        self.version = version
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = free_port()
        self.access_key = "s3proxy-access"
        self.secret_key = "s3proxy-secret"
        self.base_dir = Path(tempfile.mkdtemp(prefix="test-s3proxy-"))
        self.log_path = self.base_dir / "s3proxy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> S3ProxyServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        jar = fetch(self.version)
        (self.base_dir / "objects").mkdir(exist_ok=True)
        config = self.base_dir / "s3proxy.conf"
        config.write_text(
            f"s3proxy.endpoint={self.url}\n"
            "s3proxy.authorization=aws-v2-or-v4\n"
            f"s3proxy.identity={self.access_key}\n"
            f"s3proxy.credential={self.secret_key}\n"
            "jclouds.provider=filesystem\n"
            "jclouds.identity=unused\n"
            "jclouds.credential=unused\n"
            f"jclouds.filesystem.basedir={self.base_dir / 'objects'}\n"
        )
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                ["java", "-Xmx256m", "-jar", str(jar), "--properties", str(config)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while not port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"S3Proxy did not start on port {self.port}\n{log_tail(self.log_path)}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> S3ProxyServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["run"]
    chosen = rest[0] if rest else VERSION
    if command == "fetch":
        print(fetch(chosen))
    elif command == "run":
        with S3ProxyServer(chosen) as server:
            print(f"S3Proxy {chosen} on {server.url} (access key {server.access_key}, secret {server.secret_key})")
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
    else:
        sys.exit("usage: python -m tests.servers.s3proxy fetch|run [VERSION]")
