"""Quotas: N composes per org in a sliding window, by default and per org.

Not collected by itself; tests/unit/test_backend_sqlite.py and
tests/integration/test_backend_postgres.py run it on each database. Each test
starts its own backend with the policy it needs and a clock it moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa

from events.engine import create_engine

from events.inprocess import InProcessBroker
from services.backend.quotas import QuotaPolicy
from tests.backend_service import API, FakeClock, running_backend
from tests.composer_service import Composer
from tests.contracts.backend_harness import REQUEST, BackendHarness
from tests.contracts.pipeline import eventually

HOUR = 3600
T = TypeVar("T")


class BackendQuotaContract(BackendHarness):
    async def test_over_quota_a_compose_is_refused_with_the_limit_the_window_and_when_a_slot_frees(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
        quota = QuotaPolicy(composes=2, window_seconds=HOUR)
        async with running_backend(composer, backend_database_url, broker, clock=clock, quota=quota) as backend:
            await self.post(backend)
            clock.advance(600)
            await self.post(backend)
            clock.advance(600)
            async with backend.client("alice-cli") as http:
                refused = await http.post(f"{API}/compose", json=REQUEST)
            history = (await self.get(backend, "/composes"))["data"]

        assert refused.status_code == 403
        (error,) = refused.json()["errors"]
        assert error["id"] == "403" and "quota of 2 composes per 1 hour" in error["reason"]
        assert error["details"] == {
            "org_id": "org-a", "limit": 2, "window_seconds": HOUR, "used": 2,
            "frees_at": "2026-06-01T13:00:00+00:00",  # the oldest counted compose + the window
        }  # fmt: skip
        assert refused.headers["retry-after"] == str(HOUR - 1200)
        assert len(history) == 2  # nothing was recorded

    async def test_once_the_oldest_compose_leaves_the_window_the_org_may_compose_again(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
        quota = QuotaPolicy(composes=1, window_seconds=HOUR)
        async with running_backend(composer, backend_database_url, broker, clock=clock, quota=quota) as backend:
            await self.post(backend)
            answers = []
            async with backend.client("alice-cli") as http:
                for seconds in (HOUR - 1, 1):  # just inside the window, then exactly at its end
                    clock.advance(seconds)
                    answers.append((await http.post(f"{API}/compose", json=REQUEST)).status_code)

        assert answers == [403, 201]

    async def test_an_orgs_override_replaces_the_default_limit(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        quota = QuotaPolicy(composes=1, window_seconds=HOUR, overrides={"org-a": 3})
        async with running_backend(composer, backend_database_url, broker, quota=quota) as backend:
            answers: dict[str, list[int]] = {}
            for client_id in ("alice-cli", "bob-cli"):
                async with backend.client(client_id) as http:
                    answers[client_id] = [(await http.post(f"{API}/compose", json=REQUEST)).status_code for _ in range(4)]

        assert answers == {"alice-cli": [201, 201, 201, 403], "bob-cli": [201, 403, 403, 403]}

    async def test_an_org_with_a_limit_of_zero_is_told_no_slot_will_free(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        quota = QuotaPolicy(overrides={"org-b": 0})
        async with running_backend(composer, backend_database_url, broker, quota=quota) as backend:
            async with backend.client("bob-cli") as bob:
                refused = await bob.post(f"{API}/compose", json=REQUEST)
            await self.post(backend)  # org-a has no limit

        assert refused.status_code == 403 and "retry-after" not in refused.headers
        assert refused.json()["errors"][0]["details"]["frees_at"] is None

    async def test_requests_racing_for_the_last_slot_let_exactly_one_in(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        quota = QuotaPolicy(composes=3, window_seconds=HOUR)
        async with running_backend(composer, backend_database_url, broker, quota=quota) as backend:
            for _ in range(2):
                await self.wait_until_submitted(backend, await self.post(backend))
            async with backend.client("alice-cli") as http:
                racing = await all_counted_before_any_commits(
                    backend_database_url, [http.post(f"{API}/compose", json=REQUEST) for _ in range(8)]
                )
            history = (await self.get(backend, "/composes"))["data"]

        assert sorted(answer.status_code for answer in racing) == [201] + [403] * 7
        assert len(history) == 3


async def all_counted_before_any_commits(database_url: str, requests: list[Awaitable[T]]) -> list[T]:
    """Run ``requests`` at once; on PostgreSQL make them really overlap.

    Without help the requests mostly arrive one after the other. So the test
    holds an EXCLUSIVE lock on the history table: reads (the quota's count) go
    on, a new row waits. Only when every request waits for a lock (the table,
    or the quota's per-org lock) is it released. Without the quota's lock all
    of them would have counted 2 by then, and all would get in. SQLite needs no
    help: its writers queue for the one write lock.
    """
    if not database_url.startswith("postgresql"):
        return await asyncio.gather(*requests)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as holder:
            await holder.execute(sa.text("LOCK TABLE backend_composes IN EXCLUSIVE MODE"))
            racing = asyncio.gather(*requests)

            async def all_waiting() -> bool:
                async with engine.connect() as conn:
                    waiting = await conn.scalar(sa.text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted"
                        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ))  # fmt: skip
                return waiting >= len(requests)

            await eventually(all_waiting, "every request waits for a lock", timeout=20)
        return await racing
    finally:
        await engine.dispose()
