"""The whole stack the frontend stands on, each part real and over HTTP: the issuer
(with people who sign in and the frontend's client), a composer, a backend that
follows the composer's events, and the frontend.

``Person`` is a browser without the browser: an HTTP client with a cookie jar
that signs in through the issuer's login form as a person does.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2

from events.inprocess import InProcessBroker
from services.frontend.app import create_app
from services.frontend.config import FrontendConfig
from services.identity.config import new_client, new_user
from services.identity.tokens import TokenValidator
from tests.backend_service import Backend, relaying, running_backend
from tests.composer_service import AUDIENCE, WORKER, Composer, running_composer
from tests.servers.asgi import reserve_socket, serving

# Who signs in: a person of each org. alice-cli (tests/composer_service.py) is in org-a too.
PEOPLE = {"alice": "org-a", "bob": "org-b"}
FRONTEND_CLIENT = "frontend"


@dataclass
class Stack:
    url: str
    backend: Backend
    composer: Composer
    passwords: dict[str, str]


@asynccontextmanager
async def running_stack(
    work_dir: Path, composer_database_url: str, backend_database_url: str, **backend_options: Any
) -> AsyncIterator[Stack]:
    """``backend_options`` are BackendConfig's (package_cache_dir, ...)."""
    broker = InProcessBroker()
    sock, url = reserve_socket()
    users, passwords = [], {}
    for name, org in PEOPLE.items():
        account, passwords[name] = new_user(name, org, ("user",))
        users.append(account)
    client, secret = new_client(
        FRONTEND_CLIENT, "org-services", (), grant_types=("authorization_code",), redirect_uris=(f"{url}/auth/callback",)
    )
    async with (
        running_composer(composer_database_url, work_dir, users=users, clients=[client]) as composer,
        relaying(composer_database_url, broker),
        running_backend(composer, backend_database_url, broker, **backend_options) as backend,
    ):
        config = FrontendConfig(
            backend_url=backend.url, public_url=url, issuer=composer.issuer_url, client_id=FRONTEND_CLIENT,
            client_secret=secret, session_secret=secrets.token_urlsafe(32),
        )  # fmt: skip
        app = create_app(config, TokenValidator(composer.issuer_url, AUDIENCE))
        async with serving(app, sock):
            yield Stack(url, backend, composer, passwords)


class _Forms(HTMLParser):
    """What each form on a page would post as shown: action -> {name: value}
    (inputs, checked boxes and radios, textareas, selected options)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = self.forms.setdefault(found.get("action", ""), {})
        elif self._current is None or ("name" not in found and tag != "option"):
            return
        elif tag == "input" and found.get("type") != "submit":
            if found.get("type") not in ("checkbox", "radio") or "checked" in found:
                self._current[found["name"]] = found.get("value", "on" if found.get("type") == "checkbox" else "")
        elif tag == "textarea":
            self._textarea = found["name"]
            self._current[self._textarea] = ""
        elif tag == "select":
            self._select = found["name"]
        elif tag == "option" and self._select is not None and ("selected" in found or self._select not in self._current):
            self._current[self._select] = found.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._current is not None and self._textarea is not None:
            self._current[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def forms(html: str) -> dict[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Person:
    """One person's browser session: cookies kept, redirects followed."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stack = stack
        self.name = name
        self.http = httpx2.AsyncClient(base_url=stack.url, follow_redirects=True, timeout=30)

    async def close(self) -> None:
        await self.http.aclose()

    async def sign_in(self, path: str = "/images") -> httpx2.Response:
        """Ask for ``path``, go through the issuer's login form, land back on ``path``."""
        login = await self.http.get(path)
        assert login.status_code == 200 and 'name="password"' in login.text, login.text[:500]
        action, fields = next((action, fields) for action, fields in forms(login.text).items() if "csrf_token" in fields)
        fields.update(username=self.name, password=self.stack.passwords[self.name])
        return await self.http.post(action, data=fields)

    async def page(self, path: str, **params: Any) -> httpx2.Response:
        # An empty params= would replace a query already in ``path``.
        return await self.http.get(path, params=params) if params else await self.http.get(path)

    async def submit(self, page: httpx2.Response, action: str, **fields: str) -> httpx2.Response:
        """Post a form of ``page`` as shown (its CSRF token included), with ``fields`` changed."""
        return await self.http.post(action, data={**forms(page.text)[action], **fields})

    def csrf_token(self, page: httpx2.Response) -> str:
        match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert match, "the page has no CSRF token"
        return match.group(1)


async def worker_moves(composer: Composer) -> httpx2.AsyncClient:
    """A client with the worker's token, to move jobs through the composer's worker API."""
    return httpx2.AsyncClient(
        base_url=composer.url, headers={"Authorization": f"Bearer {await composer.token('worker')}"}, timeout=30
    )


__all__ = ["PEOPLE", "WORKER", "Person", "Stack", "forms", "running_stack", "worker_moves"]


@asynccontextmanager
async def signed_in(stack: Stack, name: str) -> AsyncIterator[Person]:
    """A person of the stack's issuer, signed in to the frontend while the block runs."""
    person = Person(stack, name)
    await person.sign_in()
    try:
        yield person
    finally:
        await person.close()
