"""Rules for the request itself: distribution, image requests, repositories, uploads."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

import msgspec

from domain.compose_request import ComposeRequest, ImageRequest, Repository
from domain.distributions import ARCHITECTURES, DISTRIBUTIONS
from domain.image_types import IMAGE_TYPES
from domain.shape import INVALID, Walk, at, item
from domain.upload_targets import UPLOAD_OPTIONS, AwsS3UploadOptions, AwsUploadOptions, LocalUploadOptions

MAX_IMAGE_REQUESTS = 10
MAX_REPOSITORIES = 20
MAX_IMAGE_NAME = 100
# S3 general purpose bucket names: 3-63 of a-z 0-9 . -, starting and ending
# with a letter or digit, no "..", not shaped like an IP address.
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
AWS_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
AWS_ACCOUNT = re.compile(r"[0-9]{12}")
SUITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
COMPONENT = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
PGP_PUBLIC_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
# Field names that would carry a secret get a pointed refusal instead of the
# generic "unknown field", so the user learns where credentials do belong.
CREDENTIAL_HINTS = ("access_key", "secret", "session_token", "credential", "password", "token")
_OPTIONS = (LocalUploadOptions, AwsS3UploadOptions, AwsUploadOptions)


def unknown_field_reason(cls: type, name: str) -> str:
    if issubclass(cls, _OPTIONS) and any(hint in name.lower() for hint in CREDENTIAL_HINTS):
        return "credentials are never taken from a request; the workers' own configuration supplies them"
    known = ", ".join(f.encode_name for f in msgspec.structs.fields(cls))
    return f"unknown field; expected one of: {known}" if known else "unknown field; this object takes no fields"


def check_distribution(distribution: str, path: str, walk: Walk) -> None:
    if distribution not in DISTRIBUTIONS:
        walk.refuse(path, f"unknown distribution {distribution!r}; supported: {', '.join(DISTRIBUTIONS)}")


def check_image_name(name: str, path: str, walk: Walk) -> None:
    if not 1 <= len(name) <= MAX_IMAGE_NAME or not name.strip():
        walk.refuse(path, f"must be 1 to {MAX_IMAGE_NAME} characters, not all blank")
    elif not name.isprintable():
        walk.refuse(path, "must not contain newlines or other control characters")


def check_image_requests(requests: tuple[ImageRequest, ...], path: str, walk: Walk) -> None:
    if not 1 <= len(requests) <= MAX_IMAGE_REQUESTS:
        walk.refuse(path, f"must hold at least one and at most {MAX_IMAGE_REQUESTS} image requests")


def check_compose_request(request: ComposeRequest, path: str, walk: Walk) -> None:
    distribution = DISTRIBUTIONS.get(request.distribution)
    for i, image in enumerate(request.image_requests):
        known = image.architecture in ARCHITECTURES  # an unknown one is refused by check_image_request
        if distribution and known and image.architecture not in distribution.architectures:
            walk.refuse(at(item(at(path, "image_requests"), i), "architecture"),
                        f"{distribution.name} is not built for {image.architecture}")
    # A kernel and a partition layout only mean something on a disk that boots.
    custom = request.customizations
    not_bootable = sorted({i.image_type for i in request.image_requests
                           if i.image_type in IMAGE_TYPES and not IMAGE_TYPES[i.image_type].bootable})
    if custom is None or not not_bootable:
        return
    for name, value in (("filesystem", custom.filesystem), ("kernel", custom.kernel)):
        if value:
            walk.refuse(at(at(path, "customizations"), name),
                        f"applies to bootable disk images only, not to {', '.join(not_bootable)}")


def check_image_request(image: ImageRequest, path: str, walk: Walk) -> None:
    if image.architecture not in ARCHITECTURES:
        walk.refuse(at(path, "architecture"),
                    f"unsupported architecture {image.architecture!r}; supported: {', '.join(ARCHITECTURES)}")
    image_type = IMAGE_TYPES.get(image.image_type)
    if image_type is None:
        walk.refuse(at(path, "image_type"),
                    f"unknown image type {image.image_type!r}; supported: {', '.join(IMAGE_TYPES)}")
        return
    if len(image.repositories) > MAX_REPOSITORIES:
        walk.refuse(at(path, "repositories"), f"at most {MAX_REPOSITORIES} repositories are allowed")
    targets: list[tuple[str, str, object]] = []
    for i, target in enumerate(image.upload_targets):
        here = item(at(path, "upload_targets"), i)
        if not image_type.allows_upload_to(target.type):
            walk.refuse(at(here, "type"), f"image type {image_type.name} cannot be uploaded to {target.type}; "
                                          f"allowed: {', '.join(image_type.upload_targets)}")
        targets.append((here, target.type, target.upload_options))
    if image.upload_options is not None:
        # Upstream's single-target form: the options are for the image type's default target.
        here, target_type = at(path, "upload_options"), image_type.default_upload_target
        options = walk.build(image.upload_options, UPLOAD_OPTIONS[target_type], here)
        if options is not INVALID:
            targets.append((here, target_type, options))
    seen: list[tuple[str, object]] = []
    for here, target_type, options in targets:
        if (target_type, options) in seen:
            walk.refuse(here, "the same upload target is given twice")
        seen.append((target_type, options))


def check_repository(repository: Repository, path: str, walk: Walk) -> None:
    url = _split_url(repository.baseurl)
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        walk.refuse(at(path, "baseurl"), "must be an http:// or https:// URL with a host")
    elif url.username is not None or url.password is not None:
        # The request is stored in the event log for good; a secret in it would leak.
        walk.refuse(at(path, "baseurl"), "must not hold credentials; they would be stored in the event log")
    if repository.gpgkey is not None and PGP_PUBLIC_KEY not in repository.gpgkey:
        walk.refuse(at(path, "gpgkey"), f"must be an ASCII-armored OpenPGP public key ({PGP_PUBLIC_KEY})")
    if repository.suite is not None and (not SUITE.fullmatch(repository.suite) or ".." in repository.suite):
        walk.refuse(at(path, "suite"), f"{repository.suite!r} is not an apt suite like 'bookworm-backports'")
    for i, component in enumerate(repository.components):
        if not COMPONENT.fullmatch(component):
            walk.refuse(item(at(path, "components"), i), f"{component!r} is not an apt component like 'main'")


def _split_url(text: str) -> SplitResult | None:
    if not text.isprintable():
        return None
    try:
        return urlsplit(text)
    except ValueError:  # e.g. an unbalanced '[' in an IPv6 host
        return None


def check_aws_s3_options(options: AwsS3UploadOptions, path: str, walk: Walk) -> None:
    if options.region is not None:
        _check_region(options.region, at(path, "region"), walk)
    bucket = options.bucket
    if bucket is not None and (not S3_BUCKET.fullmatch(bucket) or ".." in bucket or IP_LIKE.fullmatch(bucket)):
        walk.refuse(at(path, "bucket"), f"{bucket!r} is not an S3 bucket name (3-63 of a-z 0-9 . -)")
    key = options.key
    if key is not None and (not 1 <= len(key.encode("utf-8", "surrogatepass")) <= 1024
                            or not key.isprintable() or key.startswith("/")):
        walk.refuse(at(path, "key"), "must be 1 to 1024 bytes of printable text, not starting with '/'")


def check_aws_options(options: AwsUploadOptions, path: str, walk: Walk) -> None:
    _check_region(options.region, at(path, "region"), walk)
    for i, account in enumerate(options.share_with_accounts):
        if not AWS_ACCOUNT.fullmatch(account):
            walk.refuse(item(at(path, "share_with_accounts"), i), f"{account!r} is not a 12-digit AWS account id")
    name = options.snapshot_name
    if name is not None and (not 1 <= len(name) <= 255 or not name.isprintable()):
        walk.refuse(at(path, "snapshot_name"), "must be 1 to 255 printable characters")


def _check_region(region: str, path: str, walk: Walk) -> None:
    if not AWS_REGION.fullmatch(region):
        walk.refuse(path, f"{region!r} is not an AWS region like 'eu-central-1'")
