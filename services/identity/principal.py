"""Who is calling: the subject, its organization and its roles.

A Principal is what a validated bearer token becomes; every read and write is
scoped to its ``org_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

Role = Literal["user", "admin", "auditor", "worker", "service"]

# A closed vocabulary, so a typo in a guard or a config file fails loudly
# instead of silently granting nothing (or everything).
ROLES: frozenset[str] = frozenset(("user", "admin", "auditor", "worker", "service"))


def unknown_roles(roles: Iterable[str]) -> list[str]:
    return sorted(role for role in roles if role not in ROLES)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    org_id: str
    roles: frozenset[str] = frozenset()
    client_id: str | None = None

    def __post_init__(self) -> None:
        if not self.subject or not self.org_id:
            raise ValueError("a principal needs a subject and an org id")
        if unknown := unknown_roles(self.roles):
            raise ValueError(f"unknown roles {unknown}; known roles: {sorted(ROLES)}")

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)
