"""Telegram Bot API: webhook secret check, Update → raw messages, and the getUpdates poller.

`parse`/`messages_from_updates` are pure and share one mapping; `TelegramPoller` is the
thin async wrapper around python-telegram-bot's `Bot` (PROTOCOLS §4).
"""

from __future__ import annotations

import logging
import math
import mimetypes
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeGuard

from connectors.base import (
    AttachmentRef,
    ConnectorError,
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


class TelegramApiError(ConnectorError):
    """The Bot API refused or failed a poller call; `retry_after` on flood control."""

    reason = "api_error"
    status = 502

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AttachmentTooLarge(ConnectorError):
    reason = "attachment_too_large"
    status = 413


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
        kind = "message"

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


# --- the poller (python-telegram-bot) -------------------------------------------------------


class TelegramPoller:
    """getUpdates long polling and file downloads through PTB's `Bot`.

    `async with TelegramPoller(token) as poller:` initializes and shuts down the bot.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        base_file_url: str = "https://api.telegram.org/file/bot",
        allowed_updates: list[str] | None = None,
        clock: Any = None,
    ) -> None:
        from telegram import Bot

        self.bot = Bot(token, base_url=base_url, base_file_url=base_file_url)
        self.allowed_updates = allowed_updates or list(ALLOWED_UPDATES)
        self._now = clock or _utcnow

    async def __aenter__(self) -> TelegramPoller:
        try:
            await self._guarded(self.bot.initialize())
        except TelegramApiError:
            await self.bot.shutdown()  # close the HTTP pools initialize() opened
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.bot.shutdown()

    async def fetch(
        self,
        offset: int | None,
        timeout: int = 30,  # noqa: ASYNC109 (long-poll seconds)
    ) -> tuple[list[RawMessage], int | None]:
        """One getUpdates call; returns messages and the offset to send next time."""
        updates = await self._guarded(
            self.bot.get_updates(
                offset=offset,
                timeout=timeout,
                allowed_updates=self.allowed_updates,
                read_timeout=timeout + 10,
            )
        )
        messages, next_offset = messages_from_updates(
            [update.to_dict() for update in updates], self._now()
        )
        return messages, next_offset if next_offset is not None else offset

    async def download(self, file_id: str, max_bytes: int) -> tuple[bytes, str]:
        """The file's bytes and a content type guessed from its path (getFile → file URL)."""
        file = await self._guarded(self.bot.get_file(file_id))
        if file.file_size is not None and file.file_size > max_bytes:
            raise AttachmentTooLarge(f"telegram file {file_id} is {file.file_size} bytes")
        data = bytes(await self._guarded(file.download_as_bytearray()))
        if len(data) > max_bytes:
            raise AttachmentTooLarge(f"telegram file {file_id} is {len(data)} bytes")
        content_type, _ = mimetypes.guess_type(file.file_path or "")
        return data, content_type or "application/octet-stream"

    async def _guarded(self, call: Any) -> Any:
        from telegram.error import RetryAfter, TelegramError

        try:
            return await call
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
            raise TelegramApiError(f"flood control: {exc}", retry_after=seconds) from exc
        except TelegramError as exc:
            raise TelegramApiError(f"Bot API error: {exc}") from exc


def _utcnow() -> datetime:
    return datetime.now(UTC)
