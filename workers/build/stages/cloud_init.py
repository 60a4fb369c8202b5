"""Tell cloud-init which platform it runs on, in /etc/cloud/cloud.cfg.d.

Naming the datasources spares every boot the probe of all the others (and
ds-identify turns cloud-init off where none of them is found). The file
sorts after Debian's 90_dpkg.cfg, whose datasource_list it overrides;
the list stays on one line because ds-identify reads it with a line parser.

Networking is left to the systemd-networkd DHCP file every bootable image
gets, so cloud-init's network rendering is off: one owner for the links.
"""

from __future__ import annotations

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "cloud-init"
CONFIG_FILE = "/etc/cloud/cloud.cfg.d/95_image-builder.cfg"
# The datasources of the platforms image types are built for, and None: cloud-init's
# fallback that runs the modules without any metadata.
DATASOURCES = ("NoCloud", "ConfigDrive", "Ec2", "Azure", "GCE", "VMware", "OVF", "None")


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    datasources: tuple[str, ...]
    # A host name the request set survives the platform's metadata.
    preserve_hostname: bool = False


def check(options: Options) -> None:
    if not options.datasources:
        raise ValueError("datasources must not be empty")
    for name in options.datasources:
        if name not in DATASOURCES:
            raise ValueError(
                f"{name!r} is not a datasource; known: {', '.join(DATASOURCES)}"
            )


def config(options: Options) -> str:
    lines = [
        "# Written by image-builder.",
        f"datasource_list: [ {', '.join(options.datasources)} ]",
        "network: {config: disabled}",
    ]
    if options.preserve_hostname:
        lines.append("preserve_hostname: true")
    return "\n".join(lines) + "\n"


async def run(ctx: StageContext, options: Options) -> None:
    if not ctx.path("/etc/cloud").is_dir():
        raise ValueError("/etc/cloud is missing: the image needs the cloud-init package")
    write(ctx.path(CONFIG_FILE), config(options))
