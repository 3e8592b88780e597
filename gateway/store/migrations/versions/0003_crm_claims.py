"""CRM delivery claims: which replica is posting a report, until when, and when it first tried.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("crm_claimed_by", sa.String(64)))
        batch.add_column(sa.Column("crm_claimed_until", UTCDateTime()))
        # Fixes the expiry of the media_url sent to the CRM, so every retry sends the same URL.
        batch.add_column(sa.Column("crm_first_attempt_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("crm_first_attempt_at")
        batch.drop_column("crm_claimed_until")
        batch.drop_column("crm_claimed_by")
