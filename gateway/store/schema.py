"""The store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Migrations under `gateway/migrations/versions` create and change these; this module is
what the code queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both stores (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

raw_messages = Table(
    "raw_messages",
    metadata,
    Column("id", String(26), primary_key=True),  # ULID
    Column("connector", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("intake", String(16), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("ticket", String(16), nullable=False, unique=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the request body exactly as received
    Column("headers", Text, nullable=False),  # JSON: the headers that matter
    Column("message", Text, nullable=True),  # JSON: the RawMessage the connector read
    # new → processing → done | held (waiting for sibling parts) | failed (normalization)
    Column("state", String(16), nullable=False),
    Column("group_key", String(255), nullable=True),
    Column("part_total", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("report_id", String(26), nullable=True),
    UniqueConstraint("connector", "external_id", name="uq_raw_connector_external_id"),
    Index("ix_raw_state_id", "state", "id"),
    Index("ix_raw_group", "group_key"),
)

reports = Table(
    "reports",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("ticket", String(16), nullable=False, unique=True),
    Column("raw_message_id", String(26), nullable=False, unique=True),
    Column("channel", String(32), nullable=False),
    Column("connector", String(32), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("status", String(24), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("kelurahan_code", String(16), nullable=True),
    Column("geo_tagged", Boolean, nullable=False),
    Column("category_code", String(80), nullable=False),
    Column("reporter_key", String(255), nullable=True),
    Column("group_key", String(255), nullable=True),
    Column("search_text", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("lease_holder", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("doc", Text, nullable=False),  # JSON: the canonical report, without its history
    Index("ix_reports_owner_status_received", "owner", "status", "received_at"),
    Index("ix_reports_status_received", "status", "received_at"),
    Index("ix_reports_kelurahan_received", "kelurahan_code", "received_at"),
    Index("ix_reports_channel_received", "channel", "received_at"),
    Index("ix_reports_received", "received_at"),
    Index("ix_reports_status_next_attempt", "status", "next_attempt_at"),
    Index("ix_reports_reporter", "reporter_key"),
    Index("ix_reports_group", "group_key"),
)

report_history = Table(
    "report_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("report_id", String(26), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("status", String(24), nullable=False),
    Column("by", String(128), nullable=False),
    Column("note", Text, nullable=True),
    Column("changes", Text, nullable=True),  # JSON: field → new value
    Index("ix_history_report", "report_id", "id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

attachments = Table(
    "attachments",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Small shared state: poll positions, singleton leases for pollers, counters.
kv_state = Table(
    "kv_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=True),
    Column("holder", String(128), nullable=True),
    Column("until", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# --- revision 0002 -------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime(), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the cookie's session id
    Column("user_id", Integer, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_sessions_user", "user_id"),
)

# Messages to citizens (acknowledgements, "done" news): recorded before they are sent.
outbound = Table(
    "outbound",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("report_id", String(26), nullable=False),
    Column("kind", String(16), nullable=False),  # ack | done
    Column("channel", String(32), nullable=False),
    Column("connector", String(32), nullable=False),
    Column("recipient", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # queued | sending | sent | failed | skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("provider_message_id", String(255), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("meta", Text, nullable=True),  # JSON: threading headers, reply tokens
    UniqueConstraint("report_id", "kind", name="uq_outbound_report_kind"),
    Index("ix_outbound_state_next", "state", "next_attempt_at"),
    Index("ix_outbound_recipient", "recipient", "created_at"),
)

# Attachments referenced by URL or platform file id, fetched soon after arrival.
media_jobs = Table(
    "media_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", String(26), nullable=False),
    Column("position", Integer, nullable=False),  # index in the report's attachments
    Column("connector", String(32), nullable=False),
    Column("url", Text, nullable=True),
    Column("file_id", String(255), nullable=True),
    Column("state", String(16), nullable=False),  # pending | stored | unavailable
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    UniqueConstraint("report_id", "position", name="uq_media_report_position"),
    Index("ix_media_state_next", "state", "next_attempt_at"),
)

reports.append_column(Column("crm_request_id", String(128), nullable=True))
Index("ix_reports_crm_request", reports.c.crm_request_id)

# --- revision 0003 -------------------------------------------------------------------------
# The CRM dispatcher's claim on a report (lapses when its replica dies) and the time of its
# first delivery attempt (fixes the media_url's expiry across retries).
reports.append_column(Column("crm_claimed_by", String(64), nullable=True))
reports.append_column(Column("crm_claimed_until", UTCDateTime(), nullable=True))
reports.append_column(Column("crm_first_attempt_at", UTCDateTime(), nullable=True))

# --- revision 0005 -------------------------------------------------------------------------

# Why the report is back in its owner's queue though its status is not: e.g.
# "follow_up_after_done". Cleared by an admin.
reports.append_column(Column("attention", String(32), nullable=True))
Index("ix_reports_attention_owner", reports.c.attention, reports.c.owner)

# --- revision 0006 -------------------------------------------------------------------------
users.append_column(Column("last_sign_in_at", UTCDateTime(), nullable=True))

# Every admin decision with the text it was made on: the labelled examples `kanal learn`
# trains on (gateway/store/learning.py writes them, in the transaction of the change).
decisions = Table(
    "decisions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("report_id", String(26), nullable=False),
    # category | location | rejection | handover | reopened | submitted
    Column("kind", String(16), nullable=False),
    Column("label", String(80), nullable=False),  # category code, kelurahan code, reason, owner
    Column("detail", String(16), nullable=True),  # category: "set" or "kept"
    Column("text", Text, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("by", String(128), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
    Index("ix_decisions_kind_id", "kind", "id"),
    Index("ix_decisions_report", "report_id"),
)

# Text models trained by `kanal learn`; the active one is the latest activated.
text_models = Table(
    "text_models",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("trained_at", UTCDateTime(), nullable=False),
    Column("trained_on", Integer, nullable=False),  # decisions (reports) it learned from
    Column("last_decision_id", BigInteger, nullable=False),  # newest decision it could see
    Column("evaluated_on", Integer, nullable=False),
    Column("category_accuracy", Float, nullable=True),
    Column("noise_accuracy", Float, nullable=True),
    Column("activated_at", UTCDateTime(), nullable=True),
    Column("data", LargeBinary, nullable=False),
    Index("ix_text_models_activated", "activated_at"),
)
