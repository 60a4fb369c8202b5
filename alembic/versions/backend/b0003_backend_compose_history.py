"""backend database: the build history (compose projection and its image types).

Revision ID: b0003
Revises: b0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b0003"
down_revision = "b0002"
branch_labels = None
depends_on = None

UNSUBMITTED = "submission = 'pending' AND deleted = false"


def upgrade() -> None:
    op.create_table(
        "backend_composes",
        sa.Column("compose_id", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.String(200), nullable=False),
        sa.Column("image_name", sa.String(200), nullable=True),
        sa.Column("distribution", sa.String(50), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("submission", sa.String(20), nullable=False),
        sa.Column("composer_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("upload_status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_backend_composes_history", "backend_composes", ["org_id", "created_at", "compose_id"])
    op.create_index("ix_backend_composes_composer", "backend_composes", ["composer_id"], unique=True)
    op.create_index(
        "ix_backend_composes_unsubmitted",
        "backend_composes",
        ["created_at"],
        postgresql_where=sa.text(UNSUBMITTED),
        sqlite_where=sa.text(UNSUBMITTED),
    )
    op.create_table(
        "backend_compose_images",
        sa.Column("compose_id", sa.String(64), primary_key=True),
        sa.Column("image_index", sa.Integer, primary_key=True),
        sa.Column("image_type", sa.String(50), nullable=False),
        sa.Column("architecture", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("backend_compose_images")
    op.drop_table("backend_composes")
