"""The Principal: who is calling, with which roles."""

from __future__ import annotations

import pytest

from services.identity.principal import Principal

pytestmark = pytest.mark.unit


def test_a_principal_has_the_roles_it_was_given() -> None:
    principal = Principal(subject="ada", org_id="org-a", roles=frozenset({"user", "auditor"}))

    assert principal.has_role("auditor") and not principal.has_role("admin")
    assert principal.has_any_role("admin", "auditor") and not principal.has_any_role("admin", "worker")


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        Principal(subject="ada", org_id="org-a", roles=frozenset({"root"}))


def test_a_principal_needs_an_org() -> None:
    with pytest.raises(ValueError, match="org id"):
        Principal(subject="ada", org_id="")
