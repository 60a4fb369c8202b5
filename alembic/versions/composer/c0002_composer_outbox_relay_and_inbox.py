"""composer database: outbox wake-ups and the consumer inbox.

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from events.migrations import messaging_0002

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    messaging_0002.upgrade()


def downgrade() -> None:
    messaging_0002.downgrade()
