"""What a worker does for each job type: depsolve, build, upload."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import msgspec

from workers.aws.config import AwsConfig
from workers.build import BuildCancelled, DepsolveFailed, StageFailed, UnsupportedImage, build_image, depsolve_request
from workers.client import Assignment, ComposerClient
from workers.process import JobFailure, JobRunner, Reporter
from workers.uploads import upload_runner


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
                await client.upload(job.token, artifact.name, Path(artifact.path), artifact.sha256)
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
