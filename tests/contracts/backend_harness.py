"""What every backend contract suite stands on: a real composer and issuer, a
backend beside them, and the calls the tests make.

Each database (SQLite, PostgreSQL) provides ``composer_database_url`` and
``backend_database_url``. The composer's outbox reaches the backend through an
in-process broker; tests/integration/test_backend_kafka.py does it through Kafka.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from events.inprocess import InProcessBroker
from tests.backend_service import API, Backend, relaying, running_backend
from tests.composer_service import COMPOSE, WORKER, Composer, running_composer
from tests.contracts.pipeline import eventually

REQUEST: dict[str, Any] = {
    "distribution": "debian-12",
    "image_name": "web-server",
    "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
    "customizations": {"packages": ["nginx"], "hostname": "web-1"},
}


def request_for(**changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(REQUEST)
    image = changes.pop("image_type", None)
    if image is not None:
        request["image_requests"][0]["image_type"] = image
    targets = changes.pop("upload_targets", None)
    if targets is not None:
        request["image_requests"][0]["upload_targets"] = targets
    request.update(changes)
    return request


async def finish_job(worker: httpx2.AsyncClient, job: dict[str, Any], result: dict[str, Any]) -> None:
    response = await worker.patch(f"{WORKER}/jobs/{job['token']}", json={"result": result})
    assert response.status_code == 200, response.text


class BackendFixtures:
    """A composer relaying to an in-process broker and a backend consuming from it."""

    @pytest.fixture
    def broker(self) -> InProcessBroker:
        return InProcessBroker()

    @pytest.fixture
    async def composer(self, composer_database_url: str, tmp_path: Path, broker: InProcessBroker) -> AsyncIterator[Composer]:
        async with running_composer(composer_database_url, tmp_path) as composer, relaying(composer_database_url, broker):
            yield composer

    @pytest.fixture
    async def backend(self, composer: Composer, backend_database_url: str, broker: InProcessBroker) -> AsyncIterator[Backend]:
        async with running_backend(composer, backend_database_url, broker) as backend:
            yield backend


class BackendHarness(BackendFixtures):
    async def post(self, backend: Backend, request: dict[str, Any] = REQUEST, client_id: str = "alice-cli") -> str:
        async with backend.client(client_id) as http:
            response = await http.post(f"{API}/compose", json=request)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def get(self, backend: Backend, path: str, client_id: str = "alice-cli", **params: Any) -> dict[str, Any]:
        async with backend.client(client_id) as http:
            response = await http.get(f"{API}{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def composer_composes(self, composer: Composer, client_id: str = "alice-cli") -> list[dict[str, Any]]:
        async with composer.client(client_id) as http:
            return (await http.get(f"{COMPOSE}/composes")).json()["items"]

    async def event_types(self, backend: Backend, compose_id: str, client_id: str = "alice-cli") -> list[str]:
        timeline = await self.get(backend, f"/composes/{compose_id}/events", client_id)
        return [event["type"] for event in timeline["data"]]

    async def wait_for_status(self, backend: Backend, compose_id: str, status: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            seen.update(await self.get(backend, f"/composes/{compose_id}"))
            return seen["status"] == status

        await eventually(reached, f"compose {compose_id} is {status} in the history", timeout=20)
        return seen

    async def wait_until_submitted(self, backend: Backend, compose_id: str, client_id: str = "alice-cli") -> None:
        async def submitted() -> bool:
            return "ComposeSubmitted" in await self.event_types(backend, compose_id, client_id)

        await eventually(submitted, f"compose {compose_id} handed to the composer", timeout=20)
