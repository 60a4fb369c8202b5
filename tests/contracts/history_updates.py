"""``GET /api/image-builder/v1/composes/updates``: the build history's changes as server-sent events.

Not collected by itself: each database provides ``composer_database_url``
and ``backend_database_url`` and subclasses ``HistoryUpdatesContract``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import msgspec
import pytest

from services.frontend.sse import Message, messages
from tests.backend_service import API, Backend
from tests.composer_service import Composer
from tests.contracts.backend_harness import BackendFixtures
from tests.contracts.composer_api import claim, register

TAR = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}


class Follower:
    """One open ``/composes/updates`` stream."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.stream = aiter(messages(response.aiter_lines()))

    async def next(self, wanted: str = "compose", timeout: float = 20) -> dict[str, Any]:
        async def find() -> Message:
            async for message in self.stream:
                if message.event == wanted:
                    return message
            raise AssertionError("the stream ended")

        return msgspec.json.decode((await asyncio.wait_for(find(), timeout)).data)

    async def until(self, compose_id: str, status: str) -> dict[str, Any]:
        while (change := await self.next())["id"] != compose_id or change["status"] != status:
            pass
        return change


@asynccontextmanager
async def following(backend: Backend, client_id: str) -> AsyncIterator[Follower]:
    """Subscribed (its ``ready`` heard) when the block starts."""
    async with backend.client(client_id) as http, http.stream("GET", f"{API}/composes/updates") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        follower = Follower(response)
        await follower.next("ready")
        yield follower


async def post(backend: Backend, client_id: str = "alice-cli", **changes: Any) -> str:
    async with backend.client(client_id) as http:
        response = await http.post(f"{API}/compose", json={**TAR, **changes})
    assert response.status_code == 201, response.text
    return response.json()["id"]




class HistoryUpdatesContract(BackendFixtures):

    async def test_a_follower_hears_each_change_of_its_orgs_composes_as_it_happens(
        self, backend: Backend, composer: Composer
    ) -> None:
        async with following(backend, "alice-cli") as follower:
            compose_id = await post(backend, image_name="followed")
            requested = await follower.next()
            await follower.until(compose_id, "pending")  # submitted: the row changed, the status did not
            async with composer.client("worker") as worker:
                worker_id = await register(worker)
                claimed = time.monotonic()
                await claim(worker, worker_id, ["depsolve"])
                building = await follower.until(compose_id, "building")
                waited = time.monotonic() - claimed

        assert requested == {
            "id": compose_id, "image_name": "followed", "status": "pending", "upload_status": "pending", "error": None
        }  # fmt: skip
        assert building["id"] == compose_id
        # The consumer's commit woke the followers: not the 5 s fallback read.
        assert waited < 2.5, waited

    async def test_a_follower_hears_nothing_of_another_orgs_composes(self, backend: Backend) -> None:
        async with following(backend, "bob-cli") as bob, following(backend, "alice-cli") as alice:
            compose_id = await post(backend)
            assert (await alice.next())["id"] == compose_id
            with pytest.raises(TimeoutError):
                await bob.next(timeout=1.5)

    async def test_a_deleted_compose_is_heard_as_removed(self, backend: Backend) -> None:
        compose_id = await post(backend)
        async with following(backend, "alice-cli") as follower:
            async with backend.client("alice-cli") as http:
                assert (await http.delete(f"{API}/composes/{compose_id}")).status_code == 200
            removed = await follower.next("removed")

        assert removed == {"id": compose_id}

    async def test_following_needs_a_users_token(self, backend: Backend) -> None:
        async with backend.client(None) as anonymous, backend.client("worker") as worker:
            assert (await anonymous.get(f"{API}/composes/updates")).status_code == 401
            assert (await worker.get(f"{API}/composes/updates")).status_code == 403
