"""The backend beside a real composer, each on its own PostgreSQL database."""

from __future__ import annotations

import pytest

from tests.contracts.backend_api import BackendContract
from tests.contracts.backend_audit import BackendAuditContract
from tests.contracts.backend_documents import BackendDocumentsContract
from tests.contracts.backend_quotas import BackendQuotaContract
from tests.contracts.backend_replay import BackendReplayContract
from tests.contracts.backend_tenancy import BackendTenancyContract

pytestmark = pytest.mark.integration


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
