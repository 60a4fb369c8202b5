"""A private apt root per (distribution, repositories, architecture): apt's lists, kept between uses.

apt never sees the host's configuration or state: `APT_CONFIG` points at a
config file inside the private root, so even the host's apt.conf.d is not read
(apt reads `Dir::Etc::Parts` relative to the `Dir` set there), and the dpkg
status file is an empty one of our own, so every package of the image is
resolved, from the Essential set up. This is how mmdebstrap drives apt too.

The downloaded package lists are kept per (distribution, repositories,
architecture) under the cache dir and refreshed once they are older than
``LISTS_MAX_AGE``; an exclusive lock per root keeps two users (parallel
builds, a build and a package search) from updating the same lists at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Self

import msgspec

from domain.distributions import Distribution, debian_architecture

LISTS_MAX_AGE = 3600.0
# How apt-get update is run: the worker streams its output into the build log
# and can cancel it; a package search just waits for it.
Run = Callable[[Sequence[str]], Awaitable[object]]


class Source(msgspec.Struct, frozen=True):
    """One apt source line: where packages come from and how they are checked."""

    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)
    # Armored or binary OpenPGP key file content; None means the Debian archive keyring.
    key: str | None = None
    trusted: bool = False


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
        """Make the root's files; each is written only when it is missing or differs, because
        apt rebuilds its package cache (a second per use) when the config or status file is newer."""
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
            _write_if_changed(path, key)
        _write_if_changed(self.root / "var/lib/dpkg/status", "")
        _write_if_changed(self.root / "etc/apt/sources.list", self.sources_text)
        _write_if_changed(
            self.config,
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
            'Debug::NoLocking "true";\n',
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "APT_CONFIG": str(self.config),
            "LC_ALL": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
        }

    def lock(self) -> FileLock:
        return FileLock(self.root.with_suffix(".lock"))

    @property
    def stamp(self) -> Path:
        """Touched after each successful `apt-get update`."""
        return self.root / "updated"

    def lists_age(self) -> float:
        return time.time() - self.stamp.stat().st_mtime if self.stamp.exists() else float("inf")

    async def update(self, max_age: float, run: Run) -> None:
        """`apt-get update` through `run`, unless the lists are younger than `max_age` seconds."""
        if self.lists_age() < max_age:
            return
        await run(["apt-get", "update"])
        self.stamp.touch()


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


class FileLock:
    """An exclusive flock, so parallel users never update the same lists at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aenter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        acquiring = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, self.fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            # The thread takes the lock all the same: give it back once it has,
            # or every later user of these lists would wait for ever.
            acquiring.add_done_callback(lambda _: self._release())
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
