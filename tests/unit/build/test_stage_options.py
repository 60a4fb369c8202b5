"""Every stage's options schema refuses unknown fields and bad values before anything runs."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from workers.build.stages import STAGES

SHA = "a" * 64
UUID = "5b0a6c9e-2d39-4a1c-9c53-1f6e4a5b8c7d"
VALID: dict[str, dict[str, Any]] = {
    "bootstrap": {
        "architecture": "amd64",
        "apt_sources": "deb x y z\n",
        "packages": [
            {"name": "bash", "version": "5.2-1", "arch": "amd64", "sha256": SHA}
        ],
    },
    "hostname": {"hostname": "web-1.example.com"},
    "timezone": {"zone": "Europe/Berlin", "ntpservers": ["0.pool.ntp.org"]},
    "locale": {"languages": ["de_DE.UTF-8"], "keyboard": "de"},
    "users": {
        "users": [
            {
                "name": "alice",
                "groups": ["sudo"],
                "key": "ssh-ed25519 AAAA x",
                "password_hash": None,
            }
        ]
    },
    "services": {
        "enabled": ["ssh.service"],
        "disabled": ["cron"],
        "masked": ["getty@tty1.service"],
    },
    "files": {
        "directories": [{"path": "/srv/app", "mode": "0750"}],
        "files": [{"path": "/etc/a", "mode": "0640"}],
    },
    "first-boot": {"script": "echo hi"},
    "firewall": {"ports": [{"start": 22, "end": 22, "protocol": "tcp"}]},
    "boot-config": {
        "mounts": [{"source": "LABEL=root", "target": "/", "type": "ext4"}],
        "kernel_cmdline": "ro",
    },
    "finalize": {},
    "tar": {"filename": "image.wsl", "gzip": True},
    "raw-disk": {
        "filename": "disk.raw",
        "kernel_cmdline": "root=LABEL=root",
        "title": "Debian",
        "disk_guid": UUID,
        "esp_uuid": UUID,
        "root_uuid": UUID,
        "esp_volume_id": "ABCD1234",
        "size_multiple_mib": 1024,
    },
    "disk-format": {"source": "disk.raw", "filename": "disk.vhd", "format": "vhd"},
    "cloud-init": {"datasources": ["Ec2", "None"], "preserve_hostname": True},
    "oci-archive": {"filename": "image.oci.tar", "architecture": "arm64", "cmd": ["/bin/sh"]},
    "wsl-conf": {"systemd": True, "default_user": "alice", "hostname": "wsl-1"},
}
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("bootstrap", {**VALID["bootstrap"], "packages": []}),
    (
        "bootstrap",
        {
            **VALID["bootstrap"],
            "packages": [
                {"name": "bash", "version": "1", "arch": "amd64", "sha256": "x"}
            ],
        },
    ),
    ("hostname", {"hostname": "Not_A_Host"}),
    ("timezone", {"zone": "../../etc/passwd"}),
    ("locale", {"languages": ["de DE"]}),
    ("users", {"users": [{"name": "Root!"}]}),
    ("users", {"users": [{"name": "bob", "password_hash": "plain text"}]}),
    ("services", {"enabled": ["--now"]}),
    ("files", {"files": [{"path": "relative/path"}]}),
    ("files", {"files": [{"path": "/etc/../root/x"}]}),
    ("files", {"directories": [{"path": "/srv", "mode": "999"}]}),
    ("firewall", {"ports": [{"start": 0, "end": 22, "protocol": "tcp"}]}),
    ("firewall", {"ports": [{"start": 22, "end": 22, "protocol": "sctp"}]}),
    (
        "boot-config",
        {
            "mounts": [{"source": "LABEL=root", "target": "/", "type": "ext 4"}],
            "kernel_cmdline": "",
        },
    ),
    ("tar", {"filename": "../root.tar"}),
    ("raw-disk", {**VALID["raw-disk"], "disk_guid": "not-a-uuid"}),
    ("raw-disk", {**VALID["raw-disk"], "esp_volume_id": "abcd"}),
    ("raw-disk", {**VALID["raw-disk"], "size_multiple_mib": 0}),
    ("raw-disk", {**VALID["raw-disk"], "filename": "../disk.raw"}),
    ("disk-format", {**VALID["disk-format"], "format": "vdi"}),
    ("disk-format", {**VALID["disk-format"], "filename": "disk.raw"}),
    ("disk-format", {**VALID["disk-format"], "source": "/tmp/disk.raw"}),
    ("oci-archive", {"filename": "a/b.tar"}),
    ("oci-archive", {"filename": "image.oci.tar", "architecture": "x86_64"}),
    ("oci-archive", {"filename": "image.oci.tar", "cmd": []}),
    ("wsl-conf", {"default_user": "Alice Smith"}),
    ("wsl-conf", {"hostname": "not a host"}),
    ("cloud-init", {"datasources": []}),
    ("cloud-init", {"datasources": ["Ec2", "ec2; rm -rf /"]}),
    ("first-boot", {"script": "  "}),
]


def parse(name: str, options: dict[str, Any]) -> msgspec.Struct:
    module = STAGES[name]
    parsed = msgspec.convert(options, module.Options)
    if check := getattr(module, "check", None):
        check(parsed)
    return parsed


def test_every_stage_has_valid_example_options() -> None:
    assert set(VALID) == set(STAGES)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_options_are_accepted(name: str) -> None:
    parse(name, VALID[name])


@pytest.mark.parametrize("name", sorted(VALID))
def test_an_unknown_option_is_refused(name: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        parse(name, {**VALID[name], "colour": "blue"})


@pytest.mark.parametrize(
    ("name", "options"), INVALID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(INVALID)]
)
def test_a_bad_value_is_refused(name: str, options: dict[str, Any]) -> None:
    with pytest.raises((msgspec.ValidationError, ValueError)):
        parse(name, options)
