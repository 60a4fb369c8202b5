"""Replay equivalence: ``image-builder replay --service backend`` rebuilds the
projections (build history, blueprints) from the backend's own events, and
every answer is what it was.

Not collected by itself; tests/unit/test_backend_sqlite.py and
tests/integration/test_backend_postgres.py run it on each database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from events.engine import create_engine
from events.envelope import Actor
from events.store import EventStore
from services.backend.composes import Composes
from services.backend.replay import PROJECTION_TABLES
from services.backend.tables import blueprint_versions, blueprints, compose_images, composes
from tests.backend_service import API, Backend
from tests.cli import run_cli
from tests.composer_service import Composer
from tests.contracts.backend_harness import BackendHarness, finish_job, request_for
from tests.contracts.composer_api import claim, register

BLUEPRINTS = f"{API}/blueprints"
AWS_TARGET = {"type": "aws", "upload_options": {"region": "eu-central-1"}}
FILTERS: list[dict[str, str]] = [
    {"status": "pending"}, {"status": "building"}, {"status": "success"}, {"status": "failure"},
    {"image_type": "guest-image"}, {"distribution": "debian-13"}, {"image_name": "web"},
]  # fmt: skip


class BackendReplayContract(BackendHarness):
    async def build_history(self, backend: Backend, composer: Composer) -> list[str]:
        """Composes in every state, in two orgs; returns their ids."""
        done = await self.post(backend, request_for(image_name="web-done", image_type="aws", upload_targets=[AWS_TARGET]))
        await self.wait_until_submitted(backend, done)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await finish_job(worker, await claim(worker, worker_id, ["depsolve"]), {"packages": []})
            await finish_job(worker, await claim(worker, worker_id, ["build"]), {"packages": [], "artifacts": []})
            await finish_job(worker, await claim(worker, worker_id, ["upload"]), {"options": {"ami": "ami-1", "region": "eu-central-1"}})
            await self.wait_for_status(backend, done, "success")
            building = await self.post(backend, request_for(image_name="web-building", distribution="debian-13"))
            await self.wait_until_submitted(backend, building)
            await claim(worker, worker_id, ["depsolve"])
            await self.wait_for_status(backend, building, "building")
        pending = await self.post(backend, request_for(image_name="disk", image_type="guest-image"))
        deleted = await self.post(backend, request_for(image_name="gone"))
        theirs = await self.post(backend, request_for(image_name="bobs"), client_id="bob-cli")
        for compose_id in (pending, deleted):
            await self.wait_until_submitted(backend, compose_id)
        await self.wait_until_submitted(backend, theirs, client_id="bob-cli")
        async with backend.client("alice-cli") as http:
            assert (await http.delete(f"{API}/composes/{deleted}")).status_code == 200
        refused = await self._recorded_unvalidated(backend)
        await self.wait_for_status(backend, refused, "failure")
        return [done, building, pending, deleted, theirs, refused]

    async def build_blueprints(self, backend: Backend) -> list[str]:
        """A blueprint with two versions and a compose made from it; one deleted, its name taken again."""
        async with backend.client("alice-cli") as http:

            async def create(name: str) -> str:
                response = await http.post(f"{BLUEPRINTS}", json=blueprint(name))
                assert response.status_code == 201, response.text
                return response.json()["id"]

            versioned = await create("web")
            assert (await http.put(f"{BLUEPRINTS}/{versioned}", json=blueprint("web", hostname="web-2"))).status_code == 200
            composed = await http.post(f"{BLUEPRINTS}/{versioned}/compose", json={})
            assert composed.status_code == 201, composed.text
            gone = await create("db")
            assert (await http.delete(f"{BLUEPRINTS}/{gone}")).status_code == 200
            again = await create("db")
        return [versioned, gone, again]

    async def _recorded_unvalidated(self, backend: Backend) -> str:
        """A compose the composer refuses (recorded as an older, less strict backend might have)."""
        engine = create_engine(backend.database_url)
        try:
            actor = Actor(subject="alice", org_id="org-a", client="alice-cli")
            return await Composes(EventStore(engine)).request("org-a", request_for(image_type="floppy"), actor)
        finally:
            await engine.dispose()

    async def answers(self, backend: Backend, compose_ids: list[str], blueprint_ids: list[str]) -> dict[str, Any]:
        """Every answer the history and the blueprints give, for both orgs."""
        found: dict[str, Any] = {}
        for client_id in ("alice-cli", "bob-cli"):
            async with backend.client(client_id) as http:
                found[f"{client_id} blueprints"] = (await http.get(BLUEPRINTS)).json()
                for blueprint_id in blueprint_ids:
                    for path, params in (("", {}), ("", {"version": 1}), ("/composes", {}), ("/export", {})):
                        answer = await http.get(f"{BLUEPRINTS}/{blueprint_id}{path}", params=params)
                        found[f"{client_id} {blueprint_id}{path} {params}"] = (answer.status_code, answer.json())
                pages, query = [], {"limit": 2}
                while True:
                    page = (await http.get(f"{API}/composes", params=query)).json()
                    pages.append(page)
                    if page["meta"]["next_cursor"] is None:
                        break
                    query = {"limit": 2, "cursor": page["meta"]["next_cursor"]}
                found[f"{client_id} pages"] = pages
                for where in FILTERS:
                    found[f"{client_id} {where}"] = (await http.get(f"{API}/composes", params=where)).json()
                for compose_id in compose_ids:
                    for path in ("", "/events"):
                        answer = await http.get(f"{API}/composes/{compose_id}{path}")
                        found[f"{client_id} {compose_id}{path}"] = (answer.status_code, answer.json())
        return found

    async def rows(self, database_url: str) -> list[list[dict[str, Any]]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return [
                    [dict(row) for row in (await conn.execute(sa.select(table).order_by(*table.primary_key))).mappings()]
                    for table in (composes, compose_images, blueprints, blueprint_versions)
                ]
        finally:
            await engine.dispose()

    async def test_replay_rebuilds_projections_that_answer_exactly_as_before(
        self, backend: Backend, composer: Composer
    ) -> None:
        ids = await self.build_history(backend, composer), await self.build_blueprints(backend)
        before, rows_before = await self.answers(backend, *ids), await self.rows(backend.database_url)

        engine = create_engine(backend.database_url)
        try:
            async with engine.begin() as conn:
                for table in PROJECTION_TABLES:
                    await conn.execute(table.delete())
        finally:
            await engine.dispose()
        emptied = await self.answers(backend, *ids)
        replayed = await asyncio.to_thread(
            run_cli, "replay", "--service", "backend", env={"IMAGE_BUILDER_BACKEND_DATABASE_URL": backend.database_url}
        )
        after, rows_after = await self.answers(backend, *ids), await self.rows(backend.database_url)

        assert emptied != before  # the projections really were gone
        assert replayed.returncode == 0, replayed.stderr
        assert "7 composes, 3 blueprints" in replayed.stdout
        assert after == before
        assert rows_after == rows_before
        done = before[f"alice-cli {ids[0][0]}"][1]
        assert done["image_status"]["upload_status"]["options"] == {"region": "eu-central-1", "ami": "ami-1"}
        assert {item["status"] for item in before["alice-cli {'status': 'failure'}"]["data"]} == {"failure"}


def blueprint(name: str, hostname: str = "web-1") -> dict[str, Any]:
    return {
        "name": name, "description": f"{name} on a small disk", "distribution": "debian-12",
        "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
        "customizations": {"packages": ["nginx"], "hostname": hostname},
    }  # fmt: skip
