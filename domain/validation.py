"""Validate a compose request completely: every problem, each with its field.

    request = validate_compose_request(body)   # raises ValidationFailed

Rules, decided here once:
- `root` cannot be created (it exists in every image) and its groups cannot
  change, but an entry for root may set its ssh key and/or password.
- Other Debian system accounts (daemon, www-data, nobody, ...) cannot be created.
- A password starting like `$id$` is a crypt hash and must be a well-formed
  `$6$` or `$y$` one; any other password is plain text of 8 to 256 characters.
- `filesystem` and `kernel` are refused when any requested image type does not
  boot on its own (oci, container, wsl, tar); `/boot` is not a mountpoint
  because the kernel lives on the EFI system partition.
- Upload targets come from `upload_targets`, then from upstream's single
  `upload_options` (meant for the image type's default target: `aws` for the
  aws image type, `aws.s3` for the rest); with neither, the image is kept on the
  service for download (`local`).
- A timezone given as a plain string becomes `Timezone(timezone=...)`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from domain import customization_rules as c
from domain import path_rules as p
from domain import request_rules as r
from domain.compose_request import ComposeRequest, ImageRequest, Repository
from domain.customizations import (
    Customizations,
    Directory,
    File,
    Filesystem,
    Firewall,
    Kernel,
    Locale,
    Services,
    Timezone,
    User,
)
from domain.field_errors import FieldError, ValidationFailed
from domain.image_types import IMAGE_TYPES
from domain.shape import Rules, Walk
from domain.upload_targets import (
    UPLOAD_OPTIONS,
    UPLOAD_TARGETS,
    AwsS3UploadOptions,
    AwsUploadOptions,
    LocalUploadTarget,
)

__all__ = ["FieldError", "ValidationFailed", "parse_json", "validate_compose_request"]

RULES: Rules = {
    (ComposeRequest, "distribution"): r.check_distribution,
    (ComposeRequest, "image_name"): r.check_image_name,
    (ComposeRequest, "image_requests"): r.check_image_requests,
    ComposeRequest: r.check_compose_request,
    ImageRequest: r.check_image_request,
    Repository: r.check_repository,
    AwsS3UploadOptions: r.check_aws_s3_options,
    AwsUploadOptions: r.check_aws_options,
    (Customizations, "packages"): c.check_packages,
    User: c.check_user,
    (Customizations, "users"): c.check_users,
    Services: c.check_services,
    File: p.check_file,
    (Customizations, "files"): p.check_files,
    Directory: p.check_directory,
    (Customizations, "directories"): p.check_directories,
    (Customizations, "hostname"): c.check_hostname,
    (Customizations, "timezone"): c.check_timezone,
    Locale: c.check_locale,
    Kernel: c.check_kernel,
    Firewall: c.check_firewall,
    Filesystem: c.check_filesystem,
    (Customizations, "filesystem"): c.check_filesystems,
    (Customizations, "first_boot_script"): c.check_first_boot_script,
    Customizations: c.check_customizations,
}

ROOT = ""  # the FieldError.field of a problem with the body as a whole


def validate_compose_request(raw: bytes | bytearray | memoryview | str | dict[str, Any]) -> ComposeRequest:
    """The request in `raw` (JSON text or already-parsed JSON), checked and normalized.

    Raises ValidationFailed listing every problem found, and nothing else
    whatever `raw` holds.
    """
    walk = Walk(RULES, r.unknown_field_reason)
    request = walk.build(parse_json(raw), ComposeRequest, ROOT)
    if walk.errors:  # always so when the walk could not build the request
        raise ValidationFailed(walk.errors)
    return _normalized(request)


def parse_json(raw: bytes | bytearray | memoryview | str | Any, what: str = "compose request") -> Any:
    """JSON text parsed (anything else is taken as parsed already); ValidationFailed if malformed."""
    if not isinstance(raw, (bytes, bytearray, memoryview, str)):
        return raw
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        detail = str(error).removeprefix("JSON is malformed: ")
        raise ValidationFailed([FieldError(ROOT, f"malformed JSON: {detail}")], what) from None
    except UnicodeError:
        raise ValidationFailed([FieldError(ROOT, "malformed JSON: a string is not valid UTF-8")], what) from None
    except RecursionError:
        raise ValidationFailed([FieldError(ROOT, "malformed JSON: nested too deeply")], what) from None


def _normalized(request: ComposeRequest) -> ComposeRequest:
    images = tuple(_with_targets(image) for image in request.image_requests)
    custom = request.customizations
    if custom is not None and isinstance(custom.timezone, str):
        custom = msgspec.structs.replace(custom, timezone=Timezone(timezone=custom.timezone))
    return msgspec.structs.replace(request, image_requests=images, customizations=custom)


def _with_targets(image: ImageRequest) -> ImageRequest:
    targets = list(image.upload_targets)
    if image.upload_options is not None:
        target_type = IMAGE_TYPES[image.image_type].default_upload_target
        options = msgspec.convert(image.upload_options, UPLOAD_OPTIONS[target_type])
        targets.append(UPLOAD_TARGETS[target_type](upload_options=options))  # type: ignore[arg-type]
    return msgspec.structs.replace(image, upload_targets=tuple(targets) or (LocalUploadTarget(),), upload_options=None)
