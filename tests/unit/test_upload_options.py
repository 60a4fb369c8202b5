"""Upload options: where an image goes, the worker's AWS settings, error wording, following an EC2 import."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from services.settings import load_settings
from workers.aws import ec2 as ec2_images
from workers.aws.config import AwsConfig
from workers.aws.errors import UploadFailed, explain
from workers.aws.s3 import object_url
from workers.client import Assignment, ComposerClient
from workers.process import JobFailure, Reporter
from workers.uploads import S3Place, import_place, s3_place, upload_runner

KEYS = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret"}


def upload_job(target: dict[str, Any], artifact: str = "image.raw") -> Assignment:
    return Assignment(
        token="t", job_id="job-1", compose_id="compose-1", type="upload", arch="x86_64",
        args={"target": target, "image_index": 2, "compose_id": "compose-1"},
        dynamic_args={"build": {"artifacts": [{"name": artifact, "sha256": "0" * 64, "size": 1}]}},
        lease_expires_at="",
    )  # fmt: skip


def test_the_requests_bucket_key_and_region_win_over_the_workers_defaults() -> None:
    aws = AwsConfig(region="us-east-1", bucket="worker-bucket")
    options = {"region": "eu-west-1", "bucket": "my-images", "key": "web/disk.qcow2"}

    assert s3_place(aws, upload_job({}), options, "disk.qcow2") == S3Place("eu-west-1", "my-images", "web/disk.qcow2")


def test_without_choices_the_workers_bucket_and_region_and_a_key_per_compose_and_image_are_used() -> None:
    place = s3_place(AwsConfig(region="eu-north-1", bucket="worker-bucket"), upload_job({}), {}, "disk.qcow2")

    assert place == S3Place("eu-north-1", "worker-bucket", "image-builder/compose-1/2/disk.qcow2")


def test_an_s3_upload_with_no_bucket_anywhere_names_the_setting() -> None:
    with pytest.raises(JobFailure, match="IMAGE_BUILDER_WORKER_AWS_BUCKET"):
        s3_place(AwsConfig(), upload_job({}), {}, "disk.qcow2")


def test_an_ec2_import_waits_in_the_workers_bucket_in_the_requested_region() -> None:
    place = import_place(AwsConfig(bucket="imports"), upload_job({}), {"region": "ap-south-1"}, "image.raw")

    assert place == S3Place("ap-south-1", "imports", "image-builder/imports/job-1/image.raw")


def test_an_ec2_import_of_anything_but_a_raw_disk_is_refused() -> None:
    with pytest.raises(JobFailure, match="raw disk image, and disk.qcow2 is not one"):
        import_place(AwsConfig(bucket="imports"), upload_job({}), {"region": "ap-south-1"}, "disk.qcow2")


async def test_an_unknown_target_fails_the_job_before_anything_is_fetched(tmp_path: Path) -> None:
    client = ComposerClient("http://127.0.0.1:9", "http://127.0.0.1:9/token", "worker", "secret")
    runner = upload_runner(client, tmp_path, AwsConfig())

    with pytest.raises(JobFailure, match="'gcp' is not supported"):
        await runner(upload_job({"type": "gcp"}), Reporter(client, "t"), asyncio.Event())
    await client.close()


def test_credentials_come_in_pairs_and_urls_expire_within_sigv4s_week() -> None:
    with pytest.raises(ValueError, match="both"):
        AwsConfig(access_key_id="AKIAEXAMPLE")
    with pytest.raises(ValueError, match="604800"):
        AwsConfig(url_expiry_seconds=8 * 24 * 3600)


def test_the_workers_aws_settings_come_from_the_environment() -> None:
    settings = load_settings({
        "IMAGE_BUILDER_WORKER_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "IMAGE_BUILDER_WORKER_AWS_SECRET_ACCESS_KEY": "secret",
        "IMAGE_BUILDER_WORKER_AWS_REGION": "eu-west-3", "IMAGE_BUILDER_WORKER_AWS_BUCKET": "images",
        "IMAGE_BUILDER_WORKER_AWS_S3_ENDPOINT_URL": "http://s3.internal:9000",
        "IMAGE_BUILDER_WORKER_AWS_EC2_ENDPOINT_URL": "http://ec2.internal:5000",
        "IMAGE_BUILDER_WORKER_AWS_URL_EXPIRY_SECONDS": "3600", "IMAGE_BUILDER_WORKER_AWS_IMPORT_TIMEOUT_SECONDS": "900",
    })  # fmt: skip

    aws = AwsConfig(**settings.worker_aws())

    assert aws == AwsConfig(
        **KEYS, region="eu-west-3", bucket="images", s3_endpoint_url="http://s3.internal:9000",
        ec2_endpoint_url="http://ec2.internal:5000", url_expiry_seconds=3600, import_timeout_seconds=900,
    )  # fmt: skip
    assert AwsConfig(**load_settings({}).worker_aws()) == AwsConfig()


def test_a_presigned_url_carries_its_expiry_and_a_public_objects_url_is_plain() -> None:
    s3 = AwsConfig(**KEYS, s3_endpoint_url="http://s3.internal:9000").client("s3", "eu-west-1")

    signed = urlsplit(object_url(s3, "images", "web/disk.raw", 3600))
    public = object_url(s3, "images", "web/disk.raw", 3600, public=True)

    assert (signed.netloc, signed.path) == ("s3.internal:9000", "/images/web/disk.raw")
    assert parse_qs(signed.query)["X-Amz-Expires"] == ["3600"]
    assert public == "http://s3.internal:9000/images/web/disk.raw"


def test_aws_errors_are_explained_in_words_with_their_code() -> None:
    missing = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}, "PutObject")
    odd = ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")
    offline = EndpointConnectionError(endpoint_url="http://s3.internal:9000/images")

    assert explain("uploading to s3://images/k", missing).reason == (
        "uploading to s3://images/k failed: the bucket does not exist (NoSuchBucket)"
    )
    assert explain("uploading", odd).reason == "uploading failed: Please reduce your request rate. (SlowDown)"
    assert explain("uploading", odd, bucket="images").details == {
        "bucket": "images", "code": "SlowDown", "message": "Please reduce your request rate."
    }  # fmt: skip
    assert explain("uploading", offline).reason == "uploading failed: cannot reach http://s3.internal:9000/images"


class FakeImports:
    """The EC2 port as far as a snapshot import goes: statuses in turn, then the last one for ever."""

    def __init__(self, *statuses: dict[str, Any]) -> None:
        self.statuses = list(statuses)
        self.canceled: list[str] = []

    def import_snapshot(self, **params: Any) -> dict[str, Any]:
        assert params["DiskContainer"]["Format"] == "raw"
        return {"ImportTaskId": "import-snap-1"}

    def describe_import_snapshot_tasks(self, ImportTaskIds: list[str]) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"ImportSnapshotTasks": [{"ImportTaskId": ImportTaskIds[0], "SnapshotTaskDetail": status}]}

    def cancel_import_task(self, ImportTaskId: str) -> dict[str, Any]:
        self.canceled.append(ImportTaskId)
        return {}


ACTIVE = {"Status": "active", "Progress": "40", "StatusMessage": "converting"}


async def follow(ec2: FakeImports, timeout: float = 5.0, cancel: asyncio.Event | None = None) -> str:
    return await ec2_images.import_snapshot(
        ec2, "imports", "k.raw", description="d", timeout=timeout, poll=0.01, cancel=cancel or asyncio.Event()
    )


async def test_an_import_is_followed_until_ec2_completes_it() -> None:
    ec2 = FakeImports(ACTIVE, ACTIVE, {"Status": "completed", "SnapshotId": "snap-1"})

    assert await follow(ec2) == "snap-1"


async def test_an_import_ec2_gave_up_on_fails_with_ec2s_message() -> None:
    ec2 = FakeImports(ACTIVE, {"Status": "deleted", "StatusMessage": "ClientError: Disk validation failed"})

    with pytest.raises(UploadFailed, match="could not import the image as a snapshot: ClientError: Disk validation failed"):
        await follow(ec2)


async def test_an_import_that_takes_too_long_is_canceled_and_fails() -> None:
    ec2 = FakeImports(ACTIVE)

    with pytest.raises(UploadFailed, match="within 0 s"):
        await follow(ec2, timeout=0.05)
    assert ec2.canceled == ["import-snap-1"]


async def test_a_canceled_job_cancels_its_import() -> None:
    cancel = asyncio.Event()
    cancel.set()
    ec2 = FakeImports(ACTIVE)

    with pytest.raises(asyncio.CancelledError):
        await follow(ec2, cancel=cancel)
    assert ec2.canceled == ["import-snap-1"]
