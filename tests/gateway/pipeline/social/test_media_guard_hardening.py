"""The media fetcher refuses every address that is not globally routable, also when an
IPv4 address hides inside an IPv6 one; credentials never follow a redirect that changes
scheme, host or port."""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.pipeline import fetch as media_fetch
from gateway.pipeline.fetch import MediaFetcher, address_problem
from tests.gateway.pipeline.social.helpers import jpeg
from tests.gateway.pipeline.social.test_media_guard import start_server


@pytest.mark.parametrize(
    "address",
    [
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254 (cloud metadata)
        "2002:0a00:0001::1",  # 6to4 around 10.0.0.1
        "2002:7f00:0001::1",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "64:ff9b::c0a8:0101",  # NAT64 around 192.168.1.1
        "64:ff9b:1::a00:1",  # NAT64 for local use
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::a9fe:a9fe",  # IPv4-compatible (deprecated)
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "fec0::1",  # site-local
        "fec0:abcd::1",
        "2001:db8::1",  # documentation
        "100::1",  # discard-only
    ],
)
def test_addresses_that_are_not_globally_routable_are_refused(address: str) -> None:
    assert address_problem(address) is not None
    assert address_problem(address, allow_loopback=True) is not None


@pytest.mark.parametrize("address", ["2002:9df0:0101::1", "64:ff9b::9df0:101", "2a03:2880::1"])
def test_public_addresses_in_those_forms_stay_reachable(address: str) -> None:
    assert address_problem(address) is None


def test_only_the_same_scheme_host_and_port_keep_credentials() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"
    assert media_fetch.same_origin(url, "https://api.twilio.com/other")
    assert not media_fetch.same_origin(
        url, "http://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"
    )
    assert not media_fetch.same_origin(url, "https://api.twilio.com:8443/x")
    assert not media_fetch.same_origin(url, "https://media.twiliocdn.com/x")


async def test_a_redirect_to_another_port_of_the_same_host_drops_the_credentials() -> None:
    seen: list[str | None] = []
    photo = jpeg()

    async def media(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=photo, content_type="image/jpeg")

    other, other_port = await start_server([web.get("/cdn.jpg", media)])

    async def signed_media(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        raise web.HTTPFound(f"http://127.0.0.1:{other_port}/cdn.jpg")

    first, port = await start_server([web.get("/media", signed_media)])
    try:
        async with MediaFetcher(max_bytes=100_000, allow_loopback=True) as fetcher:
            got = await fetcher.fetch(
                f"http://127.0.0.1:{port}/media",
                ["127.0.0.1"],
                sign=lambda _url: {"Authorization": "Basic QUMxOnRva2Vu"},
            )
        assert got.data == photo
        assert seen == ["Basic QUMxOnRva2Vu", None]
    finally:
        await first.cleanup()
        await other.cleanup()
