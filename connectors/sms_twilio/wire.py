"""Twilio Programmable Messaging inbound SMS/MMS webhook (`sms_twilio`, channel `sms`).

Owns the `X-Twilio-Signature` check and the form/query/JSON fields of an inbound message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from connectors.base import (
    AttachmentRef,
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WireRequest,
    WireResponse,
    hmac_b64,
    same,
)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_ID_CHARS = 200
MAX_MEDIA = 100  # Twilio sends at most 10; anything above this is not Twilio

# Fields kept in `extra` besides the ones the message is made of.
EXTRA_FIELDS = (
    "To",
    "AccountSid",
    "MessagingServiceSid",
    "SmsMessageSid",
    "NumSegments",
    "ApiVersion",
    "FromCity",
    "FromState",
    "FromZip",
    "FromCountry",
    "ToCity",
    "ToState",
    "ToZip",
    "ToCountry",
)

_BASE64_BODY = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def candidate_urls(url: str) -> list[str]:
    """The URL as given plus its twin with/without the scheme's default port.

    Twilio's own signing is inconsistent about the port (twilio-python's RequestValidator
    tries both), and a proxy may or may not show it.
    """
    urls = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return urls
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.hostname:
        return urls
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    if port is None:
        twin = urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{default}"))
    elif port == default:
        bare = host.rsplit(":", 1)[0]
        twin = urlunsplit(parts._replace(netloc=f"{userinfo}{bare}"))
    else:
        return urls
    if twin != url:
        urls.append(twin)
    return urls


def signing_strings(url: str, params: list[tuple[str, str]]) -> list[str]:
    """What Twilio signs: URL + each name+value, names sorted, each name's values sorted.

    Twilio's docs sort repeated values; twilio-python also drops exact repeats. Both
    readings are returned when they differ (only when a value is repeated verbatim).
    """
    by_name: dict[str, list[str]] = {}
    for name, value in params:
        by_name.setdefault(name, []).append(value)
    documented = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(by_name[name])
    )
    deduped = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(set(by_name[name]))
    )
    return [documented] if deduped == documented else [documented, deduped]


def decode_possible_base64(body: str) -> str | None:
    """The decoded text when `body` is clearly base64 of UTF-8 text, else None.

    Courier decodes Body because Twilio "sometimes sends concatenated sms as base64
    encoded MMS". Real text must never be mangled, so all of these must hold: at least 60
    characters once CR/LF are removed, no spaces, only the base64 alphabet with correct
    padding and length, strict decoding, valid UTF-8, printable (tabs and newlines
    allowed), and at least half ASCII. A real 60+ character SMS nearly always has a space
    or punctuation outside the alphabet; one that does not is left as sent.
    """
    stripped = body.replace("\r", "").replace("\n", "")
    if len(stripped) < 60 or len(stripped) % 4 or not _BASE64_BODY.fullmatch(stripped):
        return None
    try:
        decoded = base64.b64decode(stripped, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not decoded.strip() or not all(c.isprintable() or c in "\r\n\t" for c in decoded):
        return None
    if sum(1 for c in decoded if c.isascii()) * 2 < len(decoded):
        return None
    return decoded


def _url_query(url: str) -> list[tuple[str, str]]:
    """The URL's own query, decoded as UTF-8 (what Twilio sends)."""
    try:
        query = urlsplit(url).query
        return parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"query string is not UTF-8 form data: {exc}") from exc


def _is_json_variant(request: WireRequest) -> bool:
    return any(name == "bodySHA256" for name, _ in _url_query(request.url))


def _json_params(request: WireRequest) -> list[tuple[str, str]]:
    data = request.json()
    if not isinstance(data, dict):
        raise MalformedPayload("JSON body must be an object")
    params: list[tuple[str, str]] = []
    for name, value in data.items():
        if isinstance(value, str):
            params.append((name, value))
        elif isinstance(value, bool | int | float) or value is None:
            params.append((name, "" if value is None else str(value)))
        else:
            raise MalformedPayload(f"field {name!r} must be a scalar, got {type(value).__name__}")
    return params


class TwilioConnector:
    """Inbound SMS/MMS from Twilio; `auth_token=None` runs unsigned."""

    name = "sms_twilio"
    channel = "sms"

    def __init__(self, auth_token: str | None) -> None:
        self.auth_token = auth_token

    # --- verification ------------------------------------------------------------------

    def verify(self, request: WireRequest) -> None:
        if self.auth_token is None:
            return
        given = request.header("x-twilio-signature").strip()
        if not given:
            raise SignatureError("X-Twilio-Signature missing")
        # A body that cannot be read as form data is malformed (400), not unsigned (401).
        if _is_json_variant(request):
            expected_hash = dict(_url_query(request.url)).get("bodySHA256", "")
            actual_hash = hashlib.sha256(request.body).hexdigest()
            if not same(expected_hash.lower(), actual_hash):
                raise SignatureError("bodySHA256 does not match the body")
            params: list[tuple[str, str]] = []  # Twilio signs the URL alone
        elif request.method.upper() == "GET":
            params = []  # the parameters are in the signed URL
        else:
            params = request.form()
        for url in candidate_urls(request.url):
            for message in signing_strings(url, params):
                if same(given, hmac_b64(self.auth_token, message.encode("utf-8"), "sha1")):
                    return
        raise SignatureError("X-Twilio-Signature does not match")

    # --- parsing -------------------------------------------------------------------------

    def _params(self, request: WireRequest) -> dict[str, str]:
        if _is_json_variant(request) or request.header("content-type").lower().startswith(
            "application/json"
        ):
            pairs = _json_params(request)
        elif request.method.upper() == "GET":
            pairs = _url_query(request.url)
        else:
            pairs = request.form()
        params: dict[str, str] = {}
        for name, value in pairs:
            params.setdefault(name, value)  # first wins; Twilio never repeats a field
        return params

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        params = self._params(request)
        external_id = params.get("MessageSid") or params.get("SmsSid") or ""
        if not external_id:
            raise MalformedPayload("MessageSid missing")
        if len(external_id) > MAX_ID_CHARS:
            raise MalformedPayload("MessageSid longer than 200 characters")
        sender = params.get("From", "")
        if not sender:
            raise MalformedPayload("From missing")

        extra: dict[str, Any] = {k: params[k] for k in EXTRA_FIELDS if k in params}
        text = params.get("Body", "")
        decoded = decode_possible_base64(text)
        if decoded is not None:
            extra["body_base64_decoded"] = True
            text = decoded

        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=now,  # Twilio sends no timestamp with an inbound message
                sender=Sender(user_id=sender, phone=sender),
                text=text,
                attachments=_attachments(params),
                extra=extra,
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        # Empty TwiML: Twilio sends no automatic reply; tickets go out later by SMS.
        return WireResponse(200, EMPTY_TWIML, "text/xml")


def _attachments(params: dict[str, str]) -> list[AttachmentRef]:
    raw = params.get("NumMedia", "0").strip() or "0"
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise MalformedPayload(f"NumMedia is not a small count: {raw!r}")
    refs = []
    for index in range(int(raw)):
        url = params.get(f"MediaUrl{index}")
        if not url:
            continue  # counted but not sent: nothing to fetch
        refs.append(
            AttachmentRef(url=url, content_type=params.get(f"MediaContentType{index}") or None)
        )
    return refs
