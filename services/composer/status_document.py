"""The compose status document, in the upstream compose API's shape."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec

from domain.composes import JobView, derive_status, upload_status_of
from domain.jobs import JobStatus, JobType
from services.composer.records import upload_options
from services.composer.views import ComposeViews, JobRow


async def compose_status(views: ComposeViews, org_id: str, compose_id: str, prefix: str) -> dict[str, Any]:
    compose = await views.compose(org_id, compose_id)
    by_image: dict[int, list[JobRow]] = defaultdict(list)
    for job in await views.jobs(org_id, compose_id):
        by_image[int(job.args.get("image_index", 0))].append(job)
    images = [_image_status(by_image[index]) for index in sorted(by_image)]
    return {
        "id": compose_id,
        "kind": "ComposeStatus",
        "href": f"{prefix}/composes/{compose_id}",
        "status": compose.status,
        "created_at": compose.created_at.isoformat(),
        "image_status": images[0] if images else None,
        "image_statuses": images,
        "error": _error(compose.error),
    }


def _image_status(jobs: list[JobRow]) -> dict[str, Any]:
    derived = derive_status([JobView(job_type=j.job_type, status=j.status, error=j.error) for j in jobs])
    build = next((job for job in jobs if job.job_type is JobType.BUILD), None)
    progress: dict[str, Any] = {"done": derived.done, "total": derived.total}
    if build is not None and build.progress and build.status is JobStatus.RUNNING:
        progress = {key: build.progress[key] for key in ("done", "total", "stage")}
    uploads = [_upload_status(job) for job in jobs if job.job_type is JobType.UPLOAD]
    return {
        "status": derived.status,
        "error": _error(derived.error),
        "progress": progress,
        "upload_status": uploads[0] if uploads else None,
        "upload_statuses": uploads,
    }


def _upload_status(job: JobRow) -> dict[str, Any]:
    target = job.args.get("target", {})
    return {"type": target.get("type", "local"), "status": upload_status_of(job.status).value,
            "options": upload_options(target, job.result)}  # fmt: skip


def _error(error: Any) -> dict[str, Any] | None:
    return None if error is None else msgspec.to_builtins(error)
