"""`image-builder serve composer` as its own process, on PostgreSQL, with a real issuer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import httpx2
import pytest

from services.identity.config import IssuerConfig, new_client
from services.identity.issuer import create_issuer_app
from tests.cli import IMAGE_BUILDER, run_cli
from tests.composer_service import COMPOSE, WORKER
from tests.contracts.composer_api import REQUEST
from tests.servers._util import free_port
from tests.servers.asgi import reserve_socket, serving

pytestmark = pytest.mark.integration


async def _token(issuer_url: str, client_id: str, secret: str) -> str:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{issuer_url}/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    response.raise_for_status()
    return response.json()["access_token"]


async def test_a_composer_process_serves_composes_to_workers_and_logs_json(postgres_url: str, tmp_path: Path) -> None:
    alice, alice_secret = new_client("alice-cli", "org-a", ("user",))
    worker, worker_secret = new_client("worker", "org-workers", ("worker",))
    issuer_sock, issuer_url = reserve_socket()
    issuer = IssuerConfig(issuer=issuer_url, data_dir=tmp_path / "issuer", audiences=("image-builder",), clients=(alice, worker))
    port = free_port()
    env = {
        "IMAGE_BUILDER_COMPOSER_DATABASE_URL": postgres_url,
        "IMAGE_BUILDER_OIDC_ISSUER": issuer_url,
        "IMAGE_BUILDER_DATA_DIR": str(tmp_path / "data"),
    }
    assert run_cli("migrate", "--service", "composer", env=env).returncode == 0
    async with serving(create_issuer_app(issuer), issuer_sock):
        process = subprocess.Popen(
            [str(IMAGE_BUILDER), "serve", "composer", "--port", str(port)],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
                for _ in range(200):
                    try:
                        if (await http.get("/ready")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                user = {"Authorization": f"Bearer {await _token(issuer_url, 'alice-cli', alice_secret)}"}
                fleet = {"Authorization": f"Bearer {await _token(issuer_url, 'worker', worker_secret)}"}
                created = await http.post(f"{COMPOSE}/compose", json=REQUEST, headers=user)
                assert created.status_code == 201, created.text
                compose_id = created.json()["id"]
                worker_id = (await http.post(f"{WORKER}/workers", json={"name": "w", "arch": "x86_64"}, headers=fleet)).json()["worker_id"]
                job = await http.post(f"{WORKER}/jobs", json={"worker_id": worker_id, "types": ["depsolve"]}, headers=fleet)
                assert job.status_code == 201 and job.json()["compose_id"] == compose_id
                status = (await http.get(f"{COMPOSE}/composes/{compose_id}", headers=user)).json()
                assert status["status"] == "building"
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
    claimed = [json.loads(line) for line in stderr.splitlines() if line.startswith("{") and "claimed" in line]
    assert claimed, stderr[-3000:]
    assert claimed[0]["compose_id"] == compose_id and claimed[0]["job_id"] == job.json()["job_id"]
