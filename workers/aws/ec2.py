"""Turning a raw disk image in S3 into an EC2 image (AMI).

EC2 imports the object as an EBS snapshot (``ImportSnapshot``, which runs for
minutes; we poll it), then an AMI is registered on that snapshot: x86_64, ENA
networking, UEFI boot, root device ``/dev/xvda``. Sharing adds launch
permission on the AMI and create-volume permission on its snapshot, since an
account that can launch the image must also be able to read its disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workers.aws.errors import UploadFailed, explain

log = logging.getLogger(__name__)

ROOT_DEVICE = "/dev/xvda"
# ImportSnapshot task states that will never become "completed".
GIVEN_UP = ("deleting", "deleted", "cancelling", "cancelled", "error")


async def _call(ec2: Any, operation: str, action: str, **params: Any) -> Any:
    try:
        return await asyncio.to_thread(getattr(ec2, operation), **params)
    except (ClientError, BotoCoreError) as error:
        raise explain(action, error, operation=operation) from error


async def import_snapshot(
    ec2: Any, bucket: str, key: str, *, description: str, timeout: float, poll: float, cancel: asyncio.Event,
    on_status: Callable[[str], None] = lambda status: None,
) -> str:  # fmt: skip
    """Import ``s3://bucket/key`` (a raw disk) as a snapshot; returns its id once EC2 finished."""
    started = await _call(
        ec2, "import_snapshot", f"importing s3://{bucket}/{key} into EC2",
        Description=description,
        DiskContainer={"Description": description, "Format": "raw", "UserBucket": {"S3Bucket": bucket, "S3Key": key}},
    )  # fmt: skip
    task_id = started["ImportTaskId"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = ""
    while True:
        found = await _call(
            ec2, "describe_import_snapshot_tasks", f"following snapshot import {task_id}", ImportTaskIds=[task_id]
        )
        detail = (found.get("ImportSnapshotTasks") or [{}])[0].get("SnapshotTaskDetail", {})
        status = str(detail.get("Status", "")).lower()
        message = str(detail.get("StatusMessage") or "")
        if status == "completed":
            return str(detail["SnapshotId"])
        if status in GIVEN_UP:
            raise UploadFailed(
                f"EC2 could not import the image as a snapshot: {message or status}",
                {"import_task_id": task_id, "status": status},
            )
        now = f"{status} {detail.get('Progress', '')}% {message}".strip()
        if now != last:
            on_status(now)
            last = now
        if loop.time() >= deadline:
            await _give_up(ec2, task_id)
            raise UploadFailed(
                f"EC2 did not finish importing the snapshot within {timeout:.0f} s (import task {task_id})",
                {"import_task_id": task_id, "status": status},
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll):  # not wait_for: see events/wakeup.py
                await cancel.wait()
        if cancel.is_set():
            await _give_up(ec2, task_id)
            raise asyncio.CancelledError


async def _give_up(ec2: Any, task_id: str) -> None:
    try:
        await asyncio.to_thread(ec2.cancel_import_task, ImportTaskId=task_id)
    except (ClientError, BotoCoreError) as error:
        log.warning("could not cancel import task %s: %s", task_id, error)


async def register_image(ec2: Any, snapshot_id: str, name: str, description: str) -> str:
    """Register a UEFI x86_64 AMI whose root volume is made from ``snapshot_id``; returns its id."""
    registered = await _call(
        ec2, "register_image", f"registering the image {name!r}",
        Name=name, Description=description, Architecture="x86_64", VirtualizationType="hvm",
        EnaSupport=True, BootMode="uefi", RootDeviceName=ROOT_DEVICE,
        BlockDeviceMappings=[
            {"DeviceName": ROOT_DEVICE, "Ebs": {"SnapshotId": snapshot_id, "DeleteOnTermination": True, "VolumeType": "gp3"}}
        ],
    )  # fmt: skip
    return str(registered["ImageId"])


async def name_snapshot(ec2: Any, snapshot_id: str, name: str) -> None:
    await _call(
        ec2, "create_tags", f"naming snapshot {snapshot_id}", Resources=[snapshot_id], Tags=[{"Key": "Name", "Value": name}]
    )


async def share(ec2: Any, image_id: str, snapshot_id: str, accounts: list[str]) -> None:
    """Let ``accounts`` launch the image and read its snapshot."""
    await _call(
        ec2, "modify_image_attribute", f"sharing {image_id} with {', '.join(accounts)}",
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": account} for account in accounts]},
    )  # fmt: skip
    await _call(
        ec2, "modify_snapshot_attribute", f"sharing {snapshot_id} with {', '.join(accounts)}",
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=accounts,
    )  # fmt: skip


async def delete_snapshot(ec2: Any, snapshot_id: str) -> None:
    await _call(ec2, "delete_snapshot", f"deleting snapshot {snapshot_id}", SnapshotId=snapshot_id)


async def deregister_image(ec2: Any, image_id: str) -> None:
    await _call(ec2, "deregister_image", f"deregistering {image_id}", ImageId=image_id)
