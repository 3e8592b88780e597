"""Media monitoring: the poller of `channels.media.feeds` (RSS 2.0, RSS 1.0 and Atom).

Each feed is fetched with a conditional GET (ETag / Last-Modified kept in kv_state). An item
is taken in as a `media` report (connector `media_feed`, external id = guid or link) when it
names a complaint word from `channels.media.keywords` AND a Jakarta place from the
gazetteer; the (connector, external id) key keeps it from ever being taken twice. The feed
itself is fetched and read by connectors/media_feed (no DOCTYPE, no entity expansion).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

import aiohttp

from connectors.base import MalformedPayload, WireRequest
from connectors.media_feed.poll import fetch_feed
from connectors.media_feed.wire import CONNECTOR, FeedError, item_message, parse_feed
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw
from normalizers.geo import AreaIndex, name_key

log = logging.getLogger("kanal.feeds")


@dataclass
class FeedCounts:
    """Per feed URL, how often it answered "not modified" (conditional GET worked)."""

    not_modified: dict[str, int] = field(default_factory=dict)


FETCH_TIMEOUT_S = 30.0
_WORDS = re.compile(r"[0-9a-z]+")


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


# --- the poller -----------------------------------------------------------------------------


def _state_key(url: str) -> str:
    return "feed:" + hashlib.sha256(url.encode()).hexdigest()[:40]


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
