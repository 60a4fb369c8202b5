"""The unit tier's shared fixtures: the services' databases as SQLite files (one
pair per test), and the whole web stack on them with a signed-in person."""

from __future__ import annotations


from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.frontend_service import Person, running_stack, signed_in, Stack


@pytest.fixture
def composer_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


@pytest.fixture
def backend_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}"


@pytest.fixture
async def stack(tmp_path: Path, composer_database_url: str, backend_database_url: str) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, composer_database_url, backend_database_url) as stack:
        yield stack


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[Person]:
    async with signed_in(stack, "alice") as person:
        yield person
