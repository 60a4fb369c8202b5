"""The disk formats made from a tiny raw disk with the real qemu-img, and the GCE archive."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
import subprocess
import tarfile
import threading
from pathlib import Path

import msgspec
import pytest

from tests.unit.build.conftest import EPOCH
from workers.build import process
from workers.build.context import StageContext
from workers.build.sources import DebCache
from workers.build.stages import archives, disk, disk_format

RAW_MIB = 3


@pytest.fixture
def real_ctx(tmp_path: Path) -> StageContext:
    """A context whose commands really run; its output directory holds a 3 MiB raw disk."""
    for sub in ("tree", "out", "scratch"):
        (tmp_path / sub).mkdir()
    raw = tmp_path / "out/disk.raw"
    with raw.open("wb") as f:
        f.truncate(RAW_MIB * disk.MIB)
        f.seek(disk.MIB)
        f.write(b"image-builder" * 1000)
    shutil.copy(raw, tmp_path / "original.raw")
    return StageContext(
        tree=tmp_path / "tree", output_dir=tmp_path / "out", scratch=tmp_path / "scratch",
        debs=DebCache(tmp_path / "cache"), source_date_epoch=EPOCH,
    )  # fmt: skip


async def convert(ctx: StageContext, format: str, filename: str) -> Path:
    options = msgspec.convert(
        {"source": "disk.raw", "filename": filename, "format": format},
        disk_format.Options,
    )
    disk_format.check(options)
    await disk_format.run(ctx, options)
    assert not (ctx.output_dir / "disk.raw").exists()
    return ctx.output_dir / filename


def info(path: Path, *format: str) -> dict:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", *format, str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def same_content(original: Path, converted: Path, format: str) -> bool:
    compare = ["qemu-img", "compare", "-q", "-f", "raw", "-F", format]
    done = subprocess.run([*compare, str(original), str(converted)], check=False)
    return done.returncode == 0


def test_the_qemu_img_command_lines_name_each_formats_options() -> None:
    src, dst = Path("/o/disk.raw"), Path("/o/x")
    assert disk_format.qemu_img_argv("qcow2", src, dst) == [
        "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "/o/disk.raw", "/o/x"
    ]  # fmt: skip
    assert disk_format.qemu_img_argv("vhd", src, dst)[4:8] == [
        "-O", "vpc", "-o", "subformat=fixed,force_size=on"
    ]  # fmt: skip
    assert disk_format.qemu_img_argv("vmdk", src, dst)[4:8] == [
        "-O", "vmdk", "-o", "subformat=streamOptimized"
    ]  # fmt: skip


async def test_a_qcow2_holds_the_raw_disks_bytes(real_ctx: StageContext) -> None:
    qcow2 = await convert(real_ctx, "qcow2", "disk.qcow2")
    details = info(qcow2)
    assert (details["format"], details["virtual-size"]) == ("qcow2", RAW_MIB * disk.MIB)
    assert same_content(real_ctx.output_dir.parent / "original.raw", qcow2, "qcow2")


async def test_an_azure_vhd_is_fixed_with_the_raw_size_to_the_byte(
    real_ctx: StageContext,
) -> None:
    vhd = await convert(real_ctx, "vhd", "disk.vhd")
    # qemu-img only recognises a VHD by a header, which a fixed one lacks: name the format.
    details = info(vhd, "-f", "vpc")
    assert (details["format"], details["virtual-size"]) == ("vpc", RAW_MIB * disk.MIB)
    # A fixed VHD is the raw disk followed by a 512-byte footer ("conectix",
    # current size at byte 48, disk type at byte 60: 2 is fixed).
    data = vhd.read_bytes()
    footer = data[-512:]
    assert len(data) == RAW_MIB * disk.MIB + 512
    assert footer[:8] == b"conectix"
    assert struct.unpack(">Q", footer[48:56])[0] == RAW_MIB * disk.MIB
    assert struct.unpack(">I", footer[60:64])[0] == 2
    assert data[:-512] == (real_ctx.output_dir.parent / "original.raw").read_bytes()


async def test_a_vsphere_vmdk_is_stream_optimised(real_ctx: StageContext) -> None:
    vmdk = await convert(real_ctx, "vmdk", "disk.vmdk")
    details = info(vmdk)
    assert (details["format"], details["virtual-size"]) == ("vmdk", RAW_MIB * disk.MIB)
    assert details["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert same_content(real_ctx.output_dir.parent / "original.raw", vmdk, "vmdk")


async def test_a_vhd_of_a_disk_that_is_not_whole_mib_is_refused(
    real_ctx: StageContext,
) -> None:
    with (real_ctx.output_dir / "disk.raw").open("ab") as f:
        f.write(b"\0" * 512)
    with pytest.raises(ValueError, match="whole number of MiB"):
        await convert(real_ctx, "vhd", "disk.vhd")


async def test_a_gce_archive_holds_only_disk_raw_and_is_reproducible(
    real_ctx: StageContext,
) -> None:
    archive = await convert(real_ctx, "gce-tar", "image.tar.gz")
    original = (real_ctx.output_dir.parent / "original.raw").read_bytes()
    with tarfile.open(archive, "r:gz") as tar:
        [member] = tar.getmembers()
        content = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert (member.name, member.mtime, member.uid, member.gid, member.mode) == (
        "disk.raw", EPOCH, 0, 0, 0o644
    )  # fmt: skip
    assert content == original
    header = archive.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime
    assert header[3] & 0x08 == 0  # no file name
    with gzip.open(archive) as raw_tar:
        assert raw_tar.read(512)[257:265] == b"ustar  \0"  # GNU tar's magic

    again = real_ctx.output_dir.parent / "again.tar.gz"
    (real_ctx.output_dir / "disk.raw").write_bytes(original)
    archives.gce_tar_gz(real_ctx.output_dir / "disk.raw", again, EPOCH)
    assert again.read_bytes() == archive.read_bytes()


def test_gzip_reports_both_digests_and_stops_when_cancelled(tmp_path: Path) -> None:
    source = tmp_path / "layer.tar"
    source.write_bytes(b"x" * 5000)
    digests = archives.gzip_file(source, tmp_path / "layer.tar.gz")
    compressed = (tmp_path / "layer.tar.gz").read_bytes()
    assert digests == archives.Gzipped(
        uncompressed_sha256=hashlib.sha256(b"x" * 5000).hexdigest(),
        sha256=hashlib.sha256(compressed).hexdigest(),
        size=len(compressed),
    )
    assert gzip.decompress(compressed) == b"x" * 5000
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(process.Cancelled):
        archives.gzip_file(source, tmp_path / "other.gz", cancel)


def test_the_root_grows_until_the_disk_is_a_whole_multiple() -> None:
    assert disk.layout_for(100, 256, 2048, 1) == disk.Layout(esp_mib=256, root_mib=2048)
    gib = disk.layout_for(100, 256, 2048, 1024)
    assert gib.total_bytes % (1024 * disk.MIB) == 0
    assert gib.root_mib == 3072 - 256 - 2
    big = disk.layout_for(4000, 256, 2048, 1)
    assert big.root_mib == 4000 * 5 // 4 + 256
