"""composer database: job queue, compose projections, workers, logs and artifacts.

Revision ID: c0003
Revises: c0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None

READY = "status = 'pending' AND unfinished_dependencies = 0"


def upgrade() -> None:
    op.create_table(
        "composer_jobs",
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
    )
    op.create_index(
        "ix_composer_jobs_ready",
        "composer_jobs",
        ["channel", "enqueued_at", "job_id"],
        postgresql_where=sa.text(READY),
        sqlite_where=sa.text(READY),
    )
    op.create_index(
        "ix_composer_jobs_leases",
        "composer_jobs",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_composer_jobs_compose", "composer_jobs", ["compose_id"])
    op.create_table(
        "composer_job_dependencies",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("dependency_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_composer_job_dependencies_dependency", "composer_job_dependencies", ["dependency_id"])
    op.create_table(
        "composer_channels",
        sa.Column("channel", sa.String(200), primary_key=True),
        sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "composer_composes",
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
    )
    op.create_index("ix_composer_composes_org_created", "composer_composes", ["org_id", "created_at"])
    op.create_table(
        "composer_workers",
        sa.Column("worker_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("arch", sa.String(20), nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "composer_job_logs",
        sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_composer_job_logs_job", "composer_job_logs", ["job_id", "line_id"])
    op.create_table(
        "composer_artifacts",
        sa.Column("compose_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("composer_artifacts")
    op.drop_table("composer_job_logs")
    op.drop_table("composer_workers")
    op.drop_table("composer_composes")
    op.drop_table("composer_channels")
    op.drop_table("composer_job_dependencies")
    op.drop_table("composer_jobs")
