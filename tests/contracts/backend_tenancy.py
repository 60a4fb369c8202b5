"""Tenancy and tokens at the backend's HTTP edge, on every route the app has.

The routes are read from the Litestar app being served, so a route added
later is walked too; one the walk cannot call (a new path parameter, a body
it does not know) fails the test until the walk is taught about it.

- Another org's token on each route naming org A's compose or blueprint is a
  404 naming that id (the org check, not some later one), or a 403 where the
  caller's role may not use the route at all; never a 200 or a 5xx. On the
  other routes (lists, search, the live updates, audit, creation) the answer
  is the caller's own org's, so none of org A's ids may appear in it.
- Forged or unfit tokens (wrong signature, another audience, expired,
  ``alg: none``, HS256 keyed with the issuer's public key) are a 401 on every
  route that needs a token, while a token made the same way but valid passes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from joserfc.jwk import RSAKey
from litestar.routes import HTTPRoute

from services.backend.app import PUBLIC_PATHS
from services.identity.signing_keys import SigningKeys
from tests.backend_service import API, Backend
from tests.composer_service import WORKER, Composer, sha256
from tests.contracts.backend_harness import REQUEST, BackendHarness, finish_job
from tests.contracts.blueprint_api import BLUEPRINT
from tests.contracts.composer_api import claim, register
from tests.unit.identity.forged_tokens import hmac_with_public_key, signed, unsecured, valid_claims

IMAGE = b"org a's image\n" * 1000
# Litestar answers these itself for any path (CORS preflight, HEAD of a GET); no handler runs.
AUTOMATIC_METHODS = {"OPTIONS", "HEAD"}
# What a request body is, per route that takes one: the walk knows no other.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{API}/compose"): REQUEST,
    ("POST", f"{API}/blueprints"): BLUEPRINT,
    ("POST", f"{API}/blueprints/import"): {**BLUEPRINT, "name": "imported-by-another-org"},
    ("PUT", f"{API}/blueprints/{{blueprint_id}}"): {**BLUEPRINT, "description": "taken over"},
    ("POST", f"{API}/blueprints/{{blueprint_id}}/compose"): {},
}
PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
SCOPED = {"compose_id": "compose_id", "blueprint_id": "blueprint_id"}


@dataclass(frozen=True)
class OrgA:
    """What org A has, which no one else may see or touch."""

    compose_id: str
    composer_id: str
    blueprint_id: str

    def ids(self) -> list[str]:
        return [self.compose_id, self.composer_id, self.blueprint_id]


@dataclass(frozen=True)
class Call:
    method: str
    template: str  # the route's path, parameters as {name}
    path: str
    scoped_by: str | None  # the path parameter naming org A's compose or blueprint

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"


def every_call(backend: Backend, org_a: OrgA) -> list[Call]:
    assert backend.app is not None
    values = {"compose_id": org_a.compose_id, "blueprint_id": org_a.blueprint_id, "name": "image.tar",
              "distribution": "debian-12", "path": "no-such-document"}  # fmt: skip
    calls = []
    for route in backend.app.routes:
        assert isinstance(route, HTTPRoute), f"{route.path}: the walk knows HTTP routes only"
        template = PARAMETER.sub(r"{\1}", route.path)
        names = PARAMETER.findall(route.path)
        unknown = [name for name in names if name not in values]
        assert not unknown, f"{template}: teach the walk a value for {unknown}"
        path = template.format(**{name: values[name] for name in names})
        scoped = [name for name in names if name in SCOPED]
        for method in sorted(route.methods - AUTOMATIC_METHODS):
            assert method in ("GET", "DELETE") or (method, template) in BODIES, (
                f"{method} {template}: teach the walk a request body for it"
            )
            calls.append(Call(method, template, path, scoped[0] if scoped else None))
    return calls


async def answer(http: httpx2.AsyncClient, call: Call, meanwhile: Any = None) -> tuple[int, str, dict[str, Any]]:
    """Status, body text and JSON error details (if any). A stream of server-sent events is read
    for a while, during which ``meanwhile`` runs (org A changing something)."""
    body = BODIES.get((call.method, call.template))
    async with http.stream(call.method, call.path, json=body) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            text = await _read_for(response, meanwhile)
        else:
            text = (await response.aread()).decode(errors="replace")
    details: dict[str, Any] = {}
    if response.headers.get("content-type", "").startswith("application/json") and '"errors"' in text:
        details = json.loads(text)["errors"][0].get("details") or {}
    return response.status_code, text, details


async def _read_for(response: httpx2.Response, meanwhile: Any, seconds: float = 1.5) -> str:
    seen: list[str] = []

    async def read() -> None:
        pending = meanwhile
        async for chunk in response.aiter_text():
            seen.append(chunk)
            if pending is not None and "event: ready" in "".join(seen):
                await pending()
                pending = None

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        pass
    return "".join(seen)


class BackendTenancyContract(BackendHarness):
    async def org_a(self, backend: Backend, composer: Composer) -> OrgA:
        """A finished compose with an image, and a blueprint."""
        compose_id = await self.post(backend)
        await self.wait_until_submitted(backend, compose_id)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            depsolve = await claim(worker, worker_id, ["depsolve"])
            await finish_job(worker, depsolve, {"packages": []})
            build = await claim(worker, worker_id, ["build"])
            stored = await worker.put(
                f"{WORKER}/jobs/{build['token']}/artifacts/image.tar", content=IMAGE, headers={"X-Checksum-SHA256": sha256(IMAGE)}
            )  # fmt: skip
            assert stored.status_code in (200, 201), stored.text
            await finish_job(worker, build, {"packages": [], "manifest": {}, "sbom": {}})
            upload = await claim(worker, worker_id, ["upload"])
            await finish_job(worker, upload, {"options": {"artifacts": ["image.tar"]}})
        await self.wait_for_status(backend, compose_id, "success")
        async with backend.client("alice-cli") as alice:
            created = await alice.post(f"{API}/blueprints", json=BLUEPRINT)
        assert created.status_code == 201, created.text
        return OrgA(compose_id, depsolve["compose_id"], created.json()["id"])

    async def test_another_orgs_token_finds_nothing_of_org_a_on_any_route(self, backend: Backend, composer: Composer) -> None:
        org_a = await self.org_a(backend, composer)
        calls = every_call(backend, org_a)

        made_meanwhile: list[str] = []

        async def org_a_changes() -> None:
            made_meanwhile.append(await self.post(backend, client_id="alice-cli"))

        wrong: list[str] = []
        for client_id, role_refused in (("bob-cli", False), ("bert-audit", True)):
            async with backend.client(client_id) as other:
                for call in calls:
                    status, text, details = await answer(other, call, org_a_changes)
                    said = f"{client_id}: {call.label} -> {status} {text[:200]}"
                    # A refusal may repeat the id asked for, and nothing else of org A's.
                    asked = getattr(org_a, call.scoped_by) if call.scoped_by else None
                    secrets = [found for found in [*org_a.ids(), *made_meanwhile] if found != asked]
                    if status >= 500 or any(found in text for found in secrets):
                        wrong.append(said)
                    elif call.scoped_by is not None:
                        refused_by_org = status == 404 and details == {call.scoped_by: asked}
                        if not (refused_by_org or (role_refused and status == 403)):
                            wrong.append(said)

        assert wrong == [], "\n".join(wrong)
        assert {call.template for call in calls if call.scoped_by} >= {
            f"{API}/composes/{{compose_id}}", f"{API}/composes/{{compose_id}}/artifacts/{{name}}",
            f"{API}/blueprints/{{blueprint_id}}", f"{API}/blueprints/{{blueprint_id}}/compose",
        }  # fmt: skip
        # Org A's own reads of those routes find what the others were refused, untouched by them.
        async with backend.client("alice-cli") as alice:
            for call in calls:
                if call.scoped_by is not None and call.method == "GET":
                    status, _, details = await answer(alice, call)
                    assert status == 200, f"alice: {call.label} -> {status} {details}"
            blueprint = (await alice.get(f"{API}/blueprints/{org_a.blueprint_id}")).json()
        assert blueprint["version"] == 1 and blueprint["description"] == BLUEPRINT["description"]
        assert (await self.get(backend, f"/composes/{org_a.compose_id}"))["status"] == "success"

    async def test_forged_or_unfit_tokens_are_refused_with_401_on_every_route(
        self, backend: Backend, composer: Composer, tmp_path: Path
    ) -> None:
        org_a = await self.org_a(backend, composer)
        issuer = composer.issuer_url
        key = SigningKeys(tmp_path / "issuer" / "issuer-keys.json").current
        an_hour_ago = int(time.time()) - 3600
        forged = {
            "wrong signature": signed(valid_claims(issuer), RSAKey.generate_key(2048), kid=key.kid),
            "wrong audience": signed(valid_claims(issuer, aud="composer"), key),
            "expired": signed(valid_claims(issuer, iat=an_hour_ago - 300, nbf=an_hour_ago - 300, exp=an_hour_ago), key),
            "alg none": unsecured(valid_claims(issuer), key.kid),
            "HS256 keyed with the public key": hmac_with_public_key(valid_claims(issuer), key),
        }
        calls = [call for call in every_call(backend, org_a) if call.path not in PUBLIC_PATHS]

        wrong = []
        for what, token in forged.items():
            async with httpx2.AsyncClient(base_url=backend.url, headers={"Authorization": f"Bearer {token}"}) as http:
                for call in calls:
                    status, text, _ = await answer(http, call)
                    if status != 401:
                        wrong.append(f"{what}: {call.label} -> {status} {text[:200]}")
        made_right = signed(valid_claims(issuer), key)
        async with httpx2.AsyncClient(base_url=backend.url, headers={"Authorization": f"Bearer {made_right}"}) as http:
            accepted = await http.get(f"{API}/composes/{org_a.compose_id}")

        assert wrong == [], "\n".join(wrong)
        assert accepted.status_code == 200, accepted.text  # the same forging, with nothing wrong, passes
