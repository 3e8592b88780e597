"""WhatsApp media: the webhook carries a media id; `GET {graph}/{version}/{media-id}` with the
bearer token answers a short-lived URL (about 5 minutes, on lookaside.fbsbx.com) and the
file's sha256. The id is resolved again at every attempt, so a lapsed URL is never reused;
the URL is fetched with the same bearer header, on the media hosts only."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from connectors.media import MediaAccess, MediaFetchError, MediaFile, MediaRefused, Signer
from connectors.spec import Secrets
from connectors.whatsapp.config import WhatsAppConfig
from connectors.whatsapp.send import GRAPH_VERSION


def _on_media_host(config: WhatsAppConfig, url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    for allowed in config.media_hosts:
        allowed = allowed.lower()
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return True
    return False


def signer(config: WhatsAppConfig, secret: Secrets, url: str) -> Signer | None:
    token = secret("access_token")
    if not token or not _on_media_host(config, url):
        return None
    return lambda _url: {"Authorization": f"Bearer {token}"}


async def file_url(
    session: aiohttp.ClientSession,
    config: WhatsAppConfig,
    secret: Secrets,
    file_id: str,
    max_bytes: int,
) -> MediaFile:
    token = secret("access_token")
    if not token:
        raise MediaRefused("channels.whatsapp.access_token is not set")
    url = f"{config.graph_url.rstrip('/')}/{GRAPH_VERSION}/{file_id}"
    try:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            status = response.status
            answer = await response.json(content_type=None) if status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise MediaFetchError(f"whatsapp media id: {type(exc).__name__}") from None
    if status == 429 or status >= 500:
        raise MediaFetchError(f"whatsapp media id: HTTP {status}")
    if status != 200:
        raise MediaRefused(f"whatsapp media id: HTTP {status}")
    if not isinstance(answer, dict) or not isinstance(answer.get("url"), str):
        raise MediaRefused("whatsapp media id: no url in the answer")
    size = answer.get("file_size")
    if isinstance(size, int) and size > max_bytes:
        raise MediaRefused(f"too large: {size} bytes (limit {max_bytes})")
    digest = answer.get("sha256")
    return MediaFile(answer["url"], digest.lower() if isinstance(digest, str) and digest else None)


MEDIA = MediaAccess(signer=signer, file_url=file_url)
