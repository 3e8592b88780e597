"""The aiohttp application: webhooks, admin API, operations endpoints."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from gateway.base.runtime import Runtime
from gateway.base.slow_clients import ConnectionGuard, Limits
from gateway.intake.webhooks import add_webhook_routes
from gateway.store import StoreUnavailable
from gateway.store.migrate import head_revision
from gateway.web.admin import add_routes as add_admin_routes
from gateway.web.api import AdminApi, add_api_routes, api_middleware
from gateway.web.crm_routes import add_routes as add_crm_routes
from gateway.web.desk import add_routes as add_desk_routes
from gateway.web.http_log import quiet_malformed_requests
from gateway.web.keys import CONNECTION_GUARD, RUNTIME
from gateway.web.request_ids import request_id_middleware, send_request_id
from gateway.web.stats import oldest_waiting

log = logging.getLogger("kanal.web")
SCRAPE_STORE_TIMEOUT_S = 5.0  # a scrape never hangs on a store that does not answer


def create_app(runtime: Runtime, *, operations_only: bool = False) -> web.Application:
    """The HTTP surface; `operations_only` is `kanal poll`'s: /healthz, /readyz, /metrics."""
    quiet_malformed_requests()
    api = AdminApi(runtime)
    settings = runtime.settings
    guard = ConnectionGuard(
        Limits(
            header_timeout_s=settings.server.header_timeout_s,
            body_timeout_s=settings.server.body_timeout_s,
            max_connections=settings.server.max_connections,
        )
    )
    app = web.Application(
        middlewares=[
            request_id_middleware(runtime),  # first: every later line of the request has it
            guard.middleware,
            *([] if operations_only else [api_middleware(api)]),
        ],
        client_max_size=max(settings.server.max_body_bytes, settings.server.max_upload_bytes)
        + 65536,
    )
    app[RUNTIME] = runtime
    app.on_response_prepare.append(send_request_id)
    app[CONNECTION_GUARD] = guard
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if not operations_only:
        add_webhook_routes(app, runtime)
        add_api_routes(app, api)
        add_crm_routes(app, runtime)  # the CRM's photo links, /track, retry
        add_desk_routes(app, runtime)  # sign-in, /desk, /static
        add_admin_routes(app, runtime)  # /admin pages
    return app


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    components = {
        name: {k: v for k, v in vars(state).items() if v is not None}
        for name, state in sorted(runtime.components.items())
    }
    try:
        version = await runtime.store.schema_version()
    except (StoreUnavailable, OSError) as exc:
        runtime.metrics.store_up.set(0)
        return web.json_response(
            {
                "status": "unavailable",
                "store": {"ok": False, "error": str(exc)[:200]},
                "components": components,
            },
            status=503,
        )
    except Exception as exc:  # a store that answers nonsense is not ready either
        runtime.metrics.store_up.set(0)
        return web.json_response(
            {
                "status": "unavailable",
                "store": {"ok": False, "error": type(exc).__name__},
                "components": components,
            },
            status=503,
        )
    runtime.metrics.store_up.set(1)
    head = head_revision()
    if version != head:
        return web.json_response(
            {
                "status": "unmigrated",
                "store": {"ok": True, "schema": version, "head": head},
                "components": components,
            },
            status=503,
        )
    return web.json_response(
        {"status": "ready", "store": {"ok": True, "schema": version}, "components": components}
    )


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await refresh_store_gauges(runtime)
    return web.Response(body=runtime.metrics.render(), content_type="text/plain", charset="utf-8")


async def refresh_store_gauges(runtime: Runtime) -> None:
    """Set `kanal_store_up` and the enrichment queues' ages from the store, once per scrape."""
    gauges = runtime.metrics
    try:
        async with asyncio.timeout(SCRAPE_STORE_TIMEOUT_S):
            waiting = await oldest_waiting(runtime.store)
    except (StoreUnavailable, OSError, TimeoutError, SQLAlchemyError) as exc:
        # The queue ages keep their last values: the store's own alert says why they stand.
        log.warning("metrics: the store did not answer (%s)", type(exc).__name__)
        gauges.store_up.set(0)
        return
    gauges.store_up.set(1)
    now = runtime.store.clock()
    gauges.enrichment_oldest_age.clear()  # an owner whose queue emptied loses its series
    for owner, since in waiting.items():
        gauges.enrichment_oldest_age.labels(owner=owner).set(
            max(0.0, (now - since).total_seconds())
        )


__all__ = ["create_app"]
