"""One statement executed for many rows in a synchronous transaction. On SQLite's own driver
(the writer thread's connection) the statement is compiled once per set of keys and each
row's values are bound by the columns' own bind processors, then handed to the driver's
executemany: SQLAlchemy's executemany builds an execution context and runs its parameter
processing per row, which cost more than SQLite's own work for the reports a batch writes.
Elsewhere (PostgreSQL, the async SQLite connection) it is SQLAlchemy's executemany."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase

Binder = tuple[str, Callable[[Any], Any] | None]


def execute_many(conn: Connection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """`stmt` once per row; every row has the same keys (its columns and bound parameters)."""
    if not rows:
        return
    if not isinstance(conn.connection.driver_connection, sqlite3.Connection):
        conn.execute(stmt, list(rows))
        return
    compiled = _positional(stmt, tuple(rows[0]), conn.dialect)
    if compiled is None:
        conn.execute(stmt, list(rows))
        return
    sql, binders = compiled
    conn.exec_driver_sql(
        sql,
        [
            tuple(row[key] if bind is None else bind(row[key]) for key, bind in binders)
            for row in rows
        ],
    )


@functools.lru_cache(maxsize=64)
def _positional(
    stmt: UpdateBase, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[Binder]] | None:
    """The statement's SQL for these keys, and per positional parameter its key and bind
    processor; None when it needs a value no row gives (a column default computed in
    Python, an expanding IN): then SQLAlchemy's own path."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup
    if order is None or any(name not in keys for name in order):
        return None
    binders: list[Binder] = []
    for name in order:
        bind = compiled.binds[name]
        if bind.expanding or bind.callable is not None:
            return None
        binders.append((name, bind.type.bind_processor(dialect)))
    return compiled.string, binders
