"""Tables of an event store, the same in every service database.

The alembic migrations create exactly these (a test compares them); the
store's queries are written against these Table objects.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY, so the 64-bit key is
# narrowed to INTEGER there (which SQLite stores as 64 bits anyway).
BigIntKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

streams = sa.Table(
    "event_streams",
    metadata,
    sa.Column("stream_type", sa.String(100), primary_key=True),
    sa.Column("stream_id", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    # Insert order within the database; global order is `position`, assigned
    # after commit by the sequencer (see events/sequencer.py).
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
    # PostgreSQL fills this with the writing transaction's id (a server
    # default), which lets the sequencer wait for transactions still in flight.
    sa.Column("tx_id", sa.BigInteger, nullable=True),
    sa.Column("position", sa.BigInteger, nullable=True, unique=True),
    sa.Column("hash", sa.String(64), nullable=True),
    sa.UniqueConstraint("stream_type", "stream_id", "stream_version", name="uq_events_stream_version"),
    sa.Index(
        "ix_events_unsequenced",
        "tx_id",
        "seq",
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    ),
    sa.Index("ix_events_org_position", "actor_org_id", "position"),
    sa.Index("ix_events_correlation", "correlation_id"),
)

# The last link of the hash chain: lets verify() notice events cut off the end.
chain_head = sa.Table(
    "event_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.event_id"), primary_key=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_outbox_published_at", "published_at"),
    sa.Index(
        "ix_outbox_unpublished",
        "created_at",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
)

# Which events a consumer has applied: written in the same transaction as the
# consumer's own changes, so redelivered events take effect once.
consumer_inbox = sa.Table(
    "consumer_inbox",
    metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)
