"""Shared pieces of the social-channel flow tests: config, signed webhook posts, lookups.

`[pipeline]` and `[server]` are in the base test config (tests/conftest.py write_config),
so the media settings a test needs (loopback fakes, tiny retry delays, a small size cap)
are set on the loaded settings before the media worker is built.
"""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image
from sqlalchemy import select

from gateway.pipeline.media import MediaWorker
from gateway.store.schema import media_jobs, raw_messages, reports
from normalizers.report import Report
from tests.connectors.signing import meta_signature, telegram_headers, twitter_signature

META_SECRET = "meta-app-secret"
META_VERIFY = "meta-verify-token"
PAGE_ID = "111222333444"
IG_ID = "17841400000000001"
TWITTER_SECRET = "twitter-consumer-secret"
TELEGRAM_TOKEN = "123456:TEST-token_abc"
TELEGRAM_SECRET = "telegram-webhook-secret"
T0_MS = 1767225600000  # 2026-01-01T00:00:00Z
MONAS = (-6.1754, 106.8272)  # inside Jakarta (Gambir)
BANDUNG = (-6.9175, 107.6191)


def jpeg(size: tuple[int, int] = (8, 8), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def meta_extra(media_hosts: list[str] | None = None) -> str:
    hosts = json.dumps(media_hosts if media_hosts is not None else ["127.0.0.1"])
    return f"""
[channels.meta]
enabled = true
app_secret = "{META_SECRET}"
verify_token = "{META_VERIFY}"
media_hosts = {hosts}

[channels.meta.accounts."{PAGE_ID}"]
channel = "facebook"
owner = "office:balai_kota"

[channels.meta.accounts."{IG_ID}"]
channel = "instagram"
owner = "office:inspektorat"
"""


def loopback_media(k: Any, *, max_bytes: int | None = None) -> MediaWorker:
    """A media worker allowed to reach the loopback fakes, with tiny retry delays."""
    settings = k.runtime.settings
    settings.pipeline.allow_private_media_hosts = True
    settings.pipeline.media_retry_base_s = 0.01
    settings.pipeline.media_attempts = 2
    settings.pipeline.media_timeout_s = 5.0
    if max_bytes is not None:
        settings.server.max_upload_bytes = max_bytes
    return MediaWorker(k.runtime)


def meta_event(
    *,
    mid: str,
    at_s: float = 0.0,
    sender: str = "7001",
    account: str = PAGE_ID,
    text: str | None = None,
    images: list[str] = (),  # type: ignore[assignment]
    location: tuple[float, float] | None = None,
    deleted: bool = False,
) -> dict[str, Any]:
    message: dict[str, Any] = {"mid": mid}
    if text is not None:
        message["text"] = text
    attachments: list[dict[str, Any]] = [{"type": "image", "payload": {"url": u}} for u in images]
    if location is not None:
        attachments.append(
            {
                "type": "location",
                "payload": {"coordinates": {"lat": location[0], "long": location[1]}},
            }
        )
    if attachments:
        message["attachments"] = attachments
    if deleted:
        message["is_deleted"] = True
    return {
        "sender": {"id": sender},
        "recipient": {"id": account},
        "timestamp": T0_MS + int(at_s * 1000),
        "message": message,
    }


def meta_body(*events: dict[str, Any], account: str = PAGE_ID) -> bytes:
    obj = "instagram" if account == IG_ID else "page"
    return json.dumps(
        {"object": obj, "entry": [{"id": account, "time": T0_MS, "messaging": list(events)}]}
    ).encode()


async def post_meta(k: Any, body: bytes, *, signed: bool = True) -> Any:
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Hub-Signature-256"] = meta_signature(META_SECRET, body)
    return await k.client.post("/webhooks/meta", data=body, headers=headers)


async def post_twitter(k: Any, payload: dict[str, Any], *, signed: bool = True) -> Any:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Twitter-Webhooks-Signature"] = twitter_signature(TWITTER_SECRET, body)
    return await k.client.post("/webhooks/twitter", data=body, headers=headers)


async def post_telegram(k: Any, update: dict[str, Any], *, secret: str = TELEGRAM_SECRET) -> Any:
    return await k.client.post(
        "/webhooks/telegram", data=json.dumps(update).encode(), headers=telegram_headers(secret)
    )


async def all_reports(k: Any) -> list[Report]:
    async with k.store.read() as conn:
        ids = [
            r[0] for r in await conn.execute(select(reports.c.id).order_by(reports.c.received_at))
        ]
    found = [await k.store.get_report(i) for i in ids]
    return [r for r in found if r is not None]


async def group_key_column(k: Any, report_id: str) -> str | None:
    async with k.store.read() as conn:
        return (
            await conn.execute(select(reports.c.group_key).where(reports.c.id == report_id))
        ).scalar_one()


async def raw_states(k: Any) -> dict[str, str]:
    async with k.store.read() as conn:
        rows = await conn.execute(select(raw_messages.c.external_id, raw_messages.c.state))
        return {e: s for e, s in rows}


async def jobs(k: Any) -> list[dict[str, Any]]:
    async with k.store.read() as conn:
        rows = await conn.execute(select(media_jobs).order_by(media_jobs.c.id))
        return [dict(r) for r in rows.mappings()]
