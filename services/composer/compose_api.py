"""The compose API, ``/api/image-builder-composer/v2``.

Paths, fields and status words follow the public osbuild-composer cloud API
where they overlap. Controllers only parse, call one application function and
map its result; errors become HTTP in services/composer/errors.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, Parameter
from litestar.response import File

from domain.composes import plan_jobs
from domain.distributions import DISTRIBUTIONS
from domain.jobs import JobType
from domain.validation import validate_compose_request
from services.composer.status_document import compose_status
from services.composer.tenancy import actor_of, caller_org
from services.composer.views import ComposeNotFound
from services.identity.guards import require_roles
from services.identity.principal import Principal
from services.passwords import sealed

PREFIX = "/api/image-builder-composer/v2"
MAX_BODY = 4 * 1024 * 1024


class ComposeController(Controller):
    path = PREFIX
    guards = [require_roles("user", "admin", "service")]
    tags = ["compose"]

    @post("/compose", status_code=201, request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Principal, str, State], state: State) -> dict[str, str]:
        """Validate the whole request, then record the compose and queue its jobs."""
        compose = await sealed(validate_compose_request(await request.body()))
        org = caller_org(request, state.trusted_clients)
        compose_id = str(uuid.uuid4())
        plain = msgspec.to_builtins(compose)
        common = {"distribution": compose.distribution, "customizations": plain.get("customizations", {})}
        planned = plan_jobs(compose_id, plain["image_requests"], common)
        stored_id = await state.queue.submit(
            compose_id, org, plain, planned, actor_of(request.user, org),
            idempotency_key=request.headers.get("idempotency-key"),
        )  # fmt: skip
        return {"id": stored_id, "kind": "ComposeId", "href": f"{PREFIX}/composes/{stored_id}"}

    @get("/composes")
    async def list_composes(
        self, request: Request[Principal, str, State], state: State,
        limit: int = Parameter(default=100, ge=1, le=1000), offset: int = Parameter(default=0, ge=0),
    ) -> dict[str, Any]:  # fmt: skip
        org = caller_org(request, state.trusted_clients)
        rows = await state.views.composes(org, limit, offset)
        return {
            "kind": "ComposeList",
            "items": [
                {"id": r.compose_id, "status": r.status, "created_at": r.created_at.isoformat(),
                 "image_name": r.request.get("image_name"), "distribution": r.request.get("distribution")}
                for r in rows
            ],
        }  # fmt: skip

    @get("/composes/{compose_id:str}")
    async def status(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        org = caller_org(request, state.trusted_clients)
        return await compose_status(state.views, org, compose_id, PREFIX)

    @get("/composes/{compose_id:str}/logs")
    async def logs(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        org = caller_org(request, state.trusted_clients)
        jobs = {job.job_id: job for job in await state.views.jobs(org, compose_id)}
        lines = await state.views.logs(org, compose_id)
        return {
            "kind": "ComposeLogs",
            "image_builds": [
                {"job_id": job_id, "job_type": jobs[job_id].job_type, "status": jobs[job_id].status, "log": text}
                for job_id, text in lines.items()
            ],
        }

    @get("/composes/{compose_id:str}/metadata")
    async def metadata(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        build = await _build_results(request, state, compose_id)
        return {"kind": "ComposeMetadata", "packages": [r.get("packages", []) for r in build]}

    @get("/composes/{compose_id:str}/manifests")
    async def manifests(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        build = await _build_results(request, state, compose_id)
        return {"kind": "ComposeManifests", "manifests": [r.get("manifest") for r in build]}

    @get("/composes/{compose_id:str}/sboms")
    async def sboms(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        build = await _build_results(request, state, compose_id)
        return {"kind": "ComposeSBOMs", "items": [[{"sbom_type": "spdx", "sbom": r.get("sbom")}] for r in build]}

    @get("/composes/{compose_id:str}/artifacts/{name:str}", media_type="application/octet-stream")
    async def download(self, compose_id: FromPath[str], name: FromPath[str], request: Request[Principal, str, State], state: State) -> File:
        org = caller_org(request, state.trusted_clients)
        known = {artifact.name: artifact for artifact in await state.views.artifacts(org, compose_id)}
        if name not in known:
            raise ComposeNotFound(compose_id)
        return File(state.artifacts.path(compose_id, name), filename=name, headers={"Digest": f"sha-256={known[name].sha256}"})

    @post("/composes/{compose_id:str}/cancel", status_code=200)
    async def cancel(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        org = caller_org(request, state.trusted_clients)
        await state.views.compose(org, compose_id)
        await state.queue.cancel_compose(compose_id, actor_of(request.user, org))
        return await compose_status(state.views, org, compose_id, PREFIX)

    @delete("/composes/{compose_id:str}", status_code=200)
    async def remove(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, str]:
        org = caller_org(request, state.trusted_clients)
        await state.views.compose(org, compose_id)
        await state.queue.delete_compose(compose_id, actor_of(request.user, org))
        return {"id": compose_id, "kind": "ComposeDeleted"}

    @get("/distributions")
    async def distributions(self) -> dict[str, Any]:
        return {
            "kind": "DistributionList",
            "items": [
                {"name": d.name, "codename": d.codename, "architectures": list(d.architectures)}
                for d in DISTRIBUTIONS.values()
            ],
        }


async def _build_results(request: Request[Principal, str, State], state: State, compose_id: str) -> list[dict[str, Any]]:
    org = caller_org(request, state.trusted_clients)
    return [job.result or {} for job in await state.views.jobs(org, compose_id) if job.job_type is JobType.BUILD]

