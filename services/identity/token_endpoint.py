"""The token endpoint's logic: authenticate the client, check the grant, mint
signed tokens (RFC 6749 sections 2.3, 4.1.3, 4.4; RFC 7636; RFC 9068 claims)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import unquote_plus

from joserfc import jwt

from services.identity.authorization_codes import AuthorizationCodes, verifier_matches
from services.identity.config import ClientRegistration, IssuerConfig
from services.identity.passwords import burn_verification_time, verify_secret
from services.identity.signing_keys import ALGORITHM, SigningKeys


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error; the issuer turns it into JSON."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code


class TokenEndpoint:
    def __init__(
        self, config: IssuerConfig, keys: SigningKeys, codes: AuthorizationCodes, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.keys = keys
        self.codes = codes
        self.clock = clock
        self.clients = {client.client_id: client for client in config.clients}
        self.users = {user.username: user for user in config.users}

    async def respond(self, form: Mapping[str, str], authorization: str | None) -> dict[str, object]:
        client = await self.authenticate_client(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type not in ("client_credentials", "authorization_code"):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"client {client.client_id!r} may not use {grant_type}")
        audience = self._audience(form)
        if grant_type == "client_credentials":
            token = self.access_token(client.client_id, client.org_id, client.roles, client.client_id, audience)
            return self._response(token)
        return self._redeem_code(client, form, audience)

    async def authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> ClientRegistration:
        if authorization and form.get("client_secret"):
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if authorization:
            client_id, secret = _basic_credentials(authorization)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(client_id)
        # scrypt takes ~0.1 s of CPU: off the event loop, so other requests go on.
        failed = OAuthError("invalid_client", "client authentication failed", 401)
        if client is None:
            await asyncio.to_thread(burn_verification_time, secret)
            raise failed
        if not secret or not await asyncio.to_thread(verify_secret, secret, client.client_secret_hash):
            raise failed
        return client

    def access_token(self, subject: str, org_id: str, roles: tuple[str, ...], client_id: str, audience: str) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.config.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.config.token_lifetime,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "org_id": org_id,
            "roles": list(roles),
        }
        return self._sign(claims, "at+jwt")

    def _redeem_code(self, client: ClientRegistration, form: Mapping[str, str], audience: str) -> dict[str, object]:
        grant = self.codes.redeem(form.get("code", ""))
        # One answer for every mismatch: telling them apart helps only an attacker.
        if (
            grant is None
            or grant.client_id != client.client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or not verifier_matches(form.get("code_verifier", ""), grant.code_challenge)
        ):
            raise OAuthError("invalid_grant", "the code is unknown, spent, expired, or does not match this request")
        user = self.users.get(grant.username)
        if user is None:
            raise OAuthError("invalid_grant", "the user no longer exists")
        token = self.access_token(user.username, user.org_id, user.roles, client.client_id, audience)
        response = self._response(token, scope=grant.scope)
        if "openid" in grant.scope.split():
            now = int(self.clock())
            id_claims = {
                "iss": self.config.issuer,
                "sub": user.username,
                "aud": client.client_id,
                "iat": now,
                "exp": now + self.config.token_lifetime,
                "auth_time": grant.auth_time,
                "preferred_username": user.username,
                "org_id": user.org_id,
                "roles": list(user.roles),
            }
            if grant.nonce:
                id_claims["nonce"] = grant.nonce
            response["id_token"] = self._sign(id_claims, "JWT")
        return response

    def _audience(self, form: Mapping[str, str]) -> str:
        requested = form.get("audience") or form.get("resource")
        if requested is None:
            return self.config.audiences[0]
        if requested not in self.config.audiences:
            raise OAuthError("invalid_target", f"unknown audience {requested!r}")
        return requested

    def _response(self, token: str, scope: str = "") -> dict[str, object]:
        response: dict[str, object] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.config.token_lifetime,
        }
        if scope:
            response["scope"] = scope
        return response

    def _sign(self, claims: dict[str, object], token_type: str) -> str:
        key = self.keys.current
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": token_type}, claims, key)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", f"unsupported authentication scheme {scheme!r}", 401)
    try:
        client_id, separator, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    if not separator:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)
