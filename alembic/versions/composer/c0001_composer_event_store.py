"""composer database: the event store tables.

Revision ID: c0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from events.migrations import event_store_0001

revision = "c0001"
down_revision = None
branch_labels = ("composer",)
depends_on = None


def upgrade() -> None:
    event_store_0001.upgrade()


def downgrade() -> None:
    event_store_0001.downgrade()
