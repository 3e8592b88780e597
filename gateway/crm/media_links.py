"""The photo link handed to the CRM (`media_url`): signing, and the route that serves it.

A link names the report, its expiry and an HMAC over (report id, photo sha256, expiry)
with a server secret, so it cannot be guessed or extended, and it stops working when the
report's first photo changes. The photo is served with its EXIF (GPS, camera serial)
removed. The expiry is fixed by the report's first delivery attempt, so every retry sends
the same URL (an Idempotency-Key replay must carry the same form).

The secret is `server.media_secret` (or `media_secret_file`); without one, a random secret
is drawn once and kept in the store, so every replica signs and checks alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.base.config import read_secret
from gateway.base.runtime import Runtime
from gateway.store import Store, StoreUnavailable
from gateway.store.schema import kv_state
from normalizers.photo import strip_exif
from normalizers.report import Attachment, Report

log = logging.getLogger("kanal.media")

SECRET_STATE_KEY = "crm:media_secret"  # noqa: S105 (a kv_state key, not a secret)


@dataclass(frozen=True)
class MediaSecret:
    """The key that signs the CRM's photo links, read once per process."""

    value: bytes


SIGNATURE_HEX_CHARS = 32  # 128 bits of HMAC-SHA256: unguessable, and a short URL
ROUTE = "/media/crm/{report_id}/{expires}/{signature}"


def first_photo(report: Report) -> Attachment | None:
    """The photo the CRM gets: the first stored image attachment."""
    for attachment in report.attachments:
        if (
            attachment.state == "stored"
            and attachment.sha256
            and (attachment.content_type or "").startswith("image/")
        ):
            return attachment
    return None


def expiry_of(first_attempt_at: datetime, ttl_s: int) -> int:
    """Unix time the link stops working: the first delivery attempt plus crm.media_url_ttl_s."""
    return int((first_attempt_at + timedelta(seconds=ttl_s)).timestamp())


def sign(secret: bytes, report_id: str, sha256: str, expires: int) -> str:
    message = f"{report_id}\n{sha256}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX_CHARS]


def media_path(secret: bytes, report_id: str, sha256: str, expires: int) -> str:
    return f"/media/crm/{report_id}/{expires}/{sign(secret, report_id, sha256, expires)}"


async def media_secret(runtime: Runtime) -> bytes:
    """The signing secret: configured, else the store's (drawn on first use)."""
    cached = runtime.find(MediaSecret)
    if cached is not None:
        return cached.value
    configured = read_secret(runtime.settings.server, "media_secret")
    secret = configured.encode() if configured else await stored_secret(runtime.store)
    return runtime.keep(MediaSecret(secret)).value


async def stored_secret(store: Store) -> bytes:
    """Insert a random secret unless one exists, then read whichever won (replicas race)."""
    candidate = json.dumps(secrets.token_hex(32))
    insert = pg_insert if store.dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(kv_state)
        .values(key=SECRET_STATE_KEY, value=candidate, updated_at=store.clock())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    async with store.write() as conn:
        await conn.execute(stmt)
        row = (
            await conn.execute(select(kv_state.c.value).where(kv_state.c.key == SECRET_STATE_KEY))
        ).first()
    if row is None or not row[0]:
        raise RuntimeError("the media secret could not be stored")
    return str(json.loads(row[0])).encode()


async def media_url(runtime: Runtime, report: Report, first_attempt_at: datetime) -> str | None:
    """The public URL of the report's first photo, or None when it has none."""
    photo = first_photo(report)
    if photo is None or photo.sha256 is None:
        return None
    expires = expiry_of(first_attempt_at, runtime.settings.crm.media_url_ttl_s)
    path = media_path(await media_secret(runtime), report.id, photo.sha256, expires)
    return runtime.settings.server.public_url + path


def _not_found() -> web.Response:
    # One answer for every refusal: a prober learns nothing about which part was wrong.
    return web.Response(status=404, text="not found\n")


def add_routes(app: web.Application, runtime: Runtime) -> None:
    async def serve(request: web.Request) -> web.StreamResponse:
        report_id = request.match_info["report_id"]
        expires_raw = request.match_info["expires"]
        signature = request.match_info["signature"]
        if not expires_raw.isdigit() or len(signature) != SIGNATURE_HEX_CHARS:
            return _not_found()
        expires = int(expires_raw)
        try:
            report = await runtime.store.get_report(report_id, with_history=False)
            photo = first_photo(report) if report is not None else None
            if photo is None or photo.sha256 is None:
                return _not_found()
            expected = sign(await media_secret(runtime), report_id, photo.sha256, expires)
            if not hmac.compare_digest(expected, signature):
                return _not_found()
            if datetime.now(UTC).timestamp() > expires:
                return web.Response(status=410, text="this link has expired\n")
            blob = await runtime.store.get_blob(photo.sha256)
        except StoreUnavailable:
            return web.Response(status=503, text="try again later\n", headers={"Retry-After": "5"})
        if blob is None:
            return _not_found()
        try:
            # Re-encoding decodes pixels: off the event loop.
            data, content_type = await asyncio.to_thread(strip_exif, blob[1])
        except ValueError as exc:
            log.warning("report %s: photo cannot be re-encoded: %s", report_id, exc)
            return _not_found()
        return web.Response(
            body=data,
            content_type=content_type,
            headers={
                "Cache-Control": "private, max-age=3600",
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": "inline",
            },
        )

    app.router.add_get(ROUTE, serve)
