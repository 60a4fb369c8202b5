"""Resolve package names to exact .debs with apt's own resolver, in a private apt root.

apt never sees the host's configuration or state: `APT_CONFIG` points at a
config file inside the private root, so even the host's apt.conf.d is not read
(apt reads `Dir::Etc::Parts` relative to the `Dir` set there), and the dpkg
status file is an empty one of our own, so every package of the image is
resolved, from the Essential set up. This is how mmdebstrap drives apt too.

The downloaded package lists are kept per (distribution, repositories,
architecture) under the cache dir, so the next job only revalidates them.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import msgspec

from domain.distributions import Distribution, debian_architecture
from workers.build import process
from workers.build.process import CancelEvent, LogCallback

# What every tree gets before the image type's packages: mmdebstrap's `minbase`
# (Essential:yes, Priority:required and apt), as apt patterns.
BASE_PACKAGES = ("?essential", "?priority(required)", "apt")
LISTS_MAX_AGE = 3600.0
TIMEOUT = 600.0
UNKNOWN = re.compile(r"^E: Unable to locate package (\S+)")
NO_CANDIDATE = re.compile(
    r"^E: (?:Package '([^']+)' has no installation candidate|Version '[^']+' for '([^']+)' was not found)"
)
UNMET = re.compile(r"^\s*(\S+) : (?:Pre)?Depends:")


class Source(msgspec.Struct, frozen=True):
    """One apt source line: where packages come from and how they are checked."""

    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)
    # Armored or binary OpenPGP key file content; None means the Debian archive keyring.
    key: str | None = None
    trusted: bool = False


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


def default_sources(dist: Distribution) -> tuple[Source, ...]:
    return (
        Source(dist.mirror, dist.codename),
        Source(dist.mirror, dist.updates_suite),
        Source(dist.security_mirror, dist.security_suite),
    )


def sources_list(sources: Sequence[Source], keyring: str, key_dir: str) -> str:
    """sources.list lines; a source's own key is expected as `key_dir/key_file_name(key)`."""
    lines = []
    for source in sources:
        if source.trusted:
            option = "trusted=yes"
        elif source.key is not None:
            option = f"signed-by={key_dir}/{key_file_name(source.key)}"
        else:
            option = f"signed-by={keyring}"
        lines.append(
            f"deb [{option}] {source.uri} {source.suite} {' '.join(source.components)}"
        )
    return "\n".join(lines) + "\n"


def key_file_name(key: str) -> str:
    # apt tells armored from binary keys by the extension.
    suffix = ".asc" if key.lstrip().startswith("-----BEGIN") else ".gpg"
    return hashlib.sha256(key.encode()).hexdigest()[:16] + suffix


class AptRoot:
    """A private apt root for one (distribution, sources, architecture)."""

    def __init__(
        self,
        cache_dir: Path,
        dist: Distribution,
        sources: Sequence[Source],
        architecture: str,
    ) -> None:
        self.arch = debian_architecture(architecture)
        key_dir = cache_dir / "apt-keys"
        self.sources_text = sources_list(sources, dist.keyring, str(key_dir))
        self.keys = {
            key_dir / key_file_name(s.key): s.key for s in sources if s.key is not None
        }
        digest = hashlib.sha256(
            f"{dist.name}\n{self.arch}\n{self.sources_text}".encode()
        ).hexdigest()[:16]
        self.root = cache_dir / "apt" / f"{dist.name}-{self.arch}-{digest}"
        self.config = self.root / "etc/apt/apt.conf"

    def prepare(self) -> None:
        for sub in (
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for path, key in self.keys.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(key)
        (self.root / "var/lib/dpkg/status").touch()
        (self.root / "etc/apt/sources.list").write_text(self.sources_text)
        self.config.write_text(
            f'Dir "{self.root}/";\n'
            f'Dir::State::status "{self.root}/var/lib/dpkg/status";\n'
            f'APT::Architecture "{self.arch}";\n'
            f'APT::Architectures {{ "{self.arch}"; }};\n'
            # Images stay small like osbuild's: Recommends are opt-in by name.
            'APT::Install-Recommends "false";\n'
            'Acquire::Languages "none";\n'
            # print-uris shows the hash apt verifies with; make that SHA256, not MD5.
            'Acquire::ForceHash "SHA256";\n'
            # The root is ours alone (guarded by lock()); apt's own lock would need root.
            'Debug::NoLocking "true";\n'
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "APT_CONFIG": str(self.config),
            "LC_ALL": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
        }

    def lock(self) -> _FileLock:
        return _FileLock(self.root.with_suffix(".lock"))

    def lists_age(self) -> float:
        stamp = self.root / "updated"
        return time.time() - stamp.stat().st_mtime if stamp.exists() else float("inf")

    async def update(
        self, max_age: float, on_log: LogCallback | None, cancel: CancelEvent | None
    ) -> None:
        if self.lists_age() < max_age:
            return
        await process.run(
            ["apt-get", "update"],
            timeout=TIMEOUT,
            env=self.env,
            on_log=on_log,
            cancel=cancel,
        )
        (self.root / "updated").touch()


class _FileLock:
    """An exclusive flock, so parallel jobs never update the same lists at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aenter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        await asyncio.to_thread(fcntl.flock, self.fd, fcntl.LOCK_EX)
        return self

    async def __aexit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


async def depsolve(
    dist: Distribution, packages: Sequence[str], cache_dir: Path, *, sources: Sequence[Source] = (),
    architecture: str = "x86_64", max_age: float = LISTS_MAX_AGE,
    on_log: LogCallback | None = None, cancel: CancelEvent | None = None,
) -> list[PackageSpec]:  # fmt: skip
    """Every package the tree will hold (base set included), sorted by name."""
    apt = AptRoot(cache_dir, dist, sources or default_sources(dist), architecture)
    async with apt.lock():
        apt.prepare()
        await apt.update(max_age, on_log, cancel)
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
