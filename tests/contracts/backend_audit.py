"""The audit log over HTTP: who reads which events, filters, paging, and the chain check.

Not collected by itself; tests/unit/test_backend_sqlite.py and
tests/integration/test_backend_postgres.py run it on each database. The
composer serves the same routes for its own store (last test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from events.engine import create_engine
from events.inprocess import InProcessBroker
from events.schema import events
from tests.backend_service import API, Backend, running_backend
from tests.composer_service import COMPOSE, Composer
from tests.contracts.backend_harness import REQUEST, BackendHarness

AUDIT = f"{API}/audit"


class BackendAuditContract(BackendHarness):
    @pytest.fixture
    async def backend(self, composer: Composer, backend_database_url: str, broker: InProcessBroker) -> AsyncIterator[Backend]:
        async with running_backend(composer, backend_database_url, broker, operator_org="org-ops") as backend:
            yield backend

    async def audit(self, http: httpx2.AsyncClient, **params: Any) -> list[dict[str, Any]]:
        """Every page of the audit log, following the cursor."""
        found: list[dict[str, Any]] = []
        while True:
            response = await http.get(f"{AUDIT}/events", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            found += page["data"]
            if page["meta"]["next_cursor"] is None:
                assert "next" not in page["links"]
                return found
            params = {**params, "cursor": page["meta"]["next_cursor"]}

    async def test_an_auditor_reads_its_orgs_event_log_with_positions_and_hashes(self, backend: Backend) -> None:
        ours = await self.post(backend)
        await self.wait_until_submitted(backend, ours)
        theirs = await self.post(backend, client_id="bob-cli")

        async with backend.client("audrey-audit") as auditor:
            log = await self.audit(auditor)

        assert {event["correlation_id"] for event in log} == {ours}
        assert [event["type"] for event in log] == ["ComposeRequested", "ComposeSubmitted"]
        first = log[0]
        assert first["stream"] == {"type": "compose", "id": ours} and first["version"] == 1
        assert first["actor"]["org_id"] == "org-a" and first["actor"]["client"] == "alice-cli"
        assert first["payload"]["request"]["image_name"] == REQUEST["image_name"]
        assert first["causation_id"] is None and log[1]["actor"]["subject"] == "image-builder-backend"
        assert all(len(event["hash"]) == 64 for event in log)
        positions = [event["position"] for event in log]
        assert positions == sorted(positions) and theirs not in str(log)

    async def test_the_audit_log_filters_by_stream_type_actor_correlation_and_time_and_pages_by_position(
        self, backend: Backend
    ) -> None:
        first = await self.post(backend)
        await self.wait_until_submitted(backend, first)
        second = await self.post(backend)
        await self.wait_until_submitted(backend, second)

        async with backend.client("audrey-audit") as auditor:
            everything = await self.audit(auditor)
            one_by_one = await self.audit(auditor, limit=1)
            by_stream = await self.audit(auditor, stream_type="compose", stream_id=second)
            by_correlation = await self.audit(auditor, correlation_id=first)
            requested = await self.audit(auditor, event_type="ComposeRequested")
            user = everything[0]["actor"]["subject"]
            by_actor = await self.audit(auditor, actor=user)
            since = everything[2]["occurred_at"]
            after = await self.audit(auditor, occurred_after=since)
            before = await self.audit(auditor, occurred_before=since)
            nothing = await self.audit(auditor, stream_type="blueprint", stream_id=first)

        def ids(events: list[dict[str, Any]]) -> list[str]:
            return [event["event_id"] for event in events]

        assert len(everything) == 4 and one_by_one == everything
        assert {event["correlation_id"] for event in by_stream} == {second} and len(by_stream) == 2
        assert {event["correlation_id"] for event in by_correlation} == {first} and len(by_correlation) == 2
        assert [event["correlation_id"] for event in requested] == [first, second]
        assert ids(by_actor) == ids(requested)  # the backend itself recorded the submissions
        assert ids(before) + ids(after) == ids(everything)
        assert nothing == []

    async def test_only_auditors_read_the_audit_log_and_an_auditor_never_writes(self, backend: Backend) -> None:
        compose_id = await self.post(backend)

        async with backend.client("alice-cli") as user, backend.client("audrey-audit") as auditor:
            users_reads = [(await user.get(f"{AUDIT}/{path}")).status_code for path in ("events", "verify")]
            auditors_writes = [
                (await auditor.post(f"{API}/compose", json=REQUEST)).status_code,
                (await auditor.delete(f"{API}/composes/{compose_id}")).status_code,
                (await auditor.get(f"{API}/composes")).status_code,
            ]
            elsewhere = await auditor.get(f"{AUDIT}/events", params={"org_id": "org-b"})
        async with backend.client(None) as anonymous:
            anonymous_read = (await anonymous.get(f"{AUDIT}/events")).status_code

        assert users_reads == [403, 403] and auditors_writes == [403, 403, 403] and anonymous_read == 401
        assert elsewhere.status_code == 403 and "service-wide auditor" in elsewhere.json()["errors"][0]["reason"]
        assert (await self.get(backend, f"/composes/{compose_id}"))["id"] == compose_id

    async def test_a_service_wide_auditor_reads_every_org_and_may_narrow_to_one(self, backend: Backend) -> None:
        ours = await self.post(backend)
        theirs = await self.post(backend, client_id="bob-cli")

        async with backend.client("olga-operator") as operator:
            everything = await self.audit(operator, event_type="ComposeRequested")
            only_b = await self.audit(operator, event_type="ComposeRequested", org_id="org-b")
        async with backend.client("bert-audit") as bobs_auditor:
            bobs = await self.audit(bobs_auditor, event_type="ComposeRequested")

        assert [event["correlation_id"] for event in everything] == [ours, theirs]
        assert [event["correlation_id"] for event in only_b] == [theirs] == [event["correlation_id"] for event in bobs]

    async def test_verify_reports_an_intact_chain_then_the_first_tampered_position(self, backend: Backend) -> None:
        compose_id = await self.post(backend)
        await self.wait_until_submitted(backend, compose_id)
        async with backend.client("audrey-audit") as auditor:
            log = await self.audit(auditor)
            intact = (await auditor.get(f"{AUDIT}/verify")).json()
            tampered_at = log[1]["position"]
            await _tamper(backend.database_url, tampered_at)
            broken = (await auditor.get(f"{AUDIT}/verify")).json()

        assert intact == {"intact": True, "checked": log[-1]["position"], "first_broken_position": None, "reason": None}
        assert broken["intact"] is False and broken["first_broken_position"] == tampered_at
        assert broken["reason"] == "the stored event does not match its hash"

    async def test_the_composer_serves_the_audit_log_of_its_own_store(self, backend: Backend, composer: Composer) -> None:
        ours = await self.post(backend)
        await self.wait_until_submitted(backend, ours)
        await self.post(backend, client_id="bob-cli")
        composer_id = (await self.composer_composes(composer))[0]["id"]

        async with composer.client("audrey-audit") as auditor:
            response = await auditor.get(f"{COMPOSE}/audit/events", params={"stream_type": "compose"})
            verified = (await auditor.get(f"{COMPOSE}/audit/verify")).json()
            writes = (await auditor.post(f"{COMPOSE}/compose", json=REQUEST)).status_code
        async with composer.client("alice-cli") as user:
            users_read = (await user.get(f"{COMPOSE}/audit/events")).status_code

        assert response.status_code == 200, response.text
        events = response.json()["data"]
        assert [(event["type"], event["stream"]["id"]) for event in events] == [("ComposeRequested", composer_id)]
        assert events[0]["actor"]["org_id"] == "org-a" and events[0]["payload"]["idempotency_key"] == ours
        assert verified["intact"] is True
        assert (writes, users_read) == (403, 403)


async def _tamper(database_url: str, position: int) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(events.update().where(events.c.position == position).values(payload='{"edited":true}'))
    finally:
        await engine.dispose()
