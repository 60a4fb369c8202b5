"""Build the base tree with mmdebstrap from exactly the depsolved .debs.

mmdebstrap gets a one-off flat repository holding just those packages, made
from the content-addressed cache (`copy://`, so apt copies the files in; a
`file://` repository would have to be reachable from inside the chroot). Its
Packages index is written from each .deb's own control fields, so no mirror
is asked anything: the tree cannot get a version other than the depsolved one,
even if the mirror moved on since the depsolve, and a second build with the
same packages downloads nothing.

Only the Essential:yes packages are extracted and installed by mmdebstrap
itself (`--variant=essential`); apt installs the rest once, so no .deb is
unpacked twice. mmdebstrap takes the essential set from the archive whose
suite or codename is SUITE, and a flat repository without a Release file
names none; an empty SUITE makes it take the set from every index
(mmdebstrap(1), VARIANTS), here only the one-off repository's.

The initramfs is made once, when every package is configured. Otherwise the
kernel's postinst hook makes it and the initramfs-tools trigger, activated in
the same transaction, makes it again (~20 s each). INITRD=No stops the hook,
which leaves the trigger nothing to update and linux-update-symlinks no
/initrd.img links to make; a customize hook then does both once, as
rpi-image-gen does (raspberrypi/rpi-image-gen#67).

dpkg syncs each package's files before renaming them into place, so that a
machine losing power mid-upgrade keeps whole files. A build that loses power
is thrown away, so dpkg runs with force-unsafe-io while the tree is built, as
Docker's Debian images do (/etc/dpkg/dpkg.cfg.d/docker-apt-speedup); the
image does not keep it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from workers.build.context import StageContext

NAME = "bootstrap"
TIMEOUT = 3600.0
# What each kernel's postinst skipped under INITRD=No, in its order: the
# /vmlinuz and /initrd.img links (`upgrade` keeps which kernel they point to),
# then the initramfs. update-initramfs -c is not deferred to a trigger.
INITRAMFS_HOOK = (
    'set -e; unset INITRD; for version in $(chroot "$1" linux-version list); do '
    'chroot "$1" linux-update-symlinks upgrade "$version" "/boot/vmlinuz-$version"; '
    'chroot "$1" update-initramfs -c -k "$version"; done'
)
UNSAFE_IO = "/etc/dpkg/dpkg.cfg.d/image-builder-unsafe-io"
UNSAFE_IO_ON = f'mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io > "$1{UNSAFE_IO}"'
UNSAFE_IO_OFF = f'rm "$1{UNSAFE_IO}"'


class Package(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    version: str
    arch: str
    sha256: str


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    architecture: str
    packages: tuple[Package, ...]
    # The sources.list the finished image uses to update itself.
    apt_sources: str


def check(options: Options) -> None:
    if not options.packages:
        raise ValueError("packages must not be empty")
    for package in options.packages:
        if len(package.sha256) != 64 or not all(
            c in "0123456789abcdef" for c in package.sha256
        ):
            raise ValueError(f"{package.name}: sha256 must be 64 lower case hex digits")


def argv(options: Options, tree: Path, repo: Path) -> list[str]:
    include = ",".join(f"{p.name}={p.version}" for p in options.packages)
    command = [
        "mmdebstrap", "--mode=root",
        # --include holds the Essential set too, so the tree is exactly the depsolve's.
        "--variant=essential", f"--architectures={options.architecture}", f"--include={include}",
        # Before the first dpkg run (mmdebstrap(1): --dpkgopt would stay in the image).
        f"--setup-hook={UNSAFE_IO_ON}",
    ]  # fmt: skip
    if any(p.name == "initramfs-tools" for p in options.packages):
        command = ["env", "INITRD=No", *command, f"--customize-hook={INITRAMFS_HOOK}"]
    # The empty SUITE: the essential set comes from the one-off repository's index.
    return [*command, f"--customize-hook={UNSAFE_IO_OFF}", "", str(tree), f"deb [trusted=yes] copy://{repo} ./"]


async def run(ctx: StageContext, options: Options) -> None:
    repo = ctx.scratch / "repo"
    repo.mkdir()
    stanzas = [await _stanza(ctx, package, repo) for package in options.packages]
    (repo / "Packages").write_text("\n".join(stanzas))
    await ctx.run(argv(options, ctx.tree, repo), timeout=TIMEOUT)
    # mmdebstrap leaves the build's temporary source and copies of the host's
    # name and resolver in the tree; the image gets its own.
    (ctx.tree / "etc/apt/sources.list").write_text(options.apt_sources)
    (ctx.tree / "etc/hostname").write_text("localhost\n")


async def _stanza(ctx: StageContext, package: Package, repo: Path) -> str:
    deb = ctx.debs.path(package.sha256)
    filename = (
        f"{package.name}_{package.version.replace(':', '%3a')}_{package.arch}.deb"
    )
    (repo / filename).symlink_to(deb)
    # The control fields are cached beside the .deb; reading them needs dpkg-deb.
    control_file = deb.with_suffix(".control")
    if control_file.exists():
        control = control_file.read_text()
    else:
        control = await ctx.run(["dpkg-deb", "--field", deb], capture=True, timeout=120)
        # Written aside and renamed, so a parallel build never reads half a file.
        partial = control_file.with_name(f".{uuid.uuid4().hex}.control")
        partial.write_text(control)
        partial.replace(control_file)
    return f"{control.rstrip()}\nFilename: ./{filename}\nSize: {_size(deb)}\nSHA256: {package.sha256}\n"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
