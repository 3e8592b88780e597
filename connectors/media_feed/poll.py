"""Fetching a feed with a conditional GET (ETag, Last-Modified) through a session handed in."""

from __future__ import annotations

from typing import Any

import aiohttp

from connectors.media_feed.wire import MAX_FEED_BYTES, FeedError


async def fetch_feed(
    session: aiohttp.ClientSession, url: str, state: dict[str, Any]
) -> tuple[bytes | None, dict[str, Any]]:
    """(body, new state) — body None when the server answered 304 Not Modified."""
    headers = {"User-Agent": "kanal-media-monitor/1"}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    async with session.get(url, headers=headers) as response:
        if response.status == 304:
            return None, state
        if response.status != 200:
            raise FeedError(f"HTTP {response.status}")
        body = await response.content.read(MAX_FEED_BYTES + 1)
        new_state = {
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
    return body, new_state
