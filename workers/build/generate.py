"""Turn a build job's request and its depsolved packages into a manifest.

This is the only place that knows what an image type is made of; the stages
only know how to do one thing each.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from domain.compose_request import ImageRequest
from domain.customizations import Customizations, Timezone
from domain.distributions import Distribution, debian_architecture, get_distribution
from domain.image_types import ImageType, get_image_type
from domain.names import parse_port
from workers.build.depsolve import (
    PackageSpec,
    Source,
    default_sources,
    key_file_name,
    sources_list,
)
from workers.build.manifest import Manifest, PipelineSpec, StageSpec
from workers.build.stages import locale as locale_stage

# A build without its own SOURCE_DATE_EPOCH gets its distribution's release
# date: fixed, so equal requests give equal artifacts, and not 0, which shadow
# would store as "password changed on 1970-01-01, change it now".
RELEASE_EPOCHS = {"debian-12": 1686355200, "debian-13": 1754697600}
NETWORK_FILE = "/etc/systemd/network/80-image-builder-dhcp.network"
NETWORK = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"
KEY_DIR = "/etc/apt/keyrings"
RAW_DISK = "disk.raw"
# Each disk image type's format, made from the raw disk (None: the raw disk is the artifact).
DISK_FORMATS: Mapping[str, str | None] = {
    "guest-image": "qcow2", "aws": None, "azure": "vhd", "vsphere": "vmdk", "gcp": "gce-tar",
}  # fmt: skip
# GCE disks come in whole GiB. (Azure's whole MiB needs nothing: every layout is whole MiB.)
SIZE_MULTIPLE_MIB: Mapping[str, int] = {"gcp": 1024}
# Where cloud-init finds its metadata on each platform (None: the no-metadata fallback).
DATASOURCES: Mapping[str, tuple[str, ...]] = {
    "guest-image": ("NoCloud", "ConfigDrive", "None"),
    "aws": ("Ec2", "None"),
    "azure": ("Azure", "None"),
    "gcp": ("GCE", "None"),
    "vsphere": ("VMware", "OVF", "None"),
}
TREE_ARCHIVES = ("tar", "wsl", "oci", "container")
SUPPORTED = (*DISK_FORMATS, *TREE_ARCHIVES)


class UnsupportedImage(ValueError):
    pass


def parse_request(
    request: Mapping[str, Any],
) -> tuple[Distribution, ImageRequest, Customizations]:
    dist = get_distribution(request["distribution"])
    if dist is None:
        raise UnsupportedImage(f"unknown distribution {request['distribution']!r}")
    image = msgspec.convert(request["image"], ImageRequest)
    if image.image_type not in SUPPORTED:
        raise UnsupportedImage(
            f"unknown image type {image.image_type!r}; supported: {', '.join(SUPPORTED)}"
        )
    customizations = msgspec.convert(
        request.get("customizations") or {}, Customizations
    )
    return dist, image, customizations


def packages_for(request: Mapping[str, Any]) -> list[str]:
    """What to depsolve for a request: the image type's packages, then the user's."""
    _dist, image, c = parse_request(request)
    image_type = get_image_type(image.image_type)
    assert image_type is not None
    wanted = list(image_type.packages)
    if c.kernel is not None and c.kernel.name is not None and image_type.kernel is not None:
        wanted[wanted.index(image_type.kernel)] = c.kernel.name
    if c.locale is not None and locale_stage.needs_locales_package(c.locale.languages):
        wanted.append("locales")
    if c.firewall is not None and c.firewall.ports:
        wanted.append("nftables")
    wanted += c.packages
    return list(dict.fromkeys(wanted))


def sources_for(dist: Distribution, image: ImageRequest) -> tuple[Source, ...]:
    if not image.repositories:
        return default_sources(dist)
    return tuple(
        Source(uri=r.baseurl, suite=r.suite or dist.codename, components=r.components or ("main",),
               key=r.gpgkey, trusted=not r.check_gpg)
        for r in image.repositories
    )  # fmt: skip


def generate_manifest(
    request: Mapping[str, Any], packages: Sequence[PackageSpec], password_hashes: Mapping[str, str],
) -> Manifest:  # fmt: skip
    """`password_hashes` maps a user name to the crypt hash of its password (build_image makes them)."""
    dist, image, c = parse_request(request)
    image_type = get_image_type(image.image_type)
    assert image_type is not None
    sources = sources_for(dist, image)
    seed = hashlib.sha256(
        msgspec.json.encode([request, packages], order="sorted")
    ).hexdigest()
    os_stages = [_bootstrap(dist, image, sources, packages)]
    os_stages += _customizations(c, sources, password_hashes)
    if image_type.bootable:
        os_stages += _bootable(c)
    if image_type.name in DATASOURCES:
        os_stages.append(StageSpec(type="cloud-init", options={
            "datasources": list(DATASOURCES[image_type.name]), "preserve_hostname": c.hostname is not None,
        }))  # fmt: skip
    if image_type.name == "wsl":
        os_stages.append(_wsl_conf(c, packages))
    os_stages.append(StageSpec(type="finalize"))
    assemblers = _assemblers(image_type, dist, image, c, seed)
    epoch = request.get("source_date_epoch") or RELEASE_EPOCHS.get(
        dist.name, RELEASE_EPOCHS["debian-12"]
    )
    return Manifest(
        sources=tuple(packages), source_date_epoch=epoch,
        pipelines=(PipelineSpec(name="os", stages=tuple(os_stages)),
                   PipelineSpec(name="image", input="os", stages=tuple(assemblers))),
    )  # fmt: skip


def _bootstrap(dist: Distribution, image: ImageRequest, sources: Sequence[Source],
               packages: Sequence[PackageSpec]) -> StageSpec:  # fmt: skip
    apt_sources = sources_list(sources, dist.keyring, KEY_DIR)
    return StageSpec(type="bootstrap", options={
        "architecture": debian_architecture(image.architecture),
        "packages": [{"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256} for p in packages],
        "apt_sources": apt_sources,
    })  # fmt: skip


def _customizations(
    c: Customizations, sources: Sequence[Source], hashes: Mapping[str, str]
) -> list[StageSpec]:
    stages = []
    if c.hostname:
        stages.append(StageSpec(type="hostname", options={"hostname": c.hostname}))
    zone = Timezone(timezone=c.timezone) if isinstance(c.timezone, str) else c.timezone
    if zone is not None and (zone.timezone or zone.ntpservers):
        stages.append(
            StageSpec(
                type="timezone",
                options={"zone": zone.timezone, "ntpservers": list(zone.ntpservers)},
            )
        )
    if c.locale is not None:
        stages.append(StageSpec(type="locale", options=msgspec.to_builtins(c.locale)))
    if c.users:
        users = [
            {
                "name": u.name,
                "groups": list(u.groups),
                "key": u.key,
                "password_hash": hashes.get(u.name),
            }
            for u in c.users
        ]
        stages.append(StageSpec(type="users", options={"users": users}))
    keys = [
        {
            "path": f"{KEY_DIR}/{key_file_name(s.key)}",
            "data": s.key,
            "mode": "0644",
            "ensure_parents": True,
        }
        for s in sources
        if s.key is not None and not s.trusted
    ]
    files = keys + [msgspec.to_builtins(f) for f in c.files]
    if files or c.directories:
        stages.append(
            StageSpec(
                type="files",
                options={
                    "directories": [msgspec.to_builtins(d) for d in c.directories],
                    "files": files,
                },
            )
        )
    if c.firewall is not None and c.firewall.ports:
        ports = []
        for spec in c.firewall.ports:
            parsed = parse_port(spec)
            if parsed is None:
                raise UnsupportedImage(f"{spec!r} is not a port")
            ports.append({"start": parsed[0], "end": parsed[1], "protocol": parsed[2]})
        stages.append(StageSpec(type="firewall", options={"ports": ports}))
    if c.first_boot_script:
        stages.append(
            StageSpec(type="first-boot", options={"script": c.first_boot_script})
        )
    if c.services is not None:
        stages.append(
            StageSpec(type="services", options=msgspec.to_builtins(c.services))
        )
    return stages


def _cmdline(c: Customizations) -> str:
    base = "root=LABEL=root ro console=tty0 console=ttyS0"
    return (
        f"{base} {c.kernel.append}"
        if c.kernel is not None and c.kernel.append
        else base
    )


def _bootable(c: Customizations) -> list[StageSpec]:
    mounts = [
        {
            "source": "LABEL=root",
            "target": "/",
            "type": "ext4",
            "options": "errors=remount-ro",
            "passno": 1,
        },
        {
            "source": "LABEL=ESP",
            "target": "/boot/efi",
            "type": "vfat",
            "options": "umask=0077",
            "passno": 2,
        },
    ]
    return [
        StageSpec(
            type="boot-config",
            options={"mounts": mounts, "kernel_cmdline": _cmdline(c)},
        ),
        # A guest is reachable out of the box: DHCP on its first Ethernet link.
        StageSpec(
            type="files", options={"files": [{"path": NETWORK_FILE, "data": NETWORK}]}
        ),
        StageSpec(
            type="services",
            options={
                "enabled": ["systemd-networkd.service", "systemd-resolved.service"]
            },
        ),
    ]


def _wsl_conf(c: Customizations, packages: Sequence[PackageSpec]) -> StageSpec:
    # systemd boots only where it is init; WSL logs in as the request's first user.
    users = [u.name for u in c.users if u.name != "root"]
    return StageSpec(type="wsl-conf", options={
        "systemd": any(p.name == "systemd-sysv" for p in packages),
        "default_user": users[0] if users else None, "hostname": c.hostname,
    })  # fmt: skip


def _assemblers(image_type: ImageType, dist: Distribution, image: ImageRequest, c: Customizations,
                seed: str) -> list[StageSpec]:  # fmt: skip
    if image_type.name == "tar":
        return [StageSpec(type="tar", options={"filename": image_type.filename})]
    if image_type.name == "wsl":
        return [StageSpec(type="tar", options={"filename": image_type.filename, "gzip": True})]
    if image_type.name in ("oci", "container"):
        return [StageSpec(type="oci-archive", options={
            "filename": image_type.filename, "architecture": debian_architecture(image.architecture),
        })]  # fmt: skip
    disk_format = DISK_FORMATS[image_type.name]
    raw = image_type.filename if disk_format is None else RAW_DISK
    stages = [_raw_disk(dist, c, raw, seed, SIZE_MULTIPLE_MIB.get(image_type.name, 1))]
    if disk_format is not None:
        stages.append(StageSpec(type="disk-format", options={
            "source": raw, "filename": image_type.filename, "format": disk_format,
        }))  # fmt: skip
    return stages


def _raw_disk(dist: Distribution, c: Customizations, filename: str, seed: str, multiple_mib: int) -> StageSpec:
    def derived(role: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"image-builder:{seed}:{role}"))

    return StageSpec(type="raw-disk", options={
        "filename": filename, "kernel_cmdline": _cmdline(c), "title": f"Debian GNU/Linux {dist.version}",
        "disk_guid": derived("disk"), "esp_uuid": derived("esp"), "root_uuid": derived("root"),
        "esp_volume_id": derived("esp-volume")[:8].upper(), "size_multiple_mib": multiple_mib,
    })  # fmt: skip
