"""The media fetcher's guard: allowed hosts only, never private addresses (also not by a
DNS answer that changes), streamed size cap, manual redirects, transient vs permanent."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from gateway.pipeline.fetch import (
    MediaFetcher,
    MediaFetchError,
    MediaRefused,
    accepted_type,
    address_problem,
    host_allowed,
)
from tests.gateway.pipeline.social.helpers import jpeg


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("scontent.xx.fbcdn.net", ["*.fbcdn.net"], True),
        ("fbcdn.net", ["*.fbcdn.net"], False),  # a wildcard means a subdomain
        ("evilfbcdn.net", ["*.fbcdn.net"], False),
        ("fbcdn.net.evil.com", ["*.fbcdn.net"], False),
        ("LOOKASIDE.fbsbx.com.", ["lookaside.fbsbx.com"], True),
        ("cdn.fbsbx.com", ["lookaside.fbsbx.com"], False),
        ("pbs.twimg.com", [], False),  # JAKI/LAPOR! default: nothing allowed
    ],
)
def test_host_patterns(host: str, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("157.240.1.1", None),
        ("2a03:2880:f10c::1", None),
        ("10.0.0.1", "private address"),
        ("192.168.1.10", "private address"),
        ("172.16.5.4", "private address"),
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("169.254.169.254", "link-local address"),
        ("fe80::1", "link-local address"),
        ("224.0.0.251", "multicast address"),
        ("ff02::1", "multicast address"),
        ("0.0.0.0", "non-public address"),
        ("100.64.0.1", "non-public address"),  # carrier-grade NAT
        ("::ffff:10.0.0.1", "private address"),  # IPv4-mapped
    ],
)
def test_address_classes(address: str, problem: str | None) -> None:
    assert address_problem(address) == problem


def test_the_test_flag_opens_loopback_only() -> None:
    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("10.0.0.1", allow_loopback=True) == "private address"
    assert address_problem("169.254.169.254", allow_loopback=True) == "link-local address"


def test_only_media_types_are_accepted() -> None:
    assert accepted_type(jpeg(), "text/html", None) == "image/jpeg"
    assert accepted_type(b"%PDF-1.7\n...", None, "a.pdf") == "application/pdf"
    for data in (b"<html><body>login</body></html>", b"plain words", b"\x00\x01\x02garbage"):
        with pytest.raises(MediaRefused):
            accepted_type(data, "image/jpeg", "x.jpg")


class FixedResolver(AbstractResolver):
    """A DNS that answers every name with one address (a rebinding attacker's DNS)."""

    def __init__(self, address: str):
        self.address = address
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> Any:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": port,
                "family": family,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        pass


async def start_server(routes: list[web.RouteDef]) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_an_allowed_name_resolving_to_a_private_address_is_refused() -> None:
    dns = FixedResolver("10.20.30.40")
    async with MediaFetcher(max_bytes=10_000, resolver=dns, allow_loopback=True) as fetcher:
        with pytest.raises(MediaRefused, match="private address"):
            await fetcher.fetch("https://scontent.xx.fbcdn.net/a.jpg", ["*.fbcdn.net"])
    assert dns.asked == ["scontent.xx.fbcdn.net"]


async def test_the_checked_address_is_the_one_connected_to() -> None:
    """The name resolves (once) to the loopback fake: that is where the bytes come from."""
    photo = jpeg()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=photo, content_type="image/jpeg")

    runner, port = await start_server([web.get("/a.jpg", serve)])
    try:
        dns = FixedResolver("127.0.0.1")
        async with MediaFetcher(max_bytes=10_000, resolver=dns, allow_loopback=True) as fetcher:
            got = await fetcher.fetch(f"http://cdn.fbcdn.net:{port}/a.jpg", ["*.fbcdn.net"])
        assert got.data == photo
    finally:
        await runner.cleanup()


async def test_streams_are_cut_at_the_cap_redirects_are_checked_and_5xx_is_transient() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to check up front
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"\xff" * 1024)
        return response

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://evil.example.com/x.jpg")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    routes = [
        web.get("/big", endless),
        web.get("/away", away),
        web.get("/else", elsewhere),
        web.get("/broken", broken),
    ]
    runner, port = await start_server(routes)
    base = f"http://127.0.0.1:{port}"
    hosts = ["127.0.0.1", "169.254.169.254"]
    try:
        async with MediaFetcher(max_bytes=20_000, allow_loopback=True) as fetcher:
            with pytest.raises(MediaRefused, match="too large"):
                await fetcher.fetch(f"{base}/big", hosts)
            with pytest.raises(MediaRefused, match="link-local"):
                await fetcher.fetch(f"{base}/away", hosts)
            with pytest.raises(MediaRefused, match="media_hosts"):
                await fetcher.fetch(f"{base}/else", hosts)
            with pytest.raises(MediaFetchError, match="HTTP 503"):
                await fetcher.fetch(f"{base}/broken", hosts)
            with pytest.raises(MediaRefused, match="scheme"):
                await fetcher.fetch("file:///etc/passwd", hosts)
    finally:
        await runner.cleanup()
