"""Custom fields and field mappings: what a platform defines, where each connection's values come from, the
derived values and their index, what each provider holds for the picker, and the revision that tells a
connection's overlay to reload.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sync.storage.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sync.storage.types.UtcDateTime(timezone=True), nullable=nullable)


def _platform_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["platform_id"], ["platforms.id"], name=op.f(f"fk_{table}_platform_id_platforms"), ondelete="CASCADE"
    )


def _connection_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["connection_id"], ["connections.id"], name=op.f(f"fk_{table}_connection_id_connections"), ondelete="CASCADE"
    )


def upgrade() -> None:
    # In place, not in batch mode (see 0010): both databases add and drop a plain column without a copy.
    op.add_column("connections", sa.Column("field_mapping_revision", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("connections", _time("field_mappings_due_at", nullable=True))
    op.add_column("records", sa.Column("custom", JSON, nullable=True))

    op.create_table(
        "custom_field_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _platform_key("custom_field_definitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_field_definitions")),
        sa.UniqueConstraint(
            "platform_id", "model", "key", name=op.f("uq_custom_field_definitions_platform_id_model_key")
        ),
    )

    op.create_table(
        "field_mappings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("field", sa.String(length=63), nullable=False),
        sa.Column("is_custom", sa.Boolean(), nullable=False),
        sa.Column("source_path", sa.String(length=1000), nullable=False),
        sa.Column("transforms", JSON, nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _platform_key("field_mappings"),
        _connection_key("field_mappings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_mappings")),
    )
    is_override = sa.text("connection_id IS NOT NULL")
    is_default = sa.text("connection_id IS NULL")
    op.create_index(
        "uq_field_mappings_connection",
        "field_mappings",
        ["connection_id", "model", "field", "is_custom"],
        unique=True,
        postgresql_where=is_override,
        sqlite_where=is_override,
    )
    op.create_index(
        "uq_field_mappings_default",
        "field_mappings",
        ["platform_id", "provider", "model", "field", "is_custom"],
        unique=True,
        postgresql_where=is_default,
        sqlite_where=is_default,
    )

    op.create_table(
        "record_custom_values",
        sa.Column("record_id", BIG_ID, nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("text_value", sa.String(length=1000), nullable=True),
        sa.Column("number_value", sa.Float(), nullable=True),
        _time("time_value", nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_custom_values_record_id_records"), ondelete="CASCADE"
        ),
    )
    for value in ("text_value", "number_value", "time_value"):
        op.create_index(
            op.f(f"ix_record_custom_values_platform_id_model_key_{value}"),
            "record_custom_values",
            ["platform_id", "model", "key", value],
        )
    op.create_index(op.f("ix_record_custom_values_record_id"), "record_custom_values", ["record_id"])

    op.create_table(
        "available_fields",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        _time("refreshed_at"),
        _connection_key("available_fields"),
        sa.PrimaryKeyConstraint("connection_id", "model", name=op.f("pk_available_fields")),
    )


def downgrade() -> None:
    op.drop_table("available_fields")
    op.drop_table("record_custom_values")
    op.drop_table("field_mappings")
    op.drop_table("custom_field_definitions")
    op.drop_column("records", "custom")
    op.drop_column("connections", "field_mappings_due_at")
    op.drop_column("connections", "field_mapping_revision")
