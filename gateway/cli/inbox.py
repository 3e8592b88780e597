"""`kanal inbox retry`: normalize again the raw messages that failed."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.base.runtime import build_runtime
from gateway.cli.common import config_arg, with_store
from gateway.pipeline.worker import make_pipeline


def add_parsers(sub: Any) -> None:
    inbox = sub.add_parser("inbox", help="raw messages that failed normalization")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    config_arg(inbox_sub.add_parser("retry", help="normalize failed raw messages again"))


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    async def retry(store: Any) -> int:
        n = await store.retry_failed_raw()
        runtime = build_runtime(loaded, store=store)
        await make_pipeline(runtime).drain()
        print(
            f"{n} raw messages queued for normalization again; "
            f"{await store.count_raw('failed')} still failing"
        )
        return 0

    return await with_store(loaded, retry)
