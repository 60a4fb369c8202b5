"""Validation of compose requests: each rule refuses with its field and a reason."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.compose_request import ComposeRequest
from domain.customizations import Timezone
from domain.field_errors import ValidationFailed
from domain.upload_targets import AwsS3UploadTarget, AwsUploadTarget, LocalUploadTarget
from domain.validation import validate_compose_request
from tests.unit.domain.compose_requests import (
    SHA512_HASH,
    YESCRYPT_HASH,
    assert_refused,
    errors_of,
    full_request,
    minimal_request,
    ssh_key,
    with_customizations,
)

# --- what is accepted ------------------------------------------------------


def test_a_full_request_round_trips_through_validation_unchanged() -> None:
    raw = msgspec.json.encode(full_request())

    request = validate_compose_request(raw)

    assert isinstance(request, ComposeRequest)
    assert msgspec.json.decode(msgspec.json.encode(request)) == full_request()
    assert validate_compose_request(msgspec.json.encode(request)) == request
    # A stored request decodes with plain msgspec too, as event payloads are read back.
    assert msgspec.json.decode(msgspec.json.encode(request), type=ComposeRequest) == request


def test_a_request_may_be_given_as_text_or_as_parsed_json() -> None:
    text = msgspec.json.encode(full_request()).decode()

    assert validate_compose_request(text) == validate_compose_request(full_request())


def test_an_image_without_upload_options_is_kept_for_download() -> None:
    request = validate_compose_request(minimal_request())

    assert request.image_requests[0].upload_targets == (LocalUploadTarget(),)


def test_upstream_upload_options_go_to_the_aws_target_for_an_aws_image() -> None:
    raw = minimal_request("aws", upload_options={"region": "us-east-1"})

    (target,) = validate_compose_request(raw).image_requests[0].upload_targets

    assert isinstance(target, AwsUploadTarget)
    assert target.type == "aws"
    assert target.upload_options.region == "us-east-1"


def test_upstream_upload_options_go_to_s3_for_other_images_after_the_listed_targets() -> None:
    raw = minimal_request(upload_targets=[{"type": "local"}], upload_options={"bucket": "my-images"})

    image = validate_compose_request(raw).image_requests[0]

    assert [t.type for t in image.upload_targets] == ["local", "aws.s3"]
    assert isinstance(image.upload_targets[1], AwsS3UploadTarget)
    assert image.upload_targets[1].upload_options.bucket == "my-images"
    assert image.upload_options is None


def test_a_timezone_given_as_a_name_becomes_upstreams_timezone_object() -> None:
    request = validate_compose_request(with_customizations(timezone="UTC"))

    assert request.customizations is not None
    assert request.customizations.timezone == Timezone(timezone="UTC")


@pytest.mark.parametrize("user", [{"name": "root", "key": ssh_key()}, {"name": "root", "password": SHA512_HASH}])
def test_root_may_be_given_a_key_or_a_password(user: dict[str, Any]) -> None:
    validate_compose_request(with_customizations(users=[user]))


@pytest.mark.parametrize("password", [SHA512_HASH, YESCRYPT_HASH, "a long enough passphrase"])
def test_a_password_may_be_plain_text_or_a_sha512_or_yescrypt_hash(password: str) -> None:
    validate_compose_request(with_customizations(users=[{"name": "bob", "password": password}]))


@pytest.mark.parametrize("kind", ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"])
def test_openssh_public_keys_of_the_usual_types_are_accepted(kind: str) -> None:
    validate_compose_request(with_customizations(users=[{"name": "bob", "key": ssh_key(kind)}]))


def test_upstreams_firewalld_port_spelling_is_accepted() -> None:
    validate_compose_request(with_customizations(firewall={"ports": ["22:tcp", "60000-61000:udp"]}))


# --- the request as a whole ------------------------------------------------


def test_malformed_json_is_refused_as_the_whole_request() -> None:
    assert_refused(b'{"distribution": ', "", "malformed JSON")


def test_bytes_that_are_not_utf8_are_refused_as_malformed_json() -> None:
    assert_refused(b"\xff\xfe", "", "malformed JSON")


def test_json_nested_beyond_reason_is_refused_without_crashing() -> None:
    assert_refused(b"[" * 100_000, "", "nested too deeply")


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"debian-12"', 42, ["debian-12"]])
def test_a_request_that_is_not_an_object_is_refused(raw: Any) -> None:
    assert_refused(raw, "", "expected an object")


def test_a_field_of_the_wrong_type_is_refused_with_its_path() -> None:
    assert_refused(with_customizations(packages="vim"), "customizations.packages", "expected a list, got a string")


def test_a_wrongly_typed_list_element_is_refused_with_its_index() -> None:
    assert_refused(with_customizations(users=[{"name": "bob", "groups": ["adm", 7]}]),
                   "customizations.users[0].groups[1]", "expected a string, got an integer")


def test_a_value_that_json_cannot_hold_is_refused_not_raised() -> None:
    assert_refused(with_customizations(packages={"vim"}), "customizations.packages", "expected a list")


def test_an_unknown_field_is_refused_with_its_path() -> None:
    assert_refused(with_customizations(hostnmae="web"), "customizations.hostnmae", "unknown field")


def test_a_missing_required_field_is_refused() -> None:
    assert_refused({"image_requests": minimal_request()["image_requests"]}, "distribution", "missing required field")


def test_several_problems_are_reported_together() -> None:
    request = full_request()
    request["distribution"] = "debian-11"
    request["image_requests"][0]["architecture"] = "aarch64"
    request["customizations"]["hostname"] = "Not_A_Host"
    request["customizations"]["files"][0]["path"] = "etc/motd"
    request["customizations"]["packages"].append(3)
    request["customizations"]["surprise"] = True

    fields = {e.field for e in errors_of(request)}

    assert {
        "distribution",
        "image_requests[0].architecture",
        "customizations.hostname",
        "customizations.files[0].path",
        "customizations.packages[2]",
        "customizations.surprise",
    } <= fields


def test_the_refusal_message_names_the_fields() -> None:
    with pytest.raises(ValidationFailed, match="distribution: unknown distribution"):
        validate_compose_request({**minimal_request(), "distribution": "ubuntu-24.04"})


def test_an_unknown_distribution_is_refused() -> None:
    assert_refused({**minimal_request(), "distribution": "debian-11"},
                   "distribution", "supported: debian-12, debian-13")


def test_an_image_name_too_long_is_refused() -> None:
    assert_refused({**minimal_request(), "image_name": "x" * 101}, "image_name", "1 to 100 characters")


def test_an_image_name_with_a_newline_is_refused() -> None:
    assert_refused({**minimal_request(), "image_name": "web\nserver"}, "image_name", "control characters")


def test_a_request_without_image_requests_is_refused() -> None:
    assert_refused({"distribution": "debian-12", "image_requests": []}, "image_requests", "at least one")


def test_more_than_ten_image_requests_are_refused() -> None:
    request = minimal_request()
    request["image_requests"] *= 11
    assert_refused(request, "image_requests", "at most 10")


# --- image requests --------------------------------------------------------


def test_an_unsupported_architecture_is_refused() -> None:
    assert_refused(minimal_request(architecture="aarch64"), "image_requests[0].architecture", "supported: x86_64")


def test_an_unknown_image_type_is_refused() -> None:
    assert_refused(minimal_request("iso"), "image_requests[0].image_type", "unknown image type 'iso'")


def test_an_unknown_upload_target_type_is_refused() -> None:
    assert_refused(minimal_request(upload_targets=[{"type": "gcp", "upload_options": {}}]),
                   "image_requests[0].upload_targets[0].type", "expected one of: aws, aws.s3, local")


def test_an_upload_target_without_a_type_is_refused() -> None:
    assert_refused(minimal_request(upload_targets=[{"upload_options": {}}]),
                   "image_requests[0].upload_targets[0].type", "missing required field")


def test_an_ec2_upload_is_refused_for_an_image_that_is_not_for_aws() -> None:
    target = {"type": "aws", "upload_options": {"region": "eu-west-1"}}
    assert_refused(minimal_request(upload_targets=[target]),
                   "image_requests[0].upload_targets[0].type", "cannot be uploaded to aws")


@pytest.mark.parametrize("field", ["aws_access_key_id", "secret_access_key", "session_token"])
def test_credentials_in_upload_options_are_refused(field: str) -> None:
    target = {"type": "aws.s3", "upload_options": {"bucket": "my-images", field: "AKIA..."}}
    assert_refused(minimal_request(upload_targets=[target]),
                   f"image_requests[0].upload_targets[0].upload_options.{field}", "credentials are never taken")


def test_credentials_in_upstreams_single_upload_options_are_refused_too() -> None:
    assert_refused(minimal_request("aws", upload_options={"region": "us-east-1", "secret_key": "x"}),
                   "image_requests[0].upload_options.secret_key", "credentials are never taken")


def test_ec2_upload_options_without_a_region_are_refused() -> None:
    assert_refused(minimal_request("aws", upload_options={}),
                   "image_requests[0].upload_options.region", "missing required field")


def test_a_malformed_aws_region_is_refused() -> None:
    assert_refused(minimal_request(upload_options={"region": "Frankfurt"}),
                   "image_requests[0].upload_options.region", "not an AWS region")


def test_an_invalid_s3_bucket_name_is_refused() -> None:
    assert_refused(minimal_request(upload_targets=[{"type": "aws.s3", "upload_options": {"bucket": "My_Bucket"}}]),
                   "image_requests[0].upload_targets[0].upload_options.bucket", "not an S3 bucket name")


def test_an_s3_key_starting_with_a_slash_is_refused() -> None:
    assert_refused(minimal_request(upload_options={"key": "/images/disk.qcow2"}),
                   "image_requests[0].upload_options.key", "not starting with '/'")


def test_sharing_an_ami_with_a_malformed_account_is_refused() -> None:
    options = {"region": "us-east-1", "share_with_accounts": ["1234"]}
    assert_refused(minimal_request("aws", upload_options=options),
                   "image_requests[0].upload_options.share_with_accounts[0]", "12-digit AWS account id")


def test_the_same_upload_target_twice_is_refused() -> None:
    assert_refused(minimal_request(upload_targets=[{"type": "local"}, {"type": "local"}]),
                   "image_requests[0].upload_targets[1]", "given twice")


def test_a_repository_that_is_not_http_is_refused() -> None:
    assert_refused(minimal_request(repositories=[{"baseurl": "ftp://ftp.debian.org/debian"}]),
                   "image_requests[0].repositories[0].baseurl", "http:// or https://")


def test_a_repository_url_with_credentials_is_refused() -> None:
    assert_refused(minimal_request(repositories=[{"baseurl": "https://me:s3cret@apt.example.com/debian"}]),
                   "image_requests[0].repositories[0].baseurl", "must not hold credentials")


def test_a_repository_key_that_is_not_armored_is_refused() -> None:
    assert_refused(minimal_request(repositories=[{"baseurl": "https://apt.example.com", "gpgkey": "AAAA"}]),
                   "image_requests[0].repositories[0].gpgkey", "ASCII-armored")


def test_a_malformed_repository_component_is_refused() -> None:
    repository = {"baseurl": "https://apt.example.com", "components": ["main", "non free"]}
    assert_refused(minimal_request(repositories=[repository]),
                   "image_requests[0].repositories[0].components[1]", "not an apt component")


def test_a_kernel_customization_is_refused_when_a_container_is_requested() -> None:
    request = with_customizations(kernel={"append": "quiet"})
    request["image_requests"].append({"architecture": "x86_64", "image_type": "container"})
    assert_refused(request, "customizations.kernel", "bootable disk images only, not to container")


def test_a_filesystem_layout_is_refused_for_a_tarball() -> None:
    request = with_customizations(filesystem=[{"mountpoint": "/var", "min_size": 10**9}])
    request["image_requests"][0]["image_type"] = "tar"
    assert_refused(request, "customizations.filesystem", "bootable disk images only")
