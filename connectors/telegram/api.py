"""Bot API calls over an `aiohttp.ClientSession` handed in (`{base_url}{token}/{method}`)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from connectors.base import ConnectorError


class TelegramApiError(ConnectorError):
    """The Bot API refused or failed a call; `retry_after` (seconds) on flood control."""

    reason = "api_error"
    status = 502

    def __init__(
        self, message: str, retry_after: float | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.refused = refused  # the Bot API said no (4xx): asking again will not help


async def call(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    method: str,
    params: dict[str, Any],
    *,
    timeout_s: float | None = None,
) -> Any:
    """One Bot API method; its `result`. The token is in the URL: never in an error text."""
    url = f"{base_url}{token}/{method}"
    timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else None
    try:
        async with session.post(url, json=params, timeout=timeout) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TelegramApiError(f"{method}: {type(exc).__name__}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TelegramApiError(f"{method}: HTTP {status}, not a Bot API answer")
    if answer.get("ok") is True:
        return answer.get("result")
    description = str(answer.get("description") or f"HTTP {status}")[:200]
    parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
    retry_after = parameters.get("retry_after") if parameters else None
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        raise TelegramApiError(f"{method}: flood control: {description}", float(retry_after))
    raise TelegramApiError(
        f"{method}: {description}", refused=400 <= status < 500 and status != 429
    )
