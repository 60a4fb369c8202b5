"""The worker's entry point for a build job: request + depsolved packages in, artifacts out."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from workers.build import process
from workers.build.depsolve import PackageSpec
from workers.build.executor import BuildCancelled, StageCallback, execute
from workers.build.generate import generate_manifest, parse_request
from workers.build.outputs import InstalledPackage, installed_packages, spdx_sbom
from workers.build.process import CancelEvent, LogCallback
from workers.build.stages import users as users_stage

HASH_TIMEOUT = 60.0


class Artifact(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    path: str
    sha256: str
    size: int


class BuildResult(msgspec.Struct, frozen=True, kw_only=True):
    artifacts: list[Artifact]
    packages: list[InstalledPackage]
    sbom: dict[str, Any]
    manifest: dict[str, Any]
    downloaded: int


async def hash_passwords(
    request: Mapping[str, Any], cancel: CancelEvent | None = None
) -> dict[str, str]:
    """Crypt hashes for the users' passwords; plain ones go through `openssl passwd -6` on stdin."""
    _, _, customizations = parse_request(request)
    hashes = {}
    for user in customizations.users:
        if user.password is None:
            continue
        if users_stage.CRYPT.fullmatch(user.password):
            hashes[user.name] = user.password
        else:
            out = await process.run(
                ["openssl", "passwd", "-6", "-stdin"],
                stdin=user.password.encode() + b"\n",
                timeout=HASH_TIMEOUT,
                cancel=cancel,
                capture=True,
            )
            hashes[user.name] = out.strip()
    return hashes


async def build_image(
    request: Mapping[str, Any], packages: Sequence[PackageSpec | Mapping[str, Any]], work_dir: Path,
    cache_dir: Path, on_stage: StageCallback, on_log: LogCallback, cancel: CancelEvent | None = None,
) -> BuildResult:  # fmt: skip
    """Build the request's image under `work_dir`; artifacts are left in `work_dir/output`.

    Raises executor.StageFailed (with the failing stage and the tail of its
    output), executor.ManifestInvalid, or executor.BuildCancelled (after
    killing what was running and removing everything under `work_dir`).
    """
    specs = [
        p if isinstance(p, PackageSpec) else msgspec.convert(p, PackageSpec)
        for p in packages
    ]
    manifest = generate_manifest(request, specs, await hash_passwords(request, cancel))
    output_dir = work_dir / "output"
    tree = work_dir / "trees" / "os"
    facts: dict[str, Any] = {}

    def collect(index: int, total: int, name: str) -> None:
        # Read the installed packages as the last step starts: the tree is
        # complete by then and only removed once every step is done.
        if index == total - 1 and tree.is_dir():
            facts["packages"] = installed_packages(tree)
        on_stage(index, total, name)

    try:
        stats = await execute(
            manifest,
            work_dir=work_dir,
            cache_dir=cache_dir,
            output_dir=output_dir,
            on_stage=collect,
            on_log=on_log,
            cancel=cancel,
        )
    except BuildCancelled:
        shutil.rmtree(output_dir, ignore_errors=True)
        raise
    installed = facts.get("packages", [])
    artifacts = [await _artifact(path) for path in sorted(output_dir.iterdir())]
    _, image, _ = parse_request(request)
    sbom = spdx_sbom(
        installed,
        request.get("image_name") or image.image_type,
        request["distribution"],
        manifest.source_date_epoch,
    )
    return BuildResult(
        artifacts=artifacts,
        packages=installed,
        sbom=sbom,
        manifest=msgspec.json.decode(manifest.to_json()),
        downloaded=stats.downloaded,
    )


async def _artifact(path: Path) -> Artifact:
    digest = await asyncio.to_thread(_sha256, path)
    return Artifact(
        name=path.name, path=str(path), sha256=digest, size=path.stat().st_size
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
