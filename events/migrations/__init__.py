"""Schema migrations for the service databases (alembic, one branch per service)."""

from events.migrations.runner import SERVICES, downgrade, downgrade_async, upgrade, upgrade_async

__all__ = ["SERVICES", "downgrade", "downgrade_async", "upgrade", "upgrade_async"]
