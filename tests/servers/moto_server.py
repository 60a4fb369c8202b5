"""moto's server mode: the only EC2 API that can be had offline, in a process of its own.

    python -m tests.servers.moto_server run [PORT]   # serve until Ctrl-C

moto (5.2) has no VM Import: ``ImportSnapshot``, ``DescribeImportSnapshotTasks``
and ``CancelImportTask`` are unknown to it, and its ``RegisterImage`` keeps only
the name and description (the AMI gets a snapshot of moto's own). So the server
process adds what the ``aws`` upload needs, on moto's real EBS, AMI and S3
backends:

- ``ImportSnapshot`` reads the object from moto's S3 (a missing or empty one
  fails the task the way EC2 does, with status ``deleted`` and a
  ``ClientError: ...`` message) and makes an EBS snapshot of the disk's size.
  The task is ``active`` the first time it is described and ``completed`` the
  next, so a client has to poll.
- ``RegisterImage`` keeps the architecture, boot mode, ENA support, root device
  and the block device mappings, so ``DescribeImages`` shows the snapshot the
  image was registered on (or fails with ``InvalidSnapshot.NotFound``).

Sharing (``ModifyImageAttribute``, ``ModifySnapshotAttribute``) and everything
else is moto as published. The additions live only in the server process.
"""

from __future__ import annotations

import atexit
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.servers._util import free_port, log_tail, port_open

ACCESS_KEY = "moto-access"
SECRET_KEY = "moto-secret"


class MotoServer:
    """A moto server on a loopback port; every service (S3, EC2, ...) answers there."""

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.base_dir = Path(tempfile.mkdtemp(prefix="test-moto-"))
        self.log_path = self.base_dir / "moto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.servers.moto_server", "run", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while not port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"moto server did not start on port {self.port}\n{log_tail(self.log_path)}")
            time.sleep(0.1)
        return self

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# -- inside the server process ------------------------------------------------


def _add_image_import() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses import EC2Response
    from moto.s3.models import s3_backends

    tasks: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def import_snapshot(self: Any) -> ActionResult:
        container = self._get_param("DiskContainer") or {}
        bucket = container.get("UserBucket", {}).get("S3Bucket", "")
        key = container.get("UserBucket", {}).get("S3Key", "")
        detail: dict[str, Any] = {
            "Description": container.get("Description") or self._get_param("Description") or "",
            "Format": str(container.get("Format", "")).upper(),
            "UserBucket": {"S3Bucket": bucket, "S3Key": key},
            "Status": "active", "Progress": "10", "StatusMessage": "pending",
        }  # fmt: skip
        try:
            found = s3_backends[self.current_account][self.partition].get_object(bucket, key)
        except Exception:  # noqa: BLE001 - moto's MissingBucket and the like: the import fails as on EC2
            found = None
        task_id = f"import-snap-{uuid.uuid4().hex[:17]}"
        with lock:
            tasks[task_id] = {"detail": detail, "size": None if found is None else found.size, "described": 0,
                              "backend": self.ec2_backend}  # fmt: skip
        return ActionResult({"ImportTaskId": task_id, "Description": detail["Description"], "SnapshotTaskDetail": detail})

    def _advance(task: dict[str, Any]) -> None:
        detail = task["detail"]
        task["described"] += 1
        if detail["Status"] != "active" or task["described"] < 2:
            return
        if not task["size"]:
            bucket = detail["UserBucket"]
            detail.update(Status="deleted", StatusMessage=f"ClientError: unable to read s3://{bucket['S3Bucket']}/{bucket['S3Key']}")
            detail.pop("Progress", None)
            return
        backend = task["backend"]
        volume = backend.create_volume(size=max(1, math.ceil(task["size"] / 1024**3)), zone_name=f"{backend.region_name}a")
        snapshot = backend.create_snapshot(volume.id, f"Created by AWS-VMImport service for {detail['Description']}")
        backend.delete_volume(volume.id)
        detail.update(Status="completed", Progress="100", StatusMessage="", SnapshotId=snapshot.id,
                      DiskImageSize=float(task["size"]))  # fmt: skip

    def describe_import_snapshot_tasks(self: Any) -> ActionResult:
        wanted = self._get_param("ImportTaskIds") or []
        found = []
        with lock:
            for task_id in wanted or list(tasks):
                if task_id in tasks:
                    _advance(tasks[task_id])
                    found.append({"ImportTaskId": task_id, "SnapshotTaskDetail": dict(tasks[task_id]["detail"])})
        return ActionResult({"ImportSnapshotTasks": found})

    def cancel_import_task(self: Any) -> ActionResult:
        task_id = self._get_param("ImportTaskId")
        with lock:
            detail = tasks[task_id]["detail"]
            previous = detail["Status"]
            if previous == "active":
                detail.update(Status="deleted", StatusMessage="canceled")
        return ActionResult({"ImportTaskId": task_id, "PreviousState": previous, "State": "deleting"})

    def register_image(self: Any) -> ActionResult:
        mappings = self._get_param("BlockDeviceMappings") or []
        for mapping in mappings:
            if "SnapshotId" in mapping.get("Ebs", {}):
                self.ec2_backend.get_snapshot(mapping["Ebs"]["SnapshotId"])  # InvalidSnapshot.NotFound if not there
        self.error_on_dryrun()
        image = self.ec2_backend.register_image(self._get_param("Name"), self._get_param("Description", ""))
        image.architecture = self._get_param("Architecture", "x86_64")
        image.boot_mode = self._get_param("BootMode")
        image.ena_support = self._get_param("EnaSupport")
        image.virtualization_type = self._get_param("VirtualizationType", "hvm")
        image.root_device_name = self._get_param("RootDeviceName", image.root_device_name)
        image.root_device_type = "ebs"
        image.requested_block_device_mappings = mappings
        return ActionResult({"ImageId": image.id})

    moto_mappings = Ami.block_device_mappings

    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        return getattr(self, "requested_block_device_mappings", None) or moto_mappings.fget(self)

    Ami.block_device_mappings = property(block_device_mappings)
    EC2Response.import_snapshot = import_snapshot
    EC2Response.describe_import_snapshot_tasks = describe_import_snapshot_tasks
    EC2Response.cancel_import_task = cancel_import_task
    EC2Response.register_image = register_image


def _serve(port: int) -> None:
    from moto.server import ThreadedMotoServer

    _add_image_import()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        sys.exit("usage: python -m tests.servers.moto_server run [PORT]")
    _serve(int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
