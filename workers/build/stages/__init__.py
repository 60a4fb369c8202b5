"""Every stage the executor knows, by name. A stage module has NAME, Options, run() and maybe check()."""

from __future__ import annotations

from types import MappingProxyType, ModuleType

from workers.build.stages import (
    boot_config,
    bootstrap,
    cloud_init,
    disk_format,
    files,
    finalize,
    firewall,
    first_boot,
    hostname,
    locale,
    oci_archive,
    raw_disk,
    services,
    tar,
    timezone,
    users,
    wsl_conf,
)

_MODULES: tuple[ModuleType, ...] = (
    bootstrap, hostname, timezone, locale, users, services, files, first_boot, firewall, boot_config, cloud_init,
    wsl_conf, finalize, tar, oci_archive, raw_disk, disk_format,
)  # fmt: skip
STAGES = MappingProxyType({module.NAME: module for module in _MODULES})
