"""What an officer typed into a desk form that was sent back, kept for the page the browser
is redirected to (post/redirect/get), so reloading that page never posts the form again.

A form's text can be 10,000 characters, more than a cookie carries, so the draft is kept
in the store (`kv_state`, keyed by a hash of its random id and the person's) for
DRAFT_MINUTES and only the id rides in the page's address: only the person who typed it can
read it back.
Files are never kept: a browser cannot be handed a file again, the officer picks it anew.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select

from gateway.store.engine import StoreEngine
from gateway.store.schema import kv_state

DRAFT_MINUTES = 30  # long enough to fix a field, short enough not to keep citizens' data
_PREFIX = "desk_draft:"


@dataclass(frozen=True)
class Draft:
    values: dict[str, str]
    errors: dict[str, str]


def _key(person_id: int, draft_id: str) -> str:
    return _PREFIX + hashlib.sha256(f"{person_id}:{draft_id}".encode()).hexdigest()


async def keep_draft(
    store: StoreEngine, person_id: int, form: str, values: dict[str, str], errors: dict[str, str]
) -> str:
    """Keeps the form's values and errors; returns the draft's id (for the address). Drafts
    past their time, anyone's, are dropped in the same transaction."""
    draft_id = secrets.token_urlsafe(18)
    now = store.clock()
    value = json.dumps(
        {"form": form, "values": values, "errors": errors},
        ensure_ascii=False,
    )
    async with store.write() as conn:
        await conn.execute(
            delete(kv_state).where(and_(kv_state.c.key.like(f"{_PREFIX}%"), kv_state.c.until < now))
        )
        await conn.execute(
            insert(kv_state).values(
                key=_key(person_id, draft_id),
                value=value,
                until=now + timedelta(minutes=DRAFT_MINUTES),
                updated_at=now,
            )
        )
    return draft_id


async def read_draft(store: StoreEngine, person_id: int, form: str, draft_id: str) -> Draft | None:
    """The draft `person_id` left for `form`, while it lasts; None for anyone else's."""
    if not draft_id or len(draft_id) > 64:
        return None
    async with store.read() as conn:
        row = (
            await conn.execute(
                select(kv_state.c.value, kv_state.c.until).where(
                    kv_state.c.key == _key(person_id, draft_id)
                )
            )
        ).first()
    if row is None or row.value is None or row.until is None or row.until < store.clock():
        return None
    kept: dict[str, Any] = json.loads(row.value)
    if kept.get("form") != form:
        return None
    return Draft(values=dict(kept.get("values") or {}), errors=dict(kept.get("errors") or {}))


async def drop_draft(store: StoreEngine, person_id: int, draft_id: str) -> None:
    """Forgets a person's draft once its form went through."""
    if draft_id and len(draft_id) <= 64:
        async with store.write() as conn:
            await conn.execute(delete(kv_state).where(kv_state.c.key == _key(person_id, draft_id)))
