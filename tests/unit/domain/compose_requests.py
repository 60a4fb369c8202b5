"""Builders of compose requests (plain JSON-shaped dicts) for the domain tests."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from domain.field_errors import FieldError, ValidationFailed
from domain.validation import validate_compose_request


def ssh_key(kind: str = "ssh-ed25519", comment: str = "alice@laptop") -> str:
    """A well-formed public key line of `kind` (random-free, not a real key)."""
    name = kind.encode()
    blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big") + bytes(range(32))
    return f"{kind} {base64.b64encode(blob).decode()} {comment}".strip()


SHA512_HASH = "$6$rounds=5000$sAltSalt$" + "x" * 86
YESCRYPT_HASH = "$y$j9T$sAltSaltsAlt$" + "Y" * 43


def full_request() -> dict[str, Any]:
    """Every field set, in the form validation returns it (so it round-trips)."""
    return {
        "distribution": "debian-12",
        "image_name": "web server",
        "image_requests": [
            {
                "architecture": "x86_64",
                "image_type": "guest-image",
                "repositories": [
                    {
                        "baseurl": "https://deb.debian.org/debian",
                        "suite": "bookworm-backports",
                        "components": ["main", "contrib"],
                        "check_gpg": False,
                    }
                ],
                "upload_targets": [
                    {"type": "local", "upload_options": {}},
                    {"type": "aws.s3", "upload_options": {"region": "eu-west-1", "bucket": "my-images",
                                                          "key": "builds/web.qcow2", "public": True}},
                ],
            },
            {
                "architecture": "x86_64",
                "image_type": "aws",
                "upload_targets": [
                    {"type": "aws", "upload_options": {"region": "eu-central-1",
                                                       "share_with_accounts": ["123456789012"],
                                                       "snapshot_name": "web-1"}},
                ],
            },
        ],
        "customizations": {
            "packages": ["nginx", "curl=7.88.1-10+deb12u5"],
            "users": [
                {"name": "alice", "groups": ["sudo", "adm"], "key": ssh_key(), "password": "correct horse"},
                {"name": "root", "key": ssh_key("ssh-rsa", "")},
            ],
            "services": {"enabled": ["nginx"], "disabled": ["apt-daily.timer"], "masked": ["getty@tty2"]},
            "files": [{"path": "/etc/motd", "data": "hello\n", "mode": "0644", "user": "root", "group": 0,
                       "ensure_parents": True}],
            "directories": [{"path": "/srv/www", "mode": "0755", "user": "www-data", "group": "www-data"}],
            "hostname": "web-1.example.org",
            "timezone": {"timezone": "Europe/Berlin", "ntpservers": ["0.debian.pool.ntp.org", "192.0.2.1"]},
            "locale": {"languages": ["en_US.UTF-8", "de_DE.UTF-8"], "keyboard": "de"},
            "kernel": {"name": "linux-image-cloud-amd64", "append": "quiet console=ttyS0"},
            "firewall": {"ports": ["22/tcp", "8000-8080/udp"]},
            "filesystem": [{"mountpoint": "/", "min_size": 4 * 1024**3}, {"mountpoint": "/var", "min_size": 10**10}],
            "first_boot_script": "#!/bin/sh\nsystemctl restart nginx\n",
        },
    }


def minimal_request(image_type: str = "guest-image", **image: Any) -> dict[str, Any]:
    return {
        "distribution": "debian-13",
        "image_requests": [{"architecture": "x86_64", "image_type": image_type, **image}],
    }


def with_customizations(**customizations: Any) -> dict[str, Any]:
    request = minimal_request()
    request["customizations"] = copy.deepcopy(customizations)
    return request


def errors_of(request: Any) -> list[FieldError]:
    with pytest.raises(ValidationFailed) as refused:
        validate_compose_request(request)
    assert refused.value.errors, "a refusal must say why"
    return refused.value.errors


def assert_refused(request: Any, field: str, reason: str) -> None:
    """`request` is refused with a problem at exactly `field` whose reason mentions `reason`."""
    errors = errors_of(request)
    at_field = [e for e in errors if e.field == field]
    assert at_field, f"no problem reported at {field!r}; got {errors}"
    assert any(reason in e.reason for e in at_field), f"{reason!r} not in {at_field}"
