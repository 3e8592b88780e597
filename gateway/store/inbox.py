"""The inbox: raw messages stored durably before a webhook is answered (group commit),
deduped on (connector, external id), claimed by pipeline workers and settled into reports."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from gateway.store.engine import StoreUnavailable, _unavailable_as_store_error, log
from gateway.store.ids import new_ticket
from gateway.store.reports import ReportStore, group_key_of
from gateway.store.schema import (
    raw_messages,
    reports,
)
from normalizers.report import Report

# The event loop's share background work (pipeline, notifier) takes while intake is busy.
BACKGROUND_SHARE = 0.3
WRITER_QUEUE_TO_YIELD = 2  # webhooks queued for the writer that make background work rest
# A surge: group commits hold SURGE_REQUESTS requests or more on average (a moving average
# over about the last 10): senders keep many requests waiting, intake is at its peak, not
# merely busy (at a steady few hundred a second a commit holds 2 to 4; one long transaction
# of background work queues requests for one commit, which moves the average little).
SURGE_REQUESTS = 12.0
SURGE_WEIGHT = 0.1  # of the latest commit in the moving average


def _new_tickets(
    rows: Sequence[NewRaw], tickets: list[str], inserted: set[str]
) -> tuple[dict[tuple[str, str], tuple[str, str]], list[tuple[str, str]]]:
    """(id, ticket) of the rows just inserted, by key; and the keys stored before, whose
    first id and ticket a redelivery answers with (looked up by the caller)."""
    by_key = {
        (r.connector, r.external_id): (r.id, t)
        for r, t in zip(rows, tickets, strict=True)
        if r.id in inserted
    }
    again = list({(r.connector, r.external_id) for r in rows if r.id not in inserted})
    return by_key, again


def _existing(keys: list[tuple[str, str]]) -> Any:
    return select(
        raw_messages.c.connector,
        raw_messages.c.external_id,
        raw_messages.c.id,
        raw_messages.c.ticket,
    ).where(tuple_(raw_messages.c.connector, raw_messages.c.external_id).in_(keys))


# The columns an inbox insert sets, in the order of `_raw_values`.
_RAW_COLUMNS = (
    "id",
    "connector",
    "channel",
    "intake",
    "external_id",
    "ticket",
    "received_at",
    "stored_at",
    "payload",
    "headers",
    "message",
    "state",
    "group_key",
    "part_total",
    "error",
    "attempts",
)


# Rows per INSERT statement: 60 × 16 parameters stays under SQLite's oldest variable limit.
_SQLITE_ROWS_PER_INSERT = 60


def _raw_values(r: NewRaw, ticket: str, now: datetime) -> tuple[Any, ...]:
    return (
        r.id,
        r.connector,
        r.channel,
        r.intake,
        r.external_id,
        ticket,
        r.received_at,
        now,
        r.payload,
        json.dumps(r.headers),
        json.dumps(r.message) if r.message is not None else None,
        r.state,
        r.group_key,
        r.part_total,
        r.error,
        0,
    )


@functools.cache
def _sqlite_raw_binders(dialect: Any) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(position, bind processor) of the columns that have one (UTCDateTime to SQLite's
    text form, …), applied as SQLAlchemy would."""
    processors = (raw_messages.c[name].type.bind_processor(dialect) for name in _RAW_COLUMNS)
    return tuple((i, f) for i, f in enumerate(processors) if f is not None)


@functools.cache
def _sqlite_raw_insert_parts(dialect: Any) -> tuple[str, str, str]:
    """The one-row `INSERT … VALUES (?, …) ON CONFLICT (connector, external_id) DO NOTHING`
    as SQLAlchemy compiles it, cut into (head, values group, tail)."""
    stmt = sqlite_insert(raw_messages).values({name: bindparam(name) for name in _RAW_COLUMNS})
    compiled = stmt.on_conflict_do_nothing(index_elements=["connector", "external_id"]).compile(
        dialect=dialect
    )
    assert list(compiled.positiontup or ()) == list(_RAW_COLUMNS), "unexpected parameter order"
    group = "(" + ", ".join("?" * len(_RAW_COLUMNS)) + ")"
    head, found, tail = compiled.string.partition(f" VALUES {group}")
    assert found and group not in tail, f"unexpected INSERT form: {compiled.string}"
    return head + " VALUES ", group, tail


@functools.cache
def _sqlite_raw_insert(dialect: Any, count: int) -> str:
    """The same INSERT for `count` rows (one VALUES group per row)."""
    head, group, tail = _sqlite_raw_insert_parts(dialect)
    return head + ", ".join([group] * count) + tail


def _resolve_tickets(
    conn: Connection, rows: Sequence[NewRaw], tickets: list[str], inserted: set[str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(id, ticket) by key: ours for the rows just inserted, the first ones for the rest."""
    by_key, again = _new_tickets(rows, tickets, inserted)
    if again:
        by_key.update({(c, e): (i, t) for c, e, i, t in conn.execute(_existing(again))})
    return by_key


def _claimed_by(worker: str) -> Any:
    return and_(raw_messages.c.claimed_by == worker, raw_messages.c.state == "processing")


@dataclass(frozen=True, slots=True)
class NewRaw:
    """A raw message ready to be stored (what a connector read, plus the wire bytes)."""

    id: str
    connector: str
    channel: str
    intake: str
    external_id: str
    received_at: datetime
    payload: bytes
    headers: dict[str, str]
    message: dict[str, Any] | None
    group_key: str | None = None
    part_total: int | None = None
    state: str = "new"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRaw:
    id: str
    ticket: str
    created: bool  # False when the same (connector, external id) was stored before


class ClaimLost(Exception):
    """Another worker took over these raw messages (our claim expired)."""


def claimable_raw(now: datetime, limit: int, dialect: str) -> Select[tuple[str]]:
    """The ids of the raw messages to claim next, oldest first."""
    claimable = or_(
        raw_messages.c.state == "new",
        and_(raw_messages.c.state == "processing", raw_messages.c.claimed_until < now),
    )
    # A message of a conversation (or a part of a multipart message) waits while an
    # earlier one of the same group is not settled: otherwise another worker (a replica)
    # could take a shared location before the text whose report it joins is committed,
    # and make a second report of it.
    earlier = raw_messages.alias("earlier")
    # (A message of no group, most of them, skips the look-up.)
    in_order = or_(
        raw_messages.c.group_key.is_(None),
        ~exists().where(
            earlier.c.group_key == raw_messages.c.group_key,
            earlier.c.id < raw_messages.c.id,
            # `state || ''`: found by the group's index. By state, SQLite would read
            # every earlier message waiting in a backlog, for each message it claims.
            (earlier.c.state + "").in_(("new", "processing")),
        ),
    )
    if dialect == "postgresql":
        # FOR UPDATE SKIP LOCKED (added by the caller) on this very query: replicas claiming
        # at once take different messages.
        return (
            select(raw_messages.c.id)
            .where(claimable, in_order)
            .order_by(raw_messages.c.id)
            .limit(limit)
        )
    # SQLite (one process): the oldest `limit` new messages straight from the (state, id)
    # index, and the oldest `limit` lapsed claims, then the order check on those only. With
    # one OR over both states SQLite reads every waiting message's row and sorts them all:
    # in a backlog, the whole backlog per claim.
    new = (
        select(raw_messages.c.id)
        .where(raw_messages.c.state == "new")
        .order_by(raw_messages.c.id)
        .limit(limit)
    )
    lapsed = (
        select(raw_messages.c.id)
        .where(raw_messages.c.state == "processing", raw_messages.c.claimed_until < now)
        .order_by(raw_messages.c.id)
        .limit(limit)
    )
    oldest = union_all(select(new.subquery().c.id), select(lapsed.subquery().c.id)).subquery()
    return (
        select(raw_messages.c.id)
        .where(raw_messages.c.id.in_(select(oldest.c.id)), in_order)
        .order_by(raw_messages.c.id)
        .limit(limit)
    )


class InboxStore(ReportStore):
    """Raw messages: stored, claimed, settled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer: InboxWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
        await super().close()

    def writer(self) -> InboxWriter:
        if self._writer is None:
            self._writer = InboxWriter(self)
        return self._writer

    async def yield_to_intake(self, max_wait_s: float = 1.0) -> None:
        """Background work (pipeline, notifier, dispatcher, media) calls this before it takes
        the writer: acknowledging webhooks comes first. Bounded, so background work still
        gets a turn at least every `max_wait_s` under sustained intake."""
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writer.idle.wait(), timeout=max_wait_s)

    def intake_active(self, within_s: float = 0.25) -> bool:
        """Webhooks (or other intake) stored something in the last `within_s` seconds."""
        writer = self._writer
        return writer is not None and (
            writer.busy or time.monotonic() - writer.last_active < within_s
        )

    def intake_surging(self) -> bool:
        """Intake is at its peak (InboxWriter.surging): background work that can wait should
        leave it the machine."""
        return self._writer is not None and self._writer.surging

    async def wait_out_surge(self, max_wait_s: float) -> None:
        """While intake surges, wait for the surge to pass, at most `max_wait_s`: a burst is
        acknowledged first, and background work still gets a turn every `max_wait_s`."""
        # Polled: a surge ends by time (requests stop coming) or by smaller commits, no
        # event marks it.
        step = 0.02
        for _ in range(math.ceil(max_wait_s / step)):
            if not self.intake_surging():
                return
            await asyncio.sleep(step)

    async def yield_writer(self, held_s: float) -> None:
        """Background work calls this after a write transaction that held SQLite's one
        writer `held_s` seconds: when webhooks queued up behind it meanwhile, it rests as
        long again, so a burst of webhooks gets at least half of the writer."""
        writer = self._writer
        if writer is not None and writer.waiting >= WRITER_QUEUE_TO_YIELD:
            await asyncio.sleep(min(held_s, 0.1))

    async def pace_background(self, spent_s: float) -> None:
        """Background work calls this after a slice that held the event loop `spent_s`
        seconds. While messages are arriving it rests long enough to take at most
        BACKGROUND_SHARE of the loop (acknowledging comes first, and no background slice
        makes a webhook wait long); otherwise it only lets others run."""
        if self.intake_active():
            await asyncio.sleep(min(spent_s * (1 / BACKGROUND_SHARE - 1), 0.5))
        else:
            await asyncio.sleep(0)

    async def insert_raw_batch(self, rows: Sequence[NewRaw]) -> list[StoredRaw]:
        """Store raw messages in one transaction; a (connector, external id) seen before is
        not stored again, and its first ticket is returned."""
        for _ in range(5):
            tickets = [new_ticket() for _ in rows]
            now = self.clock()
            try:
                with _unavailable_as_store_error():
                    if self.inbox_engine is not None:
                        # Bound here: the writer thread is the inbox's bottleneck, the event
                        # loop has time.
                        statements = self._sqlite_raw_statements(rows, tickets, now)
                        by_key = await self._in_writer_thread(
                            self._insert_raw_sqlite, statements, rows, tickets
                        )
                    else:
                        by_key = await self.run_write(
                            functools.partial(
                                self._insert_raw_returning, rows=rows, tickets=tickets, now=now
                            )
                        )
            except sa_exc.IntegrityError:
                continue  # a ticket collided (40 random bits): draw new ones and try again
            self.notify_new_raw()
            out = []
            for r in rows:
                stored_id, ticket = by_key[(r.connector, r.external_id)]
                out.append(StoredRaw(stored_id, ticket, stored_id == r.id))
            return out
        raise RuntimeError("could not draw unique tickets")

    def _sqlite_raw_statements(
        self, rows: Sequence[NewRaw], tickets: list[str], now: datetime
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """One multi-row INSERT per chunk, with its parameters bound as SQLAlchemy would."""
        assert self.inbox_engine is not None
        dialect = self.inbox_engine.dialect
        bind = _sqlite_raw_binders(dialect)
        statements = []
        for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
            chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
            params: list[Any] = []
            for r, t in zip(chunk, tickets[start : start + len(chunk)], strict=True):
                values = list(_raw_values(r, t, now))
                for i, f in bind:
                    values[i] = f(values[i])
                params += values
            statements.append((_sqlite_raw_insert(dialect, len(chunk)), tuple(params)))
        return statements

    def _insert_raw_sqlite(
        self,
        statements: list[tuple[str, tuple[Any, ...]]],
        rows: Sequence[NewRaw],
        tickets: list[str],
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """The inbox's hot path on SQLite, run whole in the inbox thread, straight on the
        driver's connection (from SQLAlchemy's pool): BEGIN, one step into SQLite per chunk
        (so the GIL changes hands once, not once per row), COMMIT. Which rows went in is
        looked up, after the commit, only when some did not."""
        assert self.inbox_engine is not None
        pooled = self.inbox_engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert driver is not None
            try:
                driver.execute("BEGIN IMMEDIATE")
                inserted_count = sum(
                    driver.execute(sql, params).rowcount for sql, params in statements
                )
                driver.execute("COMMIT")
            except BaseException as exc:
                # Never back to the pool inside a transaction (it does not reset connections).
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
                if not isinstance(exc, sqlite3.Error):
                    raise
                kind = (
                    sa_exc.IntegrityError
                    if isinstance(exc, sqlite3.IntegrityError)
                    else (
                        sa_exc.OperationalError
                        if isinstance(exc, sqlite3.OperationalError)
                        else sa_exc.DatabaseError
                    )
                )
                raise kind("INSERT INTO raw_messages …", None, exc) from exc
        finally:
            pooled.close()  # back to the pool
        if inserted_count == len(rows):
            return {
                (r.connector, r.external_id): (r.id, t) for r, t in zip(rows, tickets, strict=True)
            }
        with self.inbox_engine.begin() as conn:
            ids = [r.id for r in rows]
            inserted = {
                row[0]
                for row in conn.execute(select(raw_messages.c.id).where(raw_messages.c.id.in_(ids)))
            }
            return _resolve_tickets(conn, rows, tickets, inserted)

    @staticmethod
    def _insert_raw_returning(
        conn: Connection, *, rows: Sequence[NewRaw], tickets: list[str], now: datetime
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """The inbox on PostgreSQL: one INSERT … RETURNING for the batch."""
        stmt = (
            pg_insert(raw_messages)
            .on_conflict_do_nothing(index_elements=["connector", "external_id"])
            .returning(raw_messages.c.id)
        )
        values = [
            dict(zip(_RAW_COLUMNS, _raw_values(r, t, now), strict=True))
            for r, t in zip(rows, tickets, strict=True)
        ]
        inserted = {row[0] for row in conn.execute(stmt, values)}
        return _resolve_tickets(conn, rows, tickets, inserted)

    async def claim_raw(self, worker: str, limit: int, ttl_s: float) -> list[dict[str, Any]]:
        """Take up to `limit` raw messages to normalize; a claim expires if its holder dies."""
        now = self.clock()
        return await self.run_write(
            functools.partial(
                self._claim_raw_sync, worker=worker, limit=limit, ttl_s=ttl_s, now=now
            )
        )

    def _claim_raw_sync(
        self, conn: Connection, *, worker: str, limit: int, ttl_s: float, now: datetime
    ) -> list[dict[str, Any]]:
        pick = claimable_raw(now, limit, self.dialect)
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(raw_messages)
            .where(raw_messages.c.id.in_(pick.scalar_subquery()))
            .values(
                state="processing",
                claimed_by=worker,
                claimed_until=now + timedelta(seconds=ttl_s),
                attempts=raw_messages.c.attempts + 1,
            )
            .returning(*raw_messages.c)
        )
        return sorted((dict(r) for r in conn.execute(stmt).mappings()), key=lambda r: r["id"])

    async def claim_group(self, group_key: str, worker: str, ttl_s: float) -> list[dict[str, Any]]:
        now = self.clock()
        stmt = (
            update(raw_messages)
            .where(raw_messages.c.group_key == group_key, raw_messages.c.state == "held")
            .values(
                state="processing", claimed_by=worker, claimed_until=now + timedelta(seconds=ttl_s)
            )
            .returning(*raw_messages.c)
        )
        async with self.write() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [dict(r) for r in rows]

    async def ripe_groups(self, timeout_s: float, limit: int = 50) -> list[tuple[str, bool]]:
        """Held groups that are complete, or whose oldest part waited longer than the timeout.
        Returns (group_key, complete)."""
        cutoff = self.clock() - timedelta(seconds=timeout_s)
        stmt = (
            select(
                raw_messages.c.group_key,
                func.count().label("n"),
                func.max(raw_messages.c.part_total).label("total"),
                func.min(raw_messages.c.stored_at).label("oldest"),
            )
            .where(raw_messages.c.state == "held")
            .group_by(raw_messages.c.group_key)
            .having(
                or_(
                    func.count() >= func.max(raw_messages.c.part_total),
                    func.min(raw_messages.c.stored_at) < cutoff,
                )
            )
            .limit(limit)
        )
        async with self.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(r.group_key, r.n >= (r.total or 0)) for r in rows]

    async def settle_raw(
        self,
        worker: str,
        *,
        created: Sequence[tuple[list[str], Report, list[Any]]] = (),
        held: Sequence[str] = (),
        failed: Sequence[tuple[str, str]] = (),
        ignored: Sequence[tuple[str, str]] = (),
        follow_ups: Sequence[tuple[list[str], str, Callable[[Report], Report]]] = (),
        group_keys: Mapping[str, str | None] | None = None,
        claim_next: tuple[int, float] | None = None,
    ) -> list[dict[str, Any]]:
        """Record the pipeline's results in one transaction, only for claims still held.

        `created`: (raw ids, report, blobs) — a new report made of those raw messages.
        `follow_ups`: (raw ids, report id, change) — messages added to an existing report.
        `group_keys`: report id → the group key of the message that started it.
        `claim_next`: (limit, ttl) — also claim the next raw messages in the same
        transaction (one commit, one fsync, fewer for a backlog); returns them.
        """
        now = self.clock()
        fired = False
        claimed: list[dict[str, Any]] = []
        if created or held or failed or ignored or claim_next:
            fired, claimed = await self.run_write(
                functools.partial(
                    self._settle_sync,
                    worker=worker,
                    created=created,
                    held=held,
                    failed=failed,
                    ignored=ignored,
                    group_keys=group_keys or {},
                    claim_next=claim_next,
                    now=now,
                )
            )
        if follow_ups:  # after the reports they may join were committed
            mine = _claimed_by(worker)
            async with self.write() as conn:
                for raw_ids, report_id, change in follow_ups:
                    result = await conn.execute(
                        update(raw_messages)
                        .where(raw_messages.c.id.in_(raw_ids), mine)
                        .values(state="done", report_id=report_id, claimed_by=None, error=None)
                    )
                    if result.rowcount != len(raw_ids):
                        raise ClaimLost(raw_ids)
                    current = await self.load_report(conn, report_id, for_update=True)
                    if current is not None:
                        await self.save_report(conn, change(current), None)
        if created:
            self.remember_reports(report for _, report, _ in created)
        if fired:
            self.hook_work_done()
        if created or follow_ups:
            self.notify_new_work()  # the CRM dispatcher and the notifier have reports to see
        return claimed

    def _settle_sync(
        self,
        conn: Connection,
        *,
        worker: str,
        created: Sequence[tuple[list[str], Report, list[Any]]],
        held: Sequence[str],
        failed: Sequence[tuple[str, str]],
        ignored: Sequence[tuple[str, str]],
        group_keys: Mapping[str, str | None],
        claim_next: tuple[int, float] | None,
        now: datetime,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """settle_raw's transaction, bar follow-ups: (a report hook queued work, the raw
        messages claimed next)."""
        mine = _claimed_by(worker)
        fired = False
        if created:
            # A few statements for the whole chunk, not a few per report.
            report_of = {raw_id: report.id for raw_ids, report, _ in created for raw_id in raw_ids}
            result = conn.execute(
                update(raw_messages)
                .where(raw_messages.c.id.in_(list(report_of)), mine)
                .values(
                    state="done",
                    report_id=case(report_of, value=raw_messages.c.id),
                    claimed_by=None,
                    error=None,
                )
            )
            if result.rowcount != len(report_of):
                raise ClaimLost(list(report_of))
            for _, _, blobs in created:
                for blob in blobs:
                    self._put_blob_sync(conn, blob.sha256, blob.content_type, blob.data, now)
            fired = self._insert_reports_sync(
                conn,
                [
                    (report, raw_ids[0], group_key_of(report, group_keys.get(report.id)))
                    for raw_ids, report, _ in created
                ],
                now,
            )
        released: list[tuple[str, dict[str, Any]]] = [
            *((raw_id, {"state": "held", "claimed_until": None}) for raw_id in held),
            *((raw_id, {"state": "failed", "error": why[:4000]}) for raw_id, why in failed),
            *((raw_id, {"state": "ignored", "error": why[:4000]}) for raw_id, why in ignored),
        ]
        for raw_id, values in released:
            conn.execute(
                update(raw_messages)
                .where(raw_messages.c.id == raw_id, mine)
                .values(claimed_by=None, **values)
            )
        if claim_next is None:
            return fired, []
        limit, ttl_s = claim_next
        return fired, self._claim_raw_sync(conn, worker=worker, limit=limit, ttl_s=ttl_s, now=now)

    async def retry_failed_raw(self) -> int:
        async with self.write() as conn:
            result = await conn.execute(
                update(raw_messages)
                .where(raw_messages.c.state == "failed")
                .values(state="new", attempts=0)
            )
        self.notify_new_raw()
        return int(result.rowcount or 0)

    async def inbox(self, limit: int = 50, cursor: str | None = None) -> list[dict[str, Any]]:
        stmt = (
            select(
                raw_messages.c.id,
                raw_messages.c.connector,
                raw_messages.c.channel,
                raw_messages.c.external_id,
                raw_messages.c.received_at,
                raw_messages.c.stored_at,
                raw_messages.c.error,
                raw_messages.c.attempts,
                raw_messages.c.payload,
            )
            .where(raw_messages.c.state == "failed")
            .order_by(raw_messages.c.id.desc())
            .limit(limit)
        )
        if cursor:
            stmt = stmt.where(raw_messages.c.id < cursor)
        async with self.read() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def raw_message(self, raw_id: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            row = (
                (await conn.execute(select(raw_messages).where(raw_messages.c.id == raw_id)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def outcomes(self, raw_ids: Sequence[str]) -> Counter[str]:
        """What became of these raw messages, counted: `report` (a new report),
        `rejected:<reason>` (a new report kanal rejected, e.g. a bounce: automated),
        `joined` (added to another report: a follow-up, a part of a conversation),
        `failed` (kept in the inbox), `ignored` (edits, unsends), `waiting` (not yet done)."""
        found: Counter[str] = Counter()
        for start in range(0, len(raw_ids), 500):
            stmt = (
                select(raw_messages.c.state, reports.c.status, reports.c.doc)
                .select_from(
                    raw_messages.outerjoin(reports, reports.c.raw_message_id == raw_messages.c.id)
                )
                .where(raw_messages.c.id.in_(list(raw_ids[start : start + 500])))
            )
            async with self.read() as conn:
                for state, status, doc in (await conn.execute(stmt)).all():
                    if state in ("failed", "ignored"):
                        found[state] += 1
                    elif state != "done":
                        found["waiting"] += 1
                    elif status is None:
                        found["joined"] += 1
                    elif status == "rejected":
                        reason = (json.loads(doc).get("rejection") or {}).get("reason")
                        found[f"rejected:{reason or 'unknown'}"] += 1
                    else:
                        found["report"] += 1
        return found

    async def count_raw(self, state: str | None = None) -> int:
        stmt = select(func.count()).select_from(raw_messages)
        if state:
            stmt = stmt.where(raw_messages.c.state == state)
        async with self.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())


class InboxWriter:
    """Group commit: requests waiting for durability share one transaction (one fsync).

    At moderate rates a commit would often hold one request: every commit costs the same
    fixed work (a thread hand-off, BEGIN/COMMIT, the WAL's pages and fsync, a wake-up of
    the pipeline), so while requests keep coming (the last one came less than `linger_s`
    after the one before) the writer waits up to `linger_s` for `linger_requests` requests
    before committing.
    A lone request is committed at once; under load the queue fills during each commit
    and nothing waits."""

    def __init__(
        self,
        store: InboxStore,
        max_batch: int = 512,
        linger_s: float = 0.003,
        linger_requests: int = 4,
    ):
        self.store = store
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.linger_requests = linger_requests
        self._queue: asyncio.Queue[tuple[list[NewRaw], asyncio.Future[list[StoredRaw]]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._enough: asyncio.Future[None] | None = None  # set once linger_requests wait
        self._previous_submit = 0.0  # time.monotonic() of the submit before the last one
        self.last_active = 0.0  # time.monotonic() of the last submit
        self._requests_per_commit = 1.0  # moving average
        self.idle = asyncio.Event()  # set while nothing waits to be stored
        self.idle.set()

    @property
    def busy(self) -> bool:
        return self._in_flight > 0 or not self._queue.empty()

    @property
    def surging(self) -> bool:
        """Commits hold SURGE_REQUESTS requests or more on average, and requests still
        come (the last less than 0.25 s ago)."""
        return (
            self._requests_per_commit >= SURGE_REQUESTS
            and time.monotonic() - self.last_active < 0.25
        )

    @property
    def waiting(self) -> int:
        """Requests queued behind the one being committed: intake waits for the writer."""
        return self._queue.qsize()

    async def submit(self, rows: list[NewRaw]) -> list[StoredRaw]:
        if not rows:
            return []
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kanal-inbox-writer")
        future: asyncio.Future[list[StoredRaw]] = asyncio.get_running_loop().create_future()
        self._previous_submit, self.last_active = self.last_active, time.monotonic()
        self._queue.put_nowait((rows, future))
        enough = self._enough  # the writer holds one request and lingers for more
        if (
            enough is not None
            and self._queue.qsize() + 1 >= self.linger_requests
            and not enough.done()
        ):
            enough.set_result(None)
        self.idle.clear()
        return await future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            try:
                self._in_flight = len(batch[0][0])
                await self._linger()
                count = self._take(batch)
                self._in_flight = count
                self._requests_per_commit += SURGE_WEIGHT * (len(batch) - self._requests_per_commit)
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable("shutting down"))
                raise
            finally:
                self._in_flight = 0
                if self._queue.empty():
                    self.idle.set()

    def _take(self, batch: list[tuple[list[NewRaw], asyncio.Future[list[StoredRaw]]]]) -> int:
        """Add what waits in the queue to `batch` (first item already in), up to max_batch
        rows; the batch's row count."""
        count = len(batch[0][0])
        while count < self.max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            count += len(item[0])
        return count

    async def _linger(self) -> None:
        """Holding one request, wait up to linger_s for linger_requests, only while requests
        keep coming."""
        if (
            self.linger_s <= 0
            or self._queue.qsize() + 1 >= self.linger_requests
            or self.last_active - self._previous_submit >= self.linger_s
        ):
            return
        loop = asyncio.get_running_loop()
        enough = self._enough = loop.create_future()
        timer = loop.call_later(self.linger_s, _set_done, enough)
        try:
            await enough
        finally:
            timer.cancel()
            self._enough = None

    async def _commit(
        self, batch: list[tuple[list[NewRaw], asyncio.Future[list[StoredRaw]]]]
    ) -> None:
        """One transaction for the whole batch. When the store refuses a row (not the store
        being unavailable: then everyone learns it), each request is tried again alone, so
        only the sender of the bad row sees the error."""
        rows = [row for item in batch for row in item[0]]
        try:
            stored = await self.store.insert_raw_batch(rows)
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, StoreUnavailable):
                log.warning(
                    "inbox batch of %d refused (%s); storing its requests one by one",
                    len(rows),
                    type(exc).__name__,
                )
                for item in batch:
                    await self._commit([item])
                return
            log.warning("inbox batch of %d not stored: %s", len(rows), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for item_rows, future in batch:
            if not future.done():
                future.set_result(stored[offset : offset + len(item_rows)])
            offset += len(item_rows)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
