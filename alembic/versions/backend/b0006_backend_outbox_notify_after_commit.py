"""backend database: the outbox NOTIFY is sent after commit, not by a trigger.

See events/migrations/outbox_notify_0003.py.

Revision ID: b0006
Revises: b0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from events.migrations import outbox_notify_0003

revision = "b0006"
down_revision = "b0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_notify_0003.upgrade()


def downgrade() -> None:
    outbox_notify_0003.downgrade()
