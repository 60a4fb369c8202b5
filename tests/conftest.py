"""Session-wide real servers: PostgreSQL, Kafka, an S3 server and moto's EC2.

Also one package cache for every real build of the session, whatever its
tier, so each .deb is downloaded once (IMAGE_BUILDER_TEST_CACHE keeps it
between runs).

Each server starts lazily, the first time a test asks for it, and stops at the
end of the session. With a reachable Docker engine PostgreSQL and Kafka run in
testcontainers; otherwise as local processes (tests/servers/). TEST_SERVERS=local
or =docker forces one. S3Proxy and moto always run as local processes. A server
that cannot start is an error, never a skip.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.containers import KafkaContainerServer, PostgresContainerServer
from tests.servers.kafka import KafkaServer
from tests.servers.moto_server import MotoServer
from tests.servers.postgres import PostgresServer
from tests.servers.s3proxy import S3ProxyServer


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("IMAGE_BUILDER_TEST_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("build-cache")


@functools.cache
def use_docker() -> bool:
    choice = os.environ.get("TEST_SERVERS", "auto")
    if choice in ("local", "docker"):
        return choice == "docker"
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no client config, no socket, daemon down: all mean "no"
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | PostgresContainerServer]:
    server = PostgresContainerServer() if use_docker() else PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url_factory(postgres_server: PostgresServer | PostgresContainerServer) -> Callable[..., str]:
    """Call it to get a new, empty, randomly named database's asyncpg URL."""

    def new_database(prefix: str = "test") -> str:
        return postgres_server.create_database(f"{prefix}_{uuid.uuid4().hex[:12]}")

    return new_database


@pytest.fixture
def postgres_url(postgres_url_factory: Callable[..., str]) -> str:
    """A fresh database for this test alone: ``postgresql+asyncpg://...``."""
    return postgres_url_factory()


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[KafkaServer | KafkaContainerServer]:
    """stop() and start() keep the data and the bootstrap address."""
    server = KafkaContainerServer() if use_docker() else KafkaServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: KafkaServer | KafkaContainerServer) -> str:
    return kafka_server.bootstrap


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3ProxyServer]:
    """S3Proxy: a real S3-compatible server (see docs/workers.md for why this one)."""
    server = S3ProxyServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's server mode, with the EC2 image import moto lacks (tests/servers/moto_server.py)."""
    server = MotoServer()
    server.start()
    yield server
    server.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tier markers follow the folder, so `-m unit` etc. select whole tiers."""
    for item in items:
        for tier in ("unit", "integration", "e2e"):
            if tier in item.path.parts:
                item.add_marker(tier)
