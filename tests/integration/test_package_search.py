"""``GET /packages`` against the real Debian mirror, in the package cache the builds use.

The session's cache (tests/integration/conftest.py; IMAGE_BUILDER_TEST_CACHE
keeps it warm between runs) is the backend's package cache here, as it is a
worker's on one machine: a depsolve fills or refreshes the lists, then the
search reads them without fetching anything and shows the version the
depsolve resolved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aptcache.root import AptRoot, default_sources
from domain.distributions import DISTRIBUTIONS
from tests.backend_service import API, Backend, running_backend
from tests.composer_service import running_composer
from workers.build.depsolve import depsolve

pytestmark = pytest.mark.integration


@pytest.fixture
async def backend(tmp_path: Path, cache_dir: Path) -> AsyncIterator[Backend]:
    async with running_composer(f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}", tmp_path) as composer:
        database = f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}"
        async with running_backend(composer, database, None, package_cache_dir=cache_dir) as backend:
            yield backend


async def search(backend: Backend, client_id: str | None = "alice-cli", **params: Any) -> tuple[int, dict[str, Any]]:
    async with backend.client(client_id) as http:
        response = await http.get(f"{API}/packages", params=params, timeout=600)
    return response.status_code, response.json()


async def test_a_search_reads_the_lists_a_depsolve_left_and_shows_the_version_it_resolves(
    backend: Backend, cache_dir: Path
) -> None:
    dist = DISTRIBUTIONS["debian-12"]
    resolved = {spec.name: spec.version for spec in await depsolve(dist, ["openssh-server"], cache_dir)}
    stamp = AptRoot(cache_dir, dist, default_sources(dist), "x86_64").stamp
    fetched_at = stamp.stat().st_mtime

    status, found = await search(backend, distribution="debian-12", architecture="x86_64", search="openssh-server")

    assert status == 200, found
    first = found["data"][0]
    assert first["name"] == "openssh-server"
    assert first["version"] == resolved["openssh-server"]
    assert "ssh" in first["summary"].lower()
    assert stamp.stat().st_mtime == fetched_at  # the same lists: nothing fetched again


async def test_matches_are_counted_and_paged_with_names_starting_with_the_search_first(backend: Backend) -> None:
    status, whole = await search(backend, distribution="debian-12", search="openssh")
    pages = []
    for offset in range(0, whole["meta"]["count"], 3):
        _, page = await search(backend, distribution="debian-12", search="openssh", limit=3, offset=offset)
        pages.append(page)

    assert status == 200
    names = [package["name"] for package in whole["data"]]
    assert whole["meta"]["count"] == len(names) > 3
    assert {"openssh-client", "openssh-server", "libnet-openssh-perl"} <= set(names)
    starting = [name.startswith("openssh") for name in names]
    assert starting == sorted(starting, reverse=True)  # every openssh* before any other match
    assert names == [package["name"] for page in pages for package in page["data"]]
    assert all(package["version"] and package["summary"] for package in whole["data"])
    assert pages[0]["links"]["first"] == f"{API}/packages?distribution=debian-12&architecture=x86_64&search=openssh&limit=3&offset=0"
    assert pages[0]["links"]["last"].endswith(f"offset={(len(names) - 1) // 3 * 3}")
    _, beyond = await search(backend, distribution="debian-12", search="openssh", offset=1000)
    assert beyond["data"] == [] and beyond["meta"]["count"] == len(names)


async def test_each_distribution_answers_from_its_own_lists(backend: Backend) -> None:
    _, bookworm = await search(backend, distribution="debian-12", search="bash", limit=1)
    _, trixie = await search(backend, distribution="debian-13", search="bash", limit=1)

    assert bookworm["data"][0]["name"] == trixie["data"][0]["name"] == "bash"
    assert bookworm["data"][0]["version"].startswith("5.2")
    assert bookworm["data"][0]["version"] != trixie["data"][0]["version"]


async def test_a_search_nothing_matches_is_an_empty_page(backend: Backend) -> None:
    status, found = await search(backend, distribution="debian-12", search="no-such-package-anywhere")

    assert (status, found["data"], found["meta"]["count"]) == (200, [], 0)


async def test_an_unknown_distribution_or_architecture_or_no_search_is_a_400_naming_it(backend: Backend) -> None:
    unknown = await search(backend, distribution="windows-95", search="bash")
    arm = await search(backend, distribution="debian-12", architecture="aarch64", search="bash")
    no_search = await search(backend, distribution="debian-12")
    too_long = await search(backend, distribution="debian-12", search="x" * 101)

    assert unknown[0] == 400 and unknown[1]["errors"][0]["details"] == {"field": "distribution"}
    assert "windows-95" in unknown[1]["errors"][0]["reason"]
    assert arm[0] == 400 and arm[1]["errors"][0]["details"] == {"field": "architecture"}
    assert no_search[0] == 400 and "search" in no_search[1]["errors"][0]["reason"]
    assert too_long[0] == 400


async def test_package_search_needs_a_users_token(backend: Backend) -> None:
    anonymous = await search(backend, None, distribution="debian-12", search="bash")
    worker = await search(backend, "worker", distribution="debian-12", search="bash")

    assert (anonymous[0], worker[0]) == (401, 403)
