"""/signin and /track/{ticket} answer 429 with Retry-After past a per-client rate; honest
clients are never limited, and memory stays bounded."""

from __future__ import annotations

import asyncio

from gateway.web.rate_limit import TokenBuckets
from tests.gateway.web.desk.helpers import PASSWORD, hidden, sign_in


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=3, max_clients=10, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 1.0  # one a second
    assert buckets.take("b") == 0  # another client has its own bucket
    now[0] = 2.0
    assert buckets.take("a") == 0


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_clients():
    buckets = TokenBuckets(per_minute=1, burst=1, max_clients=100)
    for i in range(10_000):
        buckets.take(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets.buckets) == 100


async def test_track_answers_429_with_retry_after_past_the_rate(make_kanal):
    k = await make_kanal()
    server = k.runtime.settings.server
    server.track_burst, server.track_rate_per_minute = 10, 6
    answers = [await k.client.get("/track/KNL-AAAA-BBBB") for _ in range(12)]
    assert [r.status for r in answers] == [404] * 10 + [429] * 2
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 10
    assert "coba lagi" in await answers[-1].text()


async def test_signin_answers_429_past_the_rate_and_its_default_lets_people_sign_in(make_kanal):
    k = await make_kanal()
    await sign_in(k, name="ani")  # the defaults: an honest person is not limited
    statuses = []
    for _ in range(40):
        r = await k.client.get("/signin")
        statuses.append(r.status)
    assert statuses.count(429) > 0 and statuses[0] in (200, 303)
    r = await k.client.post("/signin", data={"name": "ani", "password": PASSWORD, "csrf": "x"})
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(make_kanal):
    k = await make_kanal()
    server = k.runtime.settings.server
    server.track_burst, server.track_rate_per_minute = 2, 1
    server.trusted_proxies = ["127.0.0.0/8"]

    async def status(forwarded: str) -> int:
        r = await k.client.get("/track/KNL-AAAA-BBBB", headers={"X-Forwarded-For": forwarded})
        return r.status

    assert [await status("198.51.100.7") for _ in range(3)] == [404, 404, 429]
    assert await status("198.51.100.8") == 404  # another citizen behind the same proxy
    # a client cannot pick a fresh address: only the hop the trusted proxy saw counts
    assert await status("203.0.113.1, 198.51.100.7") == 429


async def test_an_untrusted_forwarded_for_header_is_ignored(make_kanal):
    k = await make_kanal()
    server = k.runtime.settings.server
    server.track_burst, server.track_rate_per_minute = 2, 1
    statuses = [
        (
            await k.client.get("/track/KNL-AAAA-BBBB", headers={"X-Forwarded-For": f"10.0.0.{i}"})
        ).status
        for i in range(3)
    ]
    assert statuses == [404, 404, 429]


async def test_honest_tracking_at_a_normal_rate_is_never_limited(make_kanal):
    k = await make_kanal()
    for _ in range(20):  # a citizen reloading the page now and then, quickly
        assert (await k.client.get("/track/KNL-AAAA-BBBB")).status == 404
        await asyncio.sleep(0)
    page = await k.client.get("/signin")
    assert page.status == 200 and hidden(await page.text(), "csrf")
