"""composer-db's query tables: projections of the job and compose events.

Each is updated in the same transaction as the events it is derived from, so
it never disagrees with them; all of them could be rebuilt by replay. A job's
row holds all of the job's state at the row's ``version``: the queue restores
the aggregate from it (``Job.restore``) instead of replaying its stream.
"""

from __future__ import annotations

import sqlalchemy as sa

from events.schema import metadata as event_store_metadata

metadata = sa.MetaData()
for _table in event_store_metadata.tables.values():
    _table.to_metadata(metadata)

jobs = sa.Table(
    "composer_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("compose_id", sa.String(64), nullable=False),
    sa.Column("job_type", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("unfinished_dependencies", sa.Integer, nullable=False),
    sa.Column("args", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("worker_id", sa.String(100), nullable=True),
    sa.Column("token", sa.String(100), nullable=True, unique=True),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("progress", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "ix_composer_jobs_ready",
        "channel",
        "enqueued_at",
        "job_id",
        postgresql_where=sa.text("status = 'pending' AND unfinished_dependencies = 0"),
        sqlite_where=sa.text("status = 'pending' AND unfinished_dependencies = 0"),
    ),
    sa.Index(
        "ix_composer_jobs_leases",
        "lease_expires_at",
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    ),
    sa.Index("ix_composer_jobs_compose", "compose_id"),
)

# Which job waits for which: finishing or failing a job touches its dependents.
job_dependencies = sa.Table(
    "composer_job_dependencies",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("dependency_id", sa.String(64), primary_key=True),
    sa.Index("ix_composer_job_dependencies_dependency", "dependency_id"),
)

# Fairness: the tenant served longest ago goes first.
channels = sa.Table(
    "composer_channels",
    metadata,
    sa.Column("channel", sa.String(200), primary_key=True),
    sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=False),
)

composes = sa.Table(
    "composer_composes",
    metadata,
    sa.Column("compose_id", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.String(200), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("upload_status", sa.String(20), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("jobs_done", sa.Integer, nullable=False),
    sa.Column("jobs_total", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("org_id", "idempotency_key", name="uq_composer_composes_idempotency"),
    sa.Index("ix_composer_composes_org_created", "org_id", "created_at"),
)

workers = sa.Table(
    "composer_workers",
    metadata,
    sa.Column("worker_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("arch", sa.String(20), nullable=False),
    sa.Column("registered_by", sa.String(200), nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
)

# Build logs are operational output, not domain state: a table, not events.
job_logs = sa.Table(
    "composer_job_logs",
    metadata,
    sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_composer_job_logs_job", "job_id", "line_id"),
)

artifacts = sa.Table(
    "composer_artifacts",
    metadata,
    sa.Column("compose_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)
