"""What a page shows of a compose: the API's documents turned into labels and the action that fits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

STATUS_LABELS = {
    "pending": "Pending",
    "building": "Building",
    "uploading": "Uploading",
    "registering": "Registering",
    "success": "Ready",
    "failure": "Failed",
}
# The phases a compose goes through, for "step i of n" on its page.
PHASES = ("pending", "building", "uploading", "success")
IMAGE_TYPE_LABELS = {
    "guest-image": "Guest image (QCOW2)",
    "aws": "Amazon EC2 (raw disk)",
    "azure": "Microsoft Azure (VHD)",
    "vsphere": "VMware vSphere (VMDK)",
    "gcp": "Google Cloud (tar.gz)",
    "oci": "OCI archive",
    "container": "Container (OCI)",
    "wsl": "Windows Subsystem for Linux",
    "tar": "Tar archive",
}
TARGET_LABELS = {"local": "Download from this service", "aws.s3": "Amazon S3", "aws": "Amazon EC2 (AMI)"}
FINISHED = ("success", "failure")


class Action(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # download | link | ami | error
    label: str
    href: str | None = None


class ComposeView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: datetime
    distribution: str
    architecture: str
    image_type: str
    target: str
    status: str
    upload_status: str | None = None
    error: dict[str, Any] | None = None
    action: Action | None = None
    upload_options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def target_label(self) -> str:
        return TARGET_LABELS.get(self.target, self.target)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def artifact(self) -> str | None:
        """The name of a ``local`` image, to fetch from the backend's ``/composes/{id}/artifacts/{name}``."""
        if self.target != "local" or self.status != "success":
            return None
        names = self.upload_options.get("artifacts") or []
        name = names[0] if names else str(self.upload_options.get("url") or "").rsplit("/", 1)[-1]
        return name or None

    @property
    def phase(self) -> tuple[int, int]:
        """(i, n): the compose is in phase i of n; a failure stays where it stopped."""
        if self.status == "registering":
            return PHASES.index("uploading") + 1, len(PHASES)
        if self.status in PHASES:
            return PHASES.index(self.status) + 1, len(PHASES)
        return len(PHASES), len(PHASES)


def compose_view(item: dict[str, Any]) -> ComposeView:
    """A history item, or a compose with its ``image_status`` (then the action is known too)."""
    request = item.get("request") or {}
    images = request.get("image_requests") or [{}]
    image = images[0]
    image_status = item.get("image_status") or {}
    upload = image_status.get("upload_status") or {}
    status = str(image_status.get("status") or item.get("status") or "pending")
    error = image_status.get("error") or item.get("error")
    view = ComposeView(
        id=str(item["id"]),
        name=item.get("image_name") or "(unnamed)",
        created_at=datetime.fromisoformat(item["created_at"]),
        distribution=str(request.get("distribution", "")),
        architecture=str(image.get("architecture", "")),
        image_type=str(image.get("image_type", "")),
        target=str(upload.get("type") or _requested_target(image)),
        status=status,
        upload_status=upload.get("status"),
        error=error if isinstance(error, dict) else None,
        upload_options=upload.get("options") or {},
    )
    return msgspec.structs.replace(view, action=_action(view))


def _requested_target(image: dict[str, Any]) -> str:
    targets = image.get("upload_targets") or []
    if targets:
        return str(targets[0].get("type", "local"))
    if image.get("upload_options"):
        return "aws" if image.get("image_type") == "aws" else "aws.s3"
    return "local"


def _action(view: ComposeView) -> Action | None:
    if view.status == "failure":
        reason = (view.error or {}).get("reason") or "the build failed"
        return Action(kind="error", label=str(reason))
    if view.status != "success":
        return None
    options = view.upload_options
    if view.artifact:
        return Action(kind="download", label="Download", href=f"/images/{view.id}/download")
    if view.target == "aws.s3" and str(options.get("url", "")).startswith(("https://", "http://")):
        return Action(kind="link", label="Download from S3", href=str(options["url"]))
    if view.target == "aws" and options.get("ami"):
        return Action(kind="ami", label=f"{options['ami']} ({options.get('region', '')})")
    return None
