"""Media monitoring: RSS/Atom feeds polled with conditional GET; items naming a complaint word
and a Jakarta place become `media` reports, each item once."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from connectors.media_feed.wire import FeedError, parse_feed
from gateway.intake.feeds import FeedCounts, find_place, poll_feeds
from gateway.store.schema import raw_messages
from normalizers.geo import default_index
from tests.connectors.cases import fixture_dir

FIXTURES = fixture_dir("media_feed")
MEDIA = """
[channels.media]
enabled = true
owner = "office:biro_pemerintahan"
keywords = ["berlubang", "banjir", "sampah", "pungutan liar"]
feeds = [{feeds}]
"""


def test_rss_and_atom_items_are_read_with_their_ids_links_and_plain_text():
    title, items = parse_feed((FIXTURES / "rss.xml").read_bytes())
    assert title == "Berita Kota"
    first = items[0]
    assert (first.guid, first.link) == (
        "berita-1001",
        "https://berita.example/2026/11/jalan-menteng",
    )
    assert first.summary == "Jalan berlubang di Jl. Teuku Umar belum diperbaiki."
    assert first.published is not None and first.published.utcoffset().total_seconds() == 7 * 3600
    assert items[1].external_id == "https://berita.example/2026/11/banjir-kampung-melayu"
    title, items = parse_feed((FIXTURES / "atom.xml").read_bytes())
    assert title == "Portal Jakarta"
    assert (items[0].external_id, items[0].link) == (
        "urn:portal:entry:77",
        "https://portal.example/sampah-tanah-abang",
    )


@pytest.mark.parametrize(
    "body",
    [
        (FIXTURES / "billion_laughs.xml").read_bytes(),
        b'<?xml version="1.0"?><!doctype rss SYSTEM "http://evil.example/x.dtd"><rss/>',
        b"<rss><channel><item><title>unclosed",
        b"<html><body>not a feed</body></html>",
    ],
)
def test_feeds_with_a_doctype_or_that_are_not_rss_or_atom_are_refused(body):
    with pytest.raises(FeedError):
        parse_feed(body)


def test_places_are_found_by_their_gazetteer_names():
    areas = default_index()
    assert find_place("Banjir di Kampung Melayu kemarin", areas) == "Kampung Melayu"
    assert find_place("Jalan rusak di Jakarta Selatan", areas) == "Jakarta Selatan"
    assert find_place("Jalan rusak di Bandung", areas) is None


class FeedServer:
    """A feed on 127.0.0.1 that honours If-None-Match like a real web server."""

    def __init__(self, body: bytes, etag: str = '"v1"'):
        self.body, self.etag = body, etag
        self.requests: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304)
        return web.Response(
            body=self.body,
            content_type="application/rss+xml",
            headers={"ETag": self.etag, "Last-Modified": "Fri, 27 Nov 2026 02:00:00 GMT"},
        )


async def stored_media(k) -> list:  # type: ignore[no-untyped-def,type-arg]
    async with k.store.read() as conn:
        rows = await conn.execute(
            select(raw_messages.c.connector, raw_messages.c.external_id).order_by(
                raw_messages.c.external_id
            )
        )
        return [tuple(r) for r in rows]


async def test_matching_items_become_media_reports_once_and_304_stores_nothing(make_kanal):
    rss = FeedServer((FIXTURES / "rss.xml").read_bytes())
    atom = FeedServer((FIXTURES / "atom.xml").read_bytes(), etag='"a1"')
    app = web.Application()
    app.router.add_get("/rss", rss.handle)
    app.router.add_get("/atom", atom.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        urls = f'"{server.make_url("/rss")}", "{server.make_url("/atom")}"'
        k = await make_kanal(extra=MEDIA.format(feeds=urls))
        await poll_feeds(k.runtime)
        assert await stored_media(k) == [
            ("media_feed", "berita-1001"),
            ("media_feed", "https://berita.example/2026/11/banjir-kampung-melayu"),
            ("media_feed", "urn:portal:entry:77"),
        ]
        await poll_feeds(k.runtime)  # both answer 304 Not Modified
        assert rss.requests[-1]["If-None-Match"] == '"v1"'
        assert rss.requests[-1]["If-Modified-Since"] == "Fri, 27 Nov 2026 02:00:00 GMT"
        assert (
            k.runtime.part(FeedCounts, FeedCounts).not_modified[str(server.make_url("/rss"))] == 1
        )
        rss.etag = '"v2"'  # the feed changed, the old items are still in it
        await poll_feeds(k.runtime)
        assert len(await stored_media(k)) == 3
        await k.drain()
        token = await k.token()
        r = await k.client.get(
            "/api/v1/reports",
            params={"channel": "media"},
            headers={"Authorization": f"Bearer {token}"},
        )
        items = (await r.json())["items"]
        assert {i["owner"] for i in items} == {"office:biro_pemerintahan"}
        assert {i["connector"] for i in items} == {"media_feed"}
        assert {i["intake"] for i in items} == {"poll"}
    finally:
        await server.close()


async def test_a_broken_feed_fails_the_round_but_the_others_are_still_read(make_kanal):
    good = FeedServer((FIXTURES / "atom.xml").read_bytes())
    bad = FeedServer((FIXTURES / "billion_laughs.xml").read_bytes())
    app = web.Application()
    app.router.add_get("/good", good.handle)
    app.router.add_get("/bad", bad.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        urls = f'"{server.make_url("/bad")}", "{server.make_url("/good")}"'
        k = await make_kanal(extra=MEDIA.format(feeds=urls))
        with pytest.raises(FeedError):
            await poll_feeds(k.runtime)
        assert await stored_media(k) == [("media_feed", "urn:portal:entry:77")]
    finally:
        await server.close()
