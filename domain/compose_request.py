"""A compose request as `POST /api/image-builder-composer/v2/compose` receives it.

Field names follow the upstream compose API where the two overlap. Build one
with `domain.validation.validate_compose_request`, which checks every rule and
normalizes the upload targets; constructing these Structs directly skips both.
"""

from __future__ import annotations

from typing import Any

from domain.customizations import Customizations
from domain.request_struct import RequestStruct
from domain.upload_targets import UploadTarget


class Repository(RequestStruct):
    """An apt repository to build from; none given means the distribution's Debian mirrors."""

    baseurl: str
    # An ASCII-armored OpenPGP public key; without one, the Debian archive keyring is used.
    gpgkey: str | None = None
    check_gpg: bool = True
    # Debian needs these where upstream's dnf repositories do not; None means the
    # distribution's codename and ("main",).
    suite: str | None = None
    components: tuple[str, ...] = ()


class ImageRequest(RequestStruct):
    architecture: str
    image_type: str
    repositories: tuple[Repository, ...] = ()
    upload_targets: tuple[UploadTarget, ...] = ()
    # Upstream's single-target form, for the image type's default target. Left
    # untyped because its schema depends on `image_type`; validation moves it
    # into `upload_targets` and leaves this None.
    upload_options: dict[str, Any] | None = None


class ComposeRequest(RequestStruct):
    distribution: str
    image_requests: tuple[ImageRequest, ...]
    image_name: str | None = None
    customizations: Customizations | None = None
