"""The event store contract: every backend must pass these unchanged.

Not collected by itself (no ``test_`` prefix); each backend's test module
subclasses ``EventStoreContract`` and provides the ``database_url`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from events.engine import create_engine
from events.envelope import EventEnvelope
from events.errors import ConcurrencyError, DuplicateEventError
from events.filters import EventFilter
from events.migrations import upgrade_async
from events.schema import events, outbox
from events.store import EventStore
from events.upcasting import UpcasterRegistry
from tests.random_refs import new_event, random_org, random_stream

TOPIC = "composer.events.v1"

# A projection table owned by a test, to show that projection updates commit
# (or roll back) together with the events they come from.
projection = sa.Table(
    "test_compose_counts",
    sa.MetaData(),
    sa.Column("org_id", sa.String(200), primary_key=True),
    sa.Column("composes", sa.Integer, nullable=False),
)


class Follower:
    """A reader that follows global positions the way relays and projections do."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.after = 0
        self.delivered: list[EventEnvelope] = []

    async def poll(self) -> list[EventEnvelope]:
        fresh: list[EventEnvelope] = []
        while page := await self.store.read_all(after_position=self.after, limit=100):
            fresh.extend(page)
            self.after = page[-1].position
        self.delivered.extend(fresh)
        return fresh


class EventStoreContract:
    # PostgreSQL lets writers commit while another is open; SQLite queues them.
    writers_commit_concurrently: bool

    @pytest.fixture
    async def store(self, database_url: str) -> AsyncIterator[EventStore]:
        await upgrade_async(database_url, "composer")
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.run_sync(projection.metadata.create_all)
        store = EventStore(engine, outbox_topic=TOPIC)
        yield store
        await store.close()
        await engine.dispose()

    async def test_a_new_stream_reads_back_in_version_order(self, store: EventStore) -> None:
        stream = random_stream()
        appended = await store.append(stream, 0, [new_event("A"), new_event("B"), new_event("C")])

        stored = await store.read_stream(stream)

        assert [e.event_type for e in stored] == ["A", "B", "C"]
        assert [e.stream_version for e in stored] == [1, 2, 3]
        assert [e.event_id for e in stored] == [e.event_id for e in appended]
        assert stored[0].actor.org_id == "org-1"
        assert await store.stream_version(stream) == 3

    async def test_reading_a_stream_from_a_version_skips_the_earlier_events(self, store: EventStore) -> None:
        stream = random_stream()
        await store.append(stream, 0, [new_event("A"), new_event("B"), new_event("C")])

        assert [e.event_type for e in await store.read_stream(stream, from_version=2)] == ["B", "C"]

    async def test_the_envelope_keeps_every_field_that_was_appended(self, store: EventStore) -> None:
        stream = random_stream()
        event = new_event("ComposeRequested", image_name="web", packages=["nginx", "curl"])
        event = type(event)(
            event_type=event.event_type,
            payload=event.payload,
            actor=event.actor,
            correlation_id="compose-42",
            causation_id="command-7",
            occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        )
        await store.append(stream, 0, [event])

        (stored,) = await store.read_all(where=EventFilter(stream_id=stream.id))

        assert stored.event_id == event.event_id
        assert stored.payload == {"image_name": "web", "packages": ["nginx", "curl"]}
        assert stored.correlation_id == "compose-42"
        assert stored.causation_id == "command-7"
        assert stored.occurred_at == event.occurred_at
        assert stored.actor == event.actor
        assert stored.schema_version == 1
        assert stored.position is not None and stored.hash is not None

    async def test_a_unit_of_work_reads_its_own_appends_before_commit(self, store: EventStore) -> None:
        stream = random_stream()
        await store.append(stream, 0, [new_event("A")])

        async with store.unit_of_work() as uow:
            await uow.append(stream, 1, [new_event("B")])
            inside = [e.event_type for e in await uow.read_stream(stream)]
            outside = [e.event_type for e in await store.read_stream(stream)]

        assert inside == ["A", "B"]
        assert outside == ["A"]

    async def test_a_stale_expected_version_is_refused_naming_stream_and_versions(self, store: EventStore) -> None:
        stream = random_stream()
        await store.append(stream, 0, [new_event(), new_event()])

        with pytest.raises(ConcurrencyError) as refused:
            await store.append(stream, 1, [new_event()])

        assert (refused.value.expected_version, refused.value.actual_version) == (1, 2)
        assert stream.id in str(refused.value)
        assert await store.stream_version(stream) == 2

    async def test_an_expected_version_ahead_of_the_stream_is_refused(self, store: EventStore) -> None:
        stream = random_stream()

        with pytest.raises(ConcurrencyError):
            await store.append(stream, 5, [new_event()])

        assert await store.read_stream(stream) == []

    async def test_of_racing_appends_at_one_version_exactly_one_wins(self, store: EventStore) -> None:
        stream = random_stream()
        await store.append(stream, 0, [new_event()])

        outcomes = await asyncio.gather(
            *(store.append(stream, 1, [new_event(f"Racer{i}")]) for i in range(8)), return_exceptions=True
        )

        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(o, ConcurrencyError) for o in outcomes if isinstance(o, BaseException))
        assert [e.event_type for e in await store.read_stream(stream)][1] == winners[0][0].event_type

    async def test_retrying_an_append_with_the_same_event_ids_stores_them_once(self, store: EventStore) -> None:
        stream = random_stream()
        batch = [new_event("A"), new_event("B")]
        first = await store.append(stream, 0, batch)

        retried = await store.append(stream, 0, batch)

        assert [e.event_id for e in retried] == [e.event_id for e in first]
        assert len(await store.read_stream(stream)) == 2
        assert await self._outbox_count(store, [e.event_id for e in batch]) == 2

    async def test_concurrent_retries_of_one_append_store_it_once(self, store: EventStore) -> None:
        stream = random_stream()
        batch = [new_event("A")]

        outcomes = await asyncio.gather(*(store.append(stream, 0, batch) for _ in range(5)))

        assert {o[0].event_id for o in outcomes} == {batch[0].event_id}
        assert len(await store.read_stream(stream)) == 1

    async def test_an_event_id_stored_in_another_stream_is_refused(self, store: EventStore) -> None:
        event = new_event()
        await store.append(random_stream(), 0, [event])
        other = random_stream()

        with pytest.raises(DuplicateEventError):
            await store.append(other, 0, [event])

        assert await store.read_stream(other) == []
        assert await store.stream_version(other) == 0

    async def test_each_event_gets_an_outbox_row_for_the_service_topic(self, store: EventStore) -> None:
        appended = await store.append(random_stream(), 0, [new_event(), new_event()])

        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.topic, outbox.c.published_at).where(
                        outbox.c.event_id.in_([e.event_id for e in appended])
                    )
                )
            ).all()
        assert sorted(rows) == [(TOPIC, None), (TOPIC, None)]

    async def test_events_outbox_rows_and_projection_updates_commit_together(self, store: EventStore) -> None:
        stream, org = random_stream(), random_org()

        async with store.unit_of_work() as uow:
            appended = await uow.append(stream, 0, [new_event(org_id=org)])
            await uow.connection.execute(projection.insert().values(org_id=org, composes=1))

        assert len(await store.read_stream(stream)) == 1
        assert await self._outbox_count(store, [appended[0].event_id]) == 1
        assert await self._projected(store, org) == 1

    async def test_a_failure_in_the_unit_of_work_leaves_no_event_outbox_row_or_projection(
        self, store: EventStore
    ) -> None:
        stream, org = random_stream(), random_org()
        event = new_event(org_id=org)

        with pytest.raises(RuntimeError):
            async with store.unit_of_work() as uow:
                await uow.append(stream, 0, [event])
                await uow.connection.execute(projection.insert().values(org_id=org, composes=1))
                raise RuntimeError("the projection handler failed")

        assert await store.read_stream(stream) == []
        assert await store.stream_version(stream) == 0
        assert await self._outbox_count(store, [event.event_id]) == 0
        assert await self._projected(store, org) is None
        assert await store.read_all(where=EventFilter(stream_id=stream.id)) == []

    async def test_read_all_pages_through_every_event_in_one_global_order(self, store: EventStore) -> None:
        org = random_org()
        for _ in range(5):
            await store.append(random_stream(), 0, [new_event(org_id=org), new_event(org_id=org)])

        follower = Follower(store)
        await follower.poll()
        mine = [e for e in follower.delivered if e.actor.org_id == org]

        positions = [e.position for e in follower.delivered]
        assert positions == list(range(1, len(positions) + 1))
        assert len(mine) == 10
        first_page = await store.read_all(after_position=0, limit=3)
        assert [e.position for e in first_page] == [1, 2, 3]

    async def test_read_all_filters_by_type_stream_type_org_actor_correlation_and_time(
        self, store: EventStore
    ) -> None:
        org = random_org()
        await store.append(random_stream("compose"), 0, [new_event("ComposeRequested", org_id=org)])
        await store.append(random_stream("blueprint"), 0, [new_event("BlueprintCreated", org_id=org)])
        await store.append(random_stream("compose"), 0, [new_event("ComposeRequested", org_id=random_org())])

        def types(found: list[EventEnvelope]) -> list[str]:
            return [e.event_type for e in found]

        by_org = await store.read_all(where=EventFilter(org_id=org))
        assert sorted(types(by_org)) == ["BlueprintCreated", "ComposeRequested"]
        assert types(await store.read_all(where=EventFilter(org_id=org, event_types=("BlueprintCreated",)))) == [
            "BlueprintCreated"
        ]
        assert types(await store.read_all(where=EventFilter(org_id=org, stream_types=("compose",)))) == [
            "ComposeRequested"
        ]
        assert len(await store.read_all(where=EventFilter(org_id=org, actor_subject="user-1"))) == 2
        assert await store.read_all(where=EventFilter(org_id=org, actor_subject="someone-else")) == []
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert await store.read_all(where=EventFilter(org_id=org, occurred_after=later)) == []
        assert len(await store.read_all(where=EventFilter(org_id=org, occurred_before=later))) == 2

    async def test_concurrent_writers_get_distinct_gapless_positions(self, store: EventStore) -> None:
        await asyncio.gather(*(store.append(random_stream(), 0, [new_event()]) for _ in range(40)))

        everything = await Follower(store).poll()

        assert [e.position for e in everything] == list(range(1, 41))
        assert len({e.event_id for e in everything}) == 40

    async def test_a_follower_never_misses_an_event_whose_transaction_committed_late(
        self, store: EventStore
    ) -> None:
        follower = Follower(store)
        await store.append(random_stream(), 0, [new_event("Before")])
        await follower.poll()
        held = new_event("Held")

        async with store.unit_of_work() as uow:
            await uow.append(random_stream(), 0, [held])
            later = [asyncio.create_task(store.append(random_stream(), 0, [new_event("Later")])) for _ in range(5)]
            if self.writers_commit_concurrently:
                # The later appends commit while the held one is still open,
                # so a follower polling now must not step past the held event.
                await asyncio.gather(*later)
                await follower.poll()
        await asyncio.gather(*later)
        await follower.poll()

        delivered = [e.event_type for e in follower.delivered]
        assert sorted(delivered) == ["Before", "Held"] + ["Later"] * 5
        assert [e.position for e in follower.delivered] == list(range(1, 8))
        assert held.event_id in {e.event_id for e in follower.delivered}

    async def test_old_payloads_are_upcast_from_v1_through_v2_to_v3_on_read(
        self, store: EventStore, database_url: str
    ) -> None:
        stream = random_stream()
        await store.append(stream, 0, [new_event("ImageRequested", size="10")])
        v2 = UpcasterRegistry()
        v2.register("ImageRequested", 1, lambda p: {"size_gib": int(p["size"])})
        store_v2 = EventStore(store.engine, upcasters=v2)
        await store_v2.append(stream, 1, [new_event("ImageRequested", size_gib=20)])
        v3 = UpcasterRegistry()
        v3.register("ImageRequested", 1, lambda p: {"size_gib": int(p["size"])})
        v3.register("ImageRequested", 2, lambda p: {"size_mib": p["size_gib"] * 1024})
        store_v3 = EventStore(store.engine, upcasters=v3)

        read_back = await store_v3.read_stream(stream)

        assert [e.payload for e in read_back] == [{"size_mib": 10240}, {"size_mib": 20480}]
        assert [e.schema_version for e in read_back] == [3, 3]
        async with store.engine.connect() as conn:
            stored = (
                await conn.execute(
                    sa.select(events.c.schema_version, events.c.payload)
                    .where(events.c.stream_id == stream.id)
                    .order_by(events.c.stream_version)
                )
            ).all()
        assert stored == [(1, '{"size":"10"}'), (2, '{"size_gib":20}')]
        assert (await store_v3.verify()).intact

    async def test_verify_reports_an_untouched_chain_as_intact(self, store: EventStore) -> None:
        await self._fill(store, 6)

        report = await store.verify()

        assert report.intact and report.checked == 6 and report.first_broken_position is None

    async def test_verify_finds_an_edited_event(self, store: EventStore) -> None:
        await self._fill(store, 6)

        await self._tamper(store, events.update().where(events.c.position == 4).values(payload='{"n":"forged"}'))

        report = await store.verify()
        assert not report.intact and report.first_broken_position == 4 and report.checked == 3

    async def test_verify_finds_an_edited_actor(self, store: EventStore) -> None:
        await self._fill(store, 3)

        await self._tamper(store, events.update().where(events.c.position == 2).values(actor_org_id="org-evil"))

        assert (await store.verify()).first_broken_position == 2

    async def test_verify_finds_a_deleted_event(self, store: EventStore) -> None:
        await self._fill(store, 6)

        await self._tamper(store, outbox.delete(), events.delete().where(events.c.position == 3))

        report = await store.verify()
        assert not report.intact and report.first_broken_position == 3

    async def test_verify_finds_reordered_events(self, store: EventStore) -> None:
        await self._fill(store, 6)

        await self._tamper(
            store,
            events.update().where(events.c.position == 2).values(position=-2),
            events.update().where(events.c.position == 5).values(position=2),
            events.update().where(events.c.position == -2).values(position=5),
        )

        assert (await store.verify()).first_broken_position == 2

    async def test_verify_finds_events_cut_off_the_end(self, store: EventStore) -> None:
        await self._fill(store, 6)

        await self._tamper(store, outbox.delete(), events.delete().where(events.c.position >= 5))

        report = await store.verify()
        assert not report.intact and report.first_broken_position == 5

    async def test_an_empty_store_verifies_as_intact(self, store: EventStore) -> None:
        assert (await store.verify()).intact

    @staticmethod
    async def _fill(store: EventStore, count: int) -> None:
        for _ in range(count):
            await store.append(random_stream(), 0, [new_event()])
        await store.sequence()

    @staticmethod
    async def _tamper(store: EventStore, *statements: sa.Executable) -> None:
        async with store.engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)

    @staticmethod
    async def _outbox_count(store: EventStore, event_ids: list) -> int:
        async with store.engine.connect() as conn:
            return await conn.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_id.in_(event_ids))
            )

    @staticmethod
    async def _projected(store: EventStore, org_id: str) -> int | None:
        async with store.engine.connect() as conn:
            return await conn.scalar(sa.select(projection.c.composes).where(projection.c.org_id == org_id))
