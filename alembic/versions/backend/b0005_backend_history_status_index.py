"""backend database: the history's status filter walks an index of its own.

A page filtered by status walked an org's whole (org_id, created_at,
compose_id) index, reading every row to check its status: in an org of
100,000 composes, a page of failed web builds read ~6,300 rows (7 ms of
PostgreSQL when cached, 40-60 ms served from disk). With the status in the
index the walk passes only that status's rows (bench/history.py).

Revision ID: b0005
Revises: b0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "b0005"
down_revision = "b0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Writes to the history wait while it builds: about 4 s per million composes.
    op.create_index("ix_backend_composes_status", "backend_composes", ["org_id", "status", "created_at", "compose_id"])


def downgrade() -> None:
    op.drop_index("ix_backend_composes_status", table_name="backend_composes")
