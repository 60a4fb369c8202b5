"""What went wrong with an AWS call, in words a user can act on."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

# Error codes of S3 and EC2 and what they mean for the person who sent the request.
EXPLANATIONS = {
    "NoSuchBucket": "the bucket does not exist",
    "AccessDenied": "access denied: the worker's AWS credentials lack the permission",
    "AllAccessDisabled": "access to the bucket is disabled",
    "AccessControlListNotSupported": "the bucket refuses ACLs, so the object cannot be made public",
    "InvalidAccessKeyId": "AWS does not know the worker's access key id",
    "SignatureDoesNotMatch": "the worker's AWS secret access key is wrong",
    "AuthFailure": "AWS refused the worker's credentials",
    "UnauthorizedOperation": "the worker's AWS credentials lack the permission",
    "InvalidSnapshot.NotFound": "the imported snapshot is gone",
    "InvalidAMIName.Duplicate": "an image of that name already exists",
}


class UploadFailed(Exception):
    """An upload could not be done; ``reason`` is what the user sees."""

    def __init__(self, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


def explain(action: str, error: ClientError | BotoCoreError, **details: Any) -> UploadFailed:
    """``action`` ("uploading to s3://b/k") failed with ``error`` from boto3."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "")) or "unknown"
        message = str(error.response.get("Error", {}).get("Message", "")).strip()
        human = EXPLANATIONS.get(code, message or code)
        return UploadFailed(f"{action} failed: {human} ({code})", {**details, "code": code, "message": message})
    if isinstance(error, NoCredentialsError):
        return UploadFailed(
            f"{action} failed: this worker has no AWS credentials (set IMAGE_BUILDER_WORKER_AWS_ACCESS_KEY_ID and "
            "IMAGE_BUILDER_WORKER_AWS_SECRET_ACCESS_KEY, or give it an instance profile)", details
        )  # fmt: skip
    if isinstance(error, EndpointConnectionError):
        return UploadFailed(f"{action} failed: cannot reach {error.kwargs.get('endpoint_url')}", details)
    return UploadFailed(f"{action} failed: {error}", details)
