"""The frontend's configuration, and turning the process settings into it."""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from services.settings import Settings

# A session cookie is sealed with AES-256-GCM (Litestar's cookie backend); the
# key and the CSRF tokens' HMAC key are derived from one operator secret, each
# with its own label, so neither can stand in for the other.
MIN_SECRET_LENGTH = 32


class FrontendConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``backend_url`` is the backend's base URL (the API is under
    ``/api/image-builder/v1``); ``public_url`` is where browsers reach the
    frontend, so the issuer sends them back to ``<public_url>/auth/callback``.
    Without ``client_secret`` the frontend is a public client (PKCE alone)."""

    backend_url: str
    public_url: str
    issuer: str
    client_id: str
    session_secret: str
    client_secret: str | None = None
    scope: str = "openid"
    # How long a signed-in session lasts at most; the access token's own expiry usually ends it first.
    session_max_age: int = 12 * 3600

    def __post_init__(self) -> None:
        if len(self.session_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the session secret must be at least {MIN_SECRET_LENGTH} characters")

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/auth/callback"

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def session_key(self) -> bytes:
        return _derive(self.session_secret, b"image-builder frontend session cookie")

    def csrf_secret(self) -> str:
        return _derive(self.session_secret, b"image-builder frontend csrf").hex()


def _derive(secret: str, label: bytes) -> bytes:
    return hmac.new(secret.encode(), label, hashlib.sha256).digest()


def missing_settings(settings: Settings) -> list[str]:
    """The environment variables ``serve frontend`` needs that are not set."""
    needed = {
        "IMAGE_BUILDER_OIDC_ISSUER": settings.oidc_issuer,
        "IMAGE_BUILDER_FRONTEND_BACKEND_URL": settings.frontend_backend_url,
        "IMAGE_BUILDER_FRONTEND_CLIENT_ID": settings.frontend_client_id,
        "IMAGE_BUILDER_FRONTEND_SESSION_SECRET": settings.frontend_session_secret,
    }
    return [name for name, value in needed.items() if not value]


def frontend_config(settings: Settings) -> FrontendConfig:
    assert settings.oidc_issuer and settings.frontend_backend_url and settings.frontend_client_id
    assert settings.frontend_session_secret is not None
    return FrontendConfig(
        backend_url=settings.frontend_backend_url,
        public_url=settings.frontend_public_url or f"http://{settings.host}:{settings.port}",
        issuer=settings.oidc_issuer,
        client_id=settings.frontend_client_id,
        client_secret=settings.frontend_client_secret,
        session_secret=settings.frontend_session_secret,
    )
