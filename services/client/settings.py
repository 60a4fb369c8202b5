"""Where the client connects, and as whom: flags first, then the environment.

The client's variables are its own (``IMAGE_BUILDER_SERVER``,
``IMAGE_BUILDER_TOKEN``, ``IMAGE_BUILDER_CLIENT_*``): a machine that also
runs a worker or the backend keeps their credentials apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_SERVER = "http://127.0.0.1:8080"
# Where `image-builder up` serves its built-in issuer, below the server's URL.
EMBEDDED_ISSUER_PATH = "/oidc"


class ClientSettings(msgspec.Struct, frozen=True, kw_only=True):
    server: str = DEFAULT_SERVER
    # A bearer token as it is; or the credentials of an OAuth2 client, whose
    # token comes from token_url (or the issuer's discovery document).
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    timeout: float = 30.0

    @property
    def issuer_url(self) -> str:
        """The issuer to discover the token endpoint from: the embedded one unless told."""
        return (self.issuer or f"{self.server}{EMBEDDED_ISSUER_PATH}").rstrip("/")


def load_client_settings(environ: Mapping[str, str] | None = None, **flags: str | None) -> ClientSettings:
    """``flags`` are the command line's (``server``, ``token``, ``token_url``, ...); unset ones fall back to the environment."""
    env = os.environ if environ is None else environ

    def pick(flag: str, variable: str) -> str | None:
        return flags.get(flag) or env.get(variable) or None

    return ClientSettings(
        server=(pick("server", "IMAGE_BUILDER_SERVER") or DEFAULT_SERVER).rstrip("/"),
        token=pick("token", "IMAGE_BUILDER_TOKEN"),
        client_id=pick("client_id", "IMAGE_BUILDER_CLIENT_ID"),
        client_secret=env.get("IMAGE_BUILDER_CLIENT_SECRET") or None,
        token_url=pick("token_url", "IMAGE_BUILDER_CLIENT_TOKEN_URL"),
        issuer=pick("issuer", "IMAGE_BUILDER_CLIENT_ISSUER"),
        audience=pick("audience", "IMAGE_BUILDER_CLIENT_AUDIENCE"),
    )
