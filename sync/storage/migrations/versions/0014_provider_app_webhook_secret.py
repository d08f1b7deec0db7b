"""A provider app's webhook signing secret, where the provider signs deliveries with a secret of their own
(Stripe's `whsec_` endpoint secret) rather than the app's client secret (HubSpot).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provider_apps", sa.Column("webhook_secret_encrypted", sa.LargeBinary()))


def downgrade() -> None:
    op.drop_column("provider_apps", "webhook_secret_encrypted")
