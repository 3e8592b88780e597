"""getUpdates long polling (when `channels.telegram.mode = "polling"`): one call returns the
updates after `offset`; the caller stores them, then confirms them with the next offset."""

from __future__ import annotations

from typing import Any

import aiohttp

from connectors.telegram.api import TelegramApiError, call
from connectors.telegram.wire import ALLOWED_UPDATES

MAX_LONG_POLL_S = 50  # Telegram's own cap is about this; longer just costs a reconnect


async def get_updates(
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    token: str,
    offset: int | None,
    timeout: int,  # noqa: ASYNC109 (the long poll's seconds, sent to Telegram)
) -> list[dict[str, Any]]:
    """Updates after `offset` (all unconfirmed ones when None), waiting up to `timeout`
    seconds for the first. Raises TelegramApiError (with `retry_after` on flood control)."""
    params: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
    if offset is not None:
        params["offset"] = offset
    result = await call(session, base_url, token, "getUpdates", params, timeout_s=timeout + 10)
    if not isinstance(result, list):
        raise TelegramApiError("getUpdates: result is not a list")
    return [update for update in result if isinstance(update, dict)]


def next_offset(updates: list[dict[str, Any]], offset: int | None) -> int | None:
    """The offset that confirms `updates` (the newest update_id + 1)."""
    ids = [u["update_id"] for u in updates if isinstance(u.get("update_id"), int)]
    return max(ids) + 1 if ids else offset
