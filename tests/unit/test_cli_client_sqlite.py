"""The command-line client (``image-builder compose|blueprint ...``) against a real
backend, composer and issuer over HTTP, on SQLite, with a test worker driving
the composer's worker API.

The CLI is synchronous: each call runs ``main()`` in a thread, so the servers
in this event loop keep answering it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from events.inprocess import InProcessBroker
from services.cli import main
from tests.backend_service import API, Backend, relaying, running_backend
from tests.cli import run_cli
from tests.composer_service import COMPOSE, WORKER, running_composer
from tests.contracts.composer_api import claim, register
from tests.contracts.pipeline import eventually

WEB_SERVER_TOML = """\
name = "web-server"
description = "nginx on a small disk"
version = "1.0.0"
distro = "debian-12"

[[packages]]
name = "nginx"

[customizations]
hostname = "web-1"
"""
IMAGE = b"pretend this is a root tree\n" * 50_000


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """``image-builder`` as alice (or another client) of the backend, output captured."""

    def __init__(self, backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
        self.backend = backend
        self.capsys = capsys
        self.out: list[str] = []
        self.err: list[str] = []

    async def __call__(self, *args: str, client_id: str | None = "alice-cli", connect: bool = True) -> Ran:
        self.collect()
        self.out.clear()
        self.err.clear()
        code = await asyncio.to_thread(main, [*args, *(await self.connection(client_id) if connect else [])])
        self.collect()
        return Ran(code, "".join(self.out), "".join(self.err))

    async def connection(self, client_id: str | None) -> list[str]:
        token = ["--token", await self.backend.composer.token(client_id)] if client_id else []
        return ["--server", self.backend.url, *token]

    def collect(self) -> str:
        """What was printed since the last call (kept for the running command's result)."""
        captured = self.capsys.readouterr()
        self.out.append(captured.out)
        self.err.append(captured.err)
        return "".join(self.err)


@pytest.fixture
async def backend(composer_database_url: str, backend_database_url: str, tmp_path: Path) -> AsyncIterator[Backend]:
    broker = InProcessBroker()
    async with (
        running_composer(composer_database_url, tmp_path) as composer,
        relaying(composer_database_url, broker),
        running_backend(composer, backend_database_url, broker) as backend,
    ):
        yield backend


@pytest.fixture
def cli(backend: Backend, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(backend, capsys)


@pytest.fixture
def blueprint_file(tmp_path: Path) -> Path:
    path = tmp_path / "web-server.toml"
    path.write_text(WEB_SERVER_TOML)
    return path


async def finish(worker: httpx2.AsyncClient, job: dict[str, Any], **update: Any) -> None:
    response = await worker.patch(f"{WORKER}/jobs/{job['token']}", json=update)
    assert response.status_code == 200, response.text


async def wait_until_submitted(backend: Backend, compose_id: str) -> None:
    async def submitted() -> bool:
        async with backend.client("alice-cli") as http:
            events = (await http.get(f"{API}/composes/{compose_id}/events")).json()["data"]
        return any(event["type"] == "ComposeSubmitted" for event in events)

    await eventually(submitted, f"compose {compose_id} handed to the composer", timeout=20)


async def test_a_toml_blueprint_is_composed_watched_to_success_and_its_image_downloaded(
    cli: Cli, backend: Backend, blueprint_file: Path, tmp_path: Path
) -> None:
    pushed = await cli("blueprint", "push", str(blueprint_file), "--type", "tar", "--json")
    created = await cli("compose", "create", "--blueprint", str(blueprint_file), "--type", "tar")
    assert pushed.code == 0 and created.code == 0, (pushed.err, created.err)
    assert pushed.json()["pushed"] == "created"
    # The same file again adds no version: the compose is made from version 1.
    assert "blueprint web-server version 1 (unchanged)" in created.out
    compose_id = created.out.split()[1]
    listed = await cli("compose", "list")
    assert compose_id in listed.out and "tar" in listed.out and "web-server" in listed.out
    await wait_until_submitted(backend, compose_id)

    watching = asyncio.create_task(cli("compose", "status", compose_id, "--watch", "--interval", "0.1"))
    async with backend.composer.client("worker") as worker:
        worker_id = await register(worker)
        await finish(worker, await claim(worker, worker_id, ["depsolve"]), result={"packages": []})
        build = await claim(worker, worker_id, ["build"])
        progress = {"stage": "bootstrap", "done": 2, "total": 12}
        await finish(worker, build, log=["sources: 3 downloaded", "stage bootstrap"], progress=progress)

        async def shown() -> bool:
            return "building: stage 3/12 bootstrap" in cli.collect()

        await eventually(shown, "the watcher shows the build's stage", timeout=20)
        stored = await worker.put(
            f"{WORKER}/jobs/{build['token']}/artifacts/image.tar", content=IMAGE,
            headers={"X-Checksum-SHA256": hashlib.sha256(IMAGE).hexdigest()},
        )  # fmt: skip
        assert stored.status_code == 201, stored.text
        await finish(worker, build, result={"packages": [], "artifacts": [{"name": "image.tar"}]})
        upload = await claim(worker, worker_id, ["upload"])
        url = f"{COMPOSE}/composes/{upload['compose_id']}/artifacts/image.tar"
        await finish(worker, upload, result={"options": {"artifacts": ["image.tar"], "url": url}})
    watched = await watching

    assert watched.code == 0, watched.err
    assert "building: stage 3/12 bootstrap" in watched.err
    assert f"compose {compose_id} succeeded" in watched.out

    logs = await cli("compose", "logs", compose_id)
    assert "stage bootstrap" in logs.out and "==> build job" in logs.out
    downloaded = await cli("compose", "download", compose_id, "-o", str(tmp_path / "out"))
    assert downloaded.code == 0, downloaded.err
    assert (tmp_path / "out").read_bytes() == IMAGE
    assert hashlib.sha256(IMAGE).hexdigest() in downloaded.out

    status = (await cli("compose", "status", compose_id, "--json")).json()
    history = (await cli("compose", "list", "--status", "success", "--json")).json()
    assert status["status"] == "success" and status["blueprint_version"] == 1
    assert [item["id"] for item in history["data"]] == [compose_id]


async def test_logs_follow_prints_lines_as_they_come_and_a_failed_compose_exits_1(
    cli: Cli, backend: Backend, blueprint_file: Path
) -> None:
    compose_id = (await cli("compose", "create", "--blueprint", str(blueprint_file), "--type", "tar", "--json")).json()["id"]
    following = asyncio.create_task(cli("compose", "logs", compose_id, "--follow", "--interval", "0.1"))
    async with backend.composer.client("worker") as worker:
        worker_id = await register(worker)
        await finish(worker, await claim(worker, worker_id, ["depsolve"]), result={"packages": []})
        build = await claim(worker, worker_id, ["build"])
        await finish(worker, build, log=["first line"])

        async def printed() -> bool:
            cli.collect()
            return "first line" in "".join(cli.out)

        await eventually(printed, "the first line printed while the build runs", timeout=20)
        await finish(worker, build, log=["second line"], error={"reason": "mmdebstrap failed"})
    followed = await following
    watched = await cli("compose", "status", compose_id, "--watch")

    assert followed.code == 1
    assert followed.out.index("first line") < followed.out.index("second line")
    assert watched.code == 1 and "failed: " in watched.out


async def test_a_blueprint_pushed_again_changed_gets_a_version_and_exports_as_toml_or_json(
    cli: Cli, blueprint_file: Path, tmp_path: Path
) -> None:
    first = await cli("blueprint", "push", str(blueprint_file))
    again = await cli("blueprint", "push", str(blueprint_file))
    blueprint_file.write_text(WEB_SERVER_TOML.replace('"web-1"', '"web-2"'))
    changed = await cli("blueprint", "push", str(blueprint_file), "--json")
    exported = await cli("blueprint", "export", "web-server")
    version_1 = await cli("blueprint", "export", "web-server", "--version", "1", "--format", "json")
    as_json = tmp_path / "copy.json"
    as_json.write_text(json.dumps({**version_1.json(), "name": "web-copy"}))
    copied = await cli("blueprint", "push", str(as_json))
    listed = await cli("blueprint", "list")

    assert "created, version 1" in first.out and "unchanged, version 1" in again.out
    assert changed.json()["pushed"] == "new version" and changed.json()["version"] == 2
    assert tomllib.loads(exported.out)["customizations"]["hostname"] == "web-2"
    assert version_1.json()["customizations"]["hostname"] == "web-1"
    assert copied.code == 0 and "web-copy: created" in copied.out
    rows = {line.split()[1]: line.split()[2] for line in listed.out.splitlines()[1:]}
    assert rows == {"web-server": "2", "web-copy": "1"}


async def test_a_bad_blueprint_is_refused_field_by_field_and_nothing_is_stored(
    cli: Cli, blueprint_file: Path, tmp_path: Path
) -> None:
    blueprint_file.write_text(WEB_SERVER_TOML + '[[customizations.user]]\nname = "bob"\nuid = 1001\n')
    unmappable = await cli("blueprint", "push", str(blueprint_file))
    malformed_file = tmp_path / "broken.toml"
    malformed_file.write_text('name = "x\n')
    malformed = await cli("compose", "create", "--blueprint", str(malformed_file))
    blueprint_file.write_text(WEB_SERVER_TOML.replace('"web-1"', '"-not a hostname-"'))
    refused = await cli("blueprint", "push", str(blueprint_file), "--json")
    listed = await cli("blueprint", "list", "--json")

    assert unmappable.code == 1 and "(customizations.user[0].uid)" in unmappable.err
    assert malformed.code == 1 and "malformed TOML" in malformed.err
    assert refused.code == 1
    assert any(line.startswith("error: ") and line.endswith("(customizations.hostname)") for line in refused.err.splitlines())
    assert refused.json()["errors"][0]["details"]["field"] == "customizations.hostname"
    assert listed.json()["data"] == []


async def test_sign_in_problems_and_an_unreachable_server_are_said_plainly(
    cli: Cli, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_token = await cli("compose", "list", "--server", backend.url, "--token", "not-a-token", connect=False)
    nothing = await cli("compose", "list", "--server", backend.url, connect=False)
    unreachable = await cli("compose", "list", "--server", "http://127.0.0.1:9", "--token", "x", connect=False)
    monkeypatch.setenv("IMAGE_BUILDER_CLIENT_ID", "alice-cli")
    monkeypatch.setenv("IMAGE_BUILDER_CLIENT_SECRET", "wrong")
    wrong_secret = await cli("compose", "list", "--server", backend.url, "--issuer", backend.composer.issuer_url, connect=False)

    assert wrong_token.code == 1 and "not signed in, or the token expired" in wrong_token.err
    assert nothing.code == 2 and "IMAGE_BUILDER_TOKEN" in nothing.err
    assert unreachable.code == 1 and unreachable.err.startswith("cannot reach http://127.0.0.1:9: ")
    assert wrong_secret.code == 1 and "refused client 'alice-cli'" in wrong_secret.err


async def test_an_oauth2_clients_credentials_get_a_token_from_the_discovered_endpoint(
    cli: Cli, backend: Backend, monkeypatch: pytest.MonkeyPatch, blueprint_file: Path
) -> None:
    monkeypatch.setenv("IMAGE_BUILDER_SERVER", backend.url)
    monkeypatch.setenv("IMAGE_BUILDER_CLIENT_ID", "alice-cli")
    monkeypatch.setenv("IMAGE_BUILDER_CLIENT_SECRET", backend.composer.secrets["alice-cli"])
    monkeypatch.setenv("IMAGE_BUILDER_CLIENT_ISSUER", backend.composer.issuer_url)
    pushed = await cli("blueprint", "push", str(blueprint_file), connect=False)
    # The console script itself, as a user runs it.
    listed = await asyncio.to_thread(run_cli, "blueprint", "list", "--json")

    assert pushed.code == 0, pushed.err
    assert listed.returncode == 0, listed.stderr
    assert [item["name"] for item in json.loads(listed.stdout)["data"]] == ["web-server"]


async def test_the_history_pages_by_cursor_and_filters(cli: Cli, blueprint_file: Path) -> None:
    for kind in ("tar", "guest-image", "tar"):
        assert (await cli("compose", "create", "--blueprint", str(blueprint_file), "--type", kind)).code == 0
    first = await cli("compose", "list", "--limit", "2")
    cursor = first.out.split("--cursor ")[1].split()[0]
    rest = await cli("compose", "list", "--limit", "2", "--cursor", cursor)
    every = (await cli("compose", "list", "--all", "--json")).json()
    guest = (await cli("compose", "list", "--type", "guest-image", "--json")).json()

    assert len(first.out.splitlines()) == 1 + 2 + 1  # header, two rows, "more: ..."
    assert len(rest.out.splitlines()) == 1 + 1 and "more:" not in rest.out
    assert len(every["data"]) == 3
    assert [item["request"]["image_requests"][0]["image_type"] for item in guest["data"]] == ["guest-image"]


async def test_another_orgs_compose_its_progress_and_its_image_are_not_found(
    cli: Cli, backend: Backend, blueprint_file: Path
) -> None:
    compose_id = (await cli("compose", "create", "--blueprint", str(blueprint_file), "--json")).json()["id"]
    await wait_until_submitted(backend, compose_id)
    early = await cli("compose", "download", compose_id)
    own_progress = (await cli("compose", "status", compose_id, "--json")).json()
    async with backend.client("alice-cli") as alice, backend.client("bob-cli") as bob:
        progress = await alice.get(f"{API}/composes/{compose_id}/progress")
        missing = await alice.get(f"{API}/composes/{compose_id}/artifacts/image.tar")
        elsewhere = [
            (await bob.get(f"{API}/composes/{compose_id}/{path}")).status_code for path in ("progress", "artifacts/image.tar")
        ]
    bobs = [await cli("compose", action, compose_id, client_id="bob-cli") for action in ("status", "logs", "download")]

    assert early.code == 1 and "is pending: only a finished image can be downloaded" in early.err
    assert own_progress["status"] == "pending"
    assert progress.status_code == 200 and progress.json() == {"images": [{"stage": None, "done": 0, "total": 3}]}
    assert missing.status_code == 404 and "has no image 'image.tar'" in missing.json()["errors"][0]["reason"]
    assert elsewhere == [404, 404]
    assert [ran.code for ran in bobs] == [1, 1, 1]
    assert all(f"error: compose {compose_id} not found" in ran.err for ran in bobs)
