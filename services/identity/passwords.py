"""Salted, slow hashes for passwords and client secrets (scrypt, RFC 7914).

A hash is stored as ``scrypt$N$r$p$salt$hash`` (base64url parts), so the cost
can be raised later without invalidating what is stored.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# OWASP's scrypt minimum (N=2^17, r=8, p=1) needs 128 MiB per hash; N=2^14
# (16 MiB, ~0.1 s here) keeps a login cheap for the server while still being
# far from what a GPU farm wants.
COST, BLOCK_SIZE, PARALLELISM = 2**14, 8, 1
KEY_LENGTH = 32


def new_secret() -> str:
    """A random secret for a client or a first password: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, COST, BLOCK_SIZE, PARALLELISM)
    return "$".join(("scrypt", str(COST), str(BLOCK_SIZE), str(PARALLELISM), _b64(salt), _b64(digest)))


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, cost, block_size, parallelism, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(secret, _unb64(salt), int(cost), int(block_size), int(parallelism))
        return hmac.compare_digest(computed, _unb64(digest))
    except ValueError:
        return False


def burn_verification_time(secret: str) -> None:
    """Spend what a real check costs, so an unknown name answers as slowly as
    a known one and response times do not reveal which names exist."""
    verify_secret(secret, _decoy_hash())


@functools.cache
def _decoy_hash() -> str:
    return hash_secret(new_secret())


def _scrypt(secret: str, salt: bytes, cost: int, block_size: int, parallelism: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=cost, r=block_size, p=parallelism, maxmem=2**26, dklen=KEY_LENGTH
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
