"""`kanal purge [--dry-run]`: the retention policy (`[retention] personal_data_days`) now."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import config_arg, with_store
from gateway.store.personal import purge

POSTGRES_TRUTH = (
    "PostgreSQL: the erased values are gone from every query, but their old row versions "
    "stay in the table files until VACUUM reuses the space, and in the server's WAL, WAL "
    "archives and backups until those are rotated; run VACUUM FULL on reports, raw_messages, "
    "report_history, outbound and attachments in a quiet hour to rewrite the files, and keep "
    "archives and backups no longer than the policy (see README, Personal data)"
)


def add_parsers(sub: Any) -> None:
    parser = sub.add_parser(
        "purge", help="erase personal data of reports closed longer ago than the policy"
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be erased")
    config_arg(parser)


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    days = loaded.settings.retention.personal_data_days
    if days == 0:
        print("retention.personal_data_days = 0: personal data is kept for ever; nothing erased")
        return 0

    async def apply(store: Any) -> int:
        erased, log_emptied = await purge(store, days, dry_run=args.dry_run)
        if args.dry_run:
            print(
                f"would erase the personal data of {erased.reports} reports closed "
                f"more than {days} days ago"
            )
            return 0
        print(f"erased (reports closed more than {days} days ago): {erased.summary()}")
        if store.dialect == "postgresql" and erased.reports:
            print(POSTGRES_TRUTH)
        if log_emptied is False:
            print("kanal: the write-ahead log is still in use; run kanal purge again later")
            return 1
        return 0

    return await with_store(loaded, apply)
