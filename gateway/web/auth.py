"""API tokens: random secrets shown once, stored as hashes, each with a role and a scope."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

ROLES = ("admin", "viewer", "officer")
# What each role may do through the API.
READ_ROLES = frozenset({"admin", "viewer"})
WRITE_ROLES = frozenset({"admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    scope: str


def new_token() -> str:
    return "knl_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).hexdigest()
