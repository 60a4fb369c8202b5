"""The create form's package search, against the backend's ``GET /packages`` on the real Debian mirror."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.frontend_service import Person, Stack, forms, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(tmp_path: Path, cache_dir: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}",
                             f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}", package_cache_dir=cache_dir) as stack:  # fmt: skip
        yield stack


async def test_packages_are_found_by_part_of_their_name_and_added_with_a_button(stack: Stack) -> None:
    alice = Person(stack, "alice")
    try:
        await alice.sign_in()
        step = await alice.page("/images/new")
        packages = await alice.http.post("/images/new", data={**forms(step.text)["/images/new"], "go": "packages"})
        found = await alice.submit(packages, "/images/new", find="1", package_search="openssh-serv")
        added = await alice.submit(found, "/images/new", add_package="openssh-server")
    finally:
        await alice.close()

    table = re.search(r'<table class="packages">.*?</table>', found.text, re.S).group(0)
    assert "openssh-server" in table and 'value="openssh-server"' in table
    assert forms(added.text)["/images/new"]["packages"] == "openssh-server"
    # The search stays shown, and the package is marked as added.
    assert re.search(r"<td>openssh-server</td>.*?<td>Added</td>", added.text, re.S)
