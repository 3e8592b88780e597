"""`kanal db upgrade|backup`: schema migrations (safe when several replicas run them at
once) and a consistent copy of a SQLite store while kanal runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import config_arg, with_store
from gateway.store import sqlite_path
from gateway.store.backup import BackupError, backup_sqlite

PG_DUMP_HELP = (
    "kanal: the store is PostgreSQL: back it up with pg_dump, e.g.\n"
    "  pg_dump --format=custom --file kanal.dump 'postgresql://USER@HOST:PORT/DB'\n"
    "and restore with pg_restore --clean --dbname=... kanal.dump (see README, Backups)"
)


def add_parsers(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema and backups")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    config_arg(db_sub.add_parser("upgrade", help="apply schema migrations"))
    backup = db_sub.add_parser(
        "backup", help="a consistent copy of the SQLite store while kanal runs (0600)"
    )
    backup.add_argument("file", metavar="FILE")
    config_arg(backup)


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if args.db_command == "backup":
        return await backup(Path(args.file), loaded)

    async def upgrade(store: Any) -> int:
        print(f"schema at {await store.schema_version()} ({store.dialect})")
        return 0

    return await with_store(loaded, upgrade)


async def backup(target: Path, loaded: LoadedConfig) -> int:
    url = loaded.settings.database.url
    if not url.startswith("sqlite"):
        print(PG_DUMP_HELP, file=sys.stderr)
        return 2
    source = sqlite_path(url)
    if source is None:
        print("kanal: an in-memory store cannot be backed up", file=sys.stderr)
        return 2
    try:
        result = await asyncio.to_thread(backup_sqlite, source, target)
    except BackupError as exc:
        print(f"kanal: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup written to {result.path} ({result.size} bytes, "
        f"{result.raw_messages} raw messages, {result.reports} reports)"
    )
    return 0
