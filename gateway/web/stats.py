"""`GET /api/v1/stats` at scale: counts kept by the database itself (migration 0004).

Triggers on `reports` append a +1/-1 row to `report_count_deltas` for every insert, delete
and change of (owner, channel, status, geo_tagged) — appends only, so concurrent writers
never wait on a shared counter row. Reading folds the pending deltas into `report_counts`
(one sorted upsert, so concurrent folds lock rows in the same order) and then sums a few
thousand counter rows instead of a million reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import Store
from gateway.store.schema import reports

counts_metadata = MetaData()

report_counts = Table(
    "report_counts",
    counts_metadata,
    Column("owner", String(64), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("status", String(24), primary_key=True),
    Column("geo_tagged", Boolean, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

report_count_deltas = Table(
    "report_count_deltas",
    counts_metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("owner", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("status", String(24), nullable=False),
    Column("geo_tagged", Boolean, nullable=False),
    Column("n", Integer, nullable=False),
)

_KEY = ("owner", "channel", "status", "geo_tagged")
FOLD_LOCK = 0x6B6E6C5354  # "knlST": pg_advisory_xact_lock key of the counter fold


def owner_condition(column: Any, scope: str) -> Any:
    """`gateway.store.scope.scope_condition` for any owner column (same rule)."""
    kind, _, code = scope.partition(":")
    if kind == "province":
        return text("1=1")
    if kind == "kota":
        return or_(
            column == scope,
            column.like(f"kecamatan:{code}.%"),
            column.like(f"kelurahan:{code}.%"),
        )
    if kind == "kecamatan":
        return or_(column == scope, column.like(f"kelurahan:{code}.%"))
    return column == scope


async def fold_deltas(store: Store, limit: int = 100_000) -> int:
    """Move pending deltas into the counters; returns how many were folded."""
    async with store.read() as conn:
        pending = (await conn.execute(select(report_count_deltas.c.id).limit(1))).first()
    if pending is None:
        return 0
    async with store.write() as conn:
        if store.dialect == "postgresql":
            # One folder at a time (two DELETEs over the same deltas could lock rows in
            # opposite orders); a reader that finds a fold running reads without waiting.
            got = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FOLD_LOCK})
            if not got.scalar():
                return 0
        return await fold_deltas_in(conn, store.dialect, limit)


async def fold_deltas_in(conn: AsyncConnection, dialect: str, limit: int = 100_000) -> int:
    ids = select(report_count_deltas.c.id).order_by(report_count_deltas.c.id).limit(limit)
    rows = (
        await conn.execute(
            delete(report_count_deltas)
            .where(report_count_deltas.c.id.in_(ids.scalar_subquery()))
            .returning(*(report_count_deltas.c[k] for k in _KEY), report_count_deltas.c.n)
        )
    ).all()
    if not rows:
        return 0
    sums: dict[tuple[str, str, str, bool], int] = {}
    for row in rows:
        owner, channel, status, geo, n = row[0], row[1], row[2], row[3], row[4]
        key = (owner, channel, status, bool(geo))
        sums[key] = sums.get(key, 0) + n
    values = [dict(zip(_KEY, key, strict=True), n=n) for key, n in sorted(sums.items()) if n != 0]
    if values:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(report_counts).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY), set_={"n": report_counts.c.n + stmt.excluded.n}
        )
        await conn.execute(stmt)
    return len(rows)


async def rebuild_counts(store: Store) -> None:
    """Recount from the reports table (after a bulk load that bypassed nothing, or a repair)."""
    async with store.write() as conn:
        await conn.execute(delete(report_count_deltas))
        await conn.execute(delete(report_counts))
        grouped = select(
            reports.c.owner, reports.c.channel, reports.c.status, reports.c.geo_tagged, func.count()
        ).group_by(reports.c.owner, reports.c.channel, reports.c.status, reports.c.geo_tagged)
        await conn.execute(report_counts.insert().from_select([*_KEY, "n"], grouped))


async def scoped_stats(store: Store, scope: str) -> dict[str, Any]:
    """`GET /api/v1/stats` in the caller's scope, from the counters."""
    await fold_deltas(store)
    where = owner_condition(report_counts.c.owner, scope)
    out: dict[str, Any] = {"by_channel": {}, "by_status": {}, "by_owner": {}, "by_geo": {}}
    async with store.read() as conn:
        # Summed in SQL: the counters are thousands of rows, the answers a few hundred.
        for key, column in (
            ("by_channel", report_counts.c.channel),
            ("by_status", report_counts.c.status),
            ("by_owner", report_counts.c.owner),
            ("by_geo", report_counts.c.geo_tagged),
        ):
            total = func.sum(report_counts.c.n)
            rows = await conn.execute(
                select(column, total).where(where).group_by(column).having(total != 0)
            )
            for name, n in rows:
                if key == "by_geo":
                    name = "geo" if name else "non_geo"
                out[key][name] = int(n)
        out["oldest_waiting"] = {
            owner: at.isoformat() for owner, at in (await _oldest_waiting(conn, where)).items()
        }
    return out


async def oldest_waiting(store: Store, scope: str = "province") -> dict[str, datetime]:
    """When the oldest report waiting in each owner's enrichment queue arrived."""
    await fold_deltas(store)
    async with store.read() as conn:
        return await _oldest_waiting(conn, owner_condition(report_counts.c.owner, scope))


async def _oldest_waiting(conn: AsyncConnection, where: Any) -> dict[str, datetime]:
    # The owners come from the counters, then one index seek each on (status, owner,
    # received_at) instead of reading every waiting report.
    waiting_owners = (
        select(report_counts.c.owner)
        .where(report_counts.c.status == "pending_enrichment", where)
        .group_by(report_counts.c.owner)
        .having(func.sum(report_counts.c.n) > 0)
        .subquery()
    )
    oldest = (
        select(func.min(reports.c.received_at))
        .where(
            reports.c.status == "pending_enrichment",
            reports.c.owner == waiting_owners.c.owner,
        )
        .scalar_subquery()
    )
    rows = await conn.execute(select(waiting_owners.c.owner, oldest))
    return {
        owner: at.replace(tzinfo=UTC) if at.tzinfo is None else at
        for owner, at in rows
        if at is not None
    }


async def active_model(store: Store) -> dict[str, Any] | None:
    """The text model categorizing new reports (the same for every scope: it learned from
    all admins); None while the keyword rules alone answer."""
    active = await store.active_text_model()
    return active.as_dict() if active else None
