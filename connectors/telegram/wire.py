"""Telegram's wire: the webhook's secret header, and Update → raw messages.

`parse` (webhook) and `messages_from_updates` (getUpdates, see poll.py) share one mapping.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeGuard

from connectors.base import (
    AttachmentRef,
    Coordinates,
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WireRequest,
    WireResponse,
    parse_timestamp,
    same,
)

CONNECTOR = "telegram"
CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "channel_post", "edited_channel_post"]
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
# Besides photo[] and document: other files a citizen may send as evidence.
_FILE_FIELDS = {
    "document": "application/octet-stream",
    "video": "video/mp4",
    "animation": "video/mp4",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "video_note": "video/mp4",
}

log = logging.getLogger(__name__)


class TelegramConnector:
    """Webhook updates, verified by the secret token given to `setWebhook`."""

    name = CONNECTOR

    def __init__(self, secret_token: str | None) -> None:
        self.secret_token = secret_token

    def verify(self, request: WireRequest) -> None:
        if self.secret_token is None:
            return  # allow_unsigned, and no secret token configured
        given = request.header("x-telegram-bot-api-secret-token")
        if not given or not self.secret_token or not same(given, self.secret_token):
            raise SignatureError("X-Telegram-Bot-Api-Secret-Token missing or wrong")

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        return messages_from_update(request.json(), now)

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return WireResponse(200, b"", "text/plain")


def messages_from_update(update: Any, now: datetime) -> list[RawMessage]:
    """The raw messages in one Update (none for callback queries, polls, joins…)."""
    if not isinstance(update, dict):
        raise MalformedPayload("Telegram update is not a JSON object")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise MalformedPayload("Telegram update without an integer update_id")
    try:
        for field_name, edit in (
            ("message", False),
            ("channel_post", False),
            ("edited_message", True),
            ("edited_channel_post", True),
        ):
            if field_name in update:
                message = _message(update[field_name], update_id, field_name, edit, now)
                return [message] if message is not None else []
    except _SHAPE_ERRORS as exc:
        raise MalformedPayload(f"unexpected Telegram update shape: {exc!r}") from exc
    return []


def messages_from_updates(
    updates: Iterable[Any], now: datetime
) -> tuple[list[RawMessage], int | None]:
    """Raw messages of a getUpdates batch and the next offset (max update_id + 1).

    An update that cannot be read is logged and skipped: holding the offset back would
    make Telegram send the same batch forever.
    """
    messages: list[RawMessage] = []
    newest: int | None = None
    for update in updates:
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if isinstance(update_id, int) and not isinstance(update_id, bool):
            newest = update_id if newest is None else max(newest, update_id)
        try:
            messages.extend(messages_from_update(update, now))
        except MalformedPayload as exc:
            log.warning("telegram update %s skipped: %s", update_id, exc)
    return messages, (newest + 1 if newest is not None else None)


def _message(
    message: Any, update_id: int, field_name: str, edit: bool, now: datetime
) -> RawMessage | None:
    if not isinstance(message, dict):
        raise MalformedPayload(f"{field_name} is not an object")
    chat = message.get("chat")
    message_id = message.get("message_id")
    if not isinstance(chat, dict) or not _is_int(chat.get("id")) or not _is_int(message_id):
        raise MalformedPayload(f"{field_name} without chat.id or message_id")
    chat_id = chat["id"]
    chat_type = str(chat.get("type") or "")

    sender = _sender(message, chat)
    attachments = _attachments(message)
    coordinates, location_hint = _location(message)
    extra: dict[str, Any] = {
        "update_id": update_id,
        "chat_id": chat_id,
        "chat_type": chat_type,
        "message_id": message_id,
        "update_type": field_name,
    }
    location = message.get("location")
    if isinstance(location, dict) and location.get("live_period") is not None:
        extra["live_period"] = location.get("live_period")
    sticker = message.get("sticker")
    if isinstance(sticker, dict):
        extra["sticker"] = {k: sticker.get(k) for k in ("emoji", "file_unique_id", "set_name")}
    contact = message.get("contact")
    if isinstance(contact, dict):
        extra["contact"] = {
            k: contact.get(k) for k in ("phone_number", "first_name", "last_name", "user_id")
        }

    media_group_id = message.get("media_group_id")
    if isinstance(media_group_id, str | int) and not isinstance(media_group_id, bool):
        group_key: str | None = f"album:{chat_id}:{media_group_id}"
    elif chat_type == "private":
        group_key = f"dm:{CHANNEL}:{chat_id}"
    else:
        group_key = None

    text = _str(message.get("text")) or _str(message.get("caption"))
    reply = message.get("reply_to_message")
    in_reply_to: tuple[str, ...] = ()
    if isinstance(reply, dict) and _is_int(reply.get("message_id")):
        in_reply_to = (f"{chat_id}:{reply['message_id']}",)

    if edit:
        edit_date = message.get("edit_date")
        edit_date = edit_date if _is_int(edit_date) else message.get("date")
        # Live-location updates arrive as edits: they amend the message, never open a report.
        extra["edits"] = f"{chat_id}:{message_id}"
        external_id = f"edit:{chat_id}:{message_id}:{edit_date}"
        received_at = _epoch(edit_date, now)
        kind = "edit"
    else:
        external_id = f"{chat_id}:{message_id}"
        received_at = _epoch(message.get("date"), now)
        kind = _kind(message, text, attachments, coordinates)

    return RawMessage(
        connector=CONNECTOR,
        channel=CHANNEL,
        external_id=external_id,
        received_at=received_at,
        sender=sender,
        text=text,
        coordinates=coordinates,
        location_hint=location_hint,
        attachments=attachments,
        group_key=group_key,
        in_reply_to=in_reply_to,
        kind=kind,
        extra=extra,
    )


def _kind(
    message: dict[str, Any],
    text: str,
    attachments: list[AttachmentRef],
    coordinates: Coordinates | None,
) -> str:
    """`/start` (the bot's Start button) is a greeting; a sticker or a shared contact with
    nothing else is a reaction: neither is ever a report of its own."""
    if text.split(maxsplit=1)[:1] == ["/start"] or text.startswith("/start@"):
        return "greeting"
    alone = not text and not attachments and coordinates is None
    if alone and any(isinstance(message.get(key), dict) for key in ("sticker", "contact")):
        return "reaction"
    return "message"


def _sender(message: dict[str, Any], chat: dict[str, Any]) -> Sender:
    user: dict[str, Any] = message.get("from") or {}
    if not isinstance(user, dict) or not user:
        # Channel posts are signed by the channel (sender_chat), not by a person.
        sender_chat = message.get("sender_chat")
        user = sender_chat if isinstance(sender_chat, dict) else chat
        name = _str(user.get("title")) or None
    else:
        parts = [_str(user.get("first_name")), _str(user.get("last_name"))]
        name = " ".join(p for p in parts if p) or None
    user_id = user.get("id")
    phone = None
    contact = message.get("contact")
    # Only the sender's own shared contact is their phone; anyone else's stays in extra.
    if isinstance(contact, dict) and _is_int(user_id) and contact.get("user_id") == user_id:
        phone = _str(contact.get("phone_number")) or None
    return Sender(
        user_id=str(user_id) if _is_int(user_id) else None,
        name=name,
        phone=phone,
        handle=_str(user.get("username")) or None,
    )


def _attachments(message: dict[str, Any]) -> list[AttachmentRef]:
    attachments: list[AttachmentRef] = []
    photos = message.get("photo")
    if isinstance(photos, list):
        sizes = [p for p in photos if isinstance(p, dict) and _str(p.get("file_id"))]
        if sizes:
            largest = max(sizes, key=_photo_area)
            attachments.append(AttachmentRef(file_id=largest["file_id"], content_type="image/jpeg"))
    for field_name, default_type in _FILE_FIELDS.items():
        file = message.get(field_name)
        if isinstance(file, dict) and _str(file.get("file_id")):
            attachments.append(
                AttachmentRef(
                    file_id=file["file_id"],
                    content_type=_str(file.get("mime_type")) or default_type,
                    filename=_str(file.get("file_name")) or None,
                )
            )
    return attachments


def _photo_area(photo: dict[str, Any]) -> tuple[float, float]:
    width, height, size = photo.get("width"), photo.get("height"), photo.get("file_size")
    area = width * height if _is_int(width) and _is_int(height) else 0
    return float(area), float(size) if _is_int(size) else 0.0


def _location(message: dict[str, Any]) -> tuple[Coordinates | None, str | None]:
    venue = message.get("venue")
    location = message.get("location")
    hint = None
    if isinstance(venue, dict):
        parts = [_str(venue.get("title")), _str(venue.get("address"))]
        hint = ", ".join(p for p in parts if p) or None
        if isinstance(venue.get("location"), dict):
            location = venue["location"]
    if not isinstance(location, dict):
        return None, hint
    lat, lon = location.get("latitude"), location.get("longitude")
    accuracy = location.get("horizontal_accuracy")
    if not (_is_number(lat) and _is_number(lon)):
        return None, hint
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, hint
    return (
        Coordinates(
            lat=float(lat),
            lon=float(lon),
            accuracy_m=float(accuracy) if _is_number(accuracy) else None,
            address=hint,
        ),
        hint,
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _epoch(value: Any, default: datetime) -> datetime:
    return parse_timestamp(value if _is_number(value) else None, default)
