"""`kanal db upgrade`: schema migrations, safe when several replicas run them at once."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import config_arg, with_store


def add_parsers(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    config_arg(db_sub.add_parser("upgrade", help="apply schema migrations"))


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def upgrade(store: Any) -> int:
        print(f"schema at {await store.schema_version()} ({store.dialect})")
        return 0

    return await with_store(loaded, upgrade)
