"""Meta webhooks: Messenger (Facebook Page inbox) and Instagram messaging, comments, mentions.

Owns the `hub.*` handshake, the `X-Hub-Signature-256` check and the mapping of the
`{"object", "entry": [...]}` envelope to raw messages. Pure: no I/O.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.base import (
    AttachmentRef,
    Coordinates,
    HubSigned,
    MalformedPayload,
    RawMessage,
    Sender,
    parse_timestamp,
)
from connectors.json_fields import (
    coordinates_at,
    id_text,
    json_array,
    json_object,
    sub_object,
    text_or_empty,
)

CHANNEL_BY_OBJECT = {"page": "facebook", "instagram": "instagram"}
# Postback payloads and button titles of Messenger's "Get Started" (pages choose the payload;
# these are the usual ones).
_STARTS = frozenset({"GET_STARTED", "GET_STARTED_PAYLOAD", "MULAI", "START"})
_START_TITLES = frozenset({"get started", "memulai", "mulai"})

# Declared type per attachment kind when the CDN URL carries no usable extension.
_CONTENT_TYPE_BY_KIND = {
    "image": "image/jpeg",
    "sticker": "image/png",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "file": "application/octet-stream",
}
# Shares that carry a link but no file of the citizen's: kept in extra, not downloaded.
_LINK_KINDS = {"fallback", "share", "story_mention", "reel", "ig_reel", "post", "ig_post"}


class MetaConnector(HubSigned):
    """Messenger + Instagram webhooks for every page / IG account in `accounts`.

    `accounts` maps the page or Instagram account id to `(channel, owner)`, from
    `[channels.meta.accounts."<id>"]`.
    """

    name = "meta"

    def __init__(
        self,
        app_secret: str | None,
        verify_token: str | None,
        accounts: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(app_secret, verify_token)
        self.accounts = dict(accounts or {})

    # --- mapping ---------------------------------------------------------------------------

    def _messages(self, payload: Any, now: datetime) -> Iterator[RawMessage]:
        if not isinstance(payload, dict):
            raise MalformedPayload("Meta body is not a JSON object")
        kind = payload.get("object")
        if kind not in CHANNEL_BY_OBJECT:
            raise MalformedPayload(f"unsupported Meta object {kind!r}")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise MalformedPayload("Meta body has no entry[] array")
        for entry in entries:
            entry = json_object(entry, "entry")
            entry_id = id_text(entry.get("id"))
            entry_time = _epoch(entry.get("time"), now)
            for list_name in ("messaging", "standby"):
                events = entry.get(list_name)
                if events is None:
                    continue
                for event in json_array(events, list_name):
                    message = self._messaging(
                        kind, entry_id, json_object(event, list_name), entry_time, list_name
                    )
                    if message is not None:
                        yield message
            changes = entry.get("changes")
            if changes is not None:
                for change in json_array(changes, "changes"):
                    message = self._change(
                        kind, entry_id, json_object(change, "change"), entry_time
                    )
                    if message is not None:
                        yield message

    def _account(self, kind: str, *ids: str | None) -> tuple[str, str | None]:
        for account_id in ids:
            if account_id and account_id in self.accounts:
                channel, owner = self.accounts[account_id]
                return channel, owner
        return CHANNEL_BY_OBJECT[kind], None

    def _messaging(
        self,
        kind: str,
        entry_id: str | None,
        event: dict[str, Any],
        entry_time: datetime,
        list_name: str,
    ) -> RawMessage | None:
        sender_id = id_text(json_object(event.get("sender") or {}, "sender").get("id"))
        recipient_id = (
            id_text(json_object(event.get("recipient") or {}, "recipient").get("id")) or entry_id
        )
        received_at = _epoch(event.get("timestamp"), entry_time)
        channel, owner = self._account(kind, recipient_id, entry_id)
        extra: dict[str, Any] = {"owner": owner, "entry_id": entry_id, "recipient_id": recipient_id}
        if list_name == "standby":
            extra["standby"] = True
        base: dict[str, Any] = {
            "connector": self.name,
            "channel": channel,
            "received_at": received_at,
            "sender": Sender(user_id=sender_id),
            "group_key": f"dm:{channel}:{recipient_id}:{sender_id}",
            "extra": extra,
        }

        if "message" in event:
            message = json_object(event["message"], "message")
            if message.get("is_echo"):
                return None  # our own outbound copy
            if not sender_id:
                raise MalformedPayload("message without sender.id")
            mid = text_or_empty(message.get("mid"))
            if not mid:
                raise MalformedPayload("message without mid")
            if message.get("is_deleted"):
                extra["deletes"] = mid
                return RawMessage(external_id=f"delete:{mid}", kind="delete", **base)
            return self._message(mid, message, base)

        if "postback" in event:
            postback = json_object(event["postback"], "postback")
            if not sender_id:
                raise MalformedPayload("postback without sender.id")
            mid = text_or_empty(postback.get("mid"))
            external_id = mid or f"postback:{sender_id}:{int(received_at.timestamp() * 1000)}"
            payload = text_or_empty(postback.get("payload"))
            if postback.get("payload") is not None:
                extra["postback_payload"] = payload
            title = text_or_empty(postback.get("title"))
            # Messenger's "Get Started" button and Instagram's ice-breakers open a
            # conversation: a greeting, answered with how to report, never a report.
            starts = channel == "instagram" or payload.upper().replace(" ", "_") in _STARTS
            return RawMessage(
                external_id=external_id,
                text=title,
                kind="greeting" if starts or title.lower() in _START_TITLES else "message",
                **base,
            )

        if "reaction" in event:
            reaction = json_object(event["reaction"], "reaction")
            if not sender_id or reaction.get("action", "react") != "react":
                return None  # an unreact takes nothing back from the record
            mid = text_or_empty(reaction.get("mid"))
            extra["reaction"] = {
                "to": mid,
                "emoji": text_or_empty(reaction.get("emoji")),
                "reaction": text_or_empty(reaction.get("reaction")),
            }
            return RawMessage(
                external_id=f"reaction:{mid}:{sender_id}:{int(received_at.timestamp() * 1000)}",
                text=text_or_empty(reaction.get("emoji")),
                kind="reaction",
                in_reply_to=(mid,) if mid else (),
                **base,
            )

        # delivery, read, referral, optin, handover…: not citizen messages.
        return None

    def _message(self, mid: str, message: dict[str, Any], base: dict[str, Any]) -> RawMessage:
        extra = base["extra"]
        attachments: list[AttachmentRef] = []
        coordinates: Coordinates | None = None
        location_hint: str | None = None
        links: list[dict[str, Any]] = []
        for attachment in json_array(message.get("attachments") or [], "attachments"):
            attachment = json_object(attachment, "attachment")
            att_type = text_or_empty(attachment.get("type"))
            payload = attachment.get("payload")
            payload = payload if isinstance(payload, dict) else {}
            if att_type == "location":
                point = payload.get("coordinates")
                if isinstance(point, dict) and coordinates is None:
                    coordinates = coordinates_at(point.get("lat"), point.get("long"))
                title = text_or_empty(payload.get("title")) or text_or_empty(
                    attachment.get("title")
                )
                if title and title != "Pinned Location":
                    location_hint = title
            elif att_type in _CONTENT_TYPE_BY_KIND:
                url = text_or_empty(payload.get("url"))
                if url:
                    attachments.append(AttachmentRef(url=url, content_type=_guess(url, att_type)))
                sticker_id = payload.get("sticker_id")
                if isinstance(sticker_id, str | int) and not isinstance(sticker_id, bool):
                    extra["sticker_id"] = str(sticker_id)
            elif att_type in _LINK_KINDS or payload.get("url"):
                links.append({"type": att_type, "url": text_or_empty(payload.get("url")) or None})
        if links:
            extra["links"] = links
        quick_reply = message.get("quick_reply")
        if isinstance(quick_reply, dict) and quick_reply.get("payload") is not None:
            extra["quick_reply_payload"] = text_or_empty(quick_reply.get("payload"))
        if message.get("is_unsupported"):
            extra["unsupported"] = True
        reply_to = message.get("reply_to")
        in_reply_to: tuple[str, ...] = ()
        if isinstance(reply_to, dict) and text_or_empty(reply_to.get("mid")):
            in_reply_to = (text_or_empty(reply_to.get("mid")),)
        text = text_or_empty(message.get("text"))
        # A sticker sent alone (the thumbs-up button is one) is a reaction, not a report.
        sticker_alone = "sticker_id" in extra and not text and coordinates is None
        return RawMessage(
            external_id=mid,
            text=text,
            coordinates=coordinates,
            location_hint=location_hint,
            attachments=attachments,
            in_reply_to=in_reply_to,
            kind="reaction" if sticker_alone else "message",
            **base,
        )

    def _change(
        self, kind: str, entry_id: str | None, change: dict[str, Any], entry_time: datetime
    ) -> RawMessage | None:
        field_name = change.get("field")
        value = json_object(change.get("value") or {}, "change value")
        channel, owner = self._account(kind, entry_id)
        extra: dict[str, Any] = {"owner": owner, "entry_id": entry_id, "field": field_name}
        if field_name in ("comments", "live_comments"):
            comment_id = id_text(value.get("id"))
            if not comment_id:
                raise MalformedPayload("comment change without id")
            author = json_object(value.get("from") or {}, "from")
            media = sub_object(value, "media")
            extra["media_id"] = id_text(media.get("id"))
            extra["media_product_type"] = text_or_empty(media.get("media_product_type")) or None
            parent_id = id_text(value.get("parent_id"))
            return RawMessage(
                connector=self.name,
                channel=channel,
                external_id=comment_id,
                received_at=_epoch(value.get("timestamp"), entry_time),
                sender=Sender(
                    user_id=id_text(author.get("id")),
                    handle=text_or_empty(author.get("username")) or None,
                ),
                text=text_or_empty(value.get("text")),
                in_reply_to=(parent_id,) if parent_id else (),
                kind="comment",
                extra=extra,
            )
        if field_name == "mentions":
            media_id = id_text(value.get("media_id"))
            comment_id = id_text(value.get("comment_id"))
            if not (media_id or comment_id):
                raise MalformedPayload("mention change without media_id or comment_id")
            extra["media_id"] = media_id
            extra["comment_id"] = comment_id
            return RawMessage(
                connector=self.name,
                channel=channel,
                external_id=f"mention:{comment_id or media_id}",
                received_at=entry_time,
                text=text_or_empty(value.get("text")),
                kind="mention",
                extra=extra,
            )
        return None  # other subscribed fields are not citizen messages


# --- small readers that never raise anything but MalformedPayload ----------------------


def _epoch(value: Any, default: datetime) -> datetime:
    """Meta timestamps are epoch ms in `messaging[]`, epoch seconds in `changes[]` entries."""
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int | float):
        raise MalformedPayload(f"bad timestamp {value!r}")
    seconds = value / 1000 if value > 100_000_000_000 else value
    return parse_timestamp(seconds, default)


def _guess(url: str, kind: str) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    if guessed and guessed.split("/")[0] in ("image", "audio", "video", "application"):
        return guessed
    return _CONTENT_TYPE_BY_KIND[kind]
