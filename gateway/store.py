"""The store: SQLite (WAL, synchronous=FULL) or PostgreSQL, through SQLAlchemy Core.

Owns durability (a webhook's raw message is committed before it is acknowledged, several
requests sharing one commit), dedupe by (connector, external id), work claims that pass on
when a replica dies, and the scoped queries of the admin API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    and_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.ids import new_ticket
from gateway.private_files import create_private_file
from gateway.schema import (
    api_tokens,
    attachments,
    kv_state,
    outbound,
    raw_messages,
    report_history,
    reports,
)
from normalizers.report import HistoryEntry, Notification, Report

log = logging.getLogger("kanal.store")
MIGRATION_LOCK = 0x6B616E616C  # "kanal": pg_advisory_xact_lock key for `db upgrade`


_NO_LOCK = contextlib.nullcontext()
T = TypeVar("T")
# The event loop's share background work (pipeline, notifier) takes while intake is busy.
BACKGROUND_SHARE = 0.3
MAX_FLAGGED = 10_000  # reports flagged for attention merged into one queue page, at most
# `attention IS NOT NULL`, written as a range so that SQLite reads it from the index.
FLAGGED = reports.c.attention > ""


_INSERT_REPORT = reports.insert()
_INSERT_HISTORY = report_history.insert()
_UPDATE_REPORT = update(reports).where(reports.c.id == bindparam("report_id"))
_UPDATE_REPORT_AT_VERSION = _UPDATE_REPORT.where(reports.c.version == bindparam("expected_version"))


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


def _insert_history(conn: Connection, entries: Sequence[tuple[str, HistoryEntry]]) -> None:
    if not entries:
        return
    conn.execute(
        _INSERT_HISTORY,
        [
            {
                "report_id": report_id,
                "at": e.at,
                "status": e.status,
                "by": e.by,
                "note": e.note,
                "changes": json.dumps(e.changes, default=str) if e.changes else None,
            }
            for report_id, e in entries
        ],
    )


@contextlib.contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    """An unreachable database or an operational error becomes StoreUnavailable (503)."""
    try:
        yield
    except Exception as exc:
        if _is_unavailable(exc):
            raise StoreUnavailable(str(exc).splitlines()[0]) from exc
        raise


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
        cursor.execute("PRAGMA busy_timeout=30000")  # other processes (kanal ingest, db upgrade)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that upgrades to a write
        # fails at once with SQLITE_BUSY instead of waiting.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class StoreUnavailable(Exception):
    """The database cannot be reached or answered with an operational error."""


def async_url(url: str) -> str:
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"unsupported database URL {url!r}")


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


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


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, OSError | ConnectionError | asyncio.TimeoutError)


class Store:
    """One per process. `write()` transactions are serialized on SQLite (one writer)."""

    def __init__(
        self, url: str, *, pool_size: int = 10, clock: Callable[[], datetime] | None = None
    ):
        self.url = url
        self.clock = clock or (lambda: datetime.now(UTC))
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            path = sqlite_path(url)
            if path is not None:
                create_private_file(path)
            self.write_engine = self._sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = self._sqlite_engine(url, immediate=False, pool_size=pool_size)
            # The inbox's group commits run whole in one trip to a thread of their own (one
            # hop per batch instead of one per statement); an asyncio lock keeps them and
            # the other writers of this process from ever busy-waiting on SQLite's lock.
            self.inbox_engine: Engine | None = self._sqlite_sync_engine(url)
            self._inbox_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kanal-inbox")
        else:
            self.write_engine = create_async_engine(
                async_url(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
                connect_args={
                    "server_settings": {"synchronous_commit": "on", "application_name": "kanal"},
                    "timeout": 5,
                    "command_timeout": 30,
                },
            )
            self.read_engine = self.write_engine
            self.inbox_engine = None
        self._sqlite_lock = asyncio.Lock()
        self._writer: InboxWriter | None = None
        # New raw messages in the inbox (the pipeline listens) and new or changed reports
        # (the CRM dispatcher and the notifier listen): apart, so that a busy inbox does
        # not wake the report-side workers at every commit.
        self.on_new_raw: list[Callable[[], None]] = []
        self.on_new_work: list[Callable[[], None]] = []
        # Run inside the transaction that inserts or saves a report (media jobs for its
        # pending attachments: gateway/media_fetch.py); True when they queued work, and then
        # the `on_hook_work` callbacks run on the event loop.
        self.report_hooks: list[Callable[[Connection, Report], bool]] = []
        self.on_hook_work: list[Callable[[], None]] = []

    @staticmethod
    def _sqlite_sync_engine(url: str) -> Engine:
        engine = create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_reset_on_return=None,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        _sqlite_pragmas(engine, immediate=True)
        return engine

    @staticmethod
    def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
        engine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"timeout": 30},
            # Every transaction here ends in commit or rollback; the pool's extra rollback on
            # return would cost one more trip to aiosqlite's thread per transaction.
            pool_reset_on_return=None,
        )

        _sqlite_pragmas(engine.sync_engine, immediate=immediate)
        return engine

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
        if self.inbox_engine is not None:
            self.inbox_engine.dispose()
            self._inbox_thread.shutdown(wait=True)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        with _unavailable_as_store_error():
            async with self._sqlite_lock if self.dialect == "sqlite" else _NO_LOCK:
                async with self.write_engine.begin() as conn:
                    yield conn

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """A whole write transaction as one synchronous function. On SQLite it runs in one
        trip to the writer thread (the inbox's), instead of one trip per statement, so the
        write lock that webhooks wait for is held for as short a time as possible; on
        PostgreSQL it runs on the async connection."""
        with _unavailable_as_store_error():
            if self.inbox_engine is not None:
                return await self._in_writer_thread(self._in_transaction, fn)
            async with self.write() as conn:
                return await conn.run_sync(fn)

    async def _in_writer_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """SQLite: run `fn` in the writer thread, holding this process's write lock."""
        async with self._sqlite_lock:
            return await asyncio.get_running_loop().run_in_executor(self._inbox_thread, fn, *args)

    def _in_transaction(self, fn: Callable[[Connection], T]) -> T:
        assert self.inbox_engine is not None
        with self.inbox_engine.begin() as conn:
            return fn(conn)

    def hook_work_done(self) -> None:
        for callback in self.on_hook_work:
            callback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with _unavailable_as_store_error():
            async with self.read_engine.connect() as conn:
                yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest version; safe when several replicas run it at once."""
        from gateway.migrate import upgrade_on

        async with self.write() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            await conn.run_sync(upgrade_on)

    async def schema_version(self) -> str | None:
        async with self.read() as conn:
            try:
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            except sa_exc.ProgrammingError:
                return None
            except sa_exc.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        return row[0] if row else None

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

    async def pace_background(self, spent_s: float) -> None:
        """Background work calls this after a slice that held the event loop `spent_s`
        seconds. While messages are arriving it rests long enough to take at most
        BACKGROUND_SHARE of the loop (acknowledging comes first, and no background slice
        makes a webhook wait long); otherwise it only lets others run."""
        if self.intake_active():
            await asyncio.sleep(min(spent_s * (1 / BACKGROUND_SHARE - 1), 0.5))
        else:
            await asyncio.sleep(0)

    def notify_new_raw(self) -> None:
        for callback in self.on_new_raw:
            callback()

    def notify_new_work(self) -> None:
        for callback in self.on_new_work:
            callback()

    # --- the inbox ---------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

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
        claimable = or_(
            raw_messages.c.state == "new",
            and_(raw_messages.c.state == "processing", raw_messages.c.claimed_until < now),
        )
        pick = select(raw_messages.c.id).where(claimable).order_by(raw_messages.c.id).limit(limit)
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
        rows = await self.run_write(lambda conn: [dict(r) for r in conn.execute(stmt).mappings()])
        return sorted(rows, key=lambda r: r["id"])

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
    ) -> int:
        """Record the pipeline's results in one transaction, only for claims still held.

        `created`: (raw ids, report, blobs) — a new report made of those raw messages.
        `follow_ups`: (raw ids, report id, change) — messages added to an existing report.
        `group_keys`: report id → the group key of the message that started it.
        Returns the number of reports created.
        """
        now = self.clock()
        fired = False
        if created or held or failed or ignored:
            fired = await self.run_write(
                functools.partial(
                    self._settle_sync,
                    worker=worker,
                    created=created,
                    held=held,
                    failed=failed,
                    ignored=ignored,
                    group_keys=group_keys or {},
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
        if fired:
            self.hook_work_done()
        if created or follow_ups:
            self.notify_new_work()  # the CRM dispatcher and the notifier have reports to see
        return len(created)

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
        now: datetime,
    ) -> bool:
        """settle_raw's transaction, bar follow-ups. True when a report hook queued work."""
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
        return fired

    async def put_blob_in(
        self, conn: AsyncConnection, digest: str, content_type: str, data: bytes, now: datetime
    ) -> None:
        await conn.run_sync(self._put_blob_sync, digest, content_type, data, now)

    def _put_blob_sync(
        self, conn: Connection, digest: str, content_type: str, data: bytes, now: datetime
    ) -> None:
        stmt = self._insert(attachments).on_conflict_do_nothing(index_elements=["sha256"])
        conn.execute(
            stmt,
            {
                "sha256": digest,
                "content_type": content_type,
                "size": len(data),
                "data": data,
                "created_at": now,
            },
        )

    async def put_blob(self, digest: str, content_type: str, data: bytes) -> None:
        async with self.write() as conn:
            await self.put_blob_in(conn, digest, content_type, data, self.clock())

    async def get_blob(self, digest: str) -> tuple[str, bytes] | None:
        async with self.read() as conn:
            row = (
                await conn.execute(
                    select(attachments.c.content_type, attachments.c.data).where(
                        attachments.c.sha256 == digest
                    )
                )
            ).first()
        return (row[0], row[1]) if row else None

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

    async def count_raw(self, state: str | None = None) -> int:
        stmt = select(func.count()).select_from(raw_messages)
        if state:
            stmt = stmt.where(raw_messages.c.state == state)
        async with self.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    # --- reports -----------------------------------------------------------------------------

    @staticmethod
    def _columns(report: Report) -> dict[str, Any]:
        doc = report.model_dump(mode="json", exclude={"history"})
        search = " ".join(
            p for p in (report.ticket, report.title, report.text, report.description) if p
        ).lower()
        reporter = report.reporter
        key = (
            f"phone:{reporter.phone}"
            if reporter.phone
            else f"email:{reporter.email}"
            if reporter.email
            else f"{report.channel}:{reporter.channel_user_id}"
            if reporter.channel_user_id
            else None
        )
        return {
            "ticket": report.ticket,
            "channel": report.channel,
            "connector": report.connector,
            "received_at": report.received_at,
            "status": report.status,
            "owner": report.owner,
            "kelurahan_code": report.location.kelurahan.code if report.location.kelurahan else None,
            "geo_tagged": report.geo_tagged,
            "category_code": report.category.code,
            "reporter_key": key,
            "search_text": search,
            "version": report.version,
            "lease_holder": report.lease.holder if report.lease else None,
            "lease_until": report.lease.until if report.lease else None,
            "attempts": report.delivery.attempts,
            "next_attempt_at": report.delivery.next_attempt_at,
            "attention": report.attention,
            "doc": json.dumps(doc, ensure_ascii=False),
        }

    async def insert_report(
        self, conn: AsyncConnection, report: Report, raw_message_id: str, group_key: str | None
    ) -> None:
        """A new report and its first history."""
        items = [(report, raw_message_id, group_key)]
        if await conn.run_sync(self._insert_reports_sync, items, self.clock()):
            self.hook_work_done()

    def _insert_reports_sync(
        self, conn: Connection, items: Sequence[tuple[Report, str, str | None]], now: datetime
    ) -> bool:
        # Parameters beside a static statement: SQLAlchemy reuses its compiled form
        # (building `.values(**columns)` per report cost more than the insert itself).
        conn.execute(
            _INSERT_REPORT,
            [
                {
                    "id": report.id,
                    "raw_message_id": raw_message_id,
                    "group_key": group_key,
                    "updated_at": now,
                    **self._columns(report),
                }
                for report, raw_message_id, group_key in items
            ],
        )
        _insert_history(
            conn, [(report.id, entry) for report, _, _ in items for entry in report.history]
        )
        return self._run_hooks(conn, [report for report, _, _ in items])

    def _run_hooks(self, conn: Connection, written: Sequence[Report]) -> bool:
        fired = False
        for report in written:
            for hook in self.report_hooks:
                fired = hook(conn, report) or fired
        return fired

    async def append_history(
        self, conn: AsyncConnection, report_id: str, entries: Sequence[HistoryEntry]
    ) -> None:
        if entries:
            await conn.run_sync(_insert_history, [(report_id, e) for e in entries])

    async def load_report(
        self, conn: AsyncConnection, report_id: str, *, for_update: bool = False
    ) -> Report | None:
        stmt = select(reports.c.doc).where(reports.c.id == report_id)
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        return Report.model_validate_json(row[0]) if row else None

    async def save_report(
        self, conn: AsyncConnection, report: Report, expected_version: int | None
    ) -> bool:
        """Write a changed report (version bumped here) and its new history entries."""
        saved, fired = await conn.run_sync(self.save_report_sync, report, expected_version)
        if fired:
            self.hook_work_done()
        return saved

    def save_report_sync(
        self, conn: Connection, report: Report, expected_version: int | None
    ) -> tuple[bool, bool]:
        """save_report inside a synchronous transaction (Store.run_write): (saved, a report
        hook queued work — then call hook_work_done() once back on the event loop)."""
        new_entries = list(report.history)
        report = report.model_copy(update={"version": report.version + 1, "history": []})
        params = {"report_id": report.id, "updated_at": self.clock(), **self._columns(report)}
        if expected_version is None:
            result = conn.execute(_UPDATE_REPORT, params)
        else:
            params["expected_version"] = expected_version
            result = conn.execute(_UPDATE_REPORT_AT_VERSION, params)
        if result.rowcount != 1:
            return False, False
        _insert_history(conn, [(report.id, e) for e in new_entries])
        return True, self._run_hooks(conn, [report])

    async def get_report(self, report_id: str, *, with_history: bool = True) -> Report | None:
        async with self.read() as conn:
            report = await self.load_report(conn, report_id)
            if report is None:
                return None
            await self._show_notifications(conn, [report])
            if not with_history:
                return report
            rows = await conn.execute(
                select(report_history)
                .where(report_history.c.report_id == report_id)
                .order_by(report_history.c.id)
            )
            report.history = [
                HistoryEntry(
                    at=r.at,
                    status=r.status,
                    by=r.by,
                    note=r.note,
                    changes=json.loads(r.changes) if r.changes else None,
                )
                for r in rows
            ]
        return report

    @staticmethod
    async def _show_notifications(conn: AsyncConnection, items: Sequence[Report]) -> None:
        """`report.notifications` as the outbound table has them (one entry per kind): the
        table is the truth, so sending never rewrites a report nor bumps its version."""
        if not items:
            return
        rows = await conn.execute(
            select(
                outbound.c.report_id,
                outbound.c.kind,
                outbound.c.channel,
                outbound.c.state,
                outbound.c.sent_at,
                outbound.c.last_error,
            )
            .where(outbound.c.report_id.in_([r.id for r in items]))
            .order_by(outbound.c.created_at)
        )
        found: dict[str, list[Notification]] = {}
        for row in rows:
            found.setdefault(row.report_id, []).append(
                Notification.model_validate(
                    {
                        "channel": row.channel,
                        "kind": row.kind,
                        "state": row.state,
                        "sent_at": row.sent_at,
                        "error": row.last_error,
                    }
                )
            )
        for report in items:
            if report.id in found:
                report.notifications = found[report.id]

    async def update_report(
        self,
        report_id: str,
        change: Callable[[Report], Report | None],
        *,
        expected_version: int | None = None,
    ) -> Report | None:
        """Read-modify-write one report in a transaction. `change` returns the new report
        (with only its NEW history entries in `history`) or None to leave it as it is."""
        async with self.write() as conn:
            current = await self.load_report(conn, report_id, for_update=True)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(current.version)
            changed = change(current)
            if changed is None:
                return current
            if not await self.save_report(conn, changed, current.version):
                raise StaleVersion(current.version)
        return await self.get_report(report_id)

    async def report_id_by_ticket(self, ticket: str) -> str | None:
        async with self.read() as conn:
            row = (
                await conn.execute(select(reports.c.id).where(reports.c.ticket == ticket))
            ).first()
        return row[0] if row else None

    async def list_reports(
        self,
        scope: str,
        *,
        status: Sequence[str] | None = None,
        channel: str | None = None,
        owner: str | None = None,
        geo: bool | None = None,
        kelurahan: str | None = None,
        q: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        oldest_first: bool = False,
        attention: bool | None = None,
        or_attention: bool = False,
    ) -> tuple[list[Report], str | None]:
        """`or_attention`: also the reports flagged for their owner's attention, whatever
        their status (the enrichment queue shows both). That is a second query merged in
        order: an OR across the two would keep the database from using either index."""
        conds = [scope_condition(scope)]
        branches: list[Any] = [None]
        if status:
            by_status = reports.c.status.in_(list(status))
            if or_attention:
                flagged_elsewhere = and_(FLAGGED, reports.c.status.not_in(list(status)))
                branches = [by_status, flagged_elsewhere]
            else:
                conds.append(by_status)
        if attention is not None:
            conds.append(FLAGGED if attention else reports.c.attention.is_(None))
        if channel:
            conds.append(reports.c.channel == channel)
        if owner:
            conds.append(reports.c.owner == owner)
        if geo is not None:
            conds.append(reports.c.geo_tagged == geo)
        if kelurahan:
            conds.append(reports.c.kelurahan_code == kelurahan)
        if q:
            escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(reports.c.search_text.like(f"%{escaped}%", escape="\\"))
        if since:
            conds.append(reports.c.received_at >= since)
        order_cols = (reports.c.received_at, reports.c.id)
        if cursor:
            at, last_id = decode_cursor(cursor)
            if oldest_first:
                conds.append(tuple_(*order_cols) > tuple_(at, last_id))
            else:
                conds.append(tuple_(*order_cols) < tuple_(at, last_id))
        order = [c.asc() if oldest_first else c.desc() for c in order_cols]
        rows: list[Any] = []
        async with self.read() as conn:
            for n, branch in enumerate(branches):
                where = and_(*conds, branch) if branch is not None else and_(*conds)
                stmt = select(reports.c.doc, reports.c.received_at, reports.c.id).where(where)
                if n == 0:
                    stmt = stmt.order_by(*order).limit(limit + 1)
                else:
                    # Flagged reports are few: read them through the attention index (an
                    # ORDER BY would make the planner walk received_at over every row).
                    stmt = stmt.limit(MAX_FLAGGED)
                rows += (await conn.execute(stmt)).all()
            if len(branches) > 1:
                rows.sort(key=lambda r: (r.received_at, r.id), reverse=not oldest_first)
                rows = rows[: limit + 1]
            items = [Report.model_validate_json(r.doc) for r in rows[:limit]]
            await self._show_notifications(conn, items)
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last.received_at, last.id)
        return items, next_cursor

    async def stats(self, scope: str) -> dict[str, Any]:
        where = scope_condition(scope)
        out: dict[str, Any] = {}
        async with self.read() as conn:
            for key, col in (
                ("by_channel", reports.c.channel),
                ("by_status", reports.c.status),
                ("by_owner", reports.c.owner),
            ):
                rows = await conn.execute(select(col, func.count()).where(where).group_by(col))
                out[key] = {name: n for name, n in rows}
            rows = await conn.execute(
                select(reports.c.owner, func.min(reports.c.received_at))
                .where(where, reports.c.status == "pending_enrichment")
                .group_by(reports.c.owner)
            )
            out["oldest_waiting"] = {
                owner: (at.replace(tzinfo=UTC) if at.tzinfo is None else at).isoformat()
                for owner, at in rows
                if at is not None
            }
            rows = await conn.execute(
                select(reports.c.geo_tagged, func.count())
                .where(where)
                .group_by(reports.c.geo_tagged)
            )
            out["by_geo"] = {("geo" if g else "non_geo"): n for g, n in rows}
        return out

    # --- tokens ------------------------------------------------------------------------------

    async def create_token(self, name: str, token_hash: str, role: str, scope: str) -> None:
        async with self.write() as conn:
            await conn.execute(
                api_tokens.insert().values(
                    name=name,
                    token_hash=token_hash,
                    role=role,
                    scope=scope,
                    created_at=self.clock(),
                )
            )

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(
                select(
                    api_tokens.c.name,
                    api_tokens.c.role,
                    api_tokens.c.scope,
                    api_tokens.c.created_at,
                    api_tokens.c.revoked_at,
                ).order_by(api_tokens.c.name)
            )
            return [dict(r) for r in rows.mappings()]

    async def revoke_token(self, name: str) -> bool:
        async with self.write() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        return bool(result.rowcount)

    async def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(api_tokens.c.name, api_tokens.c.role, api_tokens.c.scope).where(
                            api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None)
                        )
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    # --- shared state and singleton leases ---------------------------------------------------

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


def group_key_of(report: Report, message_group_key: str | None = None) -> str | None:
    """The key under which later messages find this report: DM conversations ("dm:…") and
    albums ("album:…") gather into the report they started (gateway/conversations.py).
    SMS parts ("concat:…") are gathered before the report exists and need none."""
    if message_group_key and message_group_key.startswith(("dm:", "album:")):
        return message_group_key[:255]
    return None


class ClaimLost(Exception):
    """Another worker took over these raw messages (our claim expired)."""


class StaleVersion(Exception):
    def __init__(self, current: int):
        super().__init__(f"report is at version {current}")
        self.current = current


def scope_condition(scope: str) -> Any:
    """Which report owners a scope sees (CONTRACT §2): owner-based, never location-based."""
    kind, _, code = scope.partition(":")
    if kind == "province":
        return text("1=1")
    if kind == "kota":
        return or_(
            reports.c.owner == scope,
            reports.c.owner.like(f"kecamatan:{code}.%"),
            reports.c.owner.like(f"kelurahan:{code}.%"),
        )
    if kind == "kecamatan":
        return or_(reports.c.owner == scope, reports.c.owner.like(f"kelurahan:{code}.%"))
    return reports.c.owner == scope


def scope_contains(scope: str, owner: str) -> bool:
    """The same rule as `scope_condition`, for one owner in memory."""
    kind, _, code = scope.partition(":")
    if kind == "province" or owner == scope:
        return True
    if kind == "kota":
        return owner.startswith((f"kecamatan:{code}.", f"kelurahan:{code}."))
    if kind == "kecamatan":
        return owner.startswith(f"kelurahan:{code}.")
    return False


def encode_cursor(at: datetime, report_id: str) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{report_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, report_id = raw.split("|", 1)
        return datetime.fromisoformat(at), report_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("bad cursor") from exc


class InboxWriter:
    """Group commit: requests waiting for durability share one transaction (one fsync)."""

    def __init__(self, store: Store, max_batch: int = 512):
        self.store = store
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[list[NewRaw], asyncio.Future[list[StoredRaw]]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.last_active = 0.0  # time.monotonic() of the last submit
        self.idle = asyncio.Event()  # set while nothing waits to be stored
        self.idle.set()

    @property
    def busy(self) -> bool:
        return self._in_flight > 0 or not self._queue.empty()

    async def submit(self, rows: list[NewRaw]) -> list[StoredRaw]:
        if not rows:
            return []
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kanal-inbox-writer")
        future: asyncio.Future[list[StoredRaw]] = asyncio.get_running_loop().create_future()
        self.last_active = time.monotonic()
        self._queue.put_nowait((rows, future))
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
            count = len(batch[0][0])
            while count < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                count += len(item[0])
            self._in_flight = sum(len(item[0]) for item in batch)
            try:
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
