"""The Debian releases the builder can build, and where their packages come from."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import msgspec

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# The keyring shipped by debian-archive-keyring; it signs the Release files of
# both mirrors above, so the default repositories need no gpgkey in a request.
DEBIAN_ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# Request architecture names follow the upstream compose API (`x86_64`); apt,
# dpkg and mmdebstrap want Debian's names.
DEBIAN_ARCHITECTURES: Mapping[str, str] = MappingProxyType({"x86_64": "amd64"})


class Distribution(msgspec.Struct, frozen=True):
    name: str
    version: str
    codename: str
    architectures: tuple[str, ...]
    mirror: str = DEBIAN_MIRROR
    security_mirror: str = DEBIAN_SECURITY_MIRROR
    keyring: str = DEBIAN_ARCHIVE_KEYRING

    @property
    def security_suite(self) -> str:
        # Since bullseye the security suite is `<codename>-security`.
        return f"{self.codename}-security"

    @property
    def updates_suite(self) -> str:
        return f"{self.codename}-updates"


DISTRIBUTIONS: Mapping[str, Distribution] = MappingProxyType(
    {
        "debian-12": Distribution(name="debian-12", version="12", codename="bookworm", architectures=("x86_64",)),
        "debian-13": Distribution(name="debian-13", version="13", codename="trixie", architectures=("x86_64",)),
    }
)

ARCHITECTURES: tuple[str, ...] = tuple(sorted({a for d in DISTRIBUTIONS.values() for a in d.architectures}))


def get_distribution(name: str) -> Distribution | None:
    return DISTRIBUTIONS.get(name)


def debian_architecture(architecture: str) -> str:
    """`x86_64` -> `amd64`; KeyError for an architecture no distribution supports."""
    return DEBIAN_ARCHITECTURES[architecture]
