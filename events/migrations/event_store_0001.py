"""Migration step: the event store tables, as first released.

Frozen: both services' first revisions call this, and later schema changes
are new steps, never edits here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "event_streams",
        sa.Column("stream_type", sa.String(100), primary_key=True),
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    tx_id_default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else None
    op.create_table(
        "events",
        sa.Column("seq", BigIntKey, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("stream_type", sa.String(100), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_subject", sa.String(200), nullable=False),
        sa.Column("actor_org_id", sa.String(200), nullable=False),
        sa.Column("actor_client", sa.String(200), nullable=True),
        sa.Column("correlation_id", sa.String(200), nullable=True),
        sa.Column("causation_id", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("tx_id", sa.BigInteger, nullable=True, server_default=tx_id_default),
        sa.Column("position", sa.BigInteger, nullable=True, unique=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.UniqueConstraint("stream_type", "stream_id", "stream_version", name="uq_events_stream_version"),
    )
    op.create_index(
        "ix_events_unsequenced",
        "events",
        ["tx_id", "seq"],
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )
    op.create_index("ix_events_org_position", "events", ["actor_org_id", "position"])
    op.create_index("ix_events_correlation", "events", ["correlation_id"])
    op.create_table(
        "event_chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.event_id"), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("event_chain_head")
    op.drop_table("events")
    op.drop_table("event_streams")
