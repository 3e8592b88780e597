"""The HTTP routes of CRM delivery: the CRM's photo link, the citizen's tracking page, and
`POST /api/v1/reports/{id}/retry`. `gateway.app.create_app` calls `add_routes`."""

from __future__ import annotations

from aiohttp import web

from gateway import media, track
from gateway.dispatcher import add_retry_route
from gateway.runtime import Runtime


def add_routes(app: web.Application, runtime: Runtime) -> None:
    media.add_routes(app, runtime)
    track.add_routes(app, runtime)
    add_retry_route(app, runtime)
