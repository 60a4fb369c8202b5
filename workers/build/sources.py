"""A content-addressed cache of .deb files, shared by all builds on a worker.

A package is fetched to a temporary name, its SHA256 checked against the one
the depsolve took from the signed repository index, and only then renamed to
`debs/<sha256>.deb`. A rename is atomic, so a file under its final name is
always complete and verified, and parallel builds can share the cache without
locks (as osbuild's sources do, `osbuild/sources.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import msgspec

from workers.build import process
from workers.build.depsolve import PackageSpec
from workers.build.process import CancelEvent, LogCallback

PARALLEL = 4
TIMEOUT = 900.0


class FetchFailed(Exception):
    pass


class FetchStats(msgspec.Struct, kw_only=True):
    downloaded: int = 0
    reused: int = 0
    bytes: int = 0


class DebCache:
    def __init__(self, cache_dir: Path) -> None:
        self.dir = cache_dir / "debs"

    def path(self, sha256: str) -> Path:
        return self.dir / f"{sha256}.deb"

    def has(self, package: PackageSpec) -> bool:
        return self.path(package.sha256).exists()

    async def fetch(
        self,
        packages: Sequence[PackageSpec],
        *,
        on_log: LogCallback | None = None,
        cancel: CancelEvent | None = None,
    ) -> FetchStats:
        self.dir.mkdir(parents=True, exist_ok=True)
        stats = FetchStats()
        missing = [p for p in packages if not self.has(p)]
        stats.reused = len(packages) - len(missing)
        limit = asyncio.Semaphore(PARALLEL)

        async def one(package: PackageSpec) -> None:
            async with limit:
                await self._download(package, on_log, cancel)
                stats.downloaded += 1
                stats.bytes += package.size

        await asyncio.gather(*(one(p) for p in missing))
        return stats

    async def _download(
        self,
        package: PackageSpec,
        on_log: LogCallback | None,
        cancel: CancelEvent | None,
    ) -> None:
        partial = self.dir / f".{package.sha256}.{uuid.uuid4().hex}.partial"
        try:
            argv = [
                "curl",
                "--fail",
                "--silent",
                "--show-error",
                "--location",
                "--retry",
                "3",
                "--output",
                str(partial),
                package.url,
            ]
            await process.run(argv, timeout=TIMEOUT, cancel=cancel, on_log=on_log)
            digest = await asyncio.to_thread(_sha256, partial)
            if digest != package.sha256:
                raise FetchFailed(
                    f"{package.name} {package.version}: sha256 {digest} != {package.sha256}"
                )
            os.chmod(partial, 0o644)
            os.replace(partial, self.path(package.sha256))
            if on_log is not None:
                on_log(f"fetched {package.name}_{package.version}_{package.arch}.deb")
        except process.CommandFailed as failed:
            raise FetchFailed(
                f"{package.name} {package.version}: {failed.tail or failed}"
            ) from None
        finally:
            partial.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
