"""Deliveries indexed by platform, status and due time.

Claims hand slots to platforms in turn and read each platform's due deliveries separately; with only
(status, next_attempt_at) to go by, a quiet platform's claim walked through every due delivery of a
platform in the middle of a burst before reaching its own.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_webhook_deliveries_platform_id_status_next_attempt_at"),
        "webhook_deliveries",
        ["platform_id", "status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_platform_id_status_next_attempt_at"), table_name="webhook_deliveries")
