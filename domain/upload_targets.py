"""Where a built image goes: the upload targets a request may name.

On the wire a target is `{"type": ..., "upload_options": {...}}` as in the
upstream compose API; here each type is its own Struct tagged by `type`, so the
options are checked against the right schema. Credentials are never part of a
request: workers take them from their own configuration, so they are not
stored in the event log or shown in compose metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias

from domain.request_struct import RequestStruct

UPLOAD_LOCAL = "local"
UPLOAD_AWS_S3 = "aws.s3"
UPLOAD_AWS = "aws"


class LocalUploadOptions(RequestStruct):
    """Keep the artifact on the service for download; nothing to choose."""


class AwsS3UploadOptions(RequestStruct):
    """Upload to S3; unset fields fall back to the worker's configured defaults."""

    region: str | None = None
    bucket: str | None = None
    key: str | None = None
    # Upstream: a public object gets a short, plain URL instead of a presigned one.
    public: bool = False


class AwsUploadOptions(RequestStruct):
    """Import into EC2 as a snapshot and register an AMI."""

    region: str
    share_with_accounts: tuple[str, ...] = ()
    snapshot_name: str | None = None


class _UploadTarget(RequestStruct, tag_field="type"):
    @property
    def type(self) -> str:
        return str(self.__struct_config__.tag)


class LocalUploadTarget(_UploadTarget, tag=UPLOAD_LOCAL):
    upload_options: LocalUploadOptions = LocalUploadOptions()


class AwsS3UploadTarget(_UploadTarget, tag=UPLOAD_AWS_S3):
    upload_options: AwsS3UploadOptions = AwsS3UploadOptions()


class AwsUploadTarget(_UploadTarget, tag=UPLOAD_AWS):
    upload_options: AwsUploadOptions


UploadTarget: TypeAlias = LocalUploadTarget | AwsS3UploadTarget | AwsUploadTarget

UPLOAD_TARGETS: Mapping[str, type[UploadTarget]] = MappingProxyType(
    {UPLOAD_LOCAL: LocalUploadTarget, UPLOAD_AWS_S3: AwsS3UploadTarget, UPLOAD_AWS: AwsUploadTarget}
)
UPLOAD_OPTIONS: Mapping[str, type[LocalUploadOptions | AwsS3UploadOptions | AwsUploadOptions]] = MappingProxyType(
    {UPLOAD_LOCAL: LocalUploadOptions, UPLOAD_AWS_S3: AwsS3UploadOptions, UPLOAD_AWS: AwsUploadOptions}
)
