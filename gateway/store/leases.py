"""Small shared state and leases: pollers' positions, which replica runs a singleton, and
giving up a replica's leases and work claims when it stops."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from gateway.store.engine import StoreEngine
from gateway.store.schema import kv_state, raw_messages, reports


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

    async def release_leases(self, keys: Sequence[str], holder: str) -> None:
        """Give up leases this holder has (a clean stop): others may take them at once."""
        if not keys:
            return
        async with self.write() as conn:
            await conn.execute(
                update(kv_state)
                .where(kv_state.c.key.in_(list(keys)), kv_state.c.holder == holder)
                .values(holder=None, until=None, updated_at=self.clock())
            )

    async def release_claims(self, worker: str) -> tuple[int, int]:
        """Let the pipeline's and the CRM dispatcher's claims of `worker` lapse now, as if
        their time had run out: at a clean stop, and at the start of a replica that was
        killed (same identity). Returns (raw messages, reports) released."""
        now = self.clock()
        async with self.write() as conn:
            raw = await conn.execute(
                update(raw_messages)
                .where(
                    raw_messages.c.state == "processing",
                    raw_messages.c.claimed_by == worker,
                    raw_messages.c.claimed_until >= now,
                )
                .values(claimed_until=now - timedelta(seconds=1))
            )
            crm = await conn.execute(
                update(reports)
                .where(reports.c.crm_claimed_by == worker, reports.c.crm_claimed_until >= now)
                .values(crm_claimed_until=now - timedelta(seconds=1))
            )
        return int(raw.rowcount or 0), int(crm.rowcount or 0)
