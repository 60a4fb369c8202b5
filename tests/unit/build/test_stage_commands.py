"""The exact argument vectors the stages run, recorded instead of executed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from tests.unit.build.conftest import EPOCH, Recorder
from workers.build.context import StageContext
from workers.build.stages import STAGES, bootstrap, disk, firewall, tar

SHA = "b" * 64


async def run(ctx: StageContext, name: str, options: dict) -> None:
    module = STAGES[name]
    await module.run(ctx, msgspec.convert(options, module.Options))


async def test_bootstrap_runs_mmdebstrap_on_a_local_repository_of_the_exact_versions(
    ctx: StageContext, recorder: Recorder
) -> None:
    packages = [
        {"name": "bash", "version": "5.2.15-2+b2", "arch": "amd64", "sha256": SHA},
        {
            "name": "bsdutils",
            "version": "1:2.38.1-5",
            "arch": "amd64",
            "sha256": "c" * 64,
        },
    ]
    ctx.debs.dir.mkdir(parents=True)
    (ctx.tree.parent / "bootstrapped").mkdir()
    ctx.tree = ctx.tree.parent / "bootstrapped"
    (ctx.tree / "etc/apt").mkdir(parents=True)
    await run(
        ctx,
        "bootstrap",
        {
            "architecture": "amd64",
            "packages": packages,
            "apt_sources": "deb http://deb.debian.org/debian bookworm main\n",
        },
    )
    repo = ctx.scratch / "repo"
    assert recorder.argvs[-1] == [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        "--architectures=amd64",
        "--include=bash=5.2.15-2+b2,bsdutils=1:2.38.1-5",
        f"--setup-hook={bootstrap.UNSAFE_IO_ON}",
        f"--customize-hook={bootstrap.UNSAFE_IO_OFF}",
        "",
        str(ctx.tree),
        f"deb [trusted=yes] copy://{repo} ./",
    ]
    assert recorder.argvs[0] == ["dpkg-deb", "--field", str(ctx.debs.path(SHA))]
    assert (
        (ctx.tree / "etc/apt/sources.list")
        .read_text()
        .startswith("deb http://deb.debian.org")
    )


def test_the_tar_assembler_sorts_names_fixes_mtimes_and_keeps_numeric_owners() -> None:
    assert tar.argv(Path("/t"), Path("/o/root.tar"), EPOCH) == [
        "tar",
        "--create",
        "--file=/o/root.tar",
        "--directory=/t",
        "--format=pax",
        "--sort=name",
        f"--mtime=@{EPOCH}",
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=security.capability",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
        ".",
    ]


async def test_users_are_made_with_the_trees_shadow_tools_and_passwords_go_on_stdin(
    ctx: StageContext, recorder: Recorder
) -> None:
    users = [
        {"name": "bob", "groups": ["sudo", "wheel"], "password_hash": "$6$salt$hash"}
    ]
    await run(ctx, "users", {"users": users})
    tree = str(ctx.tree)
    assert recorder.argvs == [
        ["groupadd", "--root", tree, "wheel"],
        [
            "useradd",
            "--root",
            tree,
            "--create-home",
            "--shell",
            "/bin/bash",
            "--user-group",
            "--groups",
            "sudo,wheel",
            "bob",
        ],
        ["chpasswd", "--root", tree, "--encrypted"],
    ]
    assert recorder.stdins[-1] == b"bob:$6$salt$hash\n"


async def test_an_ssh_key_is_written_private_and_owned_by_its_user(
    ctx: StageContext,
) -> None:
    await run(
        ctx, "users", {"users": [{"name": "root", "key": "ssh-ed25519 AAAA root@x"}]}
    )
    keys = ctx.tree / "root/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA root@x\n"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert (ctx.tree / "root/.ssh").stat().st_mode & 0o777 == 0o700


async def test_services_are_switched_with_systemctl_root(
    ctx: StageContext, recorder: Recorder
) -> None:
    await run(
        ctx,
        "services",
        {"enabled": ["ssh", "nginx.service"], "masked": ["getty@tty1.service"]},
    )
    assert recorder.argvs == [
        ["systemctl", f"--root={ctx.tree}", "enable", "--", "ssh", "nginx.service"],
        ["systemctl", f"--root={ctx.tree}", "mask", "--", "getty@tty1.service"],
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
async def test_files_get_their_mode_and_owner_from_the_trees_accounts(
    ctx: StageContext,
) -> None:
    await run(
        ctx,
        "files",
        {
            "directories": [
                {
                    "path": "/srv/app",
                    "mode": "0750",
                    "user": "alice",
                    "ensure_parents": True,
                }
            ],
            "files": [
                {"path": "/srv/app/conf", "data": "x", "mode": "0640", "group": "sudo"}
            ],
        },
    )
    conf = (ctx.tree / "srv/app/conf").stat()
    assert (conf.st_mode & 0o7777, conf.st_uid, conf.st_gid) == (0o640, 0, 27)
    app = (ctx.tree / "srv/app").stat()
    assert (app.st_mode & 0o7777, app.st_uid) == (0o750, 1000)


async def test_the_time_zone_replaces_the_localtime_link_not_its_target(
    ctx: StageContext,
) -> None:
    utc = ctx.tree / "usr/share/zoneinfo/UTC"
    utc.write_text("UTC")
    os.symlink("/usr/share/zoneinfo/UTC", ctx.tree / "etc/localtime")
    await run(ctx, "timezone", {"zone": "Europe/Berlin"})
    assert (
        os.readlink(ctx.tree / "etc/localtime") == "/usr/share/zoneinfo/Europe/Berlin"
    )
    assert utc.read_text() == "UTC"


async def test_first_boot_installs_and_enables_a_oneshot_unit(
    ctx: StageContext, recorder: Recorder
) -> None:
    await run(ctx, "first-boot", {"script": "touch /hello"})
    assert (
        ctx.tree / "usr/local/sbin/image-builder-first-boot"
    ).read_text() == "#!/bin/sh\ntouch /hello\n"
    assert (
        "Type=oneshot"
        in (
            ctx.tree / "etc/systemd/system/image-builder-first-boot.service"
        ).read_text()
    )
    assert recorder.argvs == [
        [
            "systemctl",
            f"--root={ctx.tree}",
            "enable",
            "image-builder-first-boot.service",
        ]
    ]


def test_the_firewall_ruleset_drops_everything_but_the_requested_ports() -> None:
    options = firewall.Options(
        ports=(
            firewall.Port(start=22, end=22, protocol="tcp"),
            firewall.Port(start=8000, end=8080, protocol="udp"),
        )
    )
    rules = firewall.ruleset(options)
    assert "policy drop;" in rules
    assert "\t\ttcp dport 22 accept\n" in rules
    assert "\t\tudp dport 8000-8080 accept\n" in rules


async def test_finalize_empties_the_machine_id_and_removes_ssh_host_keys(
    ctx: StageContext, recorder: Recorder
) -> None:
    (ctx.tree / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (ctx.tree / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (ctx.tree / "usr/sbin/sshd").write_text("")
    await run(ctx, "finalize", {})
    assert (ctx.tree / "etc/machine-id").read_text() == ""
    assert not (ctx.tree / "etc/ssh/ssh_host_ed25519_key").exists()
    assert recorder.argvs == [
        [
            "systemctl",
            f"--root={ctx.tree}",
            "enable",
            "image-builder-ssh-host-keys.service",
        ]
    ]


def test_the_disk_layout_puts_the_esp_at_1_mib_and_the_root_after_it() -> None:
    layout = disk.Layout(esp_mib=256, root_mib=2048)
    script = disk.sfdisk_script(
        layout,
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
    )
    assert (
        "start=2048, size=524288, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in script
    )
    assert (
        "start=526336, size=4194304, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
        in script
    )
    assert layout.total_bytes == (1 + 256 + 2048 + 1) * disk.MIB


def test_the_filesystems_are_made_as_files_without_loop_devices() -> None:
    root_uuid = "33333333-3333-3333-3333-333333333333"
    # The root goes straight into its partition of the raw disk.
    assert disk.mkfs_ext4_argv(Path("/o/disk.raw"), Path("/t"), root_uuid, 2048, 257 * disk.MIB) == [
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        "root",
        "-U",
        root_uuid,
        "-E",
        f"root_owner=0:0,hash_seed={root_uuid},offset={257 * disk.MIB}",
        "-d",
        "/t",
        "/o/disk.raw",
        "2048M",
    ]
    assert disk.mkfs_vfat_argv(Path("/s/esp.img"), "ABCD1234", 256) == [
        "mkfs.vfat",
        "-F",
        "32",
        "-n",
        "ESP",
        "-i",
        "ABCD1234",
        "-C",
        "/s/esp.img",
        "262144",
    ]
    assert disk.dd_argv(Path("/s/esp.img"), Path("/s/disk.raw"), disk.MIB) == [
        "dd",
        "if=/s/esp.img",
        "of=/s/disk.raw",
        "bs=1M",
        f"seek={disk.MIB}",
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
        "status=none",
    ]
    copies = disk.esp_argvs(
        Path("/s/esp.img"),
        Path("/t/boot.efi"),
        Path("/t/vmlinuz"),
        Path("/t/initrd"),
        Path("/s/loader.conf"),
        Path("/s/entry.conf"),
    )
    assert [
        "mcopy",
        "-i",
        "/s/esp.img",
        "/t/boot.efi",
        "::/EFI/BOOT/BOOTX64.EFI",
    ] in copies


def test_bootstrap_builds_its_include_list_from_name_and_version() -> None:
    options = bootstrap.Options(
        architecture="amd64",
        apt_sources="",
        packages=(bootstrap.Package(name="a", version="1", arch="all", sha256=SHA),),
    )
    assert "--include=a=1" in bootstrap.argv(options, Path("/t"), Path("/r"))


def test_a_tree_with_initramfs_tools_gets_its_initramfs_once_after_every_package() -> None:
    options = bootstrap.Options(
        architecture="amd64",
        apt_sources="",
        packages=tuple(
            bootstrap.Package(name=name, version="1", arch="amd64", sha256=SHA)
            for name in ("linux-image-amd64", "initramfs-tools")
        ),
    )
    argv = bootstrap.argv(options, Path("/t"), Path("/r"))
    # The kernel's hook and so the trigger make none; the customize hook makes it.
    assert argv[:3] == ["env", "INITRD=No", "mmdebstrap"]
    assert f"--customize-hook={bootstrap.INITRAMFS_HOOK}" in argv
    hook = bootstrap.INITRAMFS_HOOK
    assert 'update-initramfs -c -k "$version"' in hook
    assert "linux-update-symlinks upgrade" in hook
    assert hook.index("unset INITRD") < hook.index("linux-update-symlinks")


def test_dpkg_runs_without_syncing_while_the_tree_is_built_and_the_image_does_not_keep_it(
    tmp_path: Path,
) -> None:
    # Run as mmdebstrap runs a hook: sh -c HOOK exec TREE.
    def hook(command: str) -> None:
        subprocess.run(["sh", "-c", command, "exec", str(tmp_path)], check=True)

    hook(bootstrap.UNSAFE_IO_ON)
    assert [p.read_text() for p in (tmp_path / "etc/dpkg/dpkg.cfg.d").iterdir()] == ["force-unsafe-io\n"]
    hook(bootstrap.UNSAFE_IO_OFF)
    assert list((tmp_path / "etc/dpkg/dpkg.cfg.d").iterdir()) == []


async def test_cloud_init_gets_its_platforms_datasources_on_one_line(
    ctx: StageContext,
) -> None:
    (ctx.tree / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    await run(ctx, "cloud-init", {"datasources": ["Ec2", "None"], "preserve_hostname": True})
    config = (ctx.tree / "etc/cloud/cloud.cfg.d/95_image-builder.cfg").read_text()
    assert "\ndatasource_list: [ Ec2, None ]\n" in config
    assert "network: {config: disabled}\n" in config
    assert "preserve_hostname: true\n" in config


async def test_cloud_init_configuration_needs_cloud_init_in_the_image(
    ctx: StageContext,
) -> None:
    with pytest.raises(ValueError, match="cloud-init package"):
        await run(ctx, "cloud-init", {"datasources": ["GCE"]})


async def test_wsl_conf_boots_systemd_logs_in_the_default_user_and_names_the_host(
    ctx: StageContext,
) -> None:
    (ctx.tree / "usr/lib/systemd").mkdir(parents=True)
    (ctx.tree / "usr/lib/systemd/systemd").write_text("")
    await run(ctx, "wsl-conf", {"systemd": True, "default_user": "alice", "hostname": "box"})
    conf = (ctx.tree / "etc/wsl.conf").read_text()
    assert "[boot]\nsystemd=true\n" in conf
    assert "[user]\ndefault=alice\n" in conf
    assert "[network]\nhostname=box\n" in conf


async def test_wsl_conf_refuses_systemd_or_a_user_the_image_lacks(
    ctx: StageContext,
) -> None:
    with pytest.raises(ValueError, match="systemd-sysv"):
        await run(ctx, "wsl-conf", {"systemd": True})
    with pytest.raises(ValueError, match="bob does not exist"):
        await run(ctx, "wsl-conf", {"default_user": "bob"})
