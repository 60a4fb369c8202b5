"""The issuer's RSA signing keys, kept in a private JWKS file.

Persisting them means a restart does not invalidate every token in flight.
The newest key signs; the one before it stays published after a rotation, so
tokens it signed keep validating until they expire.
"""

from __future__ import annotations

import json
from pathlib import Path

from joserfc.jwk import KeySet, RSAKey

from services.identity.private_files import write_private_file

ALGORITHM = "RS256"
# The signing key and its predecessor: enough for tokens that outlive one
# rotation, while a retired key stops being trusted after the next one.
PUBLISHED_KEYS = 2


class SigningKeys:
    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            self._keys: list[RSAKey] = [RSAKey.import_key(data) for data in json.loads(path.read_text())["keys"]]
        else:
            self._keys = [_generate()]
            self._save()

    @property
    def current(self) -> RSAKey:
        return self._keys[-1]

    def public_jwks(self) -> dict[str, list[dict[str, object]]]:
        return KeySet(list(self._keys)).as_dict(private=False)  # type: ignore[return-value]

    def rotate(self) -> RSAKey:
        """Sign with a new key from now on; returns it."""
        self._keys = [*self._keys, _generate()][-PUBLISHED_KEYS:]
        self._save()
        return self.current

    def _save(self) -> None:
        document = {"keys": [key.as_dict(private=True) for key in self._keys]}
        write_private_file(self.path, json.dumps(document, indent=2).encode())


def _generate() -> RSAKey:
    # auto_kid makes the key id the RFC 7638 thumbprint: stable and derived
    # from the key itself, so it cannot collide with another key's id.
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)
