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
from connectors.spec import Connector
from gateway.base.config import LoadedConfig
from gateway.base.registry import build_webhook_connector
from gateway.base.runtime import Runtime, build_runtime
from gateway.cli.common import UsageError, config_arg, outcome_summary
from gateway.intake.mbox import ingest_eml
from gateway.intake.webhooks import ingest_wire
from gateway.pipeline.worker import make_pipeline
from gateway.store.inbox import StoredRaw


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
    stored_ids: list[str] = []
    duplicates = 0
    unreadable = 0  # payloads kept in the inbox as failed before any message was read
    try:
        for file in args.files:
            body = await asyncio.to_thread(Path(file).read_bytes)
            if args.connector in FILE_INGESTERS:
                stored = [await FILE_INGESTERS[args.connector](runtime, body, file)]
            else:
                try:
                    stored = await _replay(runtime, loaded, BY_NAME[args.connector], body)
                except ConnectorError as exc:
                    unreadable += 1
                    print(f"{file}: kept in the inbox as failed: {exc}", file=sys.stderr)
                    continue
            stored_ids += [item.id for item in stored if item.created]
            duplicates += sum(1 for item in stored if not item.created)
        await make_pipeline(runtime).drain()
        outcomes = await runtime.store.outcomes(stored_ids)
    finally:
        await runtime.store.close()
    outcomes["failed"] += unreadable
    print(outcome_summary(len(stored_ids) + unreadable, duplicates, outcomes))
    return 0 if outcomes["failed"] == 0 else 1


async def _replay(
    runtime: Runtime, loaded: LoadedConfig, spec: Connector, body: bytes
) -> list[StoredRaw]:
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
    connector = build_webhook_connector(loaded, spec)
    _, stored = await ingest_wire(runtime, connector, wire, intake="import", verify=False)
    return stored


# Connectors whose captures are not HTTP bodies (e-mail .eml): name → async ingest function.
FILE_INGESTERS: dict[str, Callable[[Runtime, bytes, str], Awaitable[StoredRaw]]] = {
    "email": ingest_eml
}


def _guess_type(body: bytes) -> str:
    stripped = body.lstrip()[:1]
    return "application/json" if stripped in (b"{", b"[") else "application/x-www-form-urlencoded"
