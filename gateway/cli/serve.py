"""`kanal serve` (everything in one process) and `kanal poll` (the daemons alone)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.cli.common import config_arg
from gateway.process.server import run as run_process


def add_parsers(sub: Any) -> None:
    config_arg(sub.add_parser("serve", help="run everything in one process"))
    config_arg(sub.add_parser("poll", help="run the pollers, pipeline and CRM dispatcher only"))


def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if loaded.embedded_default and loaded.secrets_file is not None:
        print(
            f"kanal: no configuration found; running the embedded default. "
            f"Webhook secrets are in {loaded.secrets_file.resolve()}",
            flush=True,
        )
    asyncio.run(run_process(loaded, operations_only=args.command == "poll"))
    return 0
