"""The built-in issuer's configuration: its URL, users and clients.

Read from a TOML or JSON file (see docs in ``IssuerConfig.from_file``); secrets
are stored only as hashes (services.identity.passwords).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from services.identity.passwords import hash_secret, new_secret
from services.identity.principal import unknown_roles
from services.identity.private_files import write_private_file

GRANT_TYPES = frozenset(("client_credentials", "authorization_code"))


class UserAccount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: str
    password_hash: str
    org_id: str
    roles: tuple[str, ...] = ("user",)

    def __post_init__(self) -> None:
        if unknown := unknown_roles(self.roles):
            raise ValueError(f"user {self.username!r} has unknown roles {unknown}")


class ClientRegistration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    client_id: str
    client_secret_hash: str
    org_id: str
    roles: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("client_credentials",)

    def __post_init__(self) -> None:
        if unknown := unknown_roles(self.roles):
            raise ValueError(f"client {self.client_id!r} has unknown roles {unknown}")
        if unsupported := sorted(set(self.grant_types) - GRANT_TYPES):
            raise ValueError(f"client {self.client_id!r} has unsupported grant types {unsupported}")
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ValueError(f"client {self.client_id!r} uses authorization_code but has no redirect_uris")


class IssuerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``issuer`` is the public URL the issuer is served at, mount prefix
    included (``http://127.0.0.1:8080/oidc``); it is the ``iss`` of every token.
    ``audiences[0]`` is the default ``aud``; a token request may ask for another
    of them with ``audience=`` (or RFC 8707 ``resource=``)."""

    issuer: str
    data_dir: Path
    audiences: tuple[str, ...] = ("image-builder",)
    token_lifetime: int = 900
    code_lifetime: int = 60
    users: tuple[UserAccount, ...] = ()
    clients: tuple[ClientRegistration, ...] = ()

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        # OpenID Connect Discovery 1.0 section 3: no query or fragment; a
        # trailing slash would make "iss" differ from what validators expect.
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"issuer must be an http(s) URL without query or fragment, not {self.issuer!r}")
        if self.issuer.endswith("/"):
            raise ValueError(f"issuer must not end with a slash: {self.issuer!r}")
        if not self.audiences:
            raise ValueError("at least one audience is needed")
        if self.token_lifetime <= 0 or self.code_lifetime <= 0:
            raise ValueError("token_lifetime and code_lifetime must be positive")
        for kind, names in (
            ("username", [u.username for u in self.users]),
            ("client_id", [c.client_id for c in self.clients]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} in the issuer config")

    @classmethod
    def from_file(cls, path: Path | str, **overrides: Any) -> IssuerConfig:
        """Read ``*.toml`` or ``*.json``. A relative ``data_dir`` is relative to
        the file; without one the file's folder is used. ``overrides`` replace
        top-level keys (the embedded mode passes the ``issuer`` URL it serves)."""
        path = Path(path)
        text = path.read_bytes()
        raw = tomllib.loads(text.decode()) if path.suffix == ".toml" else msgspec.json.decode(text)
        raw.update(overrides)
        data_dir = Path(raw.get("data_dir") or path.parent)
        raw["data_dir"] = str(data_dir if data_dir.is_absolute() else path.parent / data_dir)
        return msgspec.convert(raw, cls, dec_hook=_decode_path)

    def save(self, path: Path | str) -> None:
        """Write as JSON, readable by the owner only (it holds secret hashes)."""
        data = msgspec.json.format(msgspec.json.encode(self, enc_hook=str), indent=2)
        write_private_file(Path(path), data)

    @property
    def key_file(self) -> Path:
        return self.data_dir / "issuer-keys.json"


class InitialSecrets(msgspec.Struct, frozen=True, kw_only=True):
    """Plaintext secrets, shown to the operator once and never stored."""

    username: str
    password: str
    client_id: str
    client_secret: str


def new_user(username: str, org_id: str, roles: Sequence[str] = ("user",)) -> tuple[UserAccount, str]:
    password = new_secret()
    return UserAccount(
        username=username, password_hash=hash_secret(password), org_id=org_id, roles=tuple(roles)
    ), password


def new_client(
    client_id: str,
    org_id: str,
    roles: Sequence[str] = ("service",),
    *,
    grant_types: Sequence[str] = ("client_credentials",),
    redirect_uris: Sequence[str] = (),
) -> tuple[ClientRegistration, str]:
    secret = new_secret()
    client = ClientRegistration(
        client_id=client_id,
        client_secret_hash=hash_secret(secret),
        org_id=org_id,
        roles=tuple(roles),
        grant_types=tuple(grant_types),
        redirect_uris=tuple(redirect_uris),
    )
    return client, secret


def create_initial_config(
    issuer: str,
    data_dir: Path,
    *,
    org_id: str = "local",
    username: str = "admin",
    client_id: str = "image-builder-services",
) -> tuple[IssuerConfig, InitialSecrets]:
    """A first admin user and a service-account client, for the embedded mode."""
    user, password = new_user(username, org_id, ("user", "admin"))
    client, client_secret = new_client(client_id, org_id, ("service",))
    config = IssuerConfig(issuer=issuer, data_dir=data_dir, users=(user,), clients=(client,))
    return config, InitialSecrets(
        username=username, password=password, client_id=client_id, client_secret=client_secret
    )


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path:
        return Path(value)
    raise NotImplementedError(kind)
