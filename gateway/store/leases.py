"""Small shared state and leases: pollers' positions, and which replica runs a singleton."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    or_,
    select,
)

from gateway.store.engine import StoreEngine
from gateway.store.schema import (
    kv_state,
)


class LeaseStore(StoreEngine):
    """Key-value state and expiring leases."""

    async def get_state(self, key: str) -> Any:
        async with self.read() as conn:
            row = (
                await conn.execute(select(kv_state.c.value).where(kv_state.c.key == key))
            ).first()
        return json.loads(row[0]) if row and row[0] is not None else None

    async def set_state(self, key: str, value: Any) -> None:
        stmt = self._insert(kv_state).values(
            key=key, value=json.dumps(value), updated_at=self.clock()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self.write() as conn:
            await conn.execute(stmt)

    async def take_lease(self, key: str, holder: str, ttl_s: float) -> bool:
        """Hold `key` for ttl_s (renewable by the same holder); passes on when it lapses."""
        now = self.clock()
        until = now + timedelta(seconds=ttl_s)
        stmt = self._insert(kv_state).values(key=key, holder=holder, until=until, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"holder": holder, "until": until, "updated_at": now},
            where=or_(
                kv_state.c.holder == holder, kv_state.c.holder.is_(None), kv_state.c.until < now
            ),
        )
        async with self.write() as conn:
            await conn.execute(stmt)
            row = (
                await conn.execute(select(kv_state.c.holder).where(kv_state.c.key == key))
            ).first()
        return bool(row and row[0] == holder)
