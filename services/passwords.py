"""Plain-text passwords never reach an event store: the API edge turns them into crypt hashes.

Events are kept for ever and travel through Kafka to other services, so a
user's password in a compose request or blueprint is replaced by its
SHA-512 crypt hash (what Debian's shadow file holds) before anything is
recorded; a hash the caller sent is kept as it is.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import msgspec
from passlib.hash import sha512_crypt

from domain.blueprint_body import BlueprintBody
from domain.compose_request import ComposeRequest
from domain.customization_rules import CRYPT_HASH

WithUsers = TypeVar("WithUsers", ComposeRequest, BlueprintBody)


def is_plain(password: str | None) -> bool:
    return password is not None and not CRYPT_HASH.match(password)


def seal_passwords(value: WithUsers) -> WithUsers:
    """`value` with every plain-text user password replaced by a fresh SHA-512 crypt hash."""
    customizations = value.customizations
    if customizations is None or not any(is_plain(user.password) for user in customizations.users):
        return value
    users = tuple(
        msgspec.structs.replace(user, password=sha512_crypt.hash(user.password)) if is_plain(user.password) else user
        for user in customizations.users
    )
    return msgspec.structs.replace(value, customizations=msgspec.structs.replace(customizations, users=users))


async def sealed(value: WithUsers) -> WithUsers:
    """seal_passwords off the event loop: a hash takes a good part of a second on purpose."""
    return await asyncio.to_thread(seal_passwords, value)
