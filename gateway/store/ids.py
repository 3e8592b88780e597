"""The one place ids and tickets are made."""

from __future__ import annotations

import secrets

from ulid import ULID

# Crockford's base32 without I, L, O, U: nothing a citizen can misread on the phone.
TICKET_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """A ULID: unique, sortable by creation time."""
    return str(ULID())


def new_ticket() -> str:
    """`KNL-XXXX-XXXX`: 40 random bits (one read of the OS's CSPRNG), not guessable."""
    bits = int.from_bytes(secrets.token_bytes(5), "big")
    chars = "".join(TICKET_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"KNL-{chars[:4]}-{chars[4:]}"
