"""Paths from a request are resolved inside the tree, and refused if they would leave it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers.build.paths import PathEscapes, resolve_in_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "tree/etc").mkdir(parents=True)
    (tmp_path / "tree/usr/lib").mkdir(parents=True)
    return tmp_path / "tree"


def test_a_plain_path_lands_inside_the_tree(tree: Path) -> None:
    assert resolve_in_tree(tree, "/etc/app.conf") == tree.resolve() / "etc/app.conf"


def test_an_absolute_link_is_followed_from_the_trees_root_not_the_hosts(
    tree: Path,
) -> None:
    os.symlink("/usr/lib", tree / "lib")
    assert resolve_in_tree(tree, "/lib/x.so") == tree.resolve() / "usr/lib/x.so"


def test_a_relative_link_climbing_out_of_the_tree_is_refused(tree: Path) -> None:
    os.symlink("../../../../../etc", tree / "etc/escape")
    with pytest.raises(PathEscapes):
        resolve_in_tree(tree, "/etc/escape/passwd")


def test_an_absolute_link_climbing_out_with_dot_dot_is_refused(tree: Path) -> None:
    os.symlink("/../host", tree / "etc/escape")
    with pytest.raises(PathEscapes):
        resolve_in_tree(tree, "/etc/escape/shadow")


def test_dot_dot_in_the_path_itself_is_refused(tree: Path) -> None:
    with pytest.raises(PathEscapes):
        resolve_in_tree(tree, "/../etc/passwd")


def test_a_link_loop_is_refused(tree: Path) -> None:
    os.symlink("/etc/b", tree / "etc/a")
    os.symlink("/etc/a", tree / "etc/b")
    with pytest.raises(PathEscapes, match="too many"):
        resolve_in_tree(tree, "/etc/a/x")


def test_a_final_link_can_be_kept_to_be_replaced(tree: Path) -> None:
    os.symlink("/usr/share/zoneinfo/UTC", tree / "etc/localtime")
    assert (
        resolve_in_tree(tree, "/etc/localtime", follow_last=False)
        == tree.resolve() / "etc/localtime"
    )


def test_a_relative_path_is_refused(tree: Path) -> None:
    with pytest.raises(PathEscapes):
        resolve_in_tree(tree, "etc/passwd")


async def test_the_files_stage_refuses_to_write_through_an_escaping_link(
    tree: Path, tmp_path: Path
) -> None:
    from tests.unit.build.conftest import EPOCH, Recorder
    from workers.build.context import StageContext
    from workers.build.sources import DebCache
    from workers.build.stages import files

    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink("../../outside", tree / "etc/evil")
    ctx = StageContext(
        tree=tree,
        output_dir=tmp_path,
        scratch=tmp_path,
        debs=DebCache(tmp_path),
        source_date_epoch=EPOCH,
        runner=Recorder(),
    )
    options = files.Options(files=(files.File(path="/etc/evil/owned", data="x"),))
    with pytest.raises(PathEscapes):
        await files.run(ctx, options)
    assert not (outside / "owned").exists()
