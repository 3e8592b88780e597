"""`kanal crm retry [--dead]`: send the reports waiting for their next CRM attempt now."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.base.config import LoadedConfig
from gateway.base.runtime import build_runtime
from gateway.crm.dispatcher import Dispatcher, retry_due_now


def add_parsers(sub: Any) -> None:
    crm = sub.add_parser("crm", help="CRM delivery")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True)
    retry = crm_sub.add_parser("retry", help="send the reports waiting for their next attempt now")
    retry.add_argument("--dead", action="store_true", help="also revive failed reports")
    retry.add_argument(
        "--config", metavar="FILE", help="TOML file (default $KANAL_CONFIG, ./kanal.toml)"
    )


async def run(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    runtime = build_runtime(loaded)
    try:
        await runtime.store.migrate()
        rescheduled, revived = await retry_due_now(runtime, dead=args.dead)
        print(f"{rescheduled} waiting report(s) due now, {revived} failed report(s) revived")
        dispatcher = Dispatcher(runtime)
        if not dispatcher.sending:
            print(f"{dispatcher.destination.waiting} (crm.mode = {dispatcher.destination.name})")
            return 0
        try:
            tried = await dispatcher.drain(timeout_s=max(60.0, 2 * runtime.settings.crm.timeout_s))
        finally:
            await dispatcher.close()
        print(f"{tried} report(s) sent or tried")
        return 0
    finally:
        await runtime.store.close()
