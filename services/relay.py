"""The ``image-builder relay`` process: one service's outbox to Kafka."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from prometheus_client import start_http_server

from events.consumer import DEAD_LETTER_SUFFIX
from events.kafka import KafkaTransport, ensure_topics
from events.relay import OutboxRelay
from services.settings import SERVICE_TOPICS, Settings
from services.stores import open_store

log = logging.getLogger(__name__)


async def run_relay(settings: Settings, service: str, *, metrics_port: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    assert settings.kafka_bootstrap is not None
    async with open_store(settings, service) as store:
        relay = OutboxRelay(
            store,
            KafkaTransport(settings.kafka_bootstrap, client_id=f"{service}-relay").publisher(),
            poll_interval=settings.relay_poll_interval,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )
        if metrics_port is not None:
            start_http_server(metrics_port, registry=relay.metrics.registry)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, relay.request_stop)
        log.info("relaying the %s outbox to %s", service, settings.kafka_bootstrap)
        await _create_topics(settings, service, relay)
        await relay.run()


async def _create_topics(settings: Settings, service: str, relay: OutboxRelay) -> None:
    """Create the service's topic with its partitions before anything auto-creates it with one."""
    assert settings.kafka_bootstrap is not None
    topic = SERVICE_TOPICS[service]
    backoff = 0.5
    while True:
        try:
            await ensure_topics(settings.kafka_bootstrap, [topic, topic + DEAD_LETTER_SUFFIX], settings.kafka_partitions)
            return
        except Exception as error:  # noqa: BLE001 - broker not up yet: the relay would wait for it too
            log.warning("cannot create topic %s yet, retrying in %.1fs: %s", topic, backoff, error)
            await relay.wakeup.wait(backoff)
            if relay.stopping:
                return
            backoff = min(backoff * 2, 10.0)
