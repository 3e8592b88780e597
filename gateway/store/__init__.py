"""The store: SQLite (WAL, synchronous=FULL) or PostgreSQL, through SQLAlchemy Core.

Owns durability (a webhook's raw message is committed before it is acknowledged, several
requests sharing one commit), dedupe by (connector, external id), work claims that pass on
when a replica dies, and the scoped queries of the admin API. `Store` is the one object the
rest of kanal holds; each of its parts lives in a module of its own.
"""

from gateway.store.engine import (
    MIGRATION_LOCK,
    StoreUnavailable,
    async_url,
    is_unavailable,
    sqlite_path,
)
from gateway.store.inbox import ClaimLost, InboxStore, InboxWriter, NewRaw, StoredRaw
from gateway.store.learning import LabelledReport, LearningStore, StoredModel
from gateway.store.leases import LeaseStore
from gateway.store.reports import StaleVersion, decode_cursor, encode_cursor, group_key_of
from gateway.store.scope import scope_condition, scope_contains
from gateway.store.tokens import TokenStore


class Store(InboxStore, TokenStore, LeaseStore, LearningStore):
    """One per process: the inbox, reports, tokens, leases and learning over one engine."""


__all__ = [
    "MIGRATION_LOCK",
    "ClaimLost",
    "InboxWriter",
    "LabelledReport",
    "NewRaw",
    "StaleVersion",
    "Store",
    "StoreUnavailable",
    "StoredModel",
    "StoredRaw",
    "async_url",
    "decode_cursor",
    "encode_cursor",
    "group_key_of",
    "is_unavailable",
    "scope_condition",
    "scope_contains",
    "sqlite_path",
]
