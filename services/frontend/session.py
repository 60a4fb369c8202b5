"""Who is signed in: the user's access token and identity, kept in the session cookie.

The cookie is Litestar's client-side session: AES-GCM sealed, HttpOnly,
SameSite=Lax, Secure behind https. It holds the access token the backend
accepts; nothing else about the user is stored anywhere, so any frontend
replica can serve any request.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request

from services.frontend.backend_api import UserApi

USER_KEY = "user"
# A token this close to its expiry is not used any more: the call could outlive it.
EXPIRY_MARGIN = 30.0


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    expires_at: float
    subject: str
    org_id: str


class SignInRequired(Exception):
    """No usable session: the user is sent to sign in, and back to ``next_url`` afterwards."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


def session_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The session's contents; empty when there is none, when it was just cleared, or
    outside the frontend's router (an unknown path), where there is no session at all."""
    data = request.scope.get("session")
    return data if isinstance(data, dict) else {}


def signed_in(request: Request[Any, Any, Any]) -> SignedIn | None:
    raw = session_data(request).get(USER_KEY)
    if raw is None:
        return None
    try:
        user = msgspec.convert(raw, SignedIn)
    except msgspec.ValidationError:
        return None
    return user if user.expires_at - EXPIRY_MARGIN > time.time() else None


def remember(request: Request[Any, Any, Any], user: SignedIn) -> None:
    """A fresh session holding only the signed-in user (whatever was there before is dropped)."""
    request.set_session({USER_KEY: msgspec.to_builtins(user)})


def user_api(request: Request[Any, Any, Any]) -> UserApi:
    """The backend's API as the signed-in user; SignInRequired if nobody is."""
    user = signed_in(request)
    if user is None:
        raise SignInRequired(here(request))
    return UserApi(request.app.state.frontend.http, user.token)


def here(request: Request[Any, Any, Any]) -> str:
    """The path and query of this request: where to come back to after signing in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def sign_in_url(next_url: str) -> str:
    return "/signin?" + urlencode({"next": next_url})


def safe_next(next_url: str | None) -> str:
    """Only a path on this site: never an absolute or scheme-relative URL (open redirect)."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//") or "\\" in next_url:
        return "/images"
    return next_url
