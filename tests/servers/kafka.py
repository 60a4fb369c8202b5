"""A single-node KRaft Kafka broker run straight from its Maven Central jars.

    python -m tests.servers.kafka fetch [VERSION]   # download the jars once (CI)
    python -m tests.servers.kafka run [VERSION]     # run a broker until Ctrl-C

See KAFKA.md for why this version.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from tests.servers._util import free_port, log_tail, port_open, run_sync

# TEST_KAFKA_VERSION lets CI or a developer try another version without an edit.
KAFKA_VERSION = os.environ.get("TEST_KAFKA_VERSION", "4.4.0")
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO_ROOT / ".cache" / "kafka"
POM = Path(__file__).with_name("kafka-pom.xml")

# Both main classes live in the kafka_2.13 jar (same names in 3.9 and 4.x).
STORAGE_TOOL = "kafka.tools.StorageTool"
KAFKA_MAIN = "kafka.Kafka"

LOG4J2 = """\
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
# The state-change logger writes a line per partition change at INFO.
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def fetch(version: str = KAFKA_VERSION, cache_root: Path = CACHE_ROOT) -> Path:
    """The folder holding every runtime jar of `version`, downloaded if missing."""
    target = cache_root / version
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache_root))
    try:
        proc = subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(POM), f"-Dkafka.version={version}",
                "dependency:copy-dependencies", "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],  # fmt: skip
            cwd=staging,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            raise RuntimeError(f"mvn could not fetch Kafka {version}:\n{proc.stdout}{proc.stderr}")
        # Rename is atomic: a reader sees either no folder or a complete one.
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else a concurrent fetch won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class KafkaServer:
    """stop() keeps the data dir and ports, so start() brings the same broker
    (same topics, offsets, bootstrap address) back; close() also deletes it."""

    def __init__(
        self,
        version: str = KAFKA_VERSION,
        properties: dict[str, str] | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
    ) -> None:
        self.version = version
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller_port = free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="test-kafka-"))
        self.log_path = self.base_dir / "kafka.log"
        self.properties = {**self._default_properties(), **(properties or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> KafkaServer:
        if self.running:
            return self
        jars = fetch(self.version)
        config = self._write_config()
        if not (self.base_dir / "data" / "meta.properties").exists():
            self._format(jars, config)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._java(jars, KAFKA_MAIN, str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.base_dir,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful (SIGTERM: controlled shutdown, clean log close), then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also on a second Ctrl-C while waiting: never leave a broker behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> KafkaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    def _default_properties(self) -> dict[str, str]:
        controller = f"{self.host}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static quorum: accepted by 3.9 and 4.x, and needs no --standalone at format.
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.base_dir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "group.initial.rebalance.delay.ms": "0",
        }

    def _write_config(self) -> Path:
        (self.base_dir / "log4j2.properties").write_text(LOG4J2)
        path = self.base_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties.items()))
        return path

    def _java(self, jars: Path, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.base_dir / 'log4j2.properties'}",
            "-cp", f"{jars}/*", main, *args,
        ]  # fmt: skip

    def _format(self, jars: Path, config: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = self._java(jars, STORAGE_TOOL, "format", "--cluster-id", cluster_id, "--config", str(config))
        proc = subprocess.run(cmd, cwd=self.base_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"Kafka storage format failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(self._failure(f"Kafka exited with {self._proc.returncode}"))
            # The socket only opens late in startup; a cheap check before the real one.
            if port_open(self.port):
                try:
                    if run_sync(lambda: _has_broker(self.bootstrap)):
                        return
                except Exception as exc:  # not ready yet
                    last_error = exc
            time.sleep(0.2)
        raise RuntimeError(self._failure(f"Kafka not ready after {self.startup_timeout}s ({last_error!r})"))

    def _failure(self, message: str) -> str:
        return f"{message}\n{log_tail(self.log_path)}"


async def _has_broker(bootstrap: str) -> bool:
    """A real client can bootstrap and sees an unfenced broker in the metadata."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("fetch", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    version = argv[1] if len(argv) > 1 else KAFKA_VERSION
    if argv[0] == "fetch":
        print(f"kafka {version} jars in {fetch(version)}")
        return 0
    with KafkaServer(version) as server:
        print(f"kafka {version} on {server.bootstrap} (log: {server.log_path}); Ctrl-C stops it")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
