"""Relay replicas as separate processes: one publishes, another takes over when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from events.engine import create_engine
from events.migrations import upgrade_async
from events.relay import RELAY_LOCK_KEY
from events.store import EventStore
from services.settings import SERVICE_TOPICS
from tests.cli import IMAGE_BUILDER
from tests.contracts.pipeline import eventually
from tests.random_refs import new_event, random_stream
from tests.servers._util import free_port

pytestmark = pytest.mark.integration


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def composer_store(postgres_url: str) -> AsyncIterator[EventStore]:
    await upgrade_async(postgres_url, "composer")
    engine = create_engine(postgres_url)
    store = EventStore(engine, outbox_topic=SERVICE_TOPICS["composer"])
    yield store
    await store.close()
    await engine.dispose()


def _start_relay(postgres_url: str, kafka_bootstrap: str, metrics_port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "IMAGE_BUILDER_COMPOSER_DATABASE_URL": postgres_url,
        "IMAGE_BUILDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "IMAGE_BUILDER_RELAY_POLL_INTERVAL": "0.5",
    }
    return subprocess.Popen(
        [str(IMAGE_BUILDER), "relay", "--service", "composer", "--metrics-port", str(metrics_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def _leaders(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = 0 AND objid = :key"
            ),
            {"key": RELAY_LOCK_KEY},
        )


async def test_one_of_two_relay_replicas_publishes_and_the_other_takes_over_when_it_dies(
    composer_store: EventStore, postgres_url: str, kafka_bootstrap: str
) -> None:
    first_port, second_port = free_port(), free_port()
    first = _start_relay(postgres_url, kafka_bootstrap, first_port)
    second: subprocess.Popen[str] | None = None
    try:
        await eventually(lambda: _leads(first_port), "the first relay leads", 60)
        second = _start_relay(postgres_url, kafka_bootstrap, second_port)
        await eventually(lambda: _serves(second_port), "the second relay is up", 60)
        for _ in range(10):
            await composer_store.append(random_stream(), 0, [new_event()])
        await eventually(lambda: _true(_metric(first_port, "outbox_published_total") == 10), "leader published 10")
        assert _metric(second_port, "outbox_relay_leader") == 0
        assert _metric(second_port, "outbox_published_total") == 0
        assert await _leaders(composer_store.engine) == 1

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        for _ in range(10):
            await composer_store.append(random_stream(), 0, [new_event()])
        await eventually(lambda: _true(_metric(second_port, "outbox_published_total") == 10), "takeover", 30)
        print(f"takeover after SIGKILL: {time.monotonic() - killed_at:.2f}s")
        assert await _leaders(composer_store.engine) == 1
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)


async def _serves(port: int) -> bool:
    try:
        _metric(port, "outbox_relay_leader")
    except OSError:
        return False
    return True


async def _leads(port: int) -> bool:
    return await _serves(port) and _metric(port, "outbox_relay_leader") == 1
