"""Migration step: the outbox NOTIFY moves from a trigger to the writing process.

PostgreSQL serializes the commits of transactions that notify, so with the
trigger no two appends could share a WAL flush. The event store now sends
the NOTIFY itself after committing (events/notifier.py).

Frozen, like every step: later changes are new steps.
"""

from __future__ import annotations

from alembic import op

from events.migrations.messaging_0002 import create_outbox_trigger, drop_outbox_trigger


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_outbox_trigger()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        create_outbox_trigger()
