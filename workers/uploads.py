"""The upload job: send a build's image where the request asked.

``local``: the composer already holds it. ``aws.s3`` and ``aws``: the build
streamed its artifacts to the composer and removed its work directory, and this
job may run on another worker, so it fetches the image back from the composer
(checksum verified), then puts it into S3, and for ``aws`` imports it into EC2
as an AMI. What fails becomes a JobFailure whose reason says what to fix.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import msgspec

from workers.aws import ec2 as ec2_images
from workers.aws.config import AwsConfig
from workers.aws.errors import UploadFailed
from workers.aws.s3 import delete_object, object_url, put_file
from workers.client import ArtifactCorrupt, Assignment, ComposerClient, ComposerUnreachable, Refused, StaleJob
from workers.process import JobFailure, JobRunner, Reporter

log = logging.getLogger(__name__)

COMPOSE_API = "/api/image-builder-composer/v2"
FETCH_ATTEMPTS = 4


class S3Place(msgspec.Struct, frozen=True):
    region: str
    bucket: str
    key: str


def s3_place(aws: AwsConfig, job: Assignment, options: dict[str, Any], name: str) -> S3Place:
    """Where an ``aws.s3`` upload goes: the request's choices, else the worker's defaults."""
    bucket = options.get("bucket") or aws.bucket
    if not bucket:
        raise JobFailure("aws.s3: the request names no bucket and this worker has none (IMAGE_BUILDER_WORKER_AWS_BUCKET)")
    key = options.get("key") or f"image-builder/{job.compose_id}/{job.args.get('image_index', 0)}/{name}"
    return S3Place(options.get("region") or aws.region, bucket, key)


def import_place(aws: AwsConfig, job: Assignment, options: dict[str, Any], name: str) -> S3Place:
    """Where an ``aws`` upload's raw image waits in S3 while EC2 imports it."""
    if not aws.bucket:
        raise JobFailure("aws: this worker has no S3 bucket for images on their way into EC2 (IMAGE_BUILDER_WORKER_AWS_BUCKET)")
    if not name.endswith(".raw"):
        raise JobFailure(f"aws: EC2 imports a raw disk image, and {name} is not one")
    return S3Place(options["region"], aws.bucket, f"image-builder/imports/{job.job_id}/{name}")


def upload_runner(client: ComposerClient, work_root: Path, aws: AwsConfig) -> JobRunner:
    async def upload(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        target = job.args["target"]
        kind, options = target["type"], target.get("upload_options") or {}
        built = job.dynamic_args["build"]["artifacts"]
        if kind == "local":  # the build already streamed its artifacts to the composer, which serves them
            base = f"{COMPOSE_API}/composes/{job.compose_id}/artifacts"
            return {"options": {"artifacts": [a["name"] for a in built], "url": f"{base}/{built[0]['name']}"}}
        if kind == "aws.s3":
            place = s3_place(aws, job, options, built[0]["name"])
        elif kind == "aws":
            place = import_place(aws, job, options, built[0]["name"])
        else:
            raise JobFailure(f"upload target {kind!r} is not supported by this worker")
        work_dir = work_root / job.job_id
        try:
            image = await _fetch(client, job, built[0], work_dir, reporter, cancel)
            if kind == "aws.s3":
                return {"options": await _to_s3(aws, place, bool(options.get("public")), image, reporter, cancel)}
            return {"options": await _to_ec2(aws, job, place, options, image, reporter, cancel)}
        except UploadFailed as failed:
            raise JobFailure(failed.reason, failed.details) from failed
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    return upload


async def _fetch(
    client: ComposerClient, job: Assignment, artifact: dict[str, Any], work_dir: Path, reporter: Reporter,
    cancel: asyncio.Event,
) -> Path:  # fmt: skip
    name = artifact["name"]
    reporter.log(f"fetching {name} ({artifact['size']} bytes) from the composer")
    attempt = 1
    while True:
        try:
            return await client.download(job.token, name, artifact["sha256"], work_dir)
        except ComposerUnreachable as error:
            if attempt == FETCH_ATTEMPTS:
                raise JobFailure(f"cannot fetch {name} from the composer: {error}") from error
            reporter.log(f"fetching {name} failed, trying again: {error}")
            await asyncio.sleep(2**attempt)
            attempt += 1
        except ArtifactCorrupt as error:
            raise JobFailure(f"the image fetched from the composer is corrupt: {error}") from error
        except Refused as error:
            raise JobFailure(f"the composer did not hand out {name}: {error}") from error
        except StaleJob as error:
            cancel.set()  # the job is no longer ours: stop like a canceled one
            raise asyncio.CancelledError from error


def _progress_log(reporter: Reporter, what: str, total: int) -> Any:
    """A byte counter that logs every tenth of ``total``."""
    sent = [0, 0]  # bytes, last tenth logged

    def on_bytes(count: int) -> None:
        sent[0] += count
        tenth = sent[0] * 10 // max(total, 1)
        if tenth > sent[1]:
            sent[1] = tenth
            reporter.log(f"{what}: {min(sent[0], total)} of {total} bytes")

    return on_bytes


async def _to_s3(
    aws: AwsConfig, place: S3Place, public: bool, image: Path, reporter: Reporter, cancel: asyncio.Event
) -> dict[str, Any]:
    s3 = await asyncio.to_thread(aws.client, "s3", place.region)
    where = f"s3://{place.bucket}/{place.key}"
    reporter.log(f"uploading {image.name} to {where} ({place.region})")
    await put_file(
        s3, image, place.bucket, place.key, part_size=aws.part_size, cancel=cancel,
        on_bytes=_progress_log(reporter, f"uploading to {where}", image.stat().st_size),
        extra_args={"ACL": "public-read"} if public else None,
    )  # fmt: skip
    reporter.log(f"uploaded {where}")
    return {"url": object_url(s3, place.bucket, place.key, aws.url_expiry_seconds, public=public)}


async def _to_ec2(
    aws: AwsConfig, job: Assignment, place: S3Place, options: dict[str, Any], image: Path, reporter: Reporter,
    cancel: asyncio.Event,
) -> dict[str, Any]:  # fmt: skip
    name = options.get("snapshot_name") or f"image-builder-{job.compose_id}-{job.args.get('image_index', 0)}"
    description = f"image-builder compose {job.compose_id}"
    accounts = list(options.get("share_with_accounts") or [])
    s3, ec2 = await asyncio.gather(
        asyncio.to_thread(aws.client, "s3", place.region), asyncio.to_thread(aws.client, "ec2", place.region)
    )
    where = f"s3://{place.bucket}/{place.key}"
    reporter.log(f"uploading {image.name} to {where} ({place.region}) for the EC2 import")
    try:
        await put_file(
            s3, image, place.bucket, place.key, part_size=aws.part_size, cancel=cancel,
            on_bytes=_progress_log(reporter, f"uploading to {where}", image.stat().st_size),
        )  # fmt: skip
        reporter.log("importing the image into EC2 as a snapshot")
        snapshot_id = await ec2_images.import_snapshot(
            ec2, place.bucket, place.key, description=description, timeout=aws.import_timeout_seconds,
            poll=aws.import_poll_seconds, cancel=cancel, on_status=lambda status: reporter.log(f"snapshot import: {status}"),
        )  # fmt: skip
    finally:
        await _quietly(delete_object(s3, place.bucket, place.key), reporter)
    image_id = None
    try:
        await ec2_images.name_snapshot(ec2, snapshot_id, name)
        image_id = await ec2_images.register_image(ec2, snapshot_id, name, description)
        reporter.log(f"registered {image_id} from snapshot {snapshot_id} in {place.region}")
        if accounts:
            await ec2_images.share(ec2, image_id, snapshot_id, accounts)
            reporter.log(f"shared {image_id} with {', '.join(accounts)}")
    except UploadFailed:
        # Half an image is of no use to anyone, and its snapshot costs money.
        if image_id is not None:
            await _quietly(ec2_images.deregister_image(ec2, image_id), reporter)
        await _quietly(ec2_images.delete_snapshot(ec2, snapshot_id), reporter)
        raise
    return {"ami": image_id, "region": place.region}


async def _quietly(cleanup: Any, reporter: Reporter) -> None:
    """Clean up after ourselves; a failure here is logged, not the job's failure."""
    try:
        await cleanup
    except UploadFailed as failed:
        reporter.log(f"cleanup: {failed.reason}")
        log.warning("upload cleanup failed: %s", failed.reason)
