"""Who follows an org's build history hears at once when one of its composes changes.

The hub follows the backend's own event store, the source the history rows
are projected from: every compose event (requested, submitted, a status or
upload recorded, deleted) names its compose and, in its actor, the org. The
hub reads the events placed after the last one it saw and tells that org's
subscribers which compose changed; they read the row itself from the
projection.

It wakes when this process commits (``EventStore.on_commit``), on
PostgreSQL when any replica commits (the outbox trigger's NOTIFY, which the
relays wake on too), and at the latest every ``interval`` seconds, since a
notification is only a hint. Positions are assigned in commit-safe order
(events/sequencer.py), so reading "after the last position seen" never skips
an event that committed late. While nobody subscribes it only moves its
position to the head (one indexed query) instead of reading events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import sqlalchemy as sa

from events.engine import is_postgres, reading
from events.filters import EventFilter
from events.migrations.messaging_0002 import OUTBOX_CHANNEL
from events.postgres import Listener
from events.schema import events
from events.store import EventStore
from events.wakeup import Wakeup

log = logging.getLogger(__name__)

BATCH = 500
COMPOSE_EVENTS = EventFilter(stream_types=("compose",))


class Subscription:
    """One follower's changed compose ids, in the order they changed.

    A follower that falls ``limit`` changes behind is told it ``lost`` some,
    rather than holding memory for it without end; it should read afresh.
    """

    def __init__(self, org_id: str, limit: int) -> None:
        self.org_id = org_id
        self.lost = False
        self._queue: asyncio.Queue[str] = asyncio.Queue(limit)

    def take_lost(self) -> bool:
        """Whether changes were dropped since the last call (then forgotten: read afresh)."""
        lost, self.lost = self.lost, False
        if lost:
            while not self._queue.empty():
                self._queue.get_nowait()
        return lost

    def put(self, compose_id: str) -> None:
        try:
            self._queue.put_nowait(compose_id)
        except asyncio.QueueFull:
            self.lost = True

    async def next(self, timeout: float) -> str | None:
        """The next changed compose id, or None after ``timeout`` seconds without one."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: see services/backend/submitter.py
                return await self._queue.get()
        return None


class HistoryUpdates:
    def __init__(self, store: EventStore, *, interval: float = 5.0, subscriber_limit: int = 1000) -> None:
        self.store = store
        self.interval = interval
        self.subscriber_limit = subscriber_limit
        self.wakeup = Wakeup()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._position = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener = Listener(store.engine, OUTBOX_CHANNEL, self.wakeup.nudge) if is_postgres(store.engine) else None
        store.on_commit(self.wakeup.nudge)

    async def start(self) -> None:
        self._position = await self._head()
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        self._stopping = True
        self.wakeup.nudge()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._listener is not None:
            await self._listener.stop()

    @contextlib.contextmanager
    def subscribe(self, org_id: str) -> Iterator[Subscription]:
        """Changes of ``org_id``'s composes from now on, while the block runs."""
        subscription = Subscription(org_id, self.subscriber_limit)
        self._subscribers.setdefault(org_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            followers = self._subscribers.get(org_id, set())
            followers.discard(subscription)
            if not followers:
                self._subscribers.pop(org_id, None)

    async def _follow(self) -> None:
        while not self._stopping:
            await self._keep_listening()
            try:
                await self.catch_up()
            except Exception:  # the database may be back at the next wake
                log.warning("could not read the backend's events for live history updates", exc_info=True)
            await self.wakeup.wait(self.interval)

    async def catch_up(self) -> None:
        """Tell subscribers of every compose event placed since the last pass."""
        if not self._subscribers:
            self._position = max(self._position, await self._head())
            return
        while True:
            batch = await self.store.read_all(self._position, BATCH, COMPOSE_EVENTS)
            for event in batch:
                assert event.position is not None
                self._position = event.position
                for subscription in self._subscribers.get(event.actor.org_id, ()):
                    subscription.put(event.stream_id)
            if len(batch) < BATCH:
                return

    async def _head(self) -> int:
        await self.store.sequence()
        async with reading(self.store.engine) as conn:
            return int(await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))) or 0)

    async def _keep_listening(self) -> None:
        if self._listener is None or self._listener.alive:
            return
        try:
            await self._listener.start()
        except OSError as error:
            log.warning("cannot LISTEN for other replicas' commits, reading every %.0fs instead: %s", self.interval, error)
