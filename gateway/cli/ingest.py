"""`kanal ingest --connector C FILE…`: captured payloads through the live intake path,
without signature checks, with `intake = "import"`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from connectors import BY_NAME
from connectors.base import ConnectorError, WireRequest
from gateway.base.config import LoadedConfig
from gateway.base.registry import build_webhook_connector
from gateway.base.runtime import Runtime, build_runtime
from gateway.cli.common import UsageError, config_arg
from gateway.intake.mbox import ingest_eml
from gateway.intake.webhooks import ingest_wire
from gateway.pipeline.worker import make_pipeline


def add_parsers(sub: Any) -> None:
    ingest = sub.add_parser("ingest", help="replay captured payloads through the intake path")
    ingest.add_argument("--connector", required=True)
    ingest.add_argument("files", nargs="+", metavar="FILE")
    config_arg(ingest)


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    names = {*(c.name for c in BY_NAME.values() if c.webhook), *FILE_INGESTERS}
    if args.connector not in names:
        raise UsageError(f"--connector: one of {', '.join(sorted(names))}")
    runtime = build_runtime(loaded)
    await runtime.store.migrate()
    summary = {"stored": 0, "duplicate": 0, "rejected": 0}
    try:
        for file in args.files:
            body = await asyncio.to_thread(Path(file).read_bytes)
            if args.connector in FILE_INGESTERS:
                created = await FILE_INGESTERS[args.connector](runtime, body, file)
                summary["stored" if created else "duplicate"] += 1
                continue
            spec = BY_NAME[args.connector]
            connector = build_webhook_connector(loaded, spec)
            path = spec.webhook
            wire = WireRequest(
                method="POST",
                url=f"{loaded.settings.server.public_url}/webhooks/{path}",
                path=f"/webhooks/{path}",
                query=(),
                headers={"content-type": _guess_type(body)},
                body=body,
                remote="import",
            )
            try:
                _, stored = await ingest_wire(
                    runtime, connector, wire, intake="import", verify=False
                )
            except ConnectorError as exc:
                summary["rejected"] += 1
                print(f"{file}: {exc}", file=sys.stderr)
                continue
            for item in stored:
                summary["stored" if item.created else "duplicate"] += 1
        await make_pipeline(runtime).drain()
    finally:
        await runtime.store.close()
    print(
        f"stored {summary['stored']}, duplicates {summary['duplicate']}, "
        f"rejected {summary['rejected']}"
    )
    return 0 if summary["rejected"] == 0 else 1


# Connectors whose captures are not HTTP bodies (e-mail .eml): name → async ingest function.
FILE_INGESTERS: dict[str, Callable[[Runtime, bytes, str], Awaitable[bool]]] = {"email": ingest_eml}


def _guess_type(body: bytes) -> str:
    stripped = body.lstrip()[:1]
    return "application/json" if stripped in (b"{", b"[") else "application/x-www-form-urlencoded"
