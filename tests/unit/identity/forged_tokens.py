"""Tokens made by hand, to show what the validator refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

from joserfc import jwt
from joserfc.jwk import RSAKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def valid_claims(issuer: str, **overrides: object) -> dict[str, object]:
    """Claims that pass validation; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": "image-builder",
        "sub": "someone",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "org_id": "org-a",
        "roles": ["user"],
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def signed(claims: dict[str, object], key: RSAKey, **header: object) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key)


def unsecured(claims: dict[str, object], kid: str | None) -> str:
    """``alg: none`` (RFC 7519 section 6): no signature at all."""
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


def hmac_with_public_key(claims: dict[str, object], key: RSAKey) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the issuer's public
    key (which anyone can download), hoping the verifier does the same."""
    secret = key.as_pem(private=False)
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"
