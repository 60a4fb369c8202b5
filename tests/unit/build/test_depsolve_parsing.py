"""Reading apt's answers: exact package records, and which package made a depsolve fail."""

from __future__ import annotations

from pathlib import Path

from domain.distributions import get_distribution
from workers.build.depsolve import (
    AptRoot,
    Source,
    _explain,
    default_sources,
    parse_print_uris,
)

URIS = (
    "'http://deb.debian.org/debian/pool/main/u/util-linux/bsdutils_2.38.1-5%2bdeb12u3_amd64.deb' "
    "bsdutils_1%3a2.38.1-5+deb12u3_amd64.deb 94504 SHA256:" + "ab" * 32 + "\n"
)


def test_print_uris_lines_become_exact_package_records_with_epochs() -> None:
    [spec] = parse_print_uris(URIS)
    assert (spec.name, spec.version, spec.arch, spec.size) == (
        "bsdutils",
        "1:2.38.1-5+deb12u3",
        "amd64",
        94504,
    )
    assert spec.sha256 == "ab" * 32
    assert spec.url.startswith("http://deb.debian.org/debian/pool/main/u/util-linux/")


def test_an_unknown_package_is_named_in_the_failure() -> None:
    failure = _explain(
        "Reading package lists...\nE: Unable to locate package no-such-thing\n"
    )
    assert failure.package == "no-such-thing"


def test_a_missing_version_names_its_package() -> None:
    assert _explain("E: Version '1.0' for 'curl' was not found").package == "curl"


def test_an_unsatisfiable_dependency_names_the_package_that_has_it() -> None:
    output = "The following packages have unmet dependencies:\n foo : Depends: bar (>= 2) but 1 is to be installed\n"
    assert _explain(output).package == "foo"


def test_the_private_apt_root_never_points_at_the_hosts_apt_state(
    tmp_path: Path,
) -> None:
    dist = get_distribution("debian-12")
    assert dist is not None
    apt = AptRoot(tmp_path, dist, default_sources(dist), "x86_64")
    apt.prepare()
    config = apt.config.read_text()
    assert f'Dir "{apt.root}/";' in config
    assert 'APT::Architecture "amd64";' in config
    assert apt.env["APT_CONFIG"] == str(apt.config)
    sources = (apt.root / "etc/apt/sources.list").read_text().splitlines()
    assert sources[2] == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian-security bookworm-security main"
    )


def test_lists_are_cached_per_distribution_and_repositories(tmp_path: Path) -> None:
    dist = get_distribution("debian-12")
    assert dist is not None
    default = AptRoot(tmp_path, dist, default_sources(dist), "x86_64")
    custom = AptRoot(
        tmp_path,
        dist,
        (Source("http://example.com/debian", "bookworm", trusted=True),),
        "x86_64",
    )
    assert default.root != custom.root
    assert default.root == AptRoot(tmp_path, dist, default_sources(dist), "x86_64").root
