"""The embedded mode's identity: the built-in issuer's accounts, made once.

On the first start a first-login user, a service account for scripts, a
client for the embedded worker, one for the backend (calling the composer)
and one for the web frontend (people signing in) are created, with the
secret the frontend seals its session cookies with; the plaintext secrets are
kept in a private file (0600) in the data directory so every start can print
them, while the issuer itself stores only hashes. A data directory from
before the backend or the frontend existed gets their clients on its next
start. The frontend's redirect URI follows the URL ``up`` serves at, which
may change between starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
from joserfc.jwk import KeySet

from services.identity.config import IssuerConfig, create_initial_config, new_client
from services.identity.passwords import new_secret
from services.identity.private_files import write_private_file
from services.identity.signing_keys import SigningKeys
from services.identity.tokens import TokenValidator

AUDIENCE = "image-builder"
WORKER_CLIENT = "embedded-worker"
BACKEND_CLIENT = "embedded-backend"
FRONTEND_CLIENT = "embedded-frontend"
ORG = "local"


class EmbeddedSecrets(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    password: str
    client_id: str
    client_secret: str
    worker_client_id: str
    worker_client_secret: str
    backend_client_id: str = BACKEND_CLIENT
    backend_client_secret: str | None = None
    frontend_client_id: str = FRONTEND_CLIENT
    frontend_client_secret: str | None = None
    frontend_session_secret: str | None = None


@dataclass(frozen=True)
class EmbeddedIdentity:
    config: IssuerConfig
    secrets: EmbeddedSecrets
    keys: SigningKeys

    def validator(self) -> TokenValidator:
        # The keys are our own: no need to fetch them over HTTP from ourselves.
        return TokenValidator(self.config.issuer, AUDIENCE, jwks=KeySet.import_key_set(self.keys.public_jwks()))


def embedded_identity(data_dir: Path, issuer_url: str, frontend_url: str | None = None) -> EmbeddedIdentity:
    """``frontend_url``: where browsers reach the frontend (default: the issuer's URL without ``/oidc``)."""
    callback = f"{frontend_url or issuer_url.removesuffix('/oidc')}/auth/callback"
    config_file, secrets_file = data_dir / "issuer.json", data_dir / "embedded-secrets.json"
    if config_file.exists() and secrets_file.exists():
        config = IssuerConfig.from_file(config_file, issuer=issuer_url)
        secrets = msgspec.json.decode(secrets_file.read_bytes(), type=EmbeddedSecrets)
    else:
        config, first = create_initial_config(issuer_url, data_dir, org_id=ORG)
        worker, worker_secret = new_client(WORKER_CLIENT, ORG, ("worker",))
        config = msgspec.structs.replace(config, clients=(*config.clients, worker))
        secrets = EmbeddedSecrets(
            username=first.username, password=first.password, client_id=first.client_id,
            client_secret=first.client_secret, worker_client_id=WORKER_CLIENT, worker_client_secret=worker_secret,
        )  # fmt: skip
    if secrets.backend_client_secret is None or secrets.frontend_client_secret is None:
        if secrets.backend_client_secret is None:
            config, secrets = _with_backend_client(config, secrets)
        if secrets.frontend_client_secret is None:
            config, secrets = _with_frontend_client(config, secrets, callback)
        data_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(secrets_file, msgspec.json.encode(secrets))
        config.save(config_file)
    config = _redirecting_to(config, secrets.frontend_client_id, callback)
    return EmbeddedIdentity(config=config, secrets=secrets, keys=SigningKeys(config.key_file))


def _with_backend_client(config: IssuerConfig, secrets: EmbeddedSecrets) -> tuple[IssuerConfig, EmbeddedSecrets]:
    """The backend's client (the composer trusts it to act for an org), and the scripts'
    account made a user of the org, so scripts can use the image-builder API."""
    backend, backend_secret = new_client(BACKEND_CLIENT, ORG, ("service",))
    clients = tuple(
        msgspec.structs.replace(c, roles=tuple(dict.fromkeys((*c.roles, "user")))) if c.client_id == secrets.client_id else c
        for c in config.clients
        if c.client_id != BACKEND_CLIENT
    )
    config = msgspec.structs.replace(config, clients=(*clients, backend))
    return config, msgspec.structs.replace(secrets, backend_client_id=BACKEND_CLIENT, backend_client_secret=backend_secret)


def _with_frontend_client(
    config: IssuerConfig, secrets: EmbeddedSecrets, callback: str
) -> tuple[IssuerConfig, EmbeddedSecrets]:
    """The frontend's client (authorization code with PKCE, no API roles of its own:
    it acts with each person's token) and its session secret."""
    frontend, frontend_secret = new_client(
        FRONTEND_CLIENT, ORG, (), grant_types=("authorization_code",), redirect_uris=(callback,)
    )
    clients = tuple(c for c in config.clients if c.client_id != FRONTEND_CLIENT)
    config = msgspec.structs.replace(config, clients=(*clients, frontend))
    return config, msgspec.structs.replace(
        secrets, frontend_client_id=FRONTEND_CLIENT, frontend_client_secret=frontend_secret,
        frontend_session_secret=new_secret(),
    )  # fmt: skip


def _redirecting_to(config: IssuerConfig, client_id: str, callback: str) -> IssuerConfig:
    """The frontend's client sends people back to where the frontend is served now."""
    clients = tuple(
        msgspec.structs.replace(c, redirect_uris=(callback,)) if c.client_id == client_id else c for c in config.clients
    )
    return msgspec.structs.replace(config, clients=clients)
