"""The HTTP routes of CRM delivery: the CRM's photo link, the citizen's tracking page, and
`POST /api/v1/reports/{id}/retry`. `gateway.web.app.create_app` calls `add_routes`."""

from __future__ import annotations

from aiohttp import web

from gateway.base.errors import ApiError
from gateway.base.runtime import Runtime
from gateway.crm import media_links as media
from gateway.crm.dispatcher import NotFailed, revive
from gateway.store import scope_contains
from gateway.web import track
from gateway.web.api import PRINCIPAL, report_ref, report_view
from normalizers.report import Report


def add_routes(app: web.Application, runtime: Runtime) -> None:
    media.add_routes(app, runtime)
    track.add_routes(app, runtime)
    add_retry_route(app, runtime)


def add_retry_route(app: web.Application, runtime: Runtime) -> None:
    """`POST /api/v1/reports/{id}/retry` (admin role; behind the API's bearer middleware)."""

    async def retry(request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        report = await runtime.store.get_report(report_ref(request), with_history=False)
        if report is None or not scope_contains(principal.scope, report.owner):
            raise ApiError(404, "not_found", "no such report")
        if principal.role != "admin":
            raise ApiError(403, "forbidden", f"role {principal.role} may not do this")
        if report.status != "failed":
            raise ApiError(
                409,
                "not_failed",
                f"only a failed report can be retried; this one is {report.status}",
                current_status=report.status,
            )
        by = f"{principal.role}:{principal.name}"

        def change(current: Report) -> Report:
            return revive(current.model_copy(update={"history": []}), runtime.store.clock(), by)

        try:
            await runtime.store.update_report(report.id, change)
        except NotFailed as exc:
            raise ApiError(409, "not_failed", str(exc), current_status=exc.status) from None
        runtime.store.notify_new_work()
        updated = await runtime.store.get_report(report.id)
        assert updated is not None
        return web.json_response(report_view(updated, principal), status=202)

    app.router.add_post("/api/v1/reports/{id}/retry", retry)
