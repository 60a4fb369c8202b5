"""The composer's HTTP APIs (compose and worker) against a real replica and issuer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from events.engine import create_engine
from tests.composer_service import COMPOSE, WORKER, Composer, running_composer, sha256

REQUEST: dict[str, Any] = {
    "distribution": "debian-12",
    "image_name": "web-server",
    "image_requests": [{"architecture": "x86_64", "image_type": "tar", "upload_targets": [{"type": "local", "upload_options": {}}]}],
    "customizations": {"packages": ["nginx"], "hostname": "web-1"},
}


async def register(http: httpx2.AsyncClient) -> str:
    response = await http.post(f"{WORKER}/workers", json={"name": "builder-1", "arch": "x86_64"})
    assert response.status_code == 201, response.text
    return response.json()["worker_id"]


async def claim(http: httpx2.AsyncClient, worker_id: str, types: list[str], timeout: float = 10) -> dict[str, Any]:
    response = await http.post(f"{WORKER}/jobs", json={"worker_id": worker_id, "types": types, "timeout": timeout})
    assert response.status_code == 201, response.text
    return response.json()


async def every_stored_value(database_url: str) -> str:
    """Every row of every table of the database, as one text to search."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            metadata = sa.MetaData()
            await conn.run_sync(metadata.reflect)
            rows = [row for table in metadata.sorted_tables for row in await conn.execute(sa.select(table))]
    finally:
        await engine.dispose()
    return "\n".join(repr(tuple(row)) for row in rows)


class ComposerApiContract:
    @pytest.fixture
    async def composer(self, database_url: str, tmp_path: Path) -> AsyncIterator[Composer]:
        async with running_composer(database_url, tmp_path) as composer:
            yield composer

    async def submit(self, composer: Composer, client_id: str = "alice-cli", **headers: str) -> str:
        async with composer.client(client_id) as http:
            response = await http.post(f"{COMPOSE}/compose", json=REQUEST, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def status(self, composer: Composer, compose_id: str, client_id: str = "alice-cli") -> dict[str, Any]:
        async with composer.client(client_id) as http:
            response = await http.get(f"{COMPOSE}/composes/{compose_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def test_a_valid_compose_is_accepted_and_starts_pending(self, composer: Composer) -> None:
        compose_id = await self.submit(composer)

        status = await self.status(composer, compose_id)

        assert status["status"] == "pending"
        assert status["image_status"]["upload_status"] == {"type": "local", "status": "pending", "options": {}}
        assert status["image_status"]["progress"] == {"done": 0, "total": 3}

    async def test_an_invalid_compose_is_refused_naming_each_field_and_nothing_is_stored(self, composer: Composer) -> None:
        bad = {
            "distribution": "debian-12",
            "image_requests": [{"architecture": "x86_64", "image_type": "floppy"}],
            "customizations": {
                "hostname": "-bad-",
                "packages": ["Not A Package"],
                "files": [{"path": "etc/../passwd", "data": "x"}],
            },
            "colour": "blue",
        }
        async with composer.client("alice-cli") as http:
            refused = await http.post(f"{COMPOSE}/compose", json=bad)
            listed = await http.get(f"{COMPOSE}/composes")

        assert refused.status_code == 400
        fields = {error["details"]["field"] for error in refused.json()["errors"]}
        assert fields == {
            "colour", "image_requests[0].image_type", "customizations.hostname",
            "customizations.packages[0]", "customizations.files[0].path",
        }  # fmt: skip
        assert listed.json()["items"] == []

    async def test_a_plain_password_is_stored_nowhere_only_its_hash(self, composer: Composer, database_url: str) -> None:
        plain = "correct horse battery"
        with_user = {**REQUEST, "customizations": {"users": [{"name": "alice", "password": plain}]}}
        async with composer.client("alice-cli") as http:
            response = await http.post(f"{COMPOSE}/compose", json=with_user)
        assert response.status_code == 201, response.text

        stored = await every_stored_value(database_url)
        assert plain not in stored
        assert "$6$" in stored

    async def test_malformed_json_is_a_400_not_a_500(self, composer: Composer) -> None:
        async with composer.client("alice-cli") as http:
            refused = await http.post(f"{COMPOSE}/compose", content=b"{not json", headers={"content-type": "application/json"})

        assert refused.status_code == 400
        assert refused.json()["errors"][0]["reason"]

    async def test_a_retried_post_with_the_same_idempotency_key_is_the_same_compose(self, composer: Composer) -> None:
        first = await self.submit(composer, **{"Idempotency-Key": "retry-1"})
        second = await self.submit(composer, **{"Idempotency-Key": "retry-1"})

        assert first == second
        async with composer.client("alice-cli") as http:
            assert len((await http.get(f"{COMPOSE}/composes")).json()["items"]) == 1

    async def test_a_worker_takes_a_compose_through_every_job_to_success(self, composer: Composer) -> None:
        compose_id = await self.submit(composer)
        image = b"pretend this is a root tree\n" * 1000
        async with composer.client("worker") as http:
            worker_id = await register(http)
            depsolve = await claim(http, worker_id, ["depsolve"])
            assert depsolve["type"] == "depsolve" and depsolve["compose_id"] == compose_id
            packages = [{"name": "nginx", "version": "1.22.1-9", "arch": "amd64"}]
            assert (await http.patch(f"{WORKER}/jobs/{depsolve['token']}", json={"result": {"packages": packages}})).status_code == 200

            build = await claim(http, worker_id, ["build"])
            assert build["dynamic_args"] == {"depsolve": {"packages": packages}}
            update = {"log": ["bootstrapping", "installing nginx"], "progress": {"stage": "bootstrap", "done": 1, "total": 4}}
            assert (await http.patch(f"{WORKER}/jobs/{build['token']}", json=update)).status_code == 200
            building = await self.status(composer, compose_id)
            assert building["status"] == "building"
            assert building["image_status"]["progress"] == {"stage": "bootstrap", "done": 1, "total": 4}
            uploaded = await http.put(
                f"{WORKER}/jobs/{build['token']}/artifacts/image.tar", content=image,
                headers={"X-Checksum-SHA256": sha256(image)},
            )  # fmt: skip
            assert uploaded.status_code == 201, uploaded.text
            result = {"packages": packages, "manifest": {"pipelines": []}, "sbom": {"spdxVersion": "SPDX-2.3"}}
            assert (await http.patch(f"{WORKER}/jobs/{build['token']}", json={"result": result})).status_code == 200

            upload = await claim(http, worker_id, ["upload"])
            uploading = await self.status(composer, compose_id)
            assert uploading["status"] == "uploading"
            done = {"result": {"options": {"url": f"{COMPOSE}/composes/{compose_id}/artifacts/image.tar"}}}
            assert (await http.patch(f"{WORKER}/jobs/{upload['token']}", json=done)).status_code == 200

        final = await self.status(composer, compose_id)
        assert final["status"] == "success"
        assert final["image_status"]["upload_status"]["status"] == "success"
        async with composer.client("alice-cli") as http:
            logs = (await http.get(f"{COMPOSE}/composes/{compose_id}/logs")).json()
            metadata = (await http.get(f"{COMPOSE}/composes/{compose_id}/metadata")).json()
            sboms = (await http.get(f"{COMPOSE}/composes/{compose_id}/sboms")).json()
            download = await http.get(f"{COMPOSE}/composes/{compose_id}/artifacts/image.tar")
        assert ["bootstrapping", "installing nginx"] in [build["log"] for build in logs["image_builds"]]
        assert metadata["packages"] == [packages]
        assert sboms["items"][0][0]["sbom"]["spdxVersion"] == "SPDX-2.3"
        assert download.status_code == 200 and download.content == image

    async def test_an_upload_job_fetches_its_builds_image_only_while_it_holds_the_job(self, composer: Composer) -> None:
        await self.submit(composer)
        image = b"raw disk\n" * 5000
        async with composer.client("worker") as http:
            worker_id = await register(http)
            depsolve = await claim(http, worker_id, ["depsolve"])
            await http.patch(f"{WORKER}/jobs/{depsolve['token']}", json={"result": {"packages": []}})
            build = await claim(http, worker_id, ["build"])
            await http.put(
                f"{WORKER}/jobs/{build['token']}/artifacts/image.tar", content=image,
                headers={"X-Checksum-SHA256": sha256(image)},
            )  # fmt: skip
            await http.patch(f"{WORKER}/jobs/{build['token']}", json={"result": {"packages": []}})
            upload = await claim(http, worker_id, ["upload"])

            fetched = await http.get(f"{WORKER}/jobs/{upload['token']}/artifacts/image.tar")
            unknown = await http.get(f"{WORKER}/jobs/{upload['token']}/artifacts/other.tar")
            finished = await http.get(f"{WORKER}/jobs/{build['token']}/artifacts/image.tar")
            stranger = await http.get(f"{WORKER}/jobs/not-a-token/artifacts/image.tar")

        assert fetched.status_code == 200 and fetched.content == image
        assert fetched.headers["x-checksum-sha256"] == sha256(image)
        assert unknown.status_code == 404 and "other.tar" in unknown.json()["errors"][0]["reason"]
        assert finished.status_code == 409 and stranger.status_code == 409

    async def test_an_artifact_whose_checksum_does_not_match_is_refused_and_not_served(self, composer: Composer) -> None:
        compose_id = await self.submit(composer)
        async with composer.client("worker") as http:
            worker_id = await register(http)
            depsolve = await claim(http, worker_id, ["depsolve"])
            refused = await http.put(
                f"{WORKER}/jobs/{depsolve['token']}/artifacts/image.tar", content=b"corrupted",
                headers={"X-Checksum-SHA256": sha256(b"original")},
            )  # fmt: skip
        assert refused.status_code == 400
        assert "sha256" in refused.json()["errors"][0]["reason"]
        async with composer.client("alice-cli") as http:
            assert (await http.get(f"{COMPOSE}/composes/{compose_id}/artifacts/image.tar")).status_code == 404

    async def test_a_result_with_a_stale_token_gets_409(self, composer: Composer) -> None:
        await self.submit(composer)
        async with composer.client("worker") as http:
            worker_id = await register(http)
            depsolve = await claim(http, worker_id, ["depsolve"])
            assert (await http.patch(f"{WORKER}/jobs/{depsolve['token']}", json={"result": {}})).status_code == 200

            again = await http.patch(f"{WORKER}/jobs/{depsolve['token']}", json={"result": {}})
            unknown = await http.get(f"{WORKER}/jobs/not-a-token")

        assert again.status_code == 409 and unknown.status_code == 409

    async def test_canceling_a_compose_tells_its_running_worker(self, composer: Composer) -> None:
        compose_id = await self.submit(composer)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            depsolve = await claim(worker, worker_id, ["depsolve"])
            assert (await worker.get(f"{WORKER}/jobs/{depsolve['token']}")).json() == {"status": "running", "canceled": False}
            async with composer.client("alice-cli") as user:
                canceled = await user.post(f"{COMPOSE}/composes/{compose_id}/cancel")
            assert canceled.status_code == 200
            assert (await worker.get(f"{WORKER}/jobs/{depsolve['token']}")).json() == {"status": "canceled", "canceled": True}

        final = await self.status(composer, compose_id)
        assert final["status"] == "failure" and final["error"]["reason"] == "canceled"

    async def test_a_long_poll_with_nothing_to_do_ends_with_204(self, composer: Composer) -> None:
        async with composer.client("worker") as http:
            worker_id = await register(http)
            response = await http.post(f"{WORKER}/jobs", json={"worker_id": worker_id, "types": ["build"], "timeout": 0.5})

        assert response.status_code == 204

    async def test_a_waiting_worker_gets_a_job_as_soon_as_it_is_submitted(self, composer: Composer) -> None:
        async with composer.client("worker") as http:
            worker_id = await register(http)
            waiting = asyncio.create_task(claim(http, worker_id, ["depsolve"], timeout=55))
            await asyncio.sleep(0.3)
            compose_id = await self.submit(composer)
            job = await asyncio.wait_for(waiting, 10)

        assert job["compose_id"] == compose_id

    async def test_another_orgs_compose_is_not_found_on_any_path(self, composer: Composer) -> None:
        compose_id = await self.submit(composer, "alice-cli")
        paths = ["", "/logs", "/metadata", "/manifests", "/sboms", "/artifacts/image.tar"]
        async with composer.client("bob-cli") as bob:
            answers = [(await bob.get(f"{COMPOSE}/composes/{compose_id}{path}")).status_code for path in paths]
            answers.append((await bob.post(f"{COMPOSE}/composes/{compose_id}/cancel")).status_code)
            answers.append((await bob.delete(f"{COMPOSE}/composes/{compose_id}")).status_code)
            listed = (await bob.get(f"{COMPOSE}/composes")).json()["items"]

        assert answers == [404] * 8
        assert listed == []
        assert (await self.status(composer, compose_id))["status"] == "pending"

    async def test_only_a_trusted_service_may_act_for_another_org(self, composer: Composer) -> None:
        compose_id = await self.submit(composer, "backend", **{"X-Image-Builder-Org": "org-a"})

        assert (await self.status(composer, compose_id, "alice-cli"))["id"] == compose_id
        async with composer.client("rogue-service") as rogue:
            refused = await rogue.post(f"{COMPOSE}/compose", json=REQUEST, headers={"X-Image-Builder-Org": "org-a"})
        async with composer.client("alice-cli") as alice:
            impersonating = await alice.get(f"{COMPOSE}/composes", headers={"X-Image-Builder-Org": "org-b"})
        assert refused.status_code == 403 and impersonating.status_code == 403

    async def test_tokens_and_roles_are_required(self, composer: Composer) -> None:
        async with composer.client(None) as anonymous:
            assert (await anonymous.get(f"{COMPOSE}/composes")).status_code == 401
            assert (await anonymous.get("/health")).status_code == 200
        async with composer.client("alice-cli") as user:
            assert (await user.post(f"{WORKER}/workers", json={"name": "x", "arch": "x86_64"})).status_code == 403
        async with composer.client("worker") as worker:
            assert (await worker.get(f"{COMPOSE}/composes")).status_code == 403

    async def test_a_deleted_compose_is_gone_but_its_events_remain(self, composer: Composer) -> None:
        compose_id = await self.submit(composer)
        async with composer.client("alice-cli") as http:
            assert (await http.delete(f"{COMPOSE}/composes/{compose_id}")).status_code == 200
            assert (await http.get(f"{COMPOSE}/composes/{compose_id}")).status_code == 404

    async def test_the_openapi_document_and_distributions_are_published(self, composer: Composer) -> None:
        async with composer.client(None) as anonymous:
            document = await anonymous.get(f"{COMPOSE}/openapi.json")
        async with composer.client("alice-cli") as http:
            distributions = (await http.get(f"{COMPOSE}/distributions")).json()

        assert document.status_code == 200
        assert f"{COMPOSE}/compose" in document.json()["paths"]
        assert {d["name"] for d in distributions["items"]} == {"debian-12", "debian-13"}

    async def test_metrics_count_jobs_per_type_and_tenant_claims_and_durations(self, composer: Composer) -> None:
        await self.submit(composer)
        await self.submit(composer)
        async with composer.client("worker") as http:
            worker_id = await register(http)
            first = await claim(http, worker_id, ["depsolve"])
            await claim(http, worker_id, ["depsolve"])
            await http.patch(f"{WORKER}/jobs/{first['token']}", json={"result": {}})
            text = (await http.get("/metrics")).text

        assert 'composer_jobs{status="running",tenant="org-a",type="depsolve"} 1.0' in text
        assert 'composer_jobs{status="pending",tenant="org-a",type="build"} 2.0' in text
        assert 'composer_claims_total{type="depsolve"} 2.0' in text
        assert 'composer_job_wait_seconds_count{type="depsolve"} 2.0' in text
        assert 'composer_job_run_seconds_count{status="success",type="depsolve"} 1.0' in text
