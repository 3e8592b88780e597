"""RSS and Atom: a feed's items, and an item that matched as a raw message (pure; no DOCTYPE or
entities are ever expanded)."""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.base import MalformedPayload, RawMessage, Sender, parse_timestamp

CONNECTOR = "media_feed"


MAX_FEED_BYTES = 5 * 1024 * 1024


MAX_ITEMS = 500


_DOCTYPE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)


_TAGS = re.compile(r"<[^>]*>")


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
