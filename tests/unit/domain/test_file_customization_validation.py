"""Validation of the files, directories and filesystems a request puts into an image."""

from __future__ import annotations

from typing import Any

import pytest

from domain.validation import validate_compose_request
from tests.unit.domain.compose_requests import assert_refused, with_customizations


def files(*entries: dict[str, Any]) -> dict[str, Any]:
    """A request whose first file is fine, so the entry under test is files[1]."""
    return with_customizations(files=[{"path": "/etc/motd", "data": "hi\n"}, *entries])


# --- files -----------------------------------------------------------------


def test_a_relative_file_path_is_refused_with_its_field() -> None:
    assert_refused(files({"path": "etc/issue"}), "customizations.files[1].path", "absolute path")


@pytest.mark.parametrize("path", ["/etc/../root/.bashrc", "/.."])
def test_a_file_path_with_dot_dot_is_refused(path: str) -> None:
    assert_refused(files({"path": path}), "customizations.files[1].path", "'..' components")


@pytest.mark.parametrize("path", ["/etc//issue", "/etc/issue/", "/etc/./issue", "//etc/issue"])
def test_a_file_path_that_is_not_normalized_is_refused(path: str) -> None:
    assert_refused(files({"path": path}), "customizations.files[1].path", "must be normalized")


@pytest.mark.parametrize("path", ["/etc/iss\0ue", "/etc/issue\n"])
def test_a_file_path_with_control_characters_is_refused(path: str) -> None:
    assert_refused(files({"path": path}), "customizations.files[1].path", "NUL, newlines")


@pytest.mark.parametrize("tree", ["/proc", "/sys", "/dev", "/run"])
def test_a_file_under_a_virtual_filesystem_is_refused(tree: str) -> None:
    assert_refused(files({"path": f"{tree}/thing"}), "customizations.files[1].path", f"is under {tree}")


def test_a_file_named_like_a_virtual_tree_prefix_is_accepted() -> None:
    validate_compose_request(files({"path": "/developer/notes"}, {"path": "/runner"}))


def test_a_file_the_build_writes_itself_is_refused() -> None:
    assert_refused(files({"path": "/etc/shadow"}), "customizations.files[1].path", "use the users customization")


def test_a_file_over_one_mib_is_refused() -> None:
    assert_refused(files({"path": "/srv/big", "data": "x" * (1024 * 1024 + 1)}),
                   "customizations.files[1].data", "at most 1048576 bytes")


def test_files_over_sixteen_mib_together_are_refused() -> None:
    many = [{"path": f"/srv/f{i}", "data": "x" * (1024 * 1024)} for i in range(17)]
    assert_refused(with_customizations(files=many), "customizations.files", "at most 16777216 bytes")


@pytest.mark.parametrize("mode", ["644x", "0o644", "999", "17777", "-644", "64"])
def test_a_file_mode_that_is_not_octal_up_to_07777_is_refused(mode: str) -> None:
    assert_refused(files({"path": "/srv/f", "mode": mode}), "customizations.files[1].mode", "octal mode")


@pytest.mark.parametrize("mode", ["644", "0644", "4755", "07777"])
def test_octal_file_modes_are_accepted(mode: str) -> None:
    validate_compose_request(files({"path": "/srv/f", "mode": mode}))


def test_a_file_owner_with_an_invalid_name_is_refused() -> None:
    assert_refused(files({"path": "/srv/f", "user": "Bob Smith"}), "customizations.files[1].user", "not a valid name")


def test_a_file_group_with_a_negative_id_is_refused() -> None:
    assert_refused(files({"path": "/srv/f", "group": -1}), "customizations.files[1].group", "between 0 and")


def test_a_file_listed_twice_is_refused() -> None:
    assert_refused(files({"path": "/etc/motd"}), "customizations.files[1].path", "listed more than once")


def test_a_path_that_is_both_a_file_and_a_directory_is_refused() -> None:
    request = files()
    request["customizations"]["directories"] = [{"path": "/etc/motd"}]
    assert_refused(request, "customizations.files[0].path", "also listed as a directory")


# --- directories -----------------------------------------------------------


def test_a_relative_directory_path_is_refused() -> None:
    assert_refused(with_customizations(directories=[{"path": "srv/www"}]),
                   "customizations.directories[0].path", "absolute path")


def test_a_directory_under_sys_is_refused() -> None:
    assert_refused(with_customizations(directories=[{"path": "/sys/kernel/x"}]),
                   "customizations.directories[0].path", "is under /sys")


def test_the_root_directory_itself_is_refused() -> None:
    assert_refused(with_customizations(directories=[{"path": "/"}]),
                   "customizations.directories[0].path", "below '/'")


def test_a_directory_mode_that_is_not_octal_is_refused() -> None:
    assert_refused(with_customizations(directories=[{"path": "/srv/www", "mode": "rwxr-xr-x"}]),
                   "customizations.directories[0].mode", "octal mode")


def test_a_directory_listed_twice_is_refused() -> None:
    assert_refused(with_customizations(directories=[{"path": "/srv/a"}, {"path": "/srv/a"}]),
                   "customizations.directories[1].path", "listed more than once")


# --- filesystems -----------------------------------------------------------


@pytest.mark.parametrize("mountpoint", ["/boot", "/etc", "var", "/var/lib/docker"])
def test_a_mountpoint_outside_the_supported_set_is_refused(mountpoint: str) -> None:
    assert_refused(with_customizations(filesystem=[{"mountpoint": mountpoint, "min_size": 10**9}]),
                   "customizations.filesystem[0].mountpoint", "cannot be a separate filesystem")


@pytest.mark.parametrize("size", [0, -1, 2 * 1024**4 + 1])
def test_a_filesystem_size_outside_bounds_is_refused(size: int) -> None:
    assert_refused(with_customizations(filesystem=[{"mountpoint": "/var", "min_size": size}]),
                   "customizations.filesystem[0].min_size", "above 0 and at most")


def test_a_filesystem_size_given_as_text_is_refused() -> None:
    assert_refused(with_customizations(filesystem=[{"mountpoint": "/var", "min_size": "10 GiB"}]),
                   "customizations.filesystem[0].min_size", "expected an integer, got a string")


def test_a_mountpoint_listed_twice_is_refused() -> None:
    twice = [{"mountpoint": "/home", "min_size": 10**9}, {"mountpoint": "/home", "min_size": 2 * 10**9}]
    assert_refused(with_customizations(filesystem=twice), "customizations.filesystem[1].mountpoint", "more than once")
