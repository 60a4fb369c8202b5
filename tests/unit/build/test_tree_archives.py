"""The archives of a small tree: OCI image layout read back blob by blob, gzipped tar."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import msgspec
import pytest

from tests.oci_layout import read_image
from tests.unit.build.conftest import EPOCH
from workers.build.context import StageContext
from workers.build.sources import DebCache
from workers.build.stages import oci_archive, tar


def small_tree(root: Path) -> Path:
    for sub in ("etc/app", "usr/bin", "dev/pts", "home/alice"):
        (root / sub).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/app/secret.conf").write_text("secret=1\n")
    os.chmod(root / "etc/app/secret.conf", 0o640)
    (root / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    os.chmod(root / "usr/bin/hello", 0o755)
    os.symlink("usr/bin", root / "bin")
    (root / "dev/console").write_text("a device node in a real tree")
    return root


async def build(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    (out / "scratch").mkdir(parents=True)
    ctx = StageContext(
        tree=tmp_path / "tree", output_dir=out, scratch=out / "scratch",
        debs=DebCache(tmp_path / "cache"), source_date_epoch=EPOCH,
    )  # fmt: skip
    options = msgspec.convert({"filename": "image.oci.tar"}, oci_archive.Options)
    oci_archive.check(options)
    await oci_archive.run(ctx, options)
    return out / "image.oci.tar"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return small_tree(tmp_path / "tree")


async def test_the_archive_is_an_oci_layout_with_one_layer_a_config_and_a_manifest(
    tree: Path, tmp_path: Path
) -> None:
    image = read_image(await build(tmp_path, "one"))
    names = [m.name for m in image.outer]
    assert names == sorted(names)
    assert names[:2] == ["blobs", "blobs/sha256"] and names[-2:] == ["index.json", "oci-layout"]
    assert len(names) == 2 + 3 + 2
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in image.outer} == {(EPOCH, 0, 0, "")}
    [entry] = image.index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert image.manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert image.config["architecture"] == "amd64" and image.config["os"] == "linux"
    assert image.config["created"] == "2023-06-10T00:00:00Z"
    assert image.config["config"]["Cmd"] == ["/bin/bash"]


async def test_the_layer_holds_the_tree_with_modes_and_links_but_no_device_nodes(
    tree: Path, tmp_path: Path
) -> None:
    image = read_image(await build(tmp_path, "one"))
    assert image.layer_gz[4:8] == b"\0\0\0\0"  # gzip mtime
    layer = image.layer()
    assert layer["etc/app/secret.conf"][0].mode == 0o640
    assert layer["etc/app/secret.conf"][1] == b"secret=1\n"
    assert layer["usr/bin/hello"][0].mode == 0o755
    assert layer["bin"][0].issym() and layer["bin"][0].linkname == "usr/bin"
    assert layer["dev"][0].isdir()
    assert not [name for name in layer if name.startswith("dev/")]
    assert not [name for name in layer if name.startswith(("./", "/"))]
    assert {info.mtime for info, _ in layer.values()} == {EPOCH}


async def test_the_same_tree_gives_the_same_archive_to_the_byte(
    tree: Path, tmp_path: Path
) -> None:
    first = await build(tmp_path, "one")
    os.utime(tree / "etc/passwd", (1, 1))  # what the build's mtime replaces
    assert (await build(tmp_path, "two")).read_bytes() == first.read_bytes()


def test_the_layer_is_made_by_tar_from_the_top_level_names() -> None:
    argv = oci_archive.layer_argv(Path("/t"), Path("/s/layer.tar"), EPOCH, ["bin", "etc"])
    assert argv[:4] == ["tar", "--create", "--file=/s/layer.tar", "--directory=/t"]
    assert "--sort=name" in argv and f"--mtime=@{EPOCH}" in argv and "--numeric-owner" in argv
    assert argv[-5:] == ["--anchored", "--exclude=dev/*", "--", "bin", "etc"]


async def test_a_gzipped_tar_holds_the_same_archive_without_a_gzip_timestamp(
    tree: Path, tmp_path: Path
) -> None:
    outputs = []
    for name, gzipped in (("plain", False), ("gzipped", True)):
        out = tmp_path / name
        (out / "scratch").mkdir(parents=True)
        ctx = StageContext(
            tree=tree, output_dir=out, scratch=out / "scratch",
            debs=DebCache(tmp_path / "cache"), source_date_epoch=EPOCH,
        )  # fmt: skip
        await tar.run(ctx, tar.Options(filename="image", gzip=gzipped))
        outputs.append((out / "image").read_bytes())
    plain, gzipped_tar = outputs
    assert gzipped_tar[4:8] == b"\0\0\0\0"
    assert gzip.decompress(gzipped_tar) == plain
