"""The admin API: bearer tokens, scopes, reports, queue, stats, inbox, and the
enrichment writes (claim, PATCH, submit, reject, reopen) whose rules live in
`gateway.pipeline.enrich`."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from gateway.base.errors import ApiError
from gateway.base.runtime import Runtime
from gateway.pipeline import enrich
from gateway.store import StaleVersion, StoreUnavailable, decode_cursor, scope_contains
from gateway.web.auth import READ_ROLES, WRITE_ROLES, Principal, hash_token
from gateway.web.openapi import (
    CURSOR,
    GEOCODE_PARAMS,
    ID,
    IF_MATCH,
    LIST_PARAMS,
    QUEUE_PARAMS,
    SEARCH_PARAMS,
    GeocodePage,
    Param,
    Stats,
    document,
    query_names,
)
from gateway.web.stats import active_model, scoped_stats
from normalizers.geocode import Geocoder
from normalizers.report import Report, Reporter

PRINCIPAL = web.RequestKey("kanal.principal", Principal)  # the authenticated caller
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


def report_view(
    report: Report, principal: Principal, now: datetime | None = None
) -> dict[str, Any]:
    """A report as this caller may see it: a confidential identity only for the province."""
    now = now or datetime.now(UTC)
    if report.confidential and principal.scope != "province":
        hidden = [f.model_copy(update={"sender": None}) for f in report.follow_ups]
        report = report.model_copy(update={"reporter": Reporter(), "follow_ups": hidden})
    if report.lease is not None and report.lease.until <= now:
        report = report.model_copy(update={"lease": None})
    return report.model_dump(mode="json")


def _query(request: web.Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """Every documented query parameter of a route, parsed by its documented schema (400
    `bad_parameter` naming the first one that is not what the document says)."""
    return {p.name: p.parse(request.query.get(p.name)) for p in params if p.where == "query"}


def report_ref(request: web.Request) -> str:
    """The `{id}` of the path: a report id or a ticket; anything else names no report."""
    raw = request.match_info["id"]
    try:
        return str(ID.parse(raw))
    except ApiError:
        raise ApiError(404, "not_found", "no such report") from None


def _cursor(value: str | None) -> str | None:
    if value is not None:
        try:
            decode_cursor(value)
        except ValueError:
            raise CURSOR.bad("is not a next_cursor kanal gave") from None
    return value


class AdminActions:
    """Admin API writes by action and outcome, on the runtime's registry."""

    def __init__(self, runtime: Runtime) -> None:
        self.counter = Counter(
            "kanal_admin_actions_total",
            "Admin API writes by action and outcome (ok or the error code).",
            ["action", "outcome"],
            registry=runtime.metrics.registry,
        )


class AdminApi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store
        self.geocoder = Geocoder(runtime.areas)
        # One counter per runtime's registry, even if several apps share the runtime.
        self.actions = runtime.part(AdminActions, lambda: AdminActions(runtime)).counter

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
        report = await self.store.get_report(report_ref(request))
        if report is None or not scope_contains(principal.scope, report.owner):
            raise ApiError(404, "not_found", "no such report")
        return report

    # --- read side ------------------------------------------------------------------------

    async def get_report(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        report = await self.visible_report(request, principal)
        return self._report(report, principal)

    async def list_reports(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        q = _query(request, SEARCH_PARAMS)
        items, cursor = await self.store.list_reports(
            principal.scope,
            status=q["status"].split(",") if q["status"] else None,
            channel=q["channel"],
            owner=q["owner"],
            geo=q["geo"],
            attention=q["attention"],
            kelurahan=q["kelurahan"],
            q=q["q"],
            since=q["since"],
            limit=q["limit"],
            cursor=_cursor(q["cursor"]),
        )
        return self._page(items, cursor, principal)

    async def queue(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        q = _query(request, QUEUE_PARAMS)
        items, cursor = await self.store.list_reports(
            principal.scope,
            status=["pending_enrichment"],
            or_attention=True,  # a citizen wrote again on a done report, for example
            channel=q["channel"],
            owner=q["owner"],
            limit=q["limit"],
            cursor=_cursor(q["cursor"]),
            oldest_first=True,
        )
        return self._page(items, cursor, principal)

    def _page(self, items: list[Report], cursor: str | None, principal: Principal) -> web.Response:
        now = datetime.now(UTC)
        return web.json_response(
            {"items": [report_view(r, principal, now) for r in items], "next_cursor": cursor}
        )

    async def stats(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        counts = await scoped_stats(self.store, principal.scope)
        stats = Stats.model_validate({**counts, "model": await active_model(self.store)})
        return web.json_response(stats.model_dump(mode="json"))

    async def inbox(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        # Raw messages that failed normalization belong to no owner yet: province only.
        if principal.scope != "province":
            raise ApiError(403, "forbidden", "the inbox of failed messages is for province scope")
        q = _query(request, LIST_PARAMS)
        rows = await self.store.inbox(q["limit"], q["cursor"])
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
            {
                "items": items,
                "next_cursor": items[-1]["id"] if len(items) == q["limit"] else None,
            }
        )

    # --- geocoding ------------------------------------------------------------------------

    async def geocode(self, request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        self.require(principal, READ_ROLES)
        q = _query(request, GEOCODE_PARAMS)
        # An online provider (if one is ever configured) blocks: keep it off the loop.
        found = await asyncio.to_thread(self.geocoder.suggest, q["q"], q["limit"])
        page = GeocodePage.model_validate({"items": [g.as_dict() for g in found]})
        return web.json_response(page.model_dump(mode="json"))

    # --- enrichment (writes) --------------------------------------------------------------

    def _report(self, report: Report, principal: Principal, status: int = 200) -> web.Response:
        return web.json_response(
            report_view(report, principal), status=status, headers={"ETag": f'"{report.version}"'}
        )

    async def _write(
        self,
        request: web.Request,
        action: str,
        change: Callable[[Report, Principal, datetime], Report | None],
        *,
        expected_version: int | None = None,
        status: int = 200,
    ) -> web.Response:
        """Read-modify-write one report in scope, in one transaction, for an admin."""
        principal: Principal = request[PRINCIPAL]
        now = self.store.clock()

        def guarded(current: Report) -> Report | None:
            # Checked inside the transaction (the owner may have changed meanwhile), and
            # before the version: a stale If-Match must not reveal a report out of scope.
            if not scope_contains(principal.scope, current.owner):
                raise ApiError(404, "not_found", "no such report")
            if expected_version is not None and current.version != expected_version:
                raise StaleVersion(current.version)
            return change(current, principal, now)

        try:
            report = await self.store.update_report(report_ref(request), guarded)
        except StaleVersion as exc:
            self.actions.labels(action, "stale").inc()
            raise ApiError(
                412, "stale", "the report changed since you read it", version=exc.current
            ) from None
        except enrich.EnrichError as exc:
            self.actions.labels(action, exc.code).inc()
            raise ApiError(exc.status, exc.code, exc.message, **exc.extra) from None
        if report is None:
            raise ApiError(404, "not_found", "no such report")
        self.actions.labels(action, "ok").inc()
        return self._report(report, principal, status)

    def _writer(self, request: web.Request) -> Principal:
        principal: Principal = request[PRINCIPAL]
        self.require(principal, WRITE_ROLES)
        return principal

    async def claim(self, request: web.Request) -> web.Response:
        self._writer(request)
        return await self._write(request, "claim", lambda r, p, now: enrich.claim(r, p.name, now))

    async def release(self, request: web.Request) -> web.Response:
        self._writer(request)
        return await self._write(
            request, "release", lambda r, p, now: enrich.release(r, p.name, now)
        )

    async def patch(self, request: web.Request) -> web.Response:
        self._writer(request)
        expected = _if_match(request)
        patch = await _body(request, enrich.EnrichmentPatch)

        def change(report: Report, principal: Principal, now: datetime) -> Report:
            return enrich.apply_patch_of(
                self.runtime, report, patch, by=principal.name, scope=principal.scope, now=now
            )

        return await self._write(request, "patch", change, expected_version=expected)

    async def submit(self, request: web.Request) -> web.Response:
        principal = self._writer(request)
        before = await self.visible_report(request, principal)
        keep_owner = enrich.owner_set_by_admin(before.history)
        response = await self._write(
            request,
            "submit",
            lambda r, p, now: enrich.submit(r, by=p.name, now=now, keep_owner=keep_owner),
            status=202,
        )
        self.store.notify_new_work()  # the CRM dispatcher need not wait for its next tick
        return response

    async def reject(self, request: web.Request) -> web.Response:
        principal = self._writer(request)
        body = await _body(request, enrich.RejectBody)
        if body.duplicate_of:
            original = await self.store.get_report(body.duplicate_of, with_history=False)
            if original is None or not scope_contains(principal.scope, original.owner):
                raise ApiError(
                    422,
                    "unknown_duplicate",
                    "duplicate_of names no report you can see",
                    field="duplicate_of",
                )
        return await self._write(
            request, "reject", lambda r, p, now: enrich.reject(r, body, by=p.name, now=now)
        )

    async def reopen(self, request: web.Request) -> web.Response:
        self._writer(request)
        return await self._write(
            request, "reopen", lambda r, p, now: enrich.reopen(r, by=p.name, now=now)
        )


async def openapi_json(_request: web.Request) -> web.Response:
    return web.json_response(document())


def _if_match(request: web.Request) -> int:
    """`If-Match: 7`, `"7"` or `W/"7"` → 7; 428 without it."""
    raw = request.headers.get("If-Match")
    if raw is None or not raw.strip():
        raise ApiError(428, "precondition_required", "If-Match: <version> is required")
    return int(str(IF_MATCH.parse(raw.strip())).removeprefix("W/").strip('"'))


async def _body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`: 400 when it is not JSON, 422 when the model refuses it."""
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise ApiError(400, "malformed", "the body is not valid JSON") from None
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors
        ]
        raise ApiError(
            422, "invalid", problems[0]["field"] + ": " + problems[0]["message"], problems=problems
        ) from None


def _no_unknown_parameters(request: web.Request) -> None:
    """A query parameter the document does not name is a 400 (a typo such as `stauts`
    would otherwise answer everything)."""
    resource = request.match_info.route.resource
    known = query_names(request.method, resource.canonical if resource else "")
    if known is None:
        return
    for name in request.query:
        if name not in known:
            raise ApiError(400, "bad_parameter", f"unknown parameter {name!r}", parameter=name)


def api_middleware(api: AdminApi) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/v1/") or request.path == "/api/v1/openapi.json":
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
        try:
            request[PRINCIPAL] = await api.principal(request)
            _no_unknown_parameters(request)
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
    r.add_get("/api/v1/geocode", api.geocode)
    r.add_get("/api/v1/openapi.json", openapi_json)
    r.add_patch("/api/v1/reports/{id}", api.patch)
    r.add_post("/api/v1/reports/{id}/claim", api.claim)
    r.add_post("/api/v1/reports/{id}/release", api.release)
    r.add_post("/api/v1/reports/{id}/submit", api.submit)
    r.add_post("/api/v1/reports/{id}/reject", api.reject)
    r.add_post("/api/v1/reports/{id}/reopen", api.reopen)
