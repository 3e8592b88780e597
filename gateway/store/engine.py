"""The store's engine: SQLite (WAL, synchronous=FULL) or PostgreSQL through SQLAlchemy Core,
its connections and write transactions, migrations, and the wake-up callbacks of workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    create_engine,
    event,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.store.private_files import create_private_file
from normalizers.report import Report

log = logging.getLogger("kanal.store")


MIGRATION_LOCK = 0x6B616E616C  # "kanal": pg_advisory_xact_lock key for `db upgrade`


_NO_LOCK = contextlib.nullcontext()


RECENT_REPORTS = 512  # reports remembered after their commit (Store.recent_report)


T = TypeVar("T")


@contextlib.contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    """An unreachable database or an operational error becomes StoreUnavailable (503)."""
    try:
        yield
    except Exception as exc:
        if is_unavailable(exc):
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
        # What is deleted or overwritten is zeroed in the file (personal data erased by
        # `kanal purge` and `kanal person erase` must leave the file, not only the tables).
        cursor.execute("PRAGMA secure_delete=ON")
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


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, OSError | ConnectionError | asyncio.TimeoutError)


class StoreEngine:
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
        # Reports this process just committed, by id (the newest few thousand): the
        # notifier reads each new report right after the pipeline wrote it, and need not
        # parse again what is still here at the same version.
        self._recent_reports: dict[str, Report] = {}

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

    async def close(self) -> None:
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

    def remember_reports(self, written: Iterable[Report]) -> None:
        """Keep reports just committed (never changed afterwards by their writer)."""
        recent = self._recent_reports
        for report in written:
            recent[report.id] = report
        while len(recent) > RECENT_REPORTS:
            del recent[next(iter(recent))]

    def recent_report(self, report_id: str, version: int) -> Report | None:
        """A report remembered at this version (what the store holds), else None. Shared:
        read it, never change it."""
        report = self._recent_reports.get(report_id)
        return report if report is not None and report.version == version else None

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
        from gateway.store.migrate import upgrade_on

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

    def notify_new_raw(self) -> None:
        for callback in self.on_new_raw:
            callback()

    def notify_new_work(self) -> None:
        for callback in self.on_new_work:
            callback()

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)
