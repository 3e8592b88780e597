"""Telegram `getUpdates` polling, when `channels.telegram.mode = "polling"`.

Each scheduler run long-polls for about `channels.telegram.poll_interval_s` (one or more
getUpdates calls whose timeout never passes that budget), so updates are taken as they
come while the run stays within the interval of its lease. Every update is stored through
the inbox writer (intake "poll", payload = the update's JSON) before the offset, kept in
kv_state, moves past it: a crash re-reads at most the last batch, which dedupes on
`(chat id, message id)`. Flood control (`RetryAfter`) pauses polling until it ends.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors.base import MalformedPayload, WireRequest
from connectors.telegram.api import TelegramApiError
from connectors.telegram.poll import MAX_LONG_POLL_S, get_updates, next_offset
from connectors.telegram.wire import CHANNEL, CONNECTOR, messages_from_update
from gateway.base.config import read_secret
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw
from gateway.store import NewRaw

log = logging.getLogger("kanal.telegram")

OFFSET_KEY = "telegram:poll_offset"
PAUSE_KEY = "telegram:poll_paused_until"


class TelegramPollError(Exception):
    """getUpdates failed (bad token, webhook still set, network)."""


def enabled(runtime: Runtime) -> bool:
    section = runtime.settings.channels.telegram
    return bool(section.enabled and section.mode == "polling")


def interval_s(runtime: Runtime) -> float:
    return float(runtime.settings.channels.telegram.poll_interval_s)


def update_rows(updates: list[dict[str, Any]], source_url: str, now: datetime) -> list[NewRaw]:
    """Raw rows for a batch of updates; one that cannot be read is kept, flagged failed."""
    rows: list[NewRaw] = []
    for update in updates:
        # ASCII escapes: a lone surrogate in an update is kept as sent, and encodes.
        body = json.dumps(update, separators=(",", ":")).encode()
        wire = WireRequest("POST", source_url, "/getUpdates", (), {}, body)
        try:
            messages = messages_from_update(update, now)
            rows += [to_new_raw(m, wire, "poll", payload=body) for m in messages]
        except MalformedPayload as exc:
            rows.append(malformed_raw(CONNECTOR, CHANNEL, wire, "poll", str(exc)))
    return rows


async def poll_telegram(runtime: Runtime, *, budget_s: float | None = None) -> int:
    """One scheduler run: long-poll until the budget is spent. Returns messages stored."""
    section = runtime.settings.channels.telegram
    store = runtime.store
    now = datetime.now(UTC)
    paused = await store.get_state(PAUSE_KEY)
    if isinstance(paused, int | float) and now.timestamp() < paused:
        return 0
    token = read_secret(section, "bot_token")
    if not token:
        raise TelegramPollError("channels.telegram.bot_token is not set")
    budget = budget_s if budget_s is not None else interval_s(runtime)
    deadline = time.monotonic() + budget
    # Where stored payloads say they came from; the token never goes into the store.
    source_url = section.base_url.replace("{token}", "") + "…/getUpdates"
    offset = await store.get_state(OFFSET_KEY)
    stored = 0
    async with aiohttp.ClientSession() as session:
        while True:
            timeout = int(min(deadline - time.monotonic(), MAX_LONG_POLL_S))
            if timeout < 0:
                break
            try:
                updates = await get_updates(
                    session,
                    base_url=section.base_url,
                    token=token,
                    offset=offset if isinstance(offset, int) else None,
                    timeout=timeout,
                )
            except TelegramApiError as exc:
                if exc.retry_after is None:
                    raise TelegramPollError(str(exc)) from None
                await store.set_state(PAUSE_KEY, time.time() + exc.retry_after)
                log.warning("telegram: flood control, polling paused for %.0fs", exc.retry_after)
                break
            if not updates:
                if timeout == 0:
                    break
                continue
            rows = update_rows(updates, source_url, datetime.now(UTC))
            if rows:
                for item in await store.writer().submit(rows):
                    if item.created:
                        stored += 1
                        runtime.metrics.raw_messages_stored.labels(CONNECTOR, "poll").inc()
            # Only after the batch is durably stored: confirms these updates to Telegram.
            offset = next_offset(updates, offset if isinstance(offset, int) else None)
            await store.set_state(OFFSET_KEY, offset)
    if stored:
        log.info("telegram: %d message(s) stored by polling", stored)
    return stored


async def _run(runtime: Runtime) -> None:
    await poll_telegram(runtime)


TELEGRAM_POLLER = Poller("telegram", enabled=enabled, interval_s=interval_s, run=_run)
