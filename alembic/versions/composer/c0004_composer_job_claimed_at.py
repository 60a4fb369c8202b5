"""composer database: when a running job was claimed, on its row.

The queue now takes a job's state from its row (the aggregate's snapshot at
the row's version) instead of replaying the job's events on every claim and
result; the claim time, needed for the run-duration metric, was the one part
of that state the row did not hold. Jobs claimed before this revision keep
NULL: their run duration is not measured.

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("composer_jobs", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite >= 3.35): a batch copy of the
    # table on SQLite would have to carry its partial indexes over by reflection.
    op.execute("ALTER TABLE composer_jobs DROP COLUMN claimed_at")
