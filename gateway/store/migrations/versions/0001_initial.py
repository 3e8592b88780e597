"""Initial schema: inbox of raw messages, reports and their history, tokens, blobs, state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from gateway.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(26)


def upgrade() -> None:
    op.create_table(
        "raw_messages",
        sa.Column("id", ID, primary_key=True),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("intake", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("ticket", sa.String(16), nullable=False, unique=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(255)),
        sa.Column("part_total", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime()),
        sa.Column("report_id", ID),
        sa.UniqueConstraint("connector", "external_id", name="uq_raw_connector_external_id"),
    )
    op.create_index("ix_raw_state_id", "raw_messages", ["state", "id"])
    op.create_index("ix_raw_group", "raw_messages", ["group_key"])

    op.create_table(
        "reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("ticket", sa.String(16), nullable=False, unique=True),
        sa.Column("raw_message_id", ID, nullable=False, unique=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("kelurahan_code", sa.String(16)),
        sa.Column("geo_tagged", sa.Boolean, nullable=False),
        sa.Column("category_code", sa.String(80), nullable=False),
        sa.Column("reporter_key", sa.String(255)),
        sa.Column("group_key", sa.String(255)),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lease_holder", sa.String(128)),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("doc", sa.Text, nullable=False),
    )
    for name, cols in {
        "ix_reports_owner_status_received": ["owner", "status", "received_at"],
        "ix_reports_status_received": ["status", "received_at"],
        "ix_reports_kelurahan_received": ["kelurahan_code", "received_at"],
        "ix_reports_channel_received": ["channel", "received_at"],
        "ix_reports_received": ["received_at"],
        "ix_reports_status_next_attempt": ["status", "next_attempt_at"],
        "ix_reports_reporter": ["reporter_key"],
        "ix_reports_group": ["group_key"],
    }.items():
        op.create_index(name, "reports", cols)

    op.create_table(
        "report_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("report_id", ID, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("changes", sa.Text),
    )
    op.create_index("ix_history_report", "report_history", ["report_id", "id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
    )
    op.create_table(
        "attachments",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "kv_state",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("holder", sa.String(128)),
        sa.Column("until", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("kv_state", "attachments", "api_tokens", "report_history", "reports", "raw_messages"):
        op.drop_table(table)
