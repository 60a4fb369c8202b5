"""Resolve package names to exact .debs with apt's own resolver, in a private apt root.

The apt root and its cached lists are `aptcache.root`'s, which the backend's
package search reads too: a search shows the versions a depsolve would pick.
The sources (`Source`, `default_sources`, `sources_list`, `key_file_name`)
are aptcache's as well; the build takes them from here with the packages.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import msgspec

from aptcache.root import LISTS_MAX_AGE, AptRoot, Source, default_sources, key_file_name, sources_list
from domain.distributions import Distribution
from workers.build import process
from workers.build.process import CancelEvent, LogCallback

# What every tree gets before the image type's packages: mmdebstrap's `minbase`
# (Essential:yes, Priority:required and apt), as apt patterns.
BASE_PACKAGES = ("?essential", "?priority(required)", "apt")
TIMEOUT = 600.0
UNKNOWN = re.compile(r"^E: Unable to locate package (\S+)")
NO_CANDIDATE = re.compile(
    r"^E: (?:Package '([^']+)' has no installation candidate|Version '[^']+' for '([^']+)' was not found)"
)
UNMET = re.compile(r"^\s*(\S+) : (?:Pre)?Depends:")

__all__ = [
    "AptRoot", "DepsolveFailed", "PackageSpec", "Source", "default_sources", "depsolve", "key_file_name",
    "parse_print_uris", "sources_list",
]  # fmt: skip


class PackageSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved .deb, exact enough to fetch and verify it."""

    name: str
    version: str
    arch: str
    sha256: str
    size: int
    url: str


class DepsolveFailed(Exception):
    def __init__(self, package: str | None, message: str) -> None:
        self.package = package
        super().__init__(message)


async def depsolve(
    dist: Distribution, packages: Sequence[str], cache_dir: Path, *, sources: Sequence[Source] = (),
    architecture: str = "x86_64", max_age: float = LISTS_MAX_AGE,
    on_log: LogCallback | None = None, cancel: CancelEvent | None = None,
) -> list[PackageSpec]:  # fmt: skip
    """Every package the tree will hold (base set included), sorted by name."""
    apt = AptRoot(cache_dir, dist, sources or default_sources(dist), architecture)
    async with apt.lock():
        apt.prepare()
        await apt.update(
            max_age, functools.partial(process.run, timeout=TIMEOUT, env=apt.env, on_log=on_log, cancel=cancel)
        )
        argv = ["apt-get", "install", "-qq", "--print-uris", *BASE_PACKAGES, *packages]
        try:
            out = await process.run(
                argv, timeout=TIMEOUT, env=apt.env, cancel=cancel, capture=True
            )
        except process.CommandFailed as failed:
            raise _explain(failed.tail) from None
    return sorted(parse_print_uris(out), key=lambda p: p.name)


def _explain(output: str) -> DepsolveFailed:
    for line in output.splitlines():
        if match := UNKNOWN.match(line) or NO_CANDIDATE.match(line):
            name = next(g for g in match.groups() if g)
            return DepsolveFailed(name, f"package {name} is not available: {line[3:]}")
    for line in output.splitlines():
        if match := UNMET.match(line):
            return DepsolveFailed(
                match.group(1),
                f"package {match.group(1)} cannot be installed: {line.strip()}",
            )
    return DepsolveFailed(
        None, f"apt could not resolve the packages: {output.strip()[-2000:]}"
    )


def parse_print_uris(output: str) -> list[PackageSpec]:
    """Parse `'URL' name_version_arch.deb SIZE SHA256:hex` lines."""
    specs = []
    for line in output.splitlines():
        if not line.startswith("'"):
            continue
        url, filename, size, digest = line.split()
        name, version, arch = filename.removesuffix(".deb").split("_")
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "SHA256":
            raise DepsolveFailed(name, f"apt gave no SHA256 for {name}: {digest}")
        specs.append(
            PackageSpec(
                name=name,
                version=urllib.parse.unquote(version),
                arch=arch,
                sha256=hexdigest,
                size=int(size),
                url=url.strip("'"),
            )
        )
    return specs
