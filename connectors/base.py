"""The contract every connector fulfils: wire request in, raw messages out.

A connector knows its channel's wire format and signature scheme and nothing else: it
never touches the store, the CRM or another channel. Everything here is pure.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl


class ConnectorError(Exception):
    """Base of the errors a connector raises; `reason` is the metrics label."""

    reason = "error"
    status = 400


class SignatureError(ConnectorError):
    """Missing or wrong signature: the request is not from the platform."""

    reason = "bad_signature"
    status = 401


class MalformedPayload(ConnectorError):
    """The body cannot be read as this channel's format."""

    reason = "malformed"
    status = 400


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One HTTP request as the platform sent it, before any parsing."""

    method: str
    url: str  # the public URL the platform called, query string included
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    remote: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def query_value(self, name: str, default: str = "") -> str:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def form(self) -> list[tuple[str, str]]:
        """The body as `application/x-www-form-urlencoded` pairs (raises MalformedPayload)."""
        try:
            text = self.body.decode("utf-8")
            return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload(f"body is not form-encoded: {exc}") from exc

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting
            raise MalformedPayload(f"body is not JSON: {exc}") from exc


@dataclass(frozen=True, slots=True)
class WireResponse:
    """What the webhook answers once the messages are durably stored."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent the message, as the channel identifies them (nothing normalized yet)."""

    user_id: str | None = None  # the channel's id of the sender (phone, PSID, chat id, address)
    name: str | None = None
    phone: str | None = None  # raw string as sent; the phone normalizer makes it E.164
    email: str | None = None
    handle: str | None = None  # @username on social channels


@dataclass(frozen=True, slots=True)
class Coordinates:
    lat: float
    lon: float
    accuracy_m: float | None = None
    address: str | None = None
    source: str = "device"  # device | exif


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """An attachment as it arrived: a URL to fetch later, a platform file id, or the bytes."""

    url: str | None = None
    content_type: str | None = None  # as declared by the sender; sniffed again from bytes
    filename: str | None = None
    data: bytes | None = None
    file_id: str | None = None  # e.g. Telegram file_id, resolved through the platform API


@dataclass(slots=True)
class RawMessage:
    """One citizen message, as a connector read it off the wire.

    `external_id` is the channel's own id and, with `connector`, the dedupe key.
    """

    connector: str
    channel: str
    external_id: str
    received_at: datetime  # platform timestamp when given, else arrival time (tz-aware)
    sender: Sender = field(default_factory=Sender)
    text: str = ""
    title: str | None = None
    coordinates: Coordinates | None = None
    location_hint: str | None = None  # an address or place name sent with the message
    attachments: list[AttachmentRef] = field(default_factory=list)
    category_hint: str | None = None
    confidential: bool = False
    anonymous: bool = False
    # Messages sharing a group_key are gathered into one report by the pipeline
    # (SMS parts: "concat:<msisdn>:<ref>", albums, DM conversations).
    group_key: str | None = None
    part: tuple[int, int] | None = None  # (number, total) of a multipart SMS, 1-based
    in_reply_to: tuple[str, ...] = ()  # external ids this message answers (e-mail threading)
    automated: str | None = None  # why this is machine mail (auto-reply, bounce, list)
    # message | edit | delete | comment | mention, and what chat channels send besides
    # complaints: reaction (an emoji reaction, a sticker, a contact card: a follow-up of the
    # citizen's open report, never a report), greeting (/start, "Get Started": answered with
    # a welcome, never a report), status (what became of a message kanal sent, named in
    # extra["delivery"] = {provider_message_id, state, error}; the sender is its recipient).
    kind: str = "message"
    extra: dict[str, Any] = field(default_factory=dict)  # channel fields worth keeping, JSON-safe

    def to_json(self) -> dict[str, Any]:
        # Written out by hand: dataclasses.asdict deep-copies, and this runs per webhook.
        s, c = self.sender, self.coordinates
        return {
            "connector": self.connector,
            "channel": self.channel,
            "external_id": self.external_id,
            "received_at": self.received_at.isoformat(),
            "sender": {
                "user_id": s.user_id,
                "name": s.name,
                "phone": s.phone,
                "email": s.email,
                "handle": s.handle,
            },
            "text": self.text,
            "title": self.title,
            "coordinates": None
            if c is None
            else {
                "lat": c.lat,
                "lon": c.lon,
                "accuracy_m": c.accuracy_m,
                "address": c.address,
                "source": c.source,
            },
            "location_hint": self.location_hint,
            "attachments": [
                {
                    "url": a.url,
                    "content_type": a.content_type,
                    "filename": a.filename,
                    "data": base64.b64encode(a.data).decode() if a.data else None,
                    "file_id": a.file_id,
                }
                for a in self.attachments
            ],
            "category_hint": self.category_hint,
            "confidential": self.confidential,
            "anonymous": self.anonymous,
            "group_key": self.group_key,
            "part": list(self.part) if self.part else None,
            "in_reply_to": list(self.in_reply_to),
            "automated": self.automated,
            "kind": self.kind,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RawMessage:
        coords = data.get("coordinates")
        return cls(
            connector=data["connector"],
            channel=data["channel"],
            external_id=data["external_id"],
            received_at=datetime.fromisoformat(data["received_at"]),
            sender=Sender(**(data.get("sender") or {})),
            text=data.get("text") or "",
            title=data.get("title"),
            coordinates=Coordinates(**coords) if coords else None,
            location_hint=data.get("location_hint"),
            attachments=[
                AttachmentRef(
                    **{**a, "data": base64.b64decode(a["data"]) if a.get("data") else None}
                )
                for a in data.get("attachments") or []
            ],
            category_hint=data.get("category_hint"),
            confidential=bool(data.get("confidential")),
            anonymous=bool(data.get("anonymous")),
            group_key=data.get("group_key"),
            part=(int(data["part"][0]), int(data["part"][1])) if data.get("part") else None,
            in_reply_to=tuple(data.get("in_reply_to") or ()),
            automated=data.get("automated"),
            kind=data.get("kind") or "message",
            extra=data.get("extra") or {},
        )


def repair_text(value: str) -> str:
    """`value` with what a store cannot keep as text replaced by U+FFFD: a lone surrogate
    (JSON's "\\ud800", which UTF-8 cannot encode) and NUL (which PostgreSQL refuses); a
    surrogate pair left split is joined again."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def repaired(value: Any) -> Any:
    """`repair_text` over every string of a JSON-like value (keys too)."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        return {repaired(k): repaired(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [repaired(v) for v in value]
    return value


def check_storable(message: RawMessage) -> None:
    """Raise MalformedPayload for what no store can keep and no repair may change: an id
    that is not storable text (it is the dedupe key), a time outside years 1–9999 in UTC."""
    if repair_text(message.external_id) != message.external_id:
        raise MalformedPayload("message id: not valid Unicode text")
    try:
        message.received_at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise MalformedPayload(
            f"timestamp out of range: {message.received_at.isoformat()!r}"
        ) from exc


# A secret of a connector's configuration section by key: inline, from the environment or
# from its `<key>_file`; None when unset (then the connector runs unsigned, if allowed).
Secrets = Callable[[str], str | None]


class WebhookConnector(Protocol):
    """A channel reached by webhook. Built from its own config values, nothing more."""

    name: str  # the connector's name in the configuration, e.g. "sms_twilio"

    def verify(self, request: WireRequest) -> None:
        """Raise SignatureError unless the request is signed by the platform."""

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        """Raw messages in the request (may be empty: echoes, receipts). Raise MalformedPayload."""

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        """The answer after durable storage; `tickets` matches `messages` one to one."""


# --- one HMAC helper for every channel ----------------------------------------------------


def hmac_digest(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, message, algorithm)  # one call into OpenSSL, no HMAC object


def hmac_hex(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> str:
    return hmac_digest(secret, message, algorithm).hex()


def hmac_b64(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> str:
    return base64.b64encode(hmac_digest(secret, message, algorithm)).decode()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signature strings."""
    try:
        return hmac.compare_digest(a.encode(), b.encode())
    except UnicodeEncodeError:  # lone surrogates from a hostile header: not equal
        return False


def kanal_signature(secret: str, body: bytes) -> str:
    """kanal's own scheme: `sha256=<lowercase hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac_hex(secret, body)


def verify_kanal_signature(request: WireRequest, secret: str | None) -> None:
    """Check `X-Kanal-Signature`; `secret=None` means the connector runs unsigned."""
    if secret is None:
        return
    given = request.header("x-kanal-signature")
    if not given or not same(given.strip().lower(), kanal_signature(secret, request.body)):
        raise SignatureError("X-Kanal-Signature missing or wrong")


def hub_handshake(request: WireRequest, verify_token: str | None) -> WireResponse:
    """Meta's `hub.*` subscription handshake (Messenger, Instagram, WhatsApp): echo
    `hub.challenge` verbatim when mode and verify token match, else 403."""
    mode = request.query_value("hub.mode")
    token = request.query_value("hub.verify_token")
    challenge = request.query_value("hub.challenge")
    if mode == "subscribe" and verify_token and same(token, verify_token):
        return WireResponse(200, challenge.encode(), "text/plain")
    return WireResponse(403, b"forbidden", "text/plain")


def verify_hub_signature(request: WireRequest, app_secret: str | None) -> None:
    """Meta's `X-Hub-Signature-256`: exactly "sha256=" + 64 lowercase hex (71 chars), the
    HMAC-SHA256 of the untouched raw body with the app secret; None: runs unsigned."""
    if app_secret is None:
        return
    given = request.header("x-hub-signature-256")
    if len(given) != 71 or not given.startswith("sha256="):
        raise SignatureError("X-Hub-Signature-256 missing or not sha256=<64 hex>")
    if not same(given, "sha256=" + hmac_hex(app_secret, request.body)):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def parse_timestamp(value: Any, default: datetime) -> datetime:
    """RFC 3339 / ISO 8601 strings and epoch seconds; naive times are taken as UTC."""
    if value in (None, ""):
        return default
    try:
        if isinstance(value, int | float):
            when = datetime.fromtimestamp(float(value), UTC)
        else:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        when.astimezone(UTC)  # 9999-12-31T23:59:59-23:59 parses, but is past year 9999 in UTC
    except (ValueError, OverflowError, OSError) as exc:
        raise MalformedPayload(f"bad timestamp {value!r}") from exc
    return when


class HubSigned:
    """Webhooks of one Meta app (Messenger and Instagram, WhatsApp): the `hub.*` handshake
    with the verify token, `X-Hub-Signature-256` with the app secret, and "EVENT_RECEIVED"
    once stored. A subclass reads its payload in `_messages`; `platform` names it in errors."""

    platform = "Meta"

    def __init__(self, app_secret: str | None, verify_token: str | None) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token

    def handshake(self, request: WireRequest) -> WireResponse:
        return hub_handshake(request, self.verify_token)

    def verify(self, request: WireRequest) -> None:
        verify_hub_signature(request, self.app_secret)

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        payload = request.json()
        try:
            return list(self._messages(payload, now))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise MalformedPayload(f"unexpected {self.platform} payload shape: {exc!r}") from exc

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return WireResponse(200, b"EVENT_RECEIVED", "text/plain")

    def _messages(self, payload: Any, now: datetime) -> Iterable[RawMessage]:
        raise NotImplementedError
