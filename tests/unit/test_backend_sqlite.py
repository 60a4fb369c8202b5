"""The backend beside a real composer, both on SQLite (embedded mode's databases)."""

from __future__ import annotations

from tests.contracts.backend_api import BackendContract
from tests.contracts.backend_audit import BackendAuditContract
from tests.contracts.backend_documents import BackendDocumentsContract
from tests.contracts.backend_quotas import BackendQuotaContract
from tests.contracts.backend_replay import BackendReplayContract
from tests.contracts.backend_tenancy import BackendTenancyContract


class TestBackendOnSQLite(BackendContract):
    pass


class TestBackendDocumentsOnSQLite(BackendDocumentsContract):
    pass


class TestBackendQuotasOnSQLite(BackendQuotaContract):
    pass


class TestBackendAuditOnSQLite(BackendAuditContract):
    pass


class TestBackendReplayOnSQLite(BackendReplayContract):
    pass


class TestBackendTenancyOnSQLite(BackendTenancyContract):
    pass
