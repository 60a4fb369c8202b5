"""backend database: blueprints (one row each, every version's body) and the blueprint of a compose.

Revision ID: b0004
Revises: b0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "b0004"
down_revision = "b0003"
branch_labels = None
depends_on = None

LIVE_BLUEPRINT = "deleted = false"


def upgrade() -> None:
    op.create_table(
        "backend_blueprints",
        sa.Column("blueprint_id", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_backend_blueprints_org", "backend_blueprints", ["org_id", "created_at", "blueprint_id"])
    op.create_index(
        "ix_backend_blueprints_name",
        "backend_blueprints",
        ["org_id", "name"],
        unique=True,
        postgresql_where=sa.text(LIVE_BLUEPRINT),
        sqlite_where=sa.text(LIVE_BLUEPRINT),
    )
    op.create_table(
        "backend_blueprint_versions",
        sa.Column("blueprint_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Nullable columns: adding them rewrites nothing, on PostgreSQL or SQLite.
    op.add_column("backend_composes", sa.Column("blueprint_id", sa.String(64), nullable=True))
    op.add_column("backend_composes", sa.Column("blueprint_version", sa.Integer, nullable=True))
    op.create_index("ix_backend_composes_blueprint", "backend_composes", ["blueprint_id", "created_at", "compose_id"])


def downgrade() -> None:
    op.drop_index("ix_backend_composes_blueprint", table_name="backend_composes")
    # SQLite (3.35+) drops a column in place once no index uses it.
    op.drop_column("backend_composes", "blueprint_version")
    op.drop_column("backend_composes", "blueprint_id")
    op.drop_table("backend_blueprint_versions")
    op.drop_table("backend_blueprints")
