"""Putting a file into S3 in parts, and the URL it can be fetched from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import CancelledError as TransferCancelled
from s3transfer.subscribers import BaseSubscriber

from workers.aws.errors import explain


class _Progress(BaseSubscriber):  # type: ignore[misc]
    """Hands the bytes sent, from s3transfer's threads, to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_bytes: Callable[[int], None]) -> None:
        self._loop = loop
        self._on_bytes = on_bytes

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self._loop.call_soon_threadsafe(self._on_bytes, bytes_transferred)


async def put_file(
    s3: Any, path: Path, bucket: str, key: str, *, part_size: int, cancel: asyncio.Event,
    on_bytes: Callable[[int], None] = lambda sent: None, extra_args: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Upload ``path`` to ``s3://bucket/key``: in parts of ``part_size`` when it is larger.

    A set ``cancel`` stops the transfer between parts; s3transfer then aborts
    the multipart upload, so no parts are left behind to be billed.
    """
    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4)
    manager = create_transfer_manager(s3, config)
    transfer = manager.upload(
        str(path), bucket, key, extra_args=extra_args, subscribers=[_Progress(asyncio.get_running_loop(), on_bytes)]
    )
    finished = asyncio.ensure_future(asyncio.to_thread(transfer.result))
    finished.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen here or below, never lost
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({finished, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not finished.done():
            transfer.cancel()
            with contextlib.suppress(TransferCancelled):
                await finished
            raise asyncio.CancelledError
        finished.result()
    except (ClientError, BotoCoreError) as error:
        raise explain(f"uploading to s3://{bucket}/{key}", error, bucket=bucket, key=key) from error
    finally:
        stop.cancel()
        if not finished.done():  # we were canceled from outside while the parts went up
            transfer.cancel()
        await asyncio.to_thread(manager.shutdown)


def object_url(s3: Any, bucket: str, key: str, expires_in: int, public: bool = False) -> str:
    """A presigned GET URL valid for ``expires_in`` seconds; a public object's plain URL.

    Signing is computed locally: no request is sent.
    """
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)
    return urlsplit(url)._replace(query="").geturl() if public else str(url)


async def delete_object(s3: Any, bucket: str, key: str) -> None:
    try:
        await asyncio.to_thread(s3.delete_object, Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as error:
        raise explain(f"deleting s3://{bucket}/{key}", error, bucket=bucket, key=key) from error
