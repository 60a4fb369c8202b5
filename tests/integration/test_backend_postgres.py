"""The backend beside a real composer, each on its own PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contracts.backend_api import BackendContract
from tests.contracts.backend_audit import BackendAuditContract
from tests.contracts.backend_documents import BackendDocumentsContract
from tests.contracts.backend_quotas import BackendQuotaContract
from tests.contracts.backend_replay import BackendReplayContract
from tests.contracts.backend_tenancy import BackendTenancyContract

pytestmark = pytest.mark.integration


@pytest.fixture
def composer_database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def backend_database_url(postgres_url_factory: Callable[..., str]) -> str:
    return postgres_url_factory("backend")


class TestBackendOnPostgreSQL(BackendContract):
    pass


class TestBackendDocumentsOnPostgreSQL(BackendDocumentsContract):
    pass


class TestBackendQuotasOnPostgreSQL(BackendQuotaContract):
    pass


class TestBackendAuditOnPostgreSQL(BackendAuditContract):
    pass


class TestBackendReplayOnPostgreSQL(BackendReplayContract):
    pass


class TestBackendTenancyOnPostgreSQL(BackendTenancyContract):
    pass
