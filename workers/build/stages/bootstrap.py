"""Build the base tree with mmdebstrap from exactly the depsolved .debs.

mmdebstrap gets a one-off flat repository holding just those packages, made
from the content-addressed cache (`copy://`, so apt copies the files in; a
`file://` repository would have to be reachable from inside the chroot). Its
Packages index is written from each .deb's own control fields, so no mirror
is asked anything: the tree cannot get a version other than the depsolved one,
even if the mirror moved on since the depsolve, and a second build with the
same packages downloads nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from workers.build.context import StageContext

NAME = "bootstrap"
TIMEOUT = 3600.0


class Package(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    version: str
    arch: str
    sha256: str


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    suite: str
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
    return [
        "mmdebstrap", "--mode=root",
        # `custom`: install exactly --include, which already holds the Essential set.
        "--variant=custom", f"--architectures={options.architecture}", f"--include={include}",
        options.suite, str(tree), f"deb [trusted=yes] copy://{repo} ./",
    ]  # fmt: skip


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
