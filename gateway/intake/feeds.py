"""Media monitoring: the poller of `channels.media.feeds` (RSS 2.0, RSS 1.0 and Atom).

Each feed is fetched with a conditional GET (ETag / Last-Modified kept in kv_state). An item
is taken in as a `media` report (connector `media_feed`, external id = guid or link) when it
names a complaint word from `channels.media.keywords` AND a Jakarta place from the
gazetteer; the (connector, external id) key keeps it from ever being taken twice.
Feeds are parsed with the standard library; a document with a DOCTYPE or ENTITY is refused
outright (no entity expansion, no billion laughs).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from connectors.base import MalformedPayload, RawMessage, Sender, WireRequest, parse_timestamp
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw
from normalizers.geo import AreaIndex, name_key

log = logging.getLogger("kanal.feeds")

CONNECTOR = "media_feed"


@dataclass
class FeedCounts:
    """Per feed URL, how often it answered "not modified" (conditional GET worked)."""

    not_modified: dict[str, int] = field(default_factory=dict)


MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_ITEMS = 500
FETCH_TIMEOUT_S = 30.0
_DOCTYPE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
_TAGS = re.compile(r"<[^>]*>")
_WORDS = re.compile(r"[0-9a-z]+")


class FeedError(Exception):
    """A feed that cannot be read (bad XML, DOCTYPE, not RSS/Atom, too large)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    guid: str | None
    link: str | None
    title: str
    summary: str
    published: datetime | None
    xml: bytes  # the item as it appeared in the feed, kept as the raw payload

    @property
    def external_id(self) -> str | None:
        key = self.guid or self.link
        if not key:
            return None
        # The dedupe column holds 255 characters; a longer id is kept as its digest.
        return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# --- parsing --------------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child(element: ET.Element, *names: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) in names:
            return child
    return None


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return "".join(element.itertext()).strip()


def plain(markup: str) -> str:
    """Feed HTML (escaped or not) as plain text."""
    return " ".join(html.unescape(_TAGS.sub(" ", html.unescape(markup))).split())


def _when(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)  # RSS: RFC 822
    except (TypeError, ValueError, IndexError):
        try:
            when = parse_timestamp(value, datetime.min)  # Atom: RFC 3339
        except MalformedPayload:
            return None
        if when == datetime.min:
            return None
    return when if when.tzinfo else None


def _atom_link(entry: ET.Element) -> str | None:
    fallback = None
    for child in entry:
        if _local(child.tag) == "link" and child.get("href"):
            if child.get("rel", "alternate") == "alternate":
                return child.get("href")
            fallback = fallback or child.get("href")
    return fallback


def parse_feed(body: bytes) -> tuple[str, list[FeedItem]]:
    """(feed title, items) of an RSS or Atom document; raises FeedError."""
    if len(body) > MAX_FEED_BYTES:
        raise FeedError("feed is larger than 5 MB")
    if _DOCTYPE.search(body):
        raise FeedError("feed has a DOCTYPE or ENTITY declaration; refused")
    try:
        # DOCTYPE/ENTITY were refused above, and ElementTree never fetches external entities.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from None
    kind = _local(root.tag)
    items: list[FeedItem] = []
    if kind in ("rss", "rdf"):
        channel = _child(root, "channel")
        title = _text(_child(channel, "title")) if channel is not None else ""
        elements = [e for e in root.iter() if _local(e.tag) == "item"]
        for element in elements[:MAX_ITEMS]:
            guid = _text(_child(element, "guid")) or element.get(
                "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
            )
            items.append(
                FeedItem(
                    guid=guid or None,
                    link=_text(_child(element, "link")) or None,
                    title=plain(_text(_child(element, "title"))),
                    summary=plain(_text(_child(element, "description", "encoded"))),
                    published=_when(_text(_child(element, "pubdate", "date"))),
                    xml=ET.tostring(element),
                )
            )
    elif kind == "feed":
        title = plain(_text(_child(root, "title")))
        for element in [e for e in root if _local(e.tag) == "entry"][:MAX_ITEMS]:
            items.append(
                FeedItem(
                    guid=_text(_child(element, "id")) or None,
                    link=_atom_link(element),
                    title=plain(_text(_child(element, "title"))),
                    summary=plain(_text(_child(element, "summary", "content"))),
                    published=_when(_text(_child(element, "published", "updated"))),
                    xml=ET.tostring(element),
                )
            )
    else:
        raise FeedError(f"not RSS or Atom (root element {kind!r})")
    return title, items


# --- matching -------------------------------------------------------------------------------


@cache
def _place_keys(areas: AreaIndex) -> dict[str, str]:
    """name_key → display name of every Jakarta place worth matching in news text."""
    places: dict[str, str] = {"jakarta": "Jakarta", "dkijakarta": "DKI Jakarta"}
    for match in areas.kelurahan_matches:
        places[name_key(match.kelurahan.name)] = match.kelurahan.name
    for kecamatan in areas.kecamatan_areas:
        places[name_key(kecamatan.name)] = kecamatan.name
    for kota in areas.kota_areas:
        short = re.sub(
            r"^(kota administrasi|kabupaten administrasi|kota|kabupaten)\s+",
            "",
            kota.name,
            flags=re.I,
        )
        places[name_key(short)] = short
    return {key: name for key, name in places.items() if len(key) >= 4}


def find_place(text: str, areas: AreaIndex) -> str | None:
    """The first Jakarta place named in `text` (one to three words), longest name first."""
    words = _WORDS.findall(name_key_words(text))
    places = _place_keys(areas)
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            found = places.get("".join(words[start : start + size]))
            if found:
                return found
    return None


def name_key_words(text: str) -> str:
    """Lower-cased, accents folded, words kept apart (name_key joins them)."""
    return " ".join(name_key(word) for word in text.split())


def find_keyword(text: str, keywords: list[str]) -> str | None:
    folded = f" {name_key_words(text)} "
    for keyword in keywords:
        key = name_key_words(keyword)
        if key and f" {key} " in folded:
            return keyword
    return None


def item_message(
    item: FeedItem,
    *,
    feed_url: str,
    feed_title: str,
    keyword: str,
    place: str,
    owner: str,
    now: datetime,
) -> RawMessage:
    text = "\n\n".join(part for part in (item.title, item.summary) if part)
    return RawMessage(
        connector=CONNECTOR,
        channel="media",
        external_id=item.external_id or "",
        received_at=item.published or now,
        sender=Sender(name=feed_title or urlsplit(feed_url).hostname),
        text=text,
        title=item.title or None,
        location_hint=place,
        extra={
            "owner": owner,
            "url": item.link,
            "feed": feed_url,
            "outlet": feed_title or urlsplit(feed_url).hostname,
            "matched": {"keyword": keyword, "place": place},
        },
    )


# --- the poller -----------------------------------------------------------------------------


def _state_key(url: str) -> str:
    return "feed:" + hashlib.sha256(url.encode()).hexdigest()[:40]


async def fetch_feed(
    session: aiohttp.ClientSession, url: str, state: dict[str, Any]
) -> tuple[bytes | None, dict[str, Any]]:
    """(body, new state) — body None when the server answered 304 Not Modified."""
    headers = {"User-Agent": "kanal-media-monitor/1"}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    async with session.get(url, headers=headers) as response:
        if response.status == 304:
            return None, state
        if response.status != 200:
            raise FeedError(f"HTTP {response.status}")
        body = await response.content.read(MAX_FEED_BYTES + 1)
        new_state = {
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
    return body, new_state


async def poll_feed(runtime: Runtime, session: aiohttp.ClientSession, url: str) -> int:
    """Fetch one feed and store its matching items; the number newly stored."""
    media = runtime.settings.channels.media
    key = _state_key(url)
    state = await runtime.store.get_state(key) or {}
    body, new_state = await fetch_feed(session, url, state)
    if body is None:
        counts = runtime.part(FeedCounts, FeedCounts).not_modified
        counts[url] = counts.get(url, 0) + 1
        return 0
    feed_title, items = parse_feed(body)
    now = runtime.store.clock()
    rows = []
    for item in items:
        if not item.external_id:
            continue
        haystack = f"{item.title} {item.summary}"
        keyword = find_keyword(haystack, media.keywords)
        if keyword is None:
            continue
        place = find_place(haystack, runtime.areas)
        if place is None:
            continue
        message = item_message(
            item,
            feed_url=url,
            feed_title=feed_title,
            keyword=keyword,
            place=place,
            owner=media.owner,
            now=now,
        )
        wire = WireRequest(
            method="GET",
            url=url,
            path=urlsplit(url).path or "/",
            query=(),
            headers={"content-type": "application/xml"},
            body=item.xml,
            remote="poll",
        )
        try:
            rows.append(to_new_raw(message, wire, "poll"))
        except MalformedPayload as exc:
            rows.append(malformed_raw(CONNECTOR, "media", wire, "poll", str(exc)))
    created = 0
    if rows:
        stored = await runtime.store.writer().submit(rows)
        created = sum(1 for s in stored if s.created)
        if created:
            runtime.metrics.raw_messages_stored.labels(CONNECTOR, "poll").inc(created)
    # Only after the items are stored: a crash before this fetches the same feed again.
    await runtime.store.set_state(key, new_state)
    log.info("feed %s: %d items, %d new matching", urlsplit(url).hostname, len(items), created)
    return created


async def poll_feeds(runtime: Runtime) -> None:
    """One round over every configured feed; one failing feed does not stop the others."""
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for url in runtime.settings.channels.media.feeds:
            try:
                await poll_feed(runtime, session, url)
            except (FeedError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("feed %s failed: %s", urlsplit(url).hostname, exc)
                failures.append(f"{urlsplit(url).hostname}: {exc}")
    if failures:
        raise FeedError("; ".join(failures)[:500])


def _enabled(runtime: Runtime) -> bool:
    media = runtime.settings.channels.media
    return bool(media.enabled and media.feeds)


FEEDS_POLLER = Poller(
    name="media_feeds",
    enabled=_enabled,
    interval_s=lambda runtime: float(runtime.settings.channels.media.poll_interval_s),
    run=poll_feeds,
)
