"""Assemble the tree into an OCI image archive: the OCI image layout as one tar.

The archive holds `oci-layout`, `index.json` and `blobs/sha256/`: one gzipped
layer with the whole tree, the image config and the manifest naming both
(https://github.com/opencontainers/image-spec/blob/main/image-layout.md).
`podman load`, `skopeo copy oci-archive:` and umoci read it.

Two builds of one request give the same bytes: the layer is made like the
tar stage's archive (sorted names, one mtime, numeric owners) and gzipped
without a timestamp, the JSON documents have sorted keys and no spaces, and
the outer tar has sorted entries, the build's mtime and root as owner.

/dev stays in the layer as an empty directory: container runtimes mount
their own, and an unprivileged one cannot make the device nodes mmdebstrap
left there.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from workers.build.context import StageContext
from workers.build.process import CancelEvent
from workers.build.stages import archives, tar

NAME = "oci-archive"
TIMEOUT = 1800.0
ARCHITECTURES = ("amd64", "arm64")
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    filename: str
    # GOARCH names, which are Debian's for the two architectures built.
    architecture: str = "amd64"
    cmd: tuple[str, ...] = ("/bin/bash",)


def check(options: Options) -> None:
    if "/" in options.filename or options.filename in ("", ".", ".."):
        raise ValueError(f"{options.filename!r} must be a plain file name")
    if options.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}")
    if not options.cmd or not options.cmd[0]:
        raise ValueError("cmd must name a program")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    sha256: str
    size: int

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Descriptor:
        return cls(media_type, hashlib.sha256(data).hexdigest(), len(data))

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": f"sha256:{self.sha256}", "size": self.size}  # fmt: skip


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def layer_argv(tree: Path, output: Path, epoch: int, members: list[str]) -> list[str]:
    # The top-level names, not ".", so entries read `etc/passwd` as in any image's layer.
    return [
        "tar", "--create", f"--file={output}", f"--directory={tree}",
        *tar.reproducible_options(epoch), "--anchored", "--exclude=dev/*", "--", *members,
    ]  # fmt: skip


def image_config(options: Options, diff_id: str, created: str) -> bytes:
    return canonical({
        "architecture": options.architecture, "os": "linux", "created": created,
        "config": {"Env": [PATH], "Cmd": list(options.cmd)},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created, "created_by": "image-builder"}],
    })  # fmt: skip


def image_manifest(config: Descriptor, layer: Descriptor) -> bytes:
    return canonical({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": config.to_json(), "layers": [layer.to_json()],
    })  # fmt: skip


def image_index(manifest: Descriptor, architecture: str) -> bytes:
    entry = {**manifest.to_json(), "platform": {"architecture": architecture, "os": "linux"}}
    return canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]})


def write_layout(
    target: Path, blobs: dict[str, bytes | Path], index: bytes, mtime: int,
    cancel: CancelEvent | None = None,
) -> None:  # fmt: skip
    """The image layout as a tar, entries sorted by name; `blobs` maps a sha256 to its content."""
    files: dict[str, bytes | Path] = {f"blobs/sha256/{digest}": blob for digest, blob in blobs.items()}
    files["index.json"] = index
    files["oci-layout"] = canonical({"imageLayoutVersion": "1.0.0"})
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ("blobs", "blobs/sha256"):
            archive.addfile(_entry(directory, tarfile.DIRTYPE, 0o755, 0, mtime))
        for name in sorted(files):
            content = files[name]
            if isinstance(content, bytes):
                archive.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(content), mtime), io.BytesIO(content))
            else:
                with content.open("rb") as f:
                    info = _entry(name, tarfile.REGTYPE, 0o644, content.stat().st_size, mtime)
                    archive.addfile(info, archives.CancellableReader(f, cancel))  # type: ignore[arg-type]


def _entry(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    return info


async def run(ctx: StageContext, options: Options) -> None:
    members = sorted(os.listdir(ctx.tree), key=os.fsencode)
    layer_tar, layer = ctx.scratch / "layer.tar", ctx.scratch / "layer.tar.gz"
    await ctx.run(layer_argv(ctx.tree, layer_tar, ctx.source_date_epoch, members), timeout=TIMEOUT)
    gzipped = await asyncio.to_thread(archives.gzip_file, layer_tar, layer, ctx.cancel)
    layer_tar.unlink()

    created = datetime.fromtimestamp(ctx.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = image_config(options, gzipped.uncompressed_sha256, created)
    config_descriptor = Descriptor.of(CONFIG, config)
    manifest = image_manifest(config_descriptor, Descriptor(LAYER, gzipped.sha256, gzipped.size))
    manifest_descriptor = Descriptor.of(MANIFEST, manifest)
    blobs: dict[str, bytes | Path] = {
        config_descriptor.sha256: config, gzipped.sha256: layer, manifest_descriptor.sha256: manifest,
    }  # fmt: skip
    await asyncio.to_thread(
        write_layout, ctx.output_dir / options.filename, blobs,
        image_index(manifest_descriptor, options.architecture), ctx.source_date_epoch, ctx.cancel,
    )  # fmt: skip
