"""testcontainers-backed twins of PostgresServer and KafkaServer, same API.

Used by tests/conftest.py when a Docker engine is reachable. Host ports are
bound to fixed free ports so that stop() + start() (a docker stop/start of
the same container, data kept) leaves URLs and the bootstrap address valid.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.servers._util import free_port, run_sync
from tests.servers.kafka import _has_broker
from tests.servers.postgres import TEST_SETTINGS, create_database

POSTGRES_IMAGE = "postgres:15"
# The testcontainers KafkaContainer drives Confluent's image scripts; 7.9 is Kafka 3.9.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"


class _Restartable:
    _container: Any

    def __init__(self) -> None:
        self._started = False
        self.running = False

    def start(self) -> Any:
        if self.running:
            return self
        if self._started:
            self._container.get_wrapped_container().start()
        else:
            self._container.start()
            self._started = True
        _wait_until(self._ready, 120.0, self._container)
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._container.get_wrapped_container().stop(timeout=30)
            self.running = False

    def close(self) -> None:
        if self._started:
            self._container.stop()  # stops and removes
            self._started = self.running = False

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _ready(self) -> bool:
        raise NotImplementedError


class PostgresContainerServer(_Restartable):
    def __init__(
        self,
        settings: dict[str, str] | None = None,
        user: str = "test",
        password: str = "test",
        image: str = POSTGRES_IMAGE,
    ) -> None:
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # older testcontainers layout
            from testcontainers.postgres import PostgresContainer

        super().__init__()
        self.settings = {**TEST_SETTINGS, **(settings or {})}
        self.user, self.password, self.port = user, password, free_port()
        self._container = (
            PostgresContainer(image, username=user, password=password, dbname="postgres", driver=None)
            .with_bind_ports(5432, self.port)
            .with_command([arg for k, v in self.settings.items() for arg in ("-c", f"{k}={v}")])
        )

    def url(self, database: str = "postgres", driver: str | None = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        host = self._container.get_container_host_ip()
        return f"{scheme}://{self.user}:{self.password}@{host}:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        create_database(self.url(driver=None), name, template)
        return self.url(name)

    async def _ready(self) -> bool:
        import asyncpg

        conn = await asyncpg.connect(self.url(driver=None), timeout=3)
        await conn.close()
        return True


class KafkaContainerServer(_Restartable):
    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # older testcontainers layout
            from testcontainers.kafka import KafkaContainer

        super().__init__()
        self.port = free_port()
        self._container = KafkaContainer(image).with_kraft().with_bind_ports(9093, self.port)

    @property
    def bootstrap(self) -> str:
        return f"{self._container.get_container_host_ip()}:{self.port}"

    async def _ready(self) -> bool:
        return await _has_broker(self.bootstrap)


def _wait_until(probe: Callable[[], Awaitable[bool]], timeout: float, container: Any) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if run_sync(probe):
                return
        except Exception as exc:
            last = exc
        time.sleep(0.5)
    logs = b"".join(container.get_logs()).decode(errors="replace")[-4000:]
    raise RuntimeError(f"{container.image} not ready after {timeout}s ({last!r}):\n{logs}")
