"""What a worker does for each job type: depsolve, build, upload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import msgspec

from workers.aws.config import AwsConfig
from workers.build import BuildCancelled, DepsolveFailed, StageFailed, UnsupportedImage, build_image, depsolve_request
from workers.client import Assignment, ComposerClient, ComposerUnreachable
from workers.process import MAX_BACKOFF, JobFailure, JobRunner, Reporter
from workers.uploads import upload_runner

log = logging.getLogger(__name__)


def job_runners(
    client: ComposerClient, cache_dir: Path, work_root: Path, aws: AwsConfig | None = None
) -> dict[str, JobRunner]:
    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        try:
            specs = await depsolve_request(job.args, cache_dir, on_log=reporter.log, cancel=cancel)
        except DepsolveFailed as failed:
            raise JobFailure(str(failed), {"package": failed.package}) from failed
        except UnsupportedImage as unsupported:
            raise JobFailure(str(unsupported)) from unsupported
        except BuildCancelled as stopped:
            raise asyncio.CancelledError from stopped
        return {"packages": msgspec.to_builtins(specs)}

    async def build(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        work_dir = work_root / job.job_id
        try:
            result = await build_image(
                job.args, job.dynamic_args["depsolve"]["packages"], work_dir, cache_dir,
                on_stage=lambda index, total, name: reporter.progress(name, index, total),
                on_log=reporter.log, cancel=cancel,
            )  # fmt: skip
            for artifact in result.artifacts:
                reporter.log(f"uploading {artifact.name} ({artifact.size} bytes, sha256 {artifact.sha256})")
                await upload_artifact(client, job.token, artifact.name, Path(artifact.path), artifact.sha256, cancel)
        except StageFailed as failed:
            raise JobFailure(f"stage {failed.stage_name} failed", {"stage": failed.stage_name, "output": failed.tail}) from failed
        except UnsupportedImage as unsupported:
            raise JobFailure(str(unsupported)) from unsupported
        except BuildCancelled as stopped:
            raise asyncio.CancelledError from stopped
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        return {
            "packages": msgspec.to_builtins(result.packages),
            "sbom": result.sbom,
            "manifest": result.manifest,
            "artifacts": [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in result.artifacts],
        }

    return {"depsolve": depsolve, "build": build, "upload": upload_runner(client, work_root, aws or AwsConfig())}


async def upload_artifact(
    client: ComposerClient, token: str, name: str, path: Path, sha256: str, cancel: asyncio.Event, backoff: float = 1.0
) -> None:
    """Send a built artifact until the composer takes it: a replica that dies
    mid-upload must not fail a finished build. Storing it again is harmless
    (the composer replaces the file and its record). Ends when the job is
    canceled or no longer ours (the watcher sets ``cancel``; a refusal raises
    ``StaleJob``)."""
    while True:
        try:
            await client.upload(token, name, path, sha256)
            return
        except ComposerUnreachable as error:
            if cancel.is_set():
                raise
            log.warning("cannot upload %s yet, retrying in %.0fs: %s", name, backoff, error)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(backoff):  # not wait_for: see events/wakeup.py
                await cancel.wait()
        backoff = min(backoff * 2, MAX_BACKOFF)
