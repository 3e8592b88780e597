"""Typed keys of the aiohttp application, below every module that reads them."""

from __future__ import annotations

from aiohttp import web

from gateway.base.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
