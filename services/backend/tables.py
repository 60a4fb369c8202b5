"""image-builder-db's query tables: projections of the backend's compose and blueprint events.

Each is written in the same transaction as the event it is derived from
(services/backend/records.py), so it never disagrees with the event store.
"""

from __future__ import annotations

import sqlalchemy as sa

from events.schema import metadata as event_store_metadata

metadata = sa.MetaData()
for _table in event_store_metadata.tables.values():
    _table.to_metadata(metadata)

UNSUBMITTED = "submission = 'pending' AND deleted = false"

# The build history: one row per compose, newest first per org.
composes = sa.Table(
    "backend_composes",
    metadata,
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
    # The blueprint (and its version) the compose was made from, if any.
    sa.Column("blueprint_id", sa.String(64), nullable=True),
    sa.Column("blueprint_version", sa.Integer, nullable=True),
    # Keyset pagination walks this index from the newest entry of one org; the
    # filters are checked on the way, so a page costs the rows it skips.
    sa.Index("ix_backend_composes_history", "org_id", "created_at", "compose_id"),
    # The same walk for one status (the most used filter): it passes only that
    # status's rows instead of reading the org's every row to check it.
    sa.Index("ix_backend_composes_status", "org_id", "status", "created_at", "compose_id"),
    # The composer's events name its own compose id.
    sa.Index("ix_backend_composes_composer", "composer_id", unique=True),
    # A blueprint's composes, newest first, paged like the history.
    sa.Index("ix_backend_composes_blueprint", "blueprint_id", "created_at", "compose_id"),
    # What the submitter still has to hand to the composer.
    sa.Index(
        "ix_backend_composes_unsubmitted",
        "created_at",
        postgresql_where=sa.text(UNSUBMITTED),
        sqlite_where=sa.text(UNSUBMITTED),
    ),
)

# A compose may ask for several images; the history filters on their types.
compose_images = sa.Table(
    "backend_compose_images",
    metadata,
    sa.Column("compose_id", sa.String(64), primary_key=True),
    sa.Column("image_index", sa.Integer, primary_key=True),
    sa.Column("image_type", sa.String(50), nullable=False),
    sa.Column("architecture", sa.String(20), nullable=False),
)

LIVE_BLUEPRINT = "deleted = false"

# One row per blueprint: its latest version's name and description.
blueprints = sa.Table(
    "backend_blueprints",
    metadata,
    sa.Column("blueprint_id", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    # The stream's version, as for composes.
    sa.Column("version", sa.Integer, nullable=False),
    # An org's blueprints, newest first.
    sa.Index("ix_backend_blueprints_org", "org_id", "created_at", "blueprint_id"),
    # A name is taken once per org among blueprints not deleted; this also
    # settles two creations of one name racing each other.
    sa.Index(
        "ix_backend_blueprints_name",
        "org_id",
        "name",
        unique=True,
        postgresql_where=sa.text(LIVE_BLUEPRINT),
        sqlite_where=sa.text(LIVE_BLUEPRINT),
    ),
)

# Every version's whole body, as the event that made it holds it.
blueprint_versions = sa.Table(
    "backend_blueprint_versions",
    metadata,
    sa.Column("blueprint_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
