"""Bearer token validation: a JWT access token becomes a Principal or is refused.

The header is read before any key is touched so that the algorithm is checked
against our allow-list first: a token never chooses how it is verified. That
closes ``alg: none`` and the RS256 -> HS256 confusion, where the RSA public key
is used as an HMAC secret (https://auth0.com/blog/critical-vulnerabilities-in-json-web-token-libraries/).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet

from services.identity.jwks import IssuerUnavailable, RemoteKeySet, find_key
from services.identity.principal import ROLES, Principal

__all__ = ["InvalidToken", "IssuerUnavailable", "TokenValidator"]

# Far above any real access token; bounds the work done on hostile input.
MAX_TOKEN_LENGTH = 16_384

CLAIM_REASONS = {
    "iss": "the token was issued by another issuer",
    "aud": "the token is meant for another audience",
    "nbf": "the token is not valid yet",
    "iat": "the token was issued in the future",
}


class InvalidToken(Exception):
    """The token is not acceptable; ``reason`` says why, fit to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenValidator:
    """Validates tokens from one issuer for one audience.

    Keys come from ``jwks`` when given (no HTTP at all), else from ``jwks_url``,
    else from the ``jwks_uri`` in the issuer's discovery document. Claim names
    may be dotted paths into nested claims (Keycloak: ``realm_access.roles``).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks: KeySet | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        *,
        org_claim: str = "org_id",
        roles_claim: str = "roles",
        leeway: int = 30,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not algorithms or any(alg.lower() == "none" or alg.startswith("HS") for alg in algorithms):
            # Shared-secret algorithms make no sense with a public JWKS.
            raise ValueError(f"choose asymmetric algorithms, not {list(algorithms)}")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.org_claim = org_claim
        self.roles_claim = roles_claim
        self.leeway = leeway
        self._static_keys = jwks
        self._remote_keys = (
            None if jwks is not None else RemoteKeySet(issuer, jwks_url, refresh_interval=refresh_interval, clock=clock)
        )

    async def validate(self, token: str) -> Principal:
        """The token's Principal; raises InvalidToken, or IssuerUnavailable
        when the keys needed to judge it cannot be fetched."""
        header = _unverified_header(token)
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(f"algorithm {alg!r} is not accepted; accepted: {', '.join(self.algorithms)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token: kid is not a string")
        key = await self._key_for(kid)
        if key is None:
            raise InvalidToken("the token is signed with an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=self.algorithms).claims
        except BadSignatureError:
            raise InvalidToken("the signature does not verify") from None
        except JoseError as error:
            raise InvalidToken(f"malformed token: {error.description or error.error}") from None
        self._check_registered_claims(claims)
        return self._principal(claims)

    async def _key_for(self, kid: str | None) -> Key | None:
        if self._remote_keys is not None:
            return await self._remote_keys.key_for(kid)
        return find_key(self._static_keys, kid)

    def _check_registered_claims(self, claims: dict[str, object]) -> None:
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("the token has expired") from None
        except MissingClaimError as error:
            raise InvalidToken(f"the token lacks required claims: {error.claim}") from None
        except InvalidClaimError as error:
            raise InvalidToken(CLAIM_REASONS.get(error.claim, f"invalid claim {error.claim!r}")) from None

    def _principal(self, claims: Mapping[str, object]) -> Principal:
        org_id = _claim(claims, self.org_claim)
        if not isinstance(org_id, str) or not org_id:
            raise InvalidToken(f"the token lacks required claims: {self.org_claim}")
        raw_roles = _claim(claims, self.roles_claim) or ()
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()  # OAuth's space-separated form, like "scope"
        if not isinstance(raw_roles, (list, tuple)):
            raise InvalidToken(f"claim {self.roles_claim!r} is not a list of roles")
        # Issuers add roles of their own (offline_access, uma_authorization):
        # only ours mean anything here.
        roles = frozenset(role for role in raw_roles if role in ROLES)
        client_id = claims.get("client_id") or claims.get("azp")
        return Principal(
            subject=str(claims["sub"]),
            org_id=org_id,
            roles=roles,
            client_id=client_id if isinstance(client_id, str) else None,
        )


def _unverified_header(token: str) -> dict[str, object]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token: not a compact JWT of reasonable size")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: a signed JWT has three dot-separated parts")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token: the header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token: the header is not a JSON object")
    return header


def _claim(claims: Mapping[str, object], name: str) -> object:
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
