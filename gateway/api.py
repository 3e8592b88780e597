"""The admin API (CONTRACT §4): bearer tokens, scopes, reports, queue, stats, inbox."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.auth import READ_ROLES, Principal, hash_token
from gateway.errors import ApiError
from gateway.runtime import Runtime
from gateway.store import StoreUnavailable, scope_contains
from normalizers.report import STATUSES, Report, Reporter

PRINCIPAL = "kanal.principal"  # request key of the authenticated caller
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def report_view(report: Report, principal: Principal, now: datetime | None = None) -> dict[str, Any]:
    """A report as this caller may see it: a confidential identity only for the province."""
    now = now or datetime.now(UTC)
    if report.confidential and principal.scope != "province":
        report = report.model_copy(update={"reporter": Reporter()})
    if report.lease is not None and report.lease.until <= now:
        report = report.model_copy(update={"lease": None})
    return report.model_dump(mode="json")


def _bool(value: str, name: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, "bad_parameter", f"{name} must be true or false", parameter=name)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ApiError(400, "bad_parameter", "limit must be 1..500", parameter="limit")
    return int(raw)


def _since(request: web.Request) -> datetime | None:
    raw = request.query.get("since")
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_parameter", "since must be RFC 3339", parameter="since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _statuses(request: web.Request) -> list[str] | None:
    raw = request.query.get("status")
    if not raw:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    unknown = [v for v in values if v not in STATUSES]
    if unknown:
        raise ApiError(400, "bad_parameter", f"unknown status {unknown[0]!r}", parameter="status")
    return values


class AdminApi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    async def principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "a bearer token is required")
        row = await self.store.token_by_hash(hash_token(token.strip()))
        if row is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token")
        return Principal(row["name"], row["role"], row["scope"])

    def require(self, principal: Principal, roles: frozenset[str]) -> None:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", f"role {principal.role} may not do this")

    async def visible_report(self, request: web.Request, principal: Principal) -> Report:
        report = await self.store.get_report(request.match_info["id"])
        if report is None or not scope_contains(principal.scope, report.owner):
            raise ApiError(404, "not_found", "no such report")
        return report

    # --- read side ------------------------------------------------------------------------

    async def get_report(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        report = await self.visible_report(request, principal)
        return web.json_response(report_view(report, principal))

    async def list_reports(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        q = request.query
        geo = _bool(q["geo"], "geo") if "geo" in q else None
        try:
            items, cursor = await self.store.list_reports(
                principal.scope,
                status=_statuses(request),
                channel=q.get("channel") or None,
                owner=q.get("owner") or None,
                geo=geo,
                kelurahan=q.get("kelurahan") or None,
                q=q.get("q") or None,
                since=_since(request),
                limit=_limit(request),
                cursor=q.get("cursor") or None,
            )
        except ValueError as exc:
            raise ApiError(400, "bad_parameter", str(exc), parameter="cursor") from None
        return self._page(items, cursor, principal)

    async def queue(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        try:
            items, cursor = await self.store.list_reports(
                principal.scope,
                status=["pending_enrichment"],
                channel=request.query.get("channel") or None,
                owner=request.query.get("owner") or None,
                limit=_limit(request),
                cursor=request.query.get("cursor") or None,
                oldest_first=True,
            )
        except ValueError as exc:
            raise ApiError(400, "bad_parameter", str(exc), parameter="cursor") from None
        return self._page(items, cursor, principal)

    def _page(self, items: list[Report], cursor: str | None, principal: Principal) -> web.Response:
        now = datetime.now(UTC)
        return web.json_response(
            {"items": [report_view(r, principal, now) for r in items], "next_cursor": cursor}
        )

    async def stats(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        return web.json_response(await self.store.stats(principal.scope))

    async def inbox(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        # Raw messages that failed normalization belong to no owner yet: province only.
        if principal.scope != "province":
            raise ApiError(403, "forbidden", "the inbox of failed messages is for province scope")
        rows = await self.store.inbox(_limit(request), request.query.get("cursor") or None)
        items = [
            {
                "id": r["id"],
                "connector": r["connector"],
                "channel": r["channel"],
                "external_id": r["external_id"],
                "received_at": r["received_at"].isoformat(),
                "stored_at": r["stored_at"].isoformat(),
                "error": r["error"],
                "attempts": r["attempts"],
                "payload_base64": base64.b64encode(r["payload"][:65536]).decode(),
                "payload_size": len(r["payload"]),
            }
            for r in rows
        ]
        return web.json_response(
            {"items": items, "next_cursor": items[-1]["id"] if len(items) == _limit(request) else None}
        )


def api_middleware(api: AdminApi) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/v1/") or request.path == "/api/v1/openapi.json":
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
        try:
            request[PRINCIPAL] = await api.principal(request)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except StoreUnavailable:
            response = ApiError(503, "store_unavailable", "the store is unreachable").response()
        api.runtime.metrics.api_requests.labels(f"{response.status // 100}xx").inc()
        return response

    return middleware


def add_api_routes(app: web.Application, api: AdminApi) -> None:
    r = app.router
    r.add_get("/api/v1/queue", api.queue)
    r.add_get("/api/v1/reports", api.list_reports)
    r.add_get("/api/v1/reports/{id}", api.get_report)
    r.add_get("/api/v1/stats", api.stats)
    r.add_get("/api/v1/inbox", api.inbox)
