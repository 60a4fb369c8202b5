"""What a browser does on the issuer's sign-in page, done with httpx2."""

from __future__ import annotations

import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx2

from services.identity.authorization_codes import s256_challenge


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.visible_inputs: list[dict[str, str]] = []
        self.labelled_ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = attributes.get("action", "")
        elif tag == "input" and "name" in attributes:
            self.fields[attributes["name"]] = attributes.get("value", "")
            if attributes.get("type") != "hidden":
                self.visible_inputs.append(attributes)
        elif tag == "label":
            self.labelled_ids.add(attributes.get("for", ""))


def read_form(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def authorization_params(client_id: str, redirect_uri: str, verifier: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": secrets.token_urlsafe(8),
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
        "scope": "openid",
        **extra,
    }


async def sign_in(
    http: httpx2.AsyncClient, authorize_url: str, params: dict[str, str], username: str, password: str
) -> httpx2.Response:
    """Open the form, fill it in, post it; the answer is not followed."""
    page = await http.get(authorize_url, params=params)
    page.raise_for_status()
    form = read_form(page.text)
    return await http.post(form.action, data={**form.fields, "username": username, "password": password})


def redirect_query(response: httpx2.Response) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(response.headers["location"]).query).items()}
