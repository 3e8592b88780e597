"""Polling the LAPOR! API: one page of records after a position (cursor), through an
`aiohttp.ClientSession` handed in. The caller stores the records, then moves on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

PAGE_SIZE = 100


class LaporPollError(Exception):
    """The LAPOR! API answered something other than a page of records."""


def records_of(page: Any) -> tuple[list[Any], str | None, bool | None]:
    """(records, next cursor, has_more) of one answer; raises LaporPollError."""
    if not isinstance(page, dict):
        raise LaporPollError("answer is not a JSON object")
    records = next((page[k] for k in ("records", "data", "items") if k in page), None)
    if not isinstance(records, list):
        raise LaporPollError("answer has no records list")
    cursor = page.get("next_cursor", page.get("next"))
    has_more = page.get("has_more")
    return (
        records,
        (str(cursor) if cursor not in (None, "") else None),
        (bool(has_more) if has_more is not None else None),
    )


@dataclass(frozen=True)
class Page:
    url: str  # as answered (with the query): where the stored records say they came from
    records: list[Any]
    cursor: str | None  # the position after this page
    has_more: bool | None


async def fetch_page(
    session: aiohttp.ClientSession, endpoint: str, token: str | None, position: Any
) -> Page:
    """The page after `position` (from the start when None); raises LaporPollError."""
    headers = {"Accept": "application/json", "User-Agent": "kanal-lapor-poller/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    params = {"limit": str(PAGE_SIZE)}
    if position:
        params["since"] = str(position)
    async with session.get(endpoint, params=params, headers=headers) as response:
        if response.status != 200:
            raise LaporPollError(f"HTTP {response.status} from the LAPOR! API")
        try:
            answer = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError) as exc:
            raise LaporPollError(f"answer is not JSON: {exc}") from None
        url = str(response.url)
    records, cursor, has_more = records_of(answer)
    return Page(url, records, cursor, has_more)
