"""composer database: the outbox NOTIFY is sent after commit, not by a trigger.

See events/migrations/outbox_notify_0003.py.

Revision ID: c0005
Revises: c0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from events.migrations import outbox_notify_0003

revision = "c0005"
down_revision = "c0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_notify_0003.upgrade()


def downgrade() -> None:
    outbox_notify_0003.downgrade()
