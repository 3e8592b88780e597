"""`kanal import mbox FILE`: backfill an mbox into the e-mail channel."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.base.runtime import build_runtime
from gateway.cli.common import UsageError, outcome_summary
from gateway.intake.mbox import import_mbox
from gateway.pipeline.worker import make_pipeline


def add_parsers(sub: Any) -> None:
    parser = sub.add_parser("import", help="backfill channels from files")
    import_sub = parser.add_subparsers(dest="import_command", required=True)
    mbox = import_sub.add_parser("mbox", help="backfill an mbox into the e-mail channel")
    mbox.add_argument("file", metavar="FILE")
    mbox.add_argument(
        "--config", metavar="FILE", help="TOML file (default $KANAL_CONFIG, ./kanal.toml)"
    )


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        raise UsageError(f"{args.file}: no such file")
    runtime = build_runtime(loaded)
    await runtime.store.migrate()
    try:
        summary = await import_mbox(runtime, path)
        await make_pipeline(runtime).drain()
        outcomes = await runtime.store.outcomes(summary["stored"])
    finally:
        await runtime.store.close()
    print(outcome_summary(len(summary["stored"]), summary["duplicates"], outcomes))
    for why, count in summary["failed"].most_common():
        print(f"  kept as failed: {count} {why}")
    return 0
