"""WhatsApp Business Cloud API webhooks: the `hub.*` handshake, `X-Hub-Signature-256` and
the `whatsapp_business_account` envelope → raw messages. Pure: no I/O.

Every entry, change, message and status of a delivery is read. Reactions, stickers and
contact cards are kind "reaction" (never a report of their own); the statuses of messages
kanal sent are kind "status", with `extra["delivery"]` saying which message and what came
of it (see `connectors.base.RawMessage.kind`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

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

CONNECTOR = "whatsapp"
CHANNEL = "whatsapp"
OBJECT = "whatsapp_business_account"
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)

# Media message types → the type declared when the message names none.
MEDIA_TYPES = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}
# Not complaints in themselves: kept, and attached to the citizen's open report.
REACTION_TYPES = ("reaction", "sticker", "contacts")
# Fields of a contact card kept with the message (someone else's card: never the sender).
_CARD_FIELDS = ("name", "phones", "emails", "org")


class WhatsAppConnector(HubSigned):
    """Webhooks of one Meta app for every business number in `numbers` (phone_number_id →
    owner, from `[channels.whatsapp.numbers."<id>"]`)."""

    name = CONNECTOR
    platform = "WhatsApp"

    def __init__(
        self,
        app_secret: str | None,
        verify_token: str | None,
        numbers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(app_secret, verify_token)
        self.numbers = dict(numbers or {})

    # --- mapping ---------------------------------------------------------------------------

    def _messages(self, payload: Any, now: datetime) -> Iterator[RawMessage]:
        if not isinstance(payload, dict):
            raise MalformedPayload("WhatsApp body is not a JSON object")
        if payload.get("object") != OBJECT:
            raise MalformedPayload(f"unsupported object {payload.get('object')!r}")
        for entry in json_array(payload.get("entry"), "entry"):
            entry = json_object(entry, "entry")
            for change in json_array(entry.get("changes") or [], "changes"):
                change = json_object(change, "change")
                if change.get("field") != "messages":
                    continue  # account, template and quality updates: not citizens'
                value = json_object(change.get("value") or {}, "change value")
                yield from self._value(id_text(entry.get("id")), value, now)

    def _value(
        self, account: str | None, value: dict[str, Any], now: datetime
    ) -> Iterator[RawMessage]:
        metadata = sub_object(value, "metadata")
        number = id_text(metadata.get("phone_number_id"))
        names: dict[str, str] = {}
        for contact in json_array(value.get("contacts") or [], "contacts"):
            contact = json_object(contact, "contact")
            wa_id = id_text(contact.get("wa_id"))
            name = text_or_empty(sub_object(contact, "profile").get("name"))
            if wa_id and name:
                names[wa_id] = name
        extra = {
            "owner": self.numbers.get(number or ""),
            "phone_number_id": number,
            "display_phone_number": text_or_empty(metadata.get("display_phone_number")) or None,
            "account_id": account,
        }
        for message in json_array(value.get("messages") or [], "messages"):
            yield self._message(json_object(message, "message"), number, names, dict(extra), now)
        for status in json_array(value.get("statuses") or [], "statuses"):
            yield self._status(json_object(status, "status"), dict(extra), now)

    def _message(
        self,
        message: dict[str, Any],
        number: str | None,
        names: dict[str, str],
        extra: dict[str, Any],
        now: datetime,
    ) -> RawMessage:
        wamid = text_or_empty(message.get("id"))
        wa_id = id_text(message.get("from"))
        if not wamid or not wa_id:
            raise MalformedPayload("message without id or from")
        kind = text_or_empty(message.get("type"))
        extra["type"] = kind
        body = sub_object(message, kind) if kind != "contacts" else {}
        text = ""
        attachments: list[AttachmentRef] = []
        coordinates = None
        location_hint = None
        if kind == "text":
            text = text_or_empty(body.get("body"))
        elif kind in MEDIA_TYPES:
            media_id = id_text(body.get("id"))
            if media_id:
                attachments.append(
                    AttachmentRef(
                        file_id=media_id,
                        content_type=text_or_empty(body.get("mime_type")) or MEDIA_TYPES[kind],
                        filename=text_or_empty(body.get("filename")) or None,
                    )
                )
            text = text_or_empty(body.get("caption"))
            if body.get("voice") is True:
                extra["voice"] = True
            if body.get("animated") is True:
                extra["animated"] = True
        elif kind == "location":
            parts = [text_or_empty(body.get("name")), text_or_empty(body.get("address"))]
            location_hint = ", ".join(p for p in parts if p) or None
            point = coordinates_at(body.get("latitude"), body.get("longitude"))
            if point is not None:
                coordinates = Coordinates(lat=point.lat, lon=point.lon, address=location_hint)
        elif kind == "interactive":
            reply = sub_object(body, "button_reply") or sub_object(body, "list_reply")
            text = text_or_empty(reply.get("title"))
            extra["reply_id"] = text_or_empty(reply.get("id")) or None
            extra["interactive_type"] = text_or_empty(body.get("type")) or None
        elif kind == "button":
            text = text_or_empty(body.get("text"))
            extra["button_payload"] = text_or_empty(body.get("payload")) or None
        elif kind == "reaction":
            text = text_or_empty(body.get("emoji"))
            extra["reaction"] = {
                "message_id": text_or_empty(body.get("message_id")) or None,
                "emoji": text or None,  # none: the reaction was removed
            }
        elif kind == "contacts":
            cards = json_array(message.get("contacts") or [], "contacts")
            extra["contacts"] = [
                {k: card.get(k) for k in _CARD_FIELDS if k in card}
                for card in cards
                if isinstance(card, dict)
            ]
        elif kind in ("unsupported", "unknown"):
            extra["errors"] = _errors(message.get("errors"))
        context = sub_object(message, "context")
        in_reply_to: tuple[str, ...] = ()
        if text_or_empty(context.get("id")):
            in_reply_to = (text_or_empty(context.get("id")),)
            extra["context_from"] = id_text(context.get("from"))
        for key in ("referral", "referred_product"):
            if isinstance(message.get(key), dict):
                extra[key] = message[key]
        return RawMessage(
            connector=CONNECTOR,
            channel=CHANNEL,
            external_id=wamid,
            received_at=_epoch(message.get("timestamp"), now),
            sender=Sender(user_id=wa_id, name=names.get(wa_id), phone=e164(wa_id)),
            text=text,
            coordinates=coordinates,
            location_hint=location_hint,
            attachments=attachments,
            group_key=f"dm:{CHANNEL}:{number}:{wa_id}",
            in_reply_to=in_reply_to,
            kind="reaction" if kind in REACTION_TYPES else "message",
            extra=extra,
        )

    def _status(self, status: dict[str, Any], extra: dict[str, Any], now: datetime) -> RawMessage:
        wamid = text_or_empty(status.get("id"))
        state = text_or_empty(status.get("status"))
        if not wamid or not state:
            raise MalformedPayload("status without id or status")
        errors = _errors(status.get("errors"))
        extra["delivery"] = {
            "provider_message_id": wamid,
            "state": state,
            "error": "; ".join(errors) or None,
        }
        at = _epoch(status.get("timestamp"), now)
        return RawMessage(
            connector=CONNECTOR,
            channel=CHANNEL,
            external_id=f"status:{wamid}:{state}",
            received_at=at,
            sender=Sender(user_id=id_text(status.get("recipient_id"))),
            kind="status",
            extra=extra,
        )


def e164(wa_id: str) -> str | None:
    """`wa_id` is the number in international form without '+', for any country."""
    return f"+{wa_id}" if wa_id.isdigit() and 7 <= len(wa_id) <= 15 else None


def _errors(value: Any) -> list[str]:
    """`errors[]` as short lines: "131047 Re-engagement message: <details>"."""
    found = []
    for error in value if isinstance(value, list) else []:
        if not isinstance(error, dict):
            continue
        details = text_or_empty(sub_object(error, "error_data").get("details"))
        title = text_or_empty(error.get("title")) or text_or_empty(error.get("message"))
        line = " ".join(str(p) for p in (error.get("code"), title) if p not in (None, ""))
        found.append(f"{line}: {details}" if details else line)
    return found


def _epoch(value: Any, default: datetime) -> datetime:
    """WhatsApp timestamps are epoch seconds, as a string."""
    if isinstance(value, str) and value.isdigit():
        return parse_timestamp(int(value), default)
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_timestamp(value, default)
    if value is None:
        return default
    raise MalformedPayload(f"bad timestamp {value!r}")
