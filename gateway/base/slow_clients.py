"""Holding out against slow and abusive HTTP clients: request headers and
bodies must arrive in time, open connections are capped, and the webhook bodies being
buffered share one process-wide byte budget.

aiohttp closes idle keep-alive connections but has no read timeout of its own. Each
accepted connection is wrapped in a `GuardedConnection` (the protocol the event loop
talks to, delegating to aiohttp's own): it arms a header deadline when the connection
opens and again on the first byte of each later request; the `middleware` disarms it
once aiohttp hands over a request (its headers are complete) and arms the body
deadline, which fails the body's reader (408) if the body is not in by then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.base.errors import error_response

log = logging.getLogger("kanal.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What an over-the-cap connection reads before it is closed: quick, and honest clients retry.
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class BodyTimedOut(Exception):
    """The request body did not arrive within server.body_timeout_s."""


class BodyBudgetExhausted(Exception):
    """Webhook bodies being read already hold the process's byte budget."""


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the header deadline and the cap."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol):
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.refused = False
        self.header_deadline: asyncio.TimerHandle | None = None
        self.header_due: float | None = None  # loop.time() by which headers must be in
        self.arm_on_next_byte = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if len(self.guard.open) >= self.guard.limits.max_connections:
            self.refused = True
            self.guard.refused += 1
            transport.write(_REFUSED)
            transport.close()
            return
        self.guard.open[transport] = self
        self.inner.connection_made(transport)
        self.arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_header_deadline()
        if self.refused:
            return
        if self.transport is not None:
            self.guard.open.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.arm_on_next_byte and data:
            self.arm_on_next_byte = False
            self.arm_header_deadline()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def arm_header_deadline(self) -> None:
        # Once per request: a new due time only. The connection's one timer, when it fires,
        # looks at the due time then (re-armed for a later one), so a keep-alive connection
        # makes a timer handle per header_timeout_s, not one (and a cancel) per request.
        loop = asyncio.get_running_loop()
        self.header_due = due = loop.time() + self.guard.limits.header_timeout_s
        if self.header_deadline is None:
            self.header_deadline = loop.call_at(due, self._header_deadline_reached)

    def disarm_header_deadline(self) -> None:
        self.header_due = None  # the timer, if any, finds nothing due

    def _header_deadline_reached(self) -> None:
        self.header_deadline = None
        due = self.header_due
        if due is None:
            return
        loop = asyncio.get_running_loop()
        if due - loop.time() > 0.001:  # re-armed since: wait for the new due time
            self.header_deadline = loop.call_at(due, self._header_deadline_reached)
            return
        self._headers_too_slow()

    def cancel_header_deadline(self) -> None:
        self.header_due = None
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_due = None
        self.guard.header_timeouts += 1
        if self.transport is not None:
            self.transport.close()


class ConnectionGuard:
    """One per listening server: its connections, their deadlines and counters."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.open: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self.refused = 0
        self.header_timeouts = 0
        self.body_timeouts = 0

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        return lambda: GuardedConnection(self, server())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = self.open.get(request.transport) if request.transport else None
        if connection is not None:
            connection.disarm_header_deadline()  # aiohttp parsed the headers: they are in
        body = request.content
        timer = None
        if not body.is_eof():
            timer = asyncio.get_running_loop().call_later(
                self.limits.body_timeout_s, self._body_too_slow, body
            )
        try:
            return await handler(request)
        except BodyTimedOut:
            response = error_response(408, "body_timeout", "the request body came too slowly")
            response.force_close()
            return response
        finally:
            if timer is not None:
                timer.cancel()
            if connection is not None and body.is_eof():
                connection.arm_on_next_byte = True  # the next request's headers, if any

    def _body_too_slow(self, body: Any) -> None:
        if not body.is_eof():
            self.body_timeouts += 1
            body.set_exception(BodyTimedOut())


class BodyBudget:
    """Bytes of webhook bodies held while they are read and stored, process-wide. Each body
    reads its first `free_bytes` without asking (honest webhooks are small); beyond that
    it takes from the budget, and a body that finds it spent is refused (503)."""

    def __init__(self, limit: int, free_bytes: int = 32768):
        self.limit = limit
        self.free_bytes = free_bytes
        self.used = 0

    def account(self) -> BodyAccount:
        return BodyAccount(self)


class BodyAccount:
    """One request's share of the budget; `release()` when its body is no longer held."""

    def __init__(self, budget: BodyBudget):
        self.budget = budget
        self.taken = 0

    def grow_to(self, size: int) -> None:
        wanted = max(size - self.budget.free_bytes, 0) - self.taken
        if wanted <= 0:
            return
        if self.budget.used + wanted > self.budget.limit:
            raise BodyBudgetExhausted
        self.budget.used += wanted
        self.taken += wanted

    def release(self) -> None:
        self.budget.used -= self.taken
        self.taken = 0
