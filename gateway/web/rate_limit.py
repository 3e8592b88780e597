"""Per-client rate limits of the public pages (`/signin`, `/track/{ticket}`):
a token bucket per client address, in memory, for as many clients as configured (the
least recently seen are forgotten first, so memory stays bounded whatever the traffic).

The client is the remote address, or behind `server.trusted_proxies` the right-most
X-Forwarded-For address that is not itself a trusted proxy (gateway/webhooks.py trusts
the same proxies for X-Forwarded-Host). Each replica counts for itself.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.base.runtime import Runtime
from gateway.intake.webhooks import trusted_proxy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenBuckets:
    """`burst` requests at once, refilled at `per_minute`; one bucket per key, at most
    `max_clients` of them (the least recently used is dropped: it would be full by now or
    belongs to a client that has gone)."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def take(self, key: str) -> float:
        """0 when the request may go on (one token taken), else the seconds until it may."""
        now = self.clock()
        tokens, at = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[key] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


def client_address(runtime: Runtime, request: web.Request) -> str:
    remote = request.remote or ""
    trusted = runtime.settings.server.trusted_proxies
    if not trusted or not trusted_proxy(remote, trusted):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not trusted_proxy(hop, trusted):
            return hop
    return remote


class RateLimits:
    """This process's token buckets, by the name of what they limit (signin, track)."""

    def __init__(self) -> None:
        self.by_name: dict[str, TokenBuckets] = {}


def limited(
    runtime: Runtime, name: str, respond: Callable[[web.Request, int], web.Response]
) -> Callable[[Handler], Handler]:
    """Wrap a handler: past the client's rate of `name` (`server.<name>_rate_per_minute`,
    `server.<name>_burst`), `respond(request, retry_after_seconds)` answers instead (429)."""

    def buckets() -> TokenBuckets:
        def made() -> TokenBuckets:
            server = runtime.settings.server
            return TokenBuckets(
                getattr(server, f"{name}_rate_per_minute"),
                getattr(server, f"{name}_burst"),
                server.rate_limit_clients,
            )

        kept = runtime.part(RateLimits, RateLimits).by_name
        if name not in kept:
            kept[name] = made()
        return kept[name]

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            wait = buckets().take(client_address(runtime, request))
            if wait > 0:
                response = respond(request, max(1, math.ceil(wait)))
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
            return await handler(request)

        return wrapped

    return decorate
