"""Admin API at scale: counters kept by triggers (for stats) and a queue-age index.

`report_counts` holds one row per (owner, channel, status, geo_tagged); triggers on
`reports` append +1/-1 rows to `report_count_deltas`, which `gateway.web.stats` folds
into the counters when stats are read. The counters start from the reports already there.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER reports_count_insert AFTER INSERT ON reports BEGIN
      INSERT INTO report_count_deltas (owner, channel, status, geo_tagged, n)
      VALUES (NEW.owner, NEW.channel, NEW.status, NEW.geo_tagged, 1);
    END
    """,
    """
    CREATE TRIGGER reports_count_delete AFTER DELETE ON reports BEGIN
      INSERT INTO report_count_deltas (owner, channel, status, geo_tagged, n)
      VALUES (OLD.owner, OLD.channel, OLD.status, OLD.geo_tagged, -1);
    END
    """,
    """
    CREATE TRIGGER reports_count_update AFTER UPDATE OF owner, channel, status, geo_tagged
    ON reports
    WHEN OLD.owner IS NOT NEW.owner OR OLD.channel IS NOT NEW.channel
      OR OLD.status IS NOT NEW.status OR OLD.geo_tagged IS NOT NEW.geo_tagged
    BEGIN
      INSERT INTO report_count_deltas (owner, channel, status, geo_tagged, n)
      VALUES (OLD.owner, OLD.channel, OLD.status, OLD.geo_tagged, -1),
             (NEW.owner, NEW.channel, NEW.status, NEW.geo_tagged, 1);
    END
    """,
]

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION kanal_report_count() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    IF TG_OP = 'DELETE' OR (OLD.owner, OLD.channel, OLD.status, OLD.geo_tagged)
        IS DISTINCT FROM (NEW.owner, NEW.channel, NEW.status, NEW.geo_tagged) THEN
      INSERT INTO report_count_deltas (owner, channel, status, geo_tagged, n)
      VALUES (OLD.owner, OLD.channel, OLD.status, OLD.geo_tagged, -1);
    ELSE
      RETURN NULL;
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO report_count_deltas (owner, channel, status, geo_tagged, n)
    VALUES (NEW.owner, NEW.channel, NEW.status, NEW.geo_tagged, 1);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "report_counts",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(24), primary_key=True),
        sa.Column("geo_tagged", sa.Boolean, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "report_count_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("geo_tagged", sa.Boolean, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
    )
    # Stats group the counters by one column each, in the caller's scope (an owner filter):
    # covering indexes let each GROUP BY stream one index instead of sorting the table.
    for column in ("owner", "channel", "status", "geo_tagged"):
        columns = [column, "n"] if column == "owner" else [column, "owner", "n"]
        op.create_index(f"ix_report_counts_{column}", "report_counts", columns)
    # The oldest waiting report per owner: one seek on (status, owner) at its start.
    op.create_index(
        "ix_reports_status_owner_received", "reports", ["status", "owner", "received_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER reports_count AFTER INSERT OR UPDATE OR DELETE ON reports "
            "FOR EACH ROW EXECUTE FUNCTION kanal_report_count()"
        )
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
    op.execute(
        "INSERT INTO report_counts (owner, channel, status, geo_tagged, n) "
        "SELECT owner, channel, status, geo_tagged, count(*) FROM reports "
        "GROUP BY owner, channel, status, geo_tagged"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS reports_count ON reports")
        op.execute("DROP FUNCTION IF EXISTS kanal_report_count()")
    else:
        for name in ("reports_count_insert", "reports_count_delete", "reports_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_reports_status_owner_received", table_name="reports")
    for column in ("owner", "channel", "status", "geo_tagged"):
        op.drop_index(f"ix_report_counts_{column}", table_name="report_counts")
    op.drop_table("report_count_deltas")
    op.drop_table("report_counts")
