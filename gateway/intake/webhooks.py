"""Webhook routes: verify, read, store durably, then acknowledge."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from connectors import BY_NAME, WEBHOOK_PATHS
from connectors.base import (
    ConnectorError,
    MalformedPayload,
    RawMessage,
    SignatureError,
    WebhookConnector,
    WireRequest,
    WireResponse,
    check_storable,
    repair_text,
    repaired,
)
from gateway.base.errors import error_response
from gateway.base.runtime import Runtime
from gateway.base.slow_clients import BodyAccount, BodyBudget, BodyBudgetExhausted
from gateway.store import NewRaw, StoreUnavailable, is_unavailable
from gateway.store.ids import new_id

log = logging.getLogger("kanal.webhooks")
# Never kept with the raw message: credentials of whoever is in front of us, and headers
# that carry a webhook's shared secret as it is (Telegram's secret token). Signatures
# (HMACs of the body) stay: they reveal no secret and show what was verified.
_DROPPED_HEADERS = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-telegram-bot-api-secret-token"}
)
# Any other header named like a credential is dropped too (x-api-key, x-webhook-secret…).
_SECRET_HEADER_WORDS = ("secret", "token", "api-key", "apikey", "password", "auth")


class BodyTooLarge(Exception):
    pass


async def read_body(request: web.Request, limit: int, account: BodyAccount | None = None) -> bytes:
    """The body, at most `limit` bytes; held against the process's body budget when an
    `account` is given (BodyBudgetExhausted past it)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if account is not None:
            account.grow_to(size)
        chunks.append(chunk)
    return b"".join(chunks)


def public_url(runtime: Runtime, request: web.Request) -> str:
    """The URL as the platform called it (Twilio signs it): the configured public URL, or
    what a trusted proxy says it was."""
    base = runtime.settings.server.public_url
    trusted = runtime.settings.server.trusted_proxies
    if trusted and request.remote and trusted_proxy(request.remote, trusted):
        host = request.headers.get("X-Forwarded-Host")
        proto = request.headers.get("X-Forwarded-Proto", "https")
        prefix = request.headers.get("X-Forwarded-Prefix", "")
        if host:
            base = (
                f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}{prefix.rstrip('/')}"
            )
    return base + request.raw_path


def trusted_proxy(remote: str, trusted: list[str]) -> bool:
    try:
        address = ip_address(remote)
    except ValueError:
        return False
    return any(address in ip_network(net, strict=False) for net in trusted)


def wire_request(runtime: Runtime, request: web.Request, body: bytes) -> WireRequest:
    query_string = request.raw_path.partition("?")[2]
    return WireRequest(
        method=request.method,
        url=public_url(runtime, request),
        path=request.path,
        # latin-1 keeps every percent-decoded byte (Kannel's %b): connectors re-decode.
        query=tuple(parse_qsl(query_string, keep_blank_values=True, encoding="latin-1")),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        remote=request.remote or "",
    )


# Query parameters that carry a webhook's secret (Kannel's `key`): never stored.
_SECRET_PARAMS = frozenset({"key", "secret", "token", "access_token"})


def stored_url(wire: WireRequest) -> str:
    """The URL as kept with the raw message (a GET's message is its query), secrets out."""
    base, _, query = wire.url.partition("?")
    if not query:
        return base
    kept = "&".join(
        part if part.partition("=")[0] not in _SECRET_PARAMS else f"{part.partition('=')[0]}=*"
        for part in query.split("&")
    )
    return f"{base}?{kept}"


def stored_headers(wire: WireRequest) -> dict[str, str]:
    kept = {k: v for k, v in wire.headers.items() if not _carries_secret(k)}
    kept[":method"] = wire.method
    kept[":path"] = stored_url(wire).split("://", 1)[-1].partition("/")[2]
    kept[":remote"] = wire.remote
    return kept


@functools.lru_cache(maxsize=1024)
def _carries_secret(header: str) -> bool:
    # Cached: senders repeat the same few header names on every request.
    return header in _DROPPED_HEADERS or any(word in header for word in _SECRET_HEADER_WORDS)


def to_new_raw(
    message: RawMessage, wire: WireRequest, intake: str, payload: bytes | None = None
) -> NewRaw:
    """The row of one parsed message. Text UTF-8 cannot encode is repaired here, for every
    channel; an id or a time no store can keep raises MalformedPayload (check_storable)."""
    check_storable(message)
    return NewRaw(
        id=new_id(),
        connector=message.connector,
        channel=message.channel,
        intake=intake,
        external_id=message.external_id[:255],
        received_at=message.received_at,
        payload=payload if payload is not None else (wire.body or stored_url(wire).encode()),
        headers=repaired(stored_headers(wire)),
        message=repaired(message.to_json()),
        # Multipart messages gather by it; messages of one conversation are claimed in order.
        group_key=repair_text(message.group_key) if message.group_key else None,
        part_total=message.part[1] if message.part else None,
    )


def malformed_raw(name: str, channel: str, wire: WireRequest, intake: str, error: str) -> NewRaw:
    """A verified payload we cannot read: kept as it came, flagged, visible in the inbox."""
    digest = hashlib.sha256(wire.body or stored_url(wire).encode()).hexdigest()
    return NewRaw(
        id=new_id(),
        connector=name,
        channel=channel,
        intake=intake,
        external_id=f"malformed:{digest}",
        received_at=datetime.now(UTC),
        payload=wire.body or stored_url(wire).encode(),
        headers=repaired(stored_headers(wire)),
        message=None,
        state="failed",
        error=repair_text(error[:4000]),
    )


async def ingest_wire(
    runtime: Runtime,
    connector: WebhookConnector,
    wire: WireRequest,
    *,
    intake: str,
    verify: bool = True,
) -> tuple[WireResponse, list[Any]]:
    """Verify, parse, store. Raises SignatureError, MalformedPayload (after storing the
    payload as failed) or StoreUnavailable. Shared by webhooks and `kanal ingest`."""
    name = connector.name
    if verify:
        connector.verify(wire)
    try:
        messages = connector.parse(wire, datetime.now(UTC))
        rows = [to_new_raw(m, wire, intake) for m in messages]
    except MalformedPayload as exc:
        await _keep_malformed(runtime, name, wire, intake, str(exc))
        raise
    try:
        stored = await runtime.store.writer().submit(rows)
    except Exception as exc:
        if isinstance(exc, StoreUnavailable) or is_unavailable(exc):
            raise
        # The store refused these rows, not the store's state: the sender learns it alone
        # (the rows of others in the same commit were stored without them) and the payload
        # stays on record.
        log.warning("%s: payload not storable: %s", name, type(exc).__name__)
        why = f"not storable: {type(exc).__name__}"
        await _keep_malformed(runtime, name, wire, intake, why)
        raise MalformedPayload(why) from exc
    for item in stored:
        if item.created:
            runtime.metrics.raw_messages_stored.labels(name, intake).inc()
    response = connector.respond(messages, [s.ticket for s in stored])
    return response, stored


async def _keep_malformed(
    runtime: Runtime, name: str, wire: WireRequest, intake: str, error: str
) -> None:
    await runtime.store.writer().submit(
        [malformed_raw(name, BY_NAME[name].channel, wire, intake, error)]
    )


def make_handler(
    runtime: Runtime, name: str, budget: BodyBudget
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    metrics = runtime.metrics
    seconds = metrics.webhook_seconds.labels(name)
    outcomes = {
        reason: metrics.webhook_requests.labels(name, reason) for reason in ("stored", "duplicate")
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        account = budget.account()
        try:
            return await handle_held(request, account)
        except BodyBudgetExhausted:
            metrics.webhook_requests.labels(name, "busy").inc()
            response = error_response(503, "busy", "try again later", retry_after=1)
            response.force_close()
            return response
        finally:
            account.release()  # the body is stored (or refused): no longer held

    async def handle_held(request: web.Request, account: BodyAccount) -> web.StreamResponse:
        started = time.perf_counter()
        connector = runtime.webhooks.get(name)
        if connector is None:
            metrics.webhook_requests.labels(name, "unknown_connector").inc()
            return error_response(404, "unknown_connector", f"connector {name} is not enabled")
        try:
            body = await read_body(request, runtime.settings.server.max_body_bytes, account)
        except BodyTooLarge:
            metrics.webhook_requests.labels(name, "too_large").inc()
            return error_response(413, "too_large", "request body is over the limit")
        wire = wire_request(runtime, request, body)
        handshake = getattr(connector, "handshake", None) or getattr(connector, "crc", None)
        if request.method == "GET" and handshake is not None:
            try:
                answer = handshake(wire)
            except ConnectorError as exc:
                metrics.webhook_requests.labels(name, exc.reason).inc()
                return error_response(exc.status, exc.reason, str(exc))
            metrics.webhook_requests.labels(name, "handshake").inc()
            return _to_web(answer)
        try:
            answer, stored = await ingest_wire(runtime, connector, wire, intake="webhook")
        except SignatureError as exc:
            metrics.webhook_requests.labels(name, "bad_signature").inc()
            return error_response(401, "bad_signature", str(exc))
        except ConnectorError as exc:
            metrics.webhook_requests.labels(name, exc.reason).inc()
            return error_response(exc.status, exc.reason, str(exc))
        except StoreUnavailable:
            metrics.webhook_requests.labels(name, "store_unavailable").inc()
            return error_response(503, "store_unavailable", "try again later", retry_after=5)
        except Exception as exc:
            if is_unavailable(exc):
                metrics.webhook_requests.labels(name, "store_unavailable").inc()
                return error_response(503, "store_unavailable", "try again later", retry_after=5)
            raise
        outcomes["stored" if any(s.created for s in stored) or not stored else "duplicate"].inc()
        seconds.observe(time.perf_counter() - started)
        return _to_web(answer)

    return handle


def _to_web(answer: WireResponse) -> web.Response:
    content_type, _, charset = answer.content_type.partition(";")
    return web.Response(
        status=answer.status,
        body=answer.body,
        content_type=content_type.strip(),
        charset=charset.partition("=")[2].strip() or None,
    )


def add_webhook_routes(app: web.Application, runtime: Runtime) -> None:
    budget = BodyBudget(runtime.settings.server.body_budget_bytes)
    for path, connector in WEBHOOK_PATHS.items():
        handler = make_handler(runtime, connector.name, budget)
        app.router.add_route("POST", f"/webhooks/{path}", handler)
        app.router.add_route("GET", f"/webhooks/{path}", handler)
