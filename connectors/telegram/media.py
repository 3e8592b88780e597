"""Telegram files: a file id is turned into a download URL by getFile (the URL carries the
bot token: never logged); files live on the host of `base_file_url` unless media_hosts
says otherwise."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from connectors.media import MediaAccess, MediaFetchError, MediaRefused
from connectors.spec import Secrets
from connectors.telegram.api import TelegramApiError, call
from connectors.telegram.config import TelegramConfig


def hosts(config: TelegramConfig) -> list[str]:
    if config.media_hosts:
        return list(config.media_hosts)
    host = urlsplit(config.base_file_url).hostname
    return [host] if host else []


async def file_url(
    session: aiohttp.ClientSession,
    config: TelegramConfig,
    secret: Secrets,
    file_id: str,
    max_bytes: int,
) -> str:
    token = secret("bot_token")
    if not token:
        raise MediaRefused("channels.telegram.bot_token is not set")
    try:
        file = await call(session, config.base_url, token, "getFile", {"file_id": file_id})
    except TelegramApiError as exc:
        if exc.refused:
            raise MediaRefused(str(exc)) from None
        raise MediaFetchError(str(exc)) from None
    if not isinstance(file, dict) or not file.get("file_path"):
        raise MediaRefused("getFile gave no file path")
    size = file.get("file_size")
    if isinstance(size, int) and size > max_bytes:
        raise MediaRefused(f"too large: {size} bytes (limit {max_bytes})")
    return f"{config.base_file_url}{token}/{file['file_path']}"


MEDIA = MediaAccess(hosts=hosts, file_url=file_url)
