"""The worker API, ``/api/worker/v1``: how the fleet gets jobs and reports back.

A worker registers, then long-polls ``POST /jobs`` for the job types it can
run. The claim answers with a token; the worker renews its lease with
``GET /jobs/{token}`` (which also says whether the job was canceled), streams
progress and log lines with ``PATCH``, uploads artifacts with ``PUT`` (and an
upload job, perhaps on another worker, fetches them back with ``GET``), and
finishes with a final ``PATCH``. A stale token gets 409.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody
from litestar.response import File

from domain.distributions import ARCHITECTURES
from domain.jobs import ERROR_BUILD_FAILED, JobError, JobStatus, JobType
from services.identity.guards import require_roles
from services.identity.principal import Principal

PREFIX = "/api/worker/v1"
MAX_POLL_SECONDS = 60.0


class WorkerRegistration(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    arch: str


class ClaimRequest(msgspec.Struct, forbid_unknown_fields=True):
    worker_id: str
    types: list[JobType]
    arch: str = "x86_64"
    timeout: float = 30.0


class Progress(msgspec.Struct, forbid_unknown_fields=True):
    stage: str
    done: int
    total: int


class Failure(msgspec.Struct, forbid_unknown_fields=True):
    reason: str
    details: Any = None


class JobUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Partial (progress, log) or final (result or error) news of a job."""

    log: list[str] = []
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: Failure | None = None


class WorkerController(Controller):
    path = PREFIX
    guards = [require_roles("worker")]
    tags = ["worker"]

    @post("/workers", status_code=201)
    async def register(self, data: JSONBody[WorkerRegistration], request: Request[Principal, str, State], state: State) -> dict[str, str]:
        if data.arch not in ARCHITECTURES:
            raise HTTPException(status_code=400, detail=f"arch: {data.arch!r} is not one of {', '.join(ARCHITECTURES)}")
        return {"worker_id": await state.fleet.register(data.name, data.arch, request.user.subject)}

    @post("/workers/{worker_id:str}/status", status_code=200)
    async def heartbeat(self, worker_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, str]:
        await state.fleet.seen(worker_id, request.user.subject)
        return {"worker_id": worker_id}

    @post("/jobs", status_code=201)
    async def claim(self, data: JSONBody[ClaimRequest], request: Request[Principal, str, State], state: State) -> Response[Any]:
        arch = await state.fleet.seen(data.worker_id, request.user.subject)
        if not data.types:
            raise HTTPException(status_code=400, detail="types: name at least one job type")
        timeout = min(max(data.timeout, 0.0), MAX_POLL_SECONDS)
        claim = await state.queue.wait_and_claim(data.worker_id, data.types, timeout)
        if claim is None:
            return Response(None, status_code=204)
        return Response(
            {
                "token": claim.token, "job_id": claim.job_id, "compose_id": claim.compose_id,
                "type": claim.job_type, "arch": arch, "args": claim.args,
                "dynamic_args": claim.dependency_results,
                "lease_expires_at": claim.lease_expires_at.isoformat(),
            },
            status_code=201,
        )  # fmt: skip

    @get("/jobs/{token:str}")
    async def job(self, token: FromPath[str], state: State) -> dict[str, Any]:
        status = await state.queue.heartbeat(token)
        return {"status": status, "canceled": status is JobStatus.CANCELED}

    @patch("/jobs/{token:str}")
    async def update(self, token: FromPath[str], data: JSONBody[JobUpdate], state: State) -> dict[str, Any]:
        if data.result is not None and data.error is not None:
            raise HTTPException(status_code=400, detail="a job ends with a result or an error, not both")
        if data.log:
            await state.queue.append_logs(token, data.log)
        if data.progress is not None:
            await state.queue.report_progress(token, data.progress.stage, data.progress.done, data.progress.total)
        if data.result is not None:
            await state.queue.finish(token, data.result)
        elif data.error is not None:
            await state.queue.fail(token, JobError(id=ERROR_BUILD_FAILED, reason=data.error.reason, details=data.error.details))
        return {"accepted": True}

    @put("/jobs/{token:str}/artifacts/{name:str}", status_code=201, request_max_body_size=None)
    async def artifact(self, token: FromPath[str], name: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        declared = request.headers.get("x-checksum-sha256")
        if not declared:
            raise HTTPException(status_code=400, detail="X-Checksum-SHA256: the artifact's sha256 is required")
        await state.queue.heartbeat(token)
        compose_id = await state.queue.reads.compose_of(token)
        size = await state.artifacts.store(compose_id, name, request.stream(), declared)
        await state.queue.record_artifact(token, name, declared.lower(), size)
        return {"name": name, "sha256": declared.lower(), "size": size}

    @get("/jobs/{token:str}/artifacts/{name:str}", media_type="application/octet-stream")
    async def fetch_artifact(self, token: FromPath[str], name: FromPath[str], state: State) -> File:
        """Stream an artifact of the held job's compose, with the sha256 recorded when it was stored."""
        found = await state.queue.reads.artifact_for(token, name)
        return File(state.artifacts.path(found.compose_id, name), filename=name, headers={"X-Checksum-SHA256": found.sha256})
