"""The ``aws.s3`` upload against a real S3-compatible server (S3Proxy), through a real composer and worker."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.composer_service import Composer, running_composer
from tests.servers.s3proxy import S3ProxyServer
from tests.upload_flow import compose_logs, compose_request, compose_until_done, uploading_worker
from workers.aws.config import AwsConfig
from workers.aws.s3 import put_file

MIB = 1024 * 1024


@pytest.fixture
async def composer(tmp_path: Path) -> AsyncIterator[Composer]:
    async with running_composer(f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}", tmp_path) as composer:
        yield composer


def aws_for(server: S3ProxyServer, **overrides: Any) -> AwsConfig:
    settings: dict[str, Any] = {
        "access_key_id": server.access_key, "secret_access_key": server.secret_key,
        "s3_endpoint_url": server.url, "part_size": 5 * MIB, "url_expiry_seconds": 600,
    }  # fmt: skip
    return AwsConfig(**{**settings, **overrides})


def new_bucket(server: S3ProxyServer) -> str:
    bucket = f"images-{uuid.uuid4().hex[:12]}"
    aws_for(server).client("s3", "us-east-1").create_bucket(Bucket=bucket)
    return bucket


async def test_an_image_lands_in_the_bucket_and_the_compose_shows_a_url_that_downloads_it(
    composer: Composer, s3_server: S3ProxyServer, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    image = os.urandom(12 * MIB)  # three parts of 5 MiB: a multipart upload
    target = {"type": "aws.s3", "upload_options": {"bucket": bucket, "key": "debian/web.tar"}}
    async with uploading_worker(composer, tmp_path, aws_for(s3_server), "root.tar", image):
        done = await compose_until_done(composer, compose_request("tar", target))

    assert done["status"] == "success", done
    upload = done["image_status"]["upload_status"]
    assert upload["type"] == "aws.s3" and upload["status"] == "success"
    stored = aws_for(s3_server).client("s3", "us-east-1").get_object(Bucket=bucket, Key="debian/web.tar")
    assert stored["Body"].read() == image
    assert stored["ETag"].endswith('-3"'), "uploaded in three parts"
    async with httpx2.AsyncClient() as http:
        downloaded = await http.get(upload["options"]["url"])
    assert downloaded.status_code == 200 and downloaded.content == image
    assert "X-Amz-Expires=600" in upload["options"]["url"]


async def test_a_public_upload_gets_a_plain_url_that_anyone_can_download(
    composer: Composer, s3_server: S3ProxyServer, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    target = {"type": "aws.s3", "upload_options": {"bucket": bucket, "key": "public/root.tar", "public": True}}
    async with uploading_worker(composer, tmp_path, aws_for(s3_server), "root.tar", b"open tree" * 100):
        done = await compose_until_done(composer, compose_request("tar", target))

    url = done["image_status"]["upload_status"]["options"]["url"]
    assert url == f"{s3_server.url}/{bucket}/public/root.tar"
    async with httpx2.AsyncClient() as anonymous:
        assert (await anonymous.get(url)).content == b"open tree" * 100


async def test_without_a_key_or_bucket_in_the_request_the_workers_bucket_and_a_compose_key_are_used(
    composer: Composer, s3_server: S3ProxyServer, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    async with uploading_worker(composer, tmp_path, aws_for(s3_server, bucket=bucket), "root.tar", b"tree" * 100):
        done = await compose_until_done(composer, compose_request("tar", {"type": "aws.s3", "upload_options": {}}))

    assert done["status"] == "success", done
    listed = aws_for(s3_server).client("s3", "us-east-1").list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in listed["Contents"]] == [f"image-builder/{done['id']}/0/root.tar"]


async def test_an_upload_to_a_missing_bucket_fails_the_compose_with_a_clear_reason(
    composer: Composer, s3_server: S3ProxyServer, tmp_path: Path
) -> None:
    target = {"type": "aws.s3", "upload_options": {"bucket": "no-such-bucket-here"}}
    async with uploading_worker(composer, tmp_path, aws_for(s3_server), "root.tar", b"tree" * 100):
        done = await compose_until_done(composer, compose_request("tar", target))

    assert done["status"] == "failure"
    reason = done["error"]["reason"]
    assert reason.startswith("uploading to s3://no-such-bucket-here/") and "the bucket does not exist (NoSuchBucket)" in reason
    assert done["image_status"]["upload_status"]["status"] == "failure"
    assert not any("Traceback" in line for line in await compose_logs(composer, done["id"]))


async def test_a_wrong_secret_key_fails_with_a_reason_naming_the_credentials(
    composer: Composer, s3_server: S3ProxyServer, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_server)
    wrong = aws_for(s3_server, secret_access_key="not-the-secret")
    async with uploading_worker(composer, tmp_path, wrong, "root.tar", b"tree" * 100):
        done = await compose_until_done(composer, compose_request("tar", {"type": "aws.s3", "upload_options": {"bucket": bucket}}))

    assert done["status"] == "failure"
    assert "secret access key is wrong (SignatureDoesNotMatch)" in done["error"]["reason"]


async def test_a_canceled_transfer_stops_and_leaves_no_object(s3_server: S3ProxyServer, tmp_path: Path) -> None:
    bucket = new_bucket(s3_server)
    image = tmp_path / "big.raw"
    image.write_bytes(os.urandom(40 * MIB))
    s3 = aws_for(s3_server).client("s3", "us-east-1")
    cancel = asyncio.Event()
    sent: list[int] = []

    def on_bytes(count: int) -> None:
        sent.append(count)
        cancel.set()  # as soon as the first bytes went out

    with pytest.raises(asyncio.CancelledError):
        await put_file(s3, image, bucket, "big.raw", part_size=5 * MIB, cancel=cancel, on_bytes=on_bytes)

    assert sent and sum(sent) < 40 * MIB
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
