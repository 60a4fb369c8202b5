"""The worker's own AWS settings. A request never carries credentials (the
request validation refuses unknown fields), so they come from here: explicit
keys, or else boto3's usual chain (``AWS_*`` variables, ``~/.aws``, an instance
profile)."""

from __future__ import annotations

from typing import Any

import boto3
import msgspec
from botocore.config import Config

# The longest a SigV4 presigned URL may be valid.
MAX_URL_EXPIRY = 7 * 24 * 3600


class AwsConfig(msgspec.Struct, frozen=True, kw_only=True):
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"
    bucket: str | None = None
    s3_endpoint_url: str | None = None
    ec2_endpoint_url: str | None = None
    url_expiry_seconds: int = 24 * 3600
    import_timeout_seconds: float = 3600.0
    import_poll_seconds: float = 15.0
    part_size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both the AWS access key id and the secret access key, or neither")
        if not 1 <= self.url_expiry_seconds <= MAX_URL_EXPIRY:
            raise ValueError(f"the URL expiry must be 1 to {MAX_URL_EXPIRY} seconds (SigV4's limit)")
        if self.part_size < 5 * 1024 * 1024:
            raise ValueError("S3 parts are at least 5 MiB")

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for ``s3`` or ``ec2`` in ``region``; creating one reads files, so call it in a thread."""
        endpoint = {"s3": self.s3_endpoint_url, "ec2": self.ec2_endpoint_url}[service]
        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key, region_name=region
        )
        config = Config(
            # Presigned URLs need SigV4; an S3-compatible server at its own
            # address has no per-bucket host names, so buckets go in the path.
            signature_version="s3v4" if service == "s3" else None,
            s3={"addressing_style": "path"} if service == "s3" and endpoint else None,
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        )
        return session.client(service, endpoint_url=endpoint, config=config)
