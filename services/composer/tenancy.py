"""Whose compose is it: the caller's org, or the org a trusted service names."""

from __future__ import annotations

from litestar import Request
from litestar.exceptions import PermissionDeniedException

from events.envelope import Actor
from services.identity.principal import Principal

# The backend acts for many orgs; the composer believes this header only from
# the service clients it is configured to trust.
ORG_HEADER = "x-image-builder-org"


def caller_org(request: Request[Principal, str, object], trusted_clients: frozenset[str]) -> str:
    principal = request.user
    named = request.headers.get(ORG_HEADER)
    if named is None:
        return principal.org_id
    if principal.client_id in trusted_clients and principal.has_role("service"):
        return named
    raise PermissionDeniedException(f"only trusted service clients may act for another org ({ORG_HEADER})")


def actor_of(principal: Principal, org_id: str) -> Actor:
    return Actor(subject=principal.subject, org_id=org_id, client=principal.client_id)
