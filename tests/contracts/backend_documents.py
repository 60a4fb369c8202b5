"""What the user reads of a compose beyond its status: each upload's result in
the history, and the logs, metadata and SBOMs the composer keeps.

Not collected by itself; tests/unit/test_backend_sqlite.py and
tests/integration/test_backend_postgres.py run it on each database.
"""

from __future__ import annotations

from typing import Any

from tests.backend_service import API, Backend
from tests.composer_service import WORKER, Composer
from tests.contracts.backend_harness import BackendHarness, finish_job, request_for
from tests.contracts.composer_api import claim, register
from tests.contracts.pipeline import eventually

AWS_TARGET = {"type": "aws", "upload_options": {"region": "eu-central-1", "share_with_accounts": ["123456789012"]}}
BUILD_RESULT = {
    "packages": [{"name": "nginx", "version": "1.22.1-9"}],
    "manifest": {"pipelines": []},
    "sbom": {"spdxVersion": "SPDX-2.3", "name": "web-server"},
    "artifacts": [{"name": "image.raw", "sha256": "0" * 64, "size": 1}],
}


class BackendDocumentsContract(BackendHarness):
    async def upload_status(self, backend: Backend, compose_id: str) -> dict[str, Any]:
        return (await self.get(backend, f"/composes/{compose_id}"))["image_status"]["upload_status"]

    async def test_the_history_shows_an_uploads_progress_and_its_ami_as_the_composer_reported_them(
        self, backend: Backend, composer: Composer
    ) -> None:
        compose_id = await self.post(backend, request_for(image_type="aws", upload_targets=[AWS_TARGET]))
        await self.wait_until_submitted(backend, compose_id)
        seen = [await self.upload_status(backend, compose_id)]

        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await finish_job(worker, await claim(worker, worker_id, ["depsolve"]), {"packages": []})
            await finish_job(worker, await claim(worker, worker_id, ["build"]), BUILD_RESULT)
            upload = await claim(worker, worker_id, ["upload"])

            async def running() -> bool:
                return (await self.upload_status(backend, compose_id))["status"] == "running"

            await eventually(running, "the upload shows as running", timeout=20)
            seen.append(await self.upload_status(backend, compose_id))
            await finish_job(worker, upload, {"options": {"ami": "ami-0abc", "region": "eu-central-1"}})
        final = await self.wait_for_status(backend, compose_id, "success")

        options = {"region": "eu-central-1", "share_with_accounts": ["123456789012"]}
        assert seen == [
            {"type": "aws", "status": "pending", "options": {}},
            {"type": "aws", "status": "running", "options": options},
        ]
        assert final["image_status"]["upload_status"] == {
            "type": "aws", "status": "success", "options": {**options, "ami": "ami-0abc"},
        }  # fmt: skip
        timeline = (await self.get(backend, f"/composes/{compose_id}/events"))["data"]
        recorded = [event for event in timeline if event["type"] == "ComposeUploadRecorded"]
        assert [event["payload"]["status"] for event in recorded] == ["running", "success"]
        assert all(event["causation_id"] for event in recorded)  # each caused by a composer event

    async def test_a_local_uploads_download_url_reaches_the_history_before_its_success(
        self, backend: Backend, composer: Composer
    ) -> None:
        compose_id = await self.post(backend)
        await self.wait_until_submitted(backend, compose_id)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await finish_job(worker, await claim(worker, worker_id, ["depsolve"]), {"packages": []})
            await finish_job(worker, await claim(worker, worker_id, ["build"]), BUILD_RESULT)
            upload = await claim(worker, worker_id, ["upload"])
            url = f"/api/image-builder-composer/v2/composes/{upload['compose_id']}/artifacts/image.raw"
            await finish_job(worker, upload, {"options": {"artifacts": ["image.raw"], "url": url}})

        final = await self.wait_for_status(backend, compose_id, "success")

        assert final["image_status"]["upload_status"] == {
            "type": "local", "status": "success", "options": {"artifacts": ["image.raw"], "url": url},
        }  # fmt: skip
        # running, success with the URL, and only then the compose's success
        assert (await self.event_types(backend, compose_id))[-3:] == [
            "ComposeUploadRecorded", "ComposeUploadRecorded", "ComposeStatusRecorded",
        ]  # fmt: skip

    async def test_logs_metadata_and_sboms_come_from_the_composer_for_the_orgs_own_compose(
        self, backend: Backend, composer: Composer
    ) -> None:
        compose_id = await self.post(backend)
        await self.wait_until_submitted(backend, compose_id)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await finish_job(worker, await claim(worker, worker_id, ["depsolve"]), {"packages": []})
            build = await claim(worker, worker_id, ["build"])
            logged = await worker.patch(f"{WORKER}/jobs/{build['token']}", json={"log": ["stage 1 of 9"]})
            assert logged.status_code == 200, logged.text
            await finish_job(worker, build, BUILD_RESULT)

        metadata = await self.get(backend, f"/composes/{compose_id}/metadata")
        sboms = await self.get(backend, f"/composes/{compose_id}/sboms")
        logs = await self.get(backend, f"/composes/{compose_id}/logs")
        async with backend.client("bob-cli") as bob:
            elsewhere = [(await bob.get(f"{API}/composes/{compose_id}/{name}")).status_code
                         for name in ("metadata", "logs", "sboms")]  # fmt: skip

        assert metadata["packages"] == [BUILD_RESULT["packages"]]
        assert sboms["items"] == [[{"sbom_type": "spdx", "sbom": BUILD_RESULT["sbom"]}]]
        build_logs = [entry for entry in logs["image_builds"] if entry["job_type"] == "build"]
        assert build_logs[0]["log"] == ["stage 1 of 9"]
        assert elsewhere == [404, 404, 404]

    async def test_a_compose_the_composer_has_not_taken_has_no_documents_yet(
        self, backend: Backend, composer: Composer
    ) -> None:
        async with composer.outage():
            compose_id = await self.post(backend)
            async with backend.client("alice-cli") as http:
                answer = await http.get(f"{API}/composes/{compose_id}/logs")

        assert answer.status_code == 409
        (error,) = answer.json()["errors"]
        assert error["details"] == {"compose_id": compose_id, "submission": "pending"}
        assert "has not reached the composer" in error["reason"]
