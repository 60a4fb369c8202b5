"""The ``aws`` upload (S3, snapshot import, AMI, sharing) against moto's server, through a real composer and worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.composer_service import Composer, running_composer
from tests.servers.moto_server import MotoServer
from tests.upload_flow import compose_request, compose_until_done, uploading_worker
from workers.aws.config import AwsConfig

REGION = "eu-central-1"
PARTNER = "210987654321"
DISK = b"\x00" * 512 * 1024 + b"pretend partition table" + b"\x00" * 512 * 1024


@pytest.fixture
async def composer(tmp_path: Path) -> AsyncIterator[Composer]:
    async with running_composer(f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}", tmp_path) as composer:
        yield composer


def aws_for(server: MotoServer, **overrides: Any) -> AwsConfig:
    settings: dict[str, Any] = {
        "access_key_id": server.access_key, "secret_access_key": server.secret_key,
        "s3_endpoint_url": server.url, "ec2_endpoint_url": server.url, "import_poll_seconds": 0.1,
    }  # fmt: skip
    return AwsConfig(**{**settings, **overrides})


def new_bucket(server: MotoServer) -> str:
    bucket = f"imports-{uuid.uuid4().hex[:12]}"
    s3 = aws_for(server).client("s3", REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return bucket


async def test_a_raw_image_becomes_an_ami_on_the_imported_snapshot_shared_with_the_given_account(
    composer: Composer, moto_server: MotoServer, tmp_path: Path
) -> None:
    bucket = new_bucket(moto_server)
    name = f"debian-web-{uuid.uuid4().hex[:8]}"
    target = {"type": "aws", "upload_options": {"region": REGION, "share_with_accounts": [PARTNER], "snapshot_name": name}}
    async with uploading_worker(composer, tmp_path, aws_for(moto_server, bucket=bucket), "image.raw", DISK):
        done = await compose_until_done(composer, compose_request("aws", target))

    assert done["status"] == "success", done
    upload = done["image_status"]["upload_status"]
    assert upload["type"] == "aws" and upload["status"] == "success"
    assert upload["options"]["region"] == REGION
    ami = upload["options"]["ami"]
    ec2 = aws_for(moto_server).client("ec2", REGION)
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert (image["Name"], image["Architecture"], image["BootMode"], image["EnaSupport"]) == (name, "x86_64", "uefi", True)
    assert image["RootDeviceName"] == "/dev/xvda"
    [root] = image["BlockDeviceMappings"]
    snapshot_id = root["Ebs"]["SnapshotId"]
    imported = [
        task["SnapshotTaskDetail"] for task in ec2.describe_import_snapshot_tasks()["ImportSnapshotTasks"]
        if task["SnapshotTaskDetail"].get("SnapshotId") == snapshot_id
    ]  # fmt: skip
    assert imported and imported[0]["Format"] == "RAW" and imported[0]["DiskImageSize"] == len(DISK)
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert {"Key": "Name", "Value": name} in snapshot["Tags"]
    launch = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    volumes = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    assert launch == [{"UserId": PARTNER}]
    assert volumes["CreateVolumePermissions"] == [{"UserId": PARTNER}]
    left = aws_for(moto_server).client("s3", REGION).list_objects_v2(Bucket=bucket)
    assert "Contents" not in left, "the image on its way into EC2 is deleted afterwards"


async def test_a_missing_import_bucket_fails_the_compose_with_a_clear_reason(
    composer: Composer, moto_server: MotoServer, tmp_path: Path
) -> None:
    aws = aws_for(moto_server, bucket="no-such-import-bucket")
    async with uploading_worker(composer, tmp_path, aws, "image.raw", DISK):
        done = await compose_until_done(composer, compose_request("aws", {"type": "aws", "upload_options": {"region": REGION}}))

    assert done["status"] == "failure"
    assert "s3://no-such-import-bucket/" in done["error"]["reason"]
    assert "the bucket does not exist (NoSuchBucket)" in done["error"]["reason"]


async def test_a_worker_without_an_import_bucket_says_which_setting_is_missing(
    composer: Composer, moto_server: MotoServer, tmp_path: Path
) -> None:
    async with uploading_worker(composer, tmp_path, aws_for(moto_server), "image.raw", DISK):
        done = await compose_until_done(composer, compose_request("aws", {"type": "aws", "upload_options": {"region": REGION}}))

    assert done["status"] == "failure"
    assert "IMAGE_BUILDER_WORKER_AWS_BUCKET" in done["error"]["reason"]
