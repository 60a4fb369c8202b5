"""backend database: the event store tables.

Revision ID: b0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from events.migrations import event_store_0001

revision = "b0001"
down_revision = None
branch_labels = ("backend",)
depends_on = None


def upgrade() -> None:
    event_store_0001.upgrade()


def downgrade() -> None:
    event_store_0001.downgrade()
