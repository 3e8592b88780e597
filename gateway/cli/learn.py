"""`kanal learn [--dry-run]`: train the text models from admins' decisions, evaluate the new
one against the active one on the most recent decisions, activate it only when better."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.pipeline.learning import learn
from gateway.store import Store


def add_parsers(sub: Any) -> None:
    parser = sub.add_parser(
        "learn", help="train the category and not-a-complaint models from admins' decisions"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate only: save and activate nothing"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file (default $KANAL_CONFIG, ./kanal.toml)"
    )


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    store = Store(loaded.settings.database.url)
    try:
        await store.migrate()
        outcome = await learn(
            store, loaded.settings.learning.min_decisions, dry_run=args.dry_run, now=store.clock()
        )
        for line in outcome.lines():
            print(line)
        return 0
    finally:
        await store.close()
