"""A build's artifact upload outlives a composer replica that dies mid-upload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workers.client import ComposerClient, ComposerUnreachable
from workers.jobs import upload_artifact


class FlakyComposer(ComposerClient):
    """Refuses the first ``failures`` uploads as a dying replica does; records what arrives."""

    def __init__(self, failures: int) -> None:
        super().__init__("http://127.0.0.1:9", "http://127.0.0.1:9/token", "worker", "secret")
        self.failures = failures
        self.attempts = 0
        self.stored: list[tuple[str, str, bytes]] = []

    async def upload(self, token: str, name: str, path: Path, sha256: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ComposerUnreachable(f"PUT {name}: connection reset")
        self.stored.append((token, name, path.read_bytes()))


async def test_an_upload_cut_off_by_the_composer_is_sent_again_until_it_is_taken(tmp_path: Path) -> None:
    artifact = tmp_path / "root.tar"
    artifact.write_bytes(b"tree")
    composer = FlakyComposer(failures=2)

    await upload_artifact(composer, "tok", "root.tar", artifact, "ab" * 32, asyncio.Event(), backoff=0.01)

    assert composer.attempts == 3
    assert composer.stored == [("tok", "root.tar", b"tree")]


async def test_a_canceled_job_stops_retrying_its_upload(tmp_path: Path) -> None:
    artifact = tmp_path / "root.tar"
    artifact.write_bytes(b"tree")
    composer = FlakyComposer(failures=1000)
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, cancel.set)

    with pytest.raises(ComposerUnreachable):
        async with asyncio.timeout(10):
            await upload_artifact(composer, "tok", "root.tar", artifact, "ab" * 32, cancel, backoff=0.01)

    assert composer.stored == []
