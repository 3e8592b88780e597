"""What every command shares: usage errors (exit 2), the `--config` option, a store for
the length of one command, and the check of a scope given on the command line."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.base.config import LoadedConfig


class UsageError(Exception):
    """Bad arguments that argparse could not catch (exit 2)."""


def config_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file (default $KANAL_CONFIG, ./kanal.toml)"
    )
    return parser


def validate_scope(scope: str, loaded: LoadedConfig) -> None:
    from connectors.spec import check_owner

    try:
        check_owner(scope)
    except ValueError as exc:
        raise UsageError(f"--scope: {exc}") from None
    if scope.startswith("office:") and scope[7:] not in loaded.settings.office_names():
        raise UsageError(f"--scope: unknown office {scope[7:]!r}")
    from gateway.base.config import area_problem

    if (problem := area_problem(scope)) is not None:
        raise UsageError(f"--scope: {problem}")


async def with_store(loaded: LoadedConfig, work: Callable[[Any], Awaitable[int]]) -> int:
    from gateway.store import Store

    store = Store(loaded.settings.database.url, pool_size=2)
    try:
        await store.migrate()
        return await work(store)
    finally:
        await store.close()


def outcome_summary(stored: int, duplicates: int, outcomes: Counter[str]) -> str:
    """What `import mbox` and `ingest` stored and what became of it, as the store says
    (InboxStore.outcomes): each stored message counted once, under one outcome."""
    parts = [f"{outcomes['report']} new reports"]
    if outcomes["joined"]:
        parts.append(f"{outcomes['joined']} added to a report (follow-ups, conversations)")
    for key, count in sorted(outcomes.items()):
        if key.startswith("rejected:") and count:
            reason = key.partition(":")[2]
            why = " (bounces, auto-replies, mailing lists)" if reason == "automated" else ""
            parts.append(f"{count} rejected as {reason}{why}")
    parts.append(f"{outcomes['failed']} kept in the inbox as failed")
    if outcomes["ignored"]:
        parts.append(f"{outcomes['ignored']} ignored (edits and deletions of earlier messages)")
    if outcomes["waiting"]:
        parts.append(f"{outcomes['waiting']} not normalized yet")
    return f"stored {stored}, duplicates {duplicates}: " + ", ".join(parts)
