"""Authorization codes: short-lived, single-use, bound to a client, a redirect
URI and a PKCE challenge (RFC 6749 section 4.1, RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

import msgspec

# RFC 7636 section 4.1: 43 to 128 characters from the unreserved set.
VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# A challenge is the base64url SHA-256 of a verifier: always 43 characters.
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9\-_]{43}")


class AuthorizationGrant(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    redirect_uri: str
    code_challenge: str
    username: str
    scope: str = ""
    nonce: str | None = None
    auth_time: int = 0


class AuthorizationCodes:
    """In memory: the embedded mode runs one issuer process, and a code that
    is lost in a restart only makes the user sign in again."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._grants: dict[str, tuple[float, AuthorizationGrant]] = {}

    def issue(self, grant: AuthorizationGrant) -> str:
        now = self.clock()
        self._grants = {code: entry for code, entry in self._grants.items() if entry[0] > now}
        code = secrets.token_urlsafe(32)
        self._grants[code] = (now + self.lifetime, grant)
        return code

    def redeem(self, code: str) -> AuthorizationGrant | None:
        """The grant for a live code, which is then spent; None otherwise."""
        expires_at, grant = self._grants.pop(code, (0.0, None))
        return grant if grant is not None and expires_at > self.clock() else None


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    if not VERIFIER_PATTERN.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
