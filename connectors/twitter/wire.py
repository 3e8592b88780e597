"""X (Twitter): webhook CRC and signature, AAA and XAA payloads, and the v2 polling mappings.

All pure; polling itself (tweepy, the DM budget) is in poll.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from connectors.base import (
    AttachmentRef,
    ConnectorError,
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WireRequest,
    WireResponse,
    hmac_b64,
    parse_timestamp,
    same,
)
from connectors.json_fields import (
    coordinates_at,
    id_text,
    json_array,
    json_object,
    sub_object,
    text_or_empty,
)

CONNECTOR = "twitter"
CHANNEL = "twitter"
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


class TwitterApiError(ConnectorError):
    """The X API refused or failed a poller call."""

    reason = "api_error"
    status = 502

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status


class RateLimited(TwitterApiError):
    """429 from the X API; `reset_at` is when the window resets (None when not told)."""

    reason = "rate_limited"
    status = 429

    def __init__(self, reset_at: datetime | None) -> None:
        super().__init__(f"X API rate limit reached; resets at {reset_at}", 429)
        self.reset_at = reset_at


# --- webhook ------------------------------------------------------------------------------


class TwitterConnector:
    """Account Activity (AAA) and X Activity (XAA) webhooks for the accounts we own."""

    name = CONNECTOR

    def __init__(self, consumer_secret: str | None, own_user_ids: set[str] | None = None) -> None:
        self.consumer_secret = consumer_secret
        self.own_user_ids = set(own_user_ids or ())

    def crc(self, request: WireRequest) -> WireResponse:
        """Answer the challenge-response check with the consumer secret."""
        token = request.query_value("crc_token")
        if not token:
            raise MalformedPayload("crc_token missing")
        if self.consumer_secret is None:
            raise SignatureError("no consumer secret configured: the CRC cannot be answered")
        body = {"response_token": "sha256=" + hmac_b64(self.consumer_secret, token.encode())}
        return WireResponse(200, json.dumps(body).encode(), "application/json")

    def verify(self, request: WireRequest) -> None:
        if self.consumer_secret is None:
            return  # allow_unsigned, and no consumer secret configured
        given = request.header("x-twitter-webhooks-signature")
        if not given.startswith("sha256="):
            raise SignatureError("x-twitter-webhooks-signature missing")
        if not same(given, "sha256=" + hmac_b64(self.consumer_secret, request.body)):
            raise SignatureError("x-twitter-webhooks-signature does not match the body")

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        payload = request.json()
        if not isinstance(payload, dict):
            raise MalformedPayload("X webhook body is not a JSON object")
        try:
            if isinstance(payload.get("data"), dict) and "event_type" in payload["data"]:
                return self._xaa(payload["data"], now)
            if "for_user_id" in payload:
                return self._aaa(payload, now)
        except _SHAPE_ERRORS as exc:
            raise MalformedPayload(f"unexpected X payload shape: {exc!r}") from exc
        raise MalformedPayload("neither an AAA nor an XAA payload")

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return WireResponse(200, b"", "text/plain")

    def _own(self, for_user_id: str | None) -> set[str]:
        return self.own_user_ids | ({for_user_id} if for_user_id else set())

    def _aaa(self, payload: dict[str, Any], now: datetime) -> list[RawMessage]:
        for_user_id = id_text(payload.get("for_user_id"))
        own = self._own(for_user_id)
        users = sub_object(payload, "users")
        messages: list[RawMessage] = []
        for event in json_array(
            payload.get("direct_message_events") or [], "direct_message_events"
        ):
            message = _aaa_dm(json_object(event, "DM event"), users, own, for_user_id, now)
            if message is not None:
                messages.append(message)
        for tweet in json_array(payload.get("tweet_create_events") or [], "tweet_create_events"):
            message = _v1_tweet(json_object(tweet, "tweet"), own, now)
            if message is not None:
                messages.append(message)
        # favorite, follow, typing, read, delete… events are not citizen messages.
        return messages

    def _xaa(self, data: dict[str, Any], now: datetime) -> list[RawMessage]:
        event_type = data.get("event_type")
        payload = json_object(data.get("payload") or {}, "payload")
        includes = data.get("includes") or payload.get("includes") or {}
        includes = includes if isinstance(includes, dict) else {}
        filter_ = sub_object(data, "filter")
        for_user_id = id_text(filter_.get("user_id"))
        own = self._own(for_user_id)
        messages: list[RawMessage] = []
        if event_type == "dm.received":
            events = payload.get("direct_message_events")
            if events is None:
                events = [payload.get("data", payload)]
            users = sub_object(payload, "users")
            users = {**_users_by_id(includes.get("users")), **users}
            for event in json_array(events, "direct_message_events"):
                event = json_object(event, "DM event")
                if "message_create" in event:
                    message = _aaa_dm(event, users, own, for_user_id, now)
                else:  # a v2 DM event
                    message = _v2_dm(event, includes, own, for_user_id, now)
                if message is not None:
                    messages.append(message)
        elif event_type == "post.mention.create":
            post = json_object(payload.get("data", payload), "post")
            message = _v2_post(post, includes, own, now)
            if message is not None:
                messages.append(message)
        for message in messages:
            message.extra["event_uuid"] = id_text(data.get("event_uuid"))
            message.extra["event_type"] = event_type
        return messages


# --- polling mappings (pure) ----------------------------------------------------------------


def messages_from_dm_events(
    response_json: dict[str, Any], own_user_id: str, now: datetime
) -> list[RawMessage]:
    """Raw messages in a `GET /2/dm_events` answer; our own sends are dropped."""
    return _v2_messages(
        response_json,
        "dm_events",
        "DM event",
        lambda event, includes: _v2_dm(event, includes, {own_user_id}, own_user_id, now),
    )


def messages_from_mentions(
    response_json: dict[str, Any], own_user_id: str, now: datetime
) -> list[RawMessage]:
    """Raw messages in a `GET /2/users/:id/mentions` answer; own posts and reposts dropped."""
    return _v2_messages(
        response_json,
        "mentions",
        "post",
        lambda post, includes: _v2_post(post, includes, {own_user_id}, now),
    )


def _v2_messages(
    response_json: dict[str, Any],
    kind: str,
    item: str,
    to_message: Callable[[dict[str, Any], dict[str, Any]], RawMessage | None],
) -> list[RawMessage]:
    """Each item of a v2 list answer's `data`, mapped with its `includes`; None dropped."""
    try:
        response = json_object(response_json, "response")
        includes = sub_object(response, "includes")
        messages = []
        for entry in json_array(response.get("data") or [], "data"):
            message = to_message(json_object(entry, item), includes)
            if message is not None:
                messages.append(message)
        return messages
    except _SHAPE_ERRORS as exc:
        raise MalformedPayload(f"unexpected {kind} shape: {exc!r}") from exc


# --- the shapes ------------------------------------------------------------------------------


def _aaa_dm(
    event: dict[str, Any],
    users: dict[str, Any],
    own: set[str],
    for_user_id: str | None,
    now: datetime,
) -> RawMessage | None:
    if event.get("type") != "message_create":
        return None
    event_id = id_text(event.get("id"))
    create = json_object(event.get("message_create"), "message_create")
    sender_id = id_text(create.get("sender_id"))
    if not event_id or not sender_id:
        raise MalformedPayload("DM event without id or sender_id")
    if sender_id in own:
        return None
    target = sub_object(create, "target")
    recipient_id = id_text(target.get("recipient_id")) or for_user_id
    data = json_object(create.get("message_data") or {}, "message_data")
    text = text_or_empty(data.get("text"))
    attachments: list[AttachmentRef] = []
    attachment = data.get("attachment")
    if isinstance(attachment, dict) and isinstance(attachment.get("media"), dict):
        media = attachment["media"]
        ref = _v1_media(media)
        if ref is not None:
            attachments.append(ref)
        text = _strip_link(text, text_or_empty(media.get("url")))
    user = sub_object(users, sender_id)
    return RawMessage(
        connector=CONNECTOR,
        channel=CHANNEL,
        external_id=f"dm:{event_id}",
        received_at=_epoch_ms(event.get("created_timestamp"), now),
        sender=Sender(
            user_id=sender_id,
            name=text_or_empty(user.get("name")) or None,
            handle=text_or_empty(user.get("screen_name") or user.get("username")) or None,
        ),
        text=text,
        attachments=attachments,
        group_key=f"dm:{CHANNEL}:{recipient_id}:{sender_id}",
        extra={"for_user_id": for_user_id},
    )


def _v2_dm(
    event: dict[str, Any],
    includes: dict[str, Any],
    own: set[str],
    own_user_id: str | None,
    now: datetime,
) -> RawMessage | None:
    if event.get("event_type", "MessageCreate") != "MessageCreate":
        return None
    event_id = id_text(event.get("id"))
    sender_id = id_text(event.get("sender_id"))
    if not event_id or not sender_id:
        raise MalformedPayload("DM event without id or sender_id")
    if sender_id in own:
        return None
    users = _users_by_id(includes.get("users"))
    user = users.get(sender_id, {})
    media = _by_key(includes.get("media"), "media_key")
    attachments = [
        ref
        for key in _media_keys(event.get("attachments"))
        if (ref := _v2_media(media.get(key))) is not None
    ]
    return RawMessage(
        connector=CONNECTOR,
        channel=CHANNEL,
        external_id=f"dm:{event_id}",
        received_at=parse_timestamp(text_or_empty(event.get("created_at")) or None, now),
        sender=Sender(
            user_id=sender_id,
            name=text_or_empty(user.get("name")) or None,
            handle=text_or_empty(user.get("username")) or None,
        ),
        text=text_or_empty(event.get("text")),
        attachments=attachments,
        group_key=f"dm:{CHANNEL}:{own_user_id}:{sender_id}",
        extra={
            "for_user_id": own_user_id,
            "dm_conversation_id": text_or_empty(event.get("dm_conversation_id")) or None,
        },
    )


def _v1_tweet(tweet: dict[str, Any], own: set[str], now: datetime) -> RawMessage | None:
    tweet_id = id_text(tweet.get("id_str") or tweet.get("id"))
    user = json_object(tweet.get("user") or {}, "user")
    author_id = id_text(user.get("id_str") or user.get("id"))
    if not tweet_id:
        raise MalformedPayload("tweet without id_str")
    if author_id in own or "retweeted_status" in tweet:
        return None
    extended = sub_object(tweet, "extended_tweet")
    if tweet.get("truncated") and text_or_empty(extended.get("full_text")):
        text = text_or_empty(extended.get("full_text"))
        media_source = extended
    else:
        text = text_or_empty(tweet.get("full_text") or tweet.get("text"))
        media_source = tweet
    entities = media_source.get("extended_entities") or tweet.get("extended_entities") or {}
    attachments: list[AttachmentRef] = []
    if isinstance(entities, dict):
        for media in json_array(entities.get("media") or [], "media"):
            if isinstance(media, dict):
                ref = _v1_media(media)
                if ref is not None:
                    attachments.append(ref)
                text = _strip_link(text, text_or_empty(media.get("url")))
    coordinates = None
    point = tweet.get("coordinates")
    if isinstance(point, dict) and isinstance(point.get("coordinates"), list):
        lon_lat = point["coordinates"]  # GeoJSON: [longitude, latitude]
        if len(lon_lat) == 2:
            coordinates = coordinates_at(lon_lat[1], lon_lat[0])
    geo = tweet.get("geo")
    if coordinates is None and isinstance(geo, dict) and isinstance(geo.get("coordinates"), list):
        lat_lon = geo["coordinates"]  # deprecated field: [latitude, longitude]
        if len(lat_lon) == 2:
            coordinates = coordinates_at(lat_lon[0], lat_lon[1])
    place = sub_object(tweet, "place")
    reply_to = id_text(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"))
    if tweet.get("timestamp_ms") is not None:
        received_at = _epoch_ms(tweet.get("timestamp_ms"), now)
    else:
        received_at = _v1_date(tweet.get("created_at"), now)
    return RawMessage(
        connector=CONNECTOR,
        channel=CHANNEL,
        external_id=f"tweet:{tweet_id}",
        received_at=received_at,
        sender=Sender(
            user_id=author_id,
            name=text_or_empty(user.get("name")) or None,
            handle=text_or_empty(user.get("screen_name")) or None,
        ),
        text=text,
        coordinates=coordinates,
        location_hint=text_or_empty(place.get("full_name")) or None,
        attachments=attachments,
        in_reply_to=(f"tweet:{reply_to}",) if reply_to else (),
        kind="mention",
        extra={"place_id": text_or_empty(place.get("id")) or None},
    )


def _v2_post(
    post: dict[str, Any], includes: dict[str, Any], own: set[str], now: datetime
) -> RawMessage | None:
    post_id = id_text(post.get("id"))
    author_id = id_text(post.get("author_id"))
    if not post_id:
        raise MalformedPayload("post without id")
    if author_id in own:
        return None
    referenced = [r for r in post.get("referenced_tweets") or [] if isinstance(r, dict)]
    if any(r.get("type") == "retweeted" for r in referenced):
        return None
    note = sub_object(post, "note_tweet")
    text = text_or_empty(note.get("text")) or text_or_empty(post.get("text"))
    user = _users_by_id(includes.get("users")).get(author_id or "", {})
    media = _by_key(includes.get("media"), "media_key")
    attachments = [
        ref
        for key in _media_keys(post.get("attachments"))
        if (ref := _v2_media(media.get(key))) is not None
    ]
    coordinates = None
    location_hint = None
    geo = sub_object(post, "geo")
    point = geo.get("coordinates")
    if isinstance(point, dict) and isinstance(point.get("coordinates"), list):
        lon_lat = point["coordinates"]  # GeoJSON: [longitude, latitude]
        if len(lon_lat) == 2:
            coordinates = coordinates_at(lon_lat[1], lon_lat[0])
    place_id = text_or_empty(geo.get("place_id")) or None
    if place_id:
        place = _by_key(includes.get("places"), "id").get(place_id, {})
        location_hint = text_or_empty(place.get("full_name")) or None
    replied = [id_text(r.get("id")) for r in referenced if r.get("type") == "replied_to"]
    return RawMessage(
        connector=CONNECTOR,
        channel=CHANNEL,
        external_id=f"tweet:{post_id}",
        received_at=parse_timestamp(text_or_empty(post.get("created_at")) or None, now),
        sender=Sender(
            user_id=author_id,
            name=text_or_empty(user.get("name")) or None,
            handle=text_or_empty(user.get("username")) or None,
        ),
        text=text,
        coordinates=coordinates,
        location_hint=location_hint,
        attachments=attachments,
        in_reply_to=tuple(f"tweet:{r}" for r in replied if r),
        kind="mention",
        extra={
            "place_id": place_id,
            "conversation_id": text_or_empty(post.get("conversation_id")) or None,
        },
    )


def _v1_media(media: dict[str, Any]) -> AttachmentRef | None:
    kind = media.get("type")
    if kind in ("video", "animated_gif"):
        info = sub_object(media, "video_info")
        url = _best_variant(info.get("variants"))
        if url:
            return AttachmentRef(url=url, content_type="video/mp4")
    url = text_or_empty(media.get("media_url_https") or media.get("media_url"))
    return AttachmentRef(url=url, content_type="image/jpeg") if url else None


def _v2_media(media: Any) -> AttachmentRef | None:
    if not isinstance(media, dict):
        return None
    if media.get("type") in ("video", "animated_gif"):
        url = _best_variant(media.get("variants"))
        if url:
            return AttachmentRef(url=url, content_type="video/mp4")
    url = text_or_empty(media.get("url") or media.get("preview_image_url"))
    return AttachmentRef(url=url, content_type="image/jpeg") if url else None


def _best_variant(variants: Any) -> str | None:
    best: tuple[int, str] | None = None
    for variant in variants if isinstance(variants, list) else []:
        if not isinstance(variant, dict) or variant.get("content_type") != "video/mp4":
            continue
        rate = variant.get("bitrate") or variant.get("bit_rate") or 0
        rate = rate if isinstance(rate, int) else 0
        url = text_or_empty(variant.get("url"))
        if url and (best is None or rate > best[0]):
            best = (rate, url)
    return best[1] if best else None


# --- small readers --------------------------------------------------------------------------


def _int_id(value: Any) -> int | None:
    text = id_text(value) if not isinstance(value, dict | list | float) else None
    return int(text) if text and text.isdigit() else None


def _users_by_id(users: Any) -> dict[str, dict[str, Any]]:
    if isinstance(users, dict):
        return {k: v for k, v in users.items() if isinstance(v, dict)}
    return _by_key(users, "id")


def _by_key(items: Any, key: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(key), str | int):
            found[str(item[key])] = item
    return found


def _media_keys(attachments: Any) -> list[str]:
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _strip_link(text: str, link: str) -> str:
    """Media arrive with their t.co link appended to the text; the attachment is enough."""
    if link and text.rstrip().endswith(link):
        return text.rstrip()[: -len(link)].rstrip()
    return text


def _epoch_ms(value: Any, default: datetime) -> datetime:
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int | float):
        raise MalformedPayload(f"bad millisecond timestamp {value!r}")
    return parse_timestamp(value / 1000, default)


def _v1_date(value: Any, default: datetime) -> datetime:
    """v1.1 `created_at`: 'Wed Oct 10 20:19:24 +0000 2018'."""
    if not isinstance(value, str) or not value:
        return default
    parts = value.split()
    if len(parts) != 6:
        raise MalformedPayload(f"bad created_at {value!r}")
    weekday, month, day, clock, zone, year = parts
    try:
        return parsedate_to_datetime(f"{weekday}, {day} {month} {year} {clock} {zone}")
    except (TypeError, ValueError) as exc:
        raise MalformedPayload(f"bad created_at {value!r}") from exc


__all__ = [
    "RateLimited",
    "TwitterApiError",
    "TwitterConnector",
    "messages_from_dm_events",
    "messages_from_mentions",
]
