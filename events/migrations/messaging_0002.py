"""Migration step: what the outbox relay and the consumers need.

Frozen, like every step: later changes are new steps.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

OUTBOX_CHANNEL = "image_builder_outbox"


def upgrade() -> None:
    op.create_table(
        "consumer_inbox",
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    if op.get_bind().dialect.name == "postgresql":
        create_outbox_trigger()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_outbox_trigger()
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_table("consumer_inbox")


def create_outbox_trigger() -> None:
    # A notification per inserting statement (PostgreSQL folds repeats
    # within a transaction and delivers at commit) wakes relays at once,
    # without an extra round trip in the writer. (Dropped again by
    # outbox_notify_0003: such commits cannot share a WAL flush.)
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{OUTBOX_CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()")


def drop_outbox_trigger() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
