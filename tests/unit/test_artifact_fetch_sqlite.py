"""The worker's client fetches a build's image back from a real composer, checksum verified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.composer_service import WORKER, Composer, running_composer, sha256
from tests.contracts.composer_api import REQUEST, claim, register
from workers.client import ArtifactCorrupt, ComposerClient, StaleJob

IMAGE = b"a root tree, more or less\n" * 10_000


@pytest.fixture
async def composer(tmp_path: Path) -> AsyncIterator[Composer]:
    async with running_composer(f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}", tmp_path) as composer:
        yield composer


@pytest.fixture
async def client(composer: Composer) -> AsyncIterator[ComposerClient]:
    client = ComposerClient(composer.url, composer.token_url, "worker", composer.secrets["worker"])
    yield client
    await client.close()


async def held_upload_token(composer: Composer) -> str:
    """A compose whose build stored IMAGE as image.tar; the token of its claimed upload job."""
    async with composer.client("alice-cli") as http:
        await http.post("/api/image-builder-composer/v2/compose", json=REQUEST)
    async with composer.client("worker") as http:
        worker_id = await register(http)
        for job_type in ("depsolve", "build"):
            job = await claim(http, worker_id, [job_type])
            if job_type == "build":
                headers = {"X-Checksum-SHA256": sha256(IMAGE)}
                await http.put(f"{WORKER}/jobs/{job['token']}/artifacts/image.tar", content=IMAGE, headers=headers)
            await http.patch(f"{WORKER}/jobs/{job['token']}", json={"result": {"packages": []}})
        return (await claim(http, worker_id, ["upload"]))["token"]


async def test_a_fetched_artifact_is_written_whole_under_its_name(composer: Composer, client: ComposerClient, tmp_path: Path) -> None:
    token = await held_upload_token(composer)

    path = await client.download(token, "image.tar", sha256(IMAGE), tmp_path / "fetched")

    assert path == tmp_path / "fetched" / "image.tar" and path.read_bytes() == IMAGE
    assert [p.name for p in path.parent.iterdir()] == ["image.tar"]


async def test_an_artifact_that_does_not_match_the_recorded_checksum_is_refused_and_not_kept(
    composer: Composer, client: ComposerClient, tmp_path: Path
) -> None:
    token = await held_upload_token(composer)

    with pytest.raises(ArtifactCorrupt, match="image.tar"):
        await client.download(token, "image.tar", sha256(b"something else"), tmp_path / "fetched")

    assert list((tmp_path / "fetched").iterdir()) == []


async def test_a_fetch_with_a_token_no_longer_held_is_stale(client: ComposerClient, tmp_path: Path) -> None:
    with pytest.raises(StaleJob):
        await client.download("not-a-token", "image.tar", sha256(IMAGE), tmp_path / "fetched")

    assert list((tmp_path / "fetched").iterdir()) == []
