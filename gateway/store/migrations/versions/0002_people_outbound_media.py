"""People who sign in, outbound messages to citizens, media fetch jobs, CRM request ids.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime()),
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_table(
        "outbound",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("report_id", sa.String(26), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("meta", sa.Text),
        sa.UniqueConstraint("report_id", "kind", name="uq_outbound_report_kind"),
    )
    op.create_index("ix_outbound_state_next", "outbound", ["state", "next_attempt_at"])
    op.create_index("ix_outbound_recipient", "outbound", ["recipient", "created_at"])
    op.create_table(
        "media_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(26), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("file_id", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime()),
        sa.UniqueConstraint("report_id", "position", name="uq_media_report_position"),
    )
    op.create_index("ix_media_state_next", "media_jobs", ["state", "next_attempt_at"])
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("crm_request_id", sa.String(128)))
        batch.create_index("ix_reports_crm_request", ["crm_request_id"])


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_index("ix_reports_crm_request")
        batch.drop_column("crm_request_id")
    for table in ("media_jobs", "outbound", "sessions", "users"):
        op.drop_table(table)
