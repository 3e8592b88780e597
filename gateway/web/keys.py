"""Typed keys of the aiohttp application, below every module that reads them."""

from __future__ import annotations

from aiohttp import web

from gateway.base.runtime import Runtime
from gateway.base.slow_clients import ConnectionGuard

RUNTIME = web.AppKey("runtime", Runtime)
CONNECTION_GUARD = web.AppKey("connection_guard", ConnectionGuard)
