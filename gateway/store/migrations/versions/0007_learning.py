"""Admin decisions kept as labelled examples, and the text models learned from them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    op.create_table(
        "decisions",
        _id(),
        sa.Column("report_id", sa.String(26), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("detail", sa.String(16), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decisions_kind_id", "decisions", ["kind", "id"])
    op.create_index("ix_decisions_report", "decisions", ["report_id"])
    op.create_table(
        "text_models",
        _id(),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trained_on", sa.Integer, nullable=False),
        sa.Column("last_decision_id", sa.BigInteger, nullable=False),
        sa.Column("evaluated_on", sa.Integer, nullable=False),
        sa.Column("category_accuracy", sa.Float, nullable=True),
        sa.Column("noise_accuracy", sa.Float, nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_text_models_activated", "text_models", ["activated_at"])


def downgrade() -> None:
    op.drop_table("text_models")
    op.drop_table("decisions")
