"""Kannel sms-service inbound webhook (`sms_kannel`, channel `sms`).

Owns the `key` check and the three ways Kannel can call us: `get-url` (query),
a form POST with the same fields, and `post-url` (text as the body, `X-Kannel-*`
headers). Kannel SMSes our response body back to the citizen, so the answer is always
empty.

Bytes: `WireRequest.query` values are percent-decoded as latin-1 by the gateway, so
`value.encode("latin-1")` gives back the exact bytes of `%b`; the text is then decoded
with the charset Kannel declares (`%C`, else from the coding `%c`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from connectors.base import (
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WireRequest,
    WireResponse,
    parse_timestamp,
)

MAX_ID_CHARS = 200

# Charsets Kannel emits (and close aliases), mapped to Python codecs. Anything else is
# read as UTF-8 with replacement characters rather than looked up: codecs.lookup() knows
# transforms (rot13, zlib, hex) that must never run on citizen input.
CHARSETS = {
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "US-ASCII": "ascii",
    "ASCII": "ascii",
    "UTF-16BE": "utf-16-be",
    "UTF-16": "utf-16",
    "UCS-2": "utf-16-be",
    "UCS2": "utf-16-be",
    "UTF-16LE": "utf-16-le",
    "ISO-8859-1": "latin-1",
    "ISO8859-1": "latin-1",
    "LATIN1": "latin-1",
    "ISO-8859-15": "iso-8859-15",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}
CODING_CHARSETS = {"0": "utf-8", "1": "latin-1", "2": "utf-16-be"}


def latin1_bytes(value: str) -> bytes:
    """The original bytes of a latin-1-decoded query value."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise MalformedPayload("parameter is not latin-1-decoded bytes") from exc


def decode_text(data: bytes, charset: str, coding: str) -> tuple[str, dict[str, Any]]:
    """Text of the SMS and notes for `extra` (unknown charset, undecodable bytes)."""
    notes: dict[str, Any] = {}
    label = charset.strip().strip('"').upper()
    if label:
        codec = CHARSETS.get(label)
        if codec is None:
            notes["charset_unknown"] = charset
            codec = "utf-8"
    else:
        codec = CODING_CHARSETS.get(coding.strip(), "utf-8")
    if coding.strip() == "1":  # 8-bit: may be binary; keep the bytes as they came
        notes["data_hex"] = data.hex()
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        notes["text_decode_errors"] = True
    return text.removeprefix("\ufeff"), notes


def concat_udh(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, number) from a concatenation UDH (IEI 0x00 or 0x08), else None."""
    if not udh or udh[0] != len(udh) - 1:
        return None
    index = 1
    while index + 1 < len(udh):
        iei, length = udh[index], udh[index + 1]
        data = udh[index + 2 : index + 2 + length]
        if len(data) != length:
            return None
        if iei == 0x00 and length == 3:
            ref, total, number = data[0], data[1], data[2]
        elif iei == 0x08 and length == 4:
            ref, total, number = (data[0] << 8) | data[1], data[2], data[3]
        else:
            index += 2 + length
            continue
        if total >= 1 and 1 <= number <= total:
            return ref, total, number
        return None
    return None


def udh_bytes(value: str) -> bytes:
    """UDH from `%u` (raw bytes, percent-encoded) or from hex (`X-Kannel-UDH`)."""
    raw = latin1_bytes(value)
    if raw and raw[0] == len(raw) - 1:
        return raw
    try:
        return bytes.fromhex(value)
    except ValueError:
        return raw


def parse_kannel_time(value: str, default: datetime) -> datetime:
    """`%T` unix seconds, or `%t` `YYYY-MM-DD+HH:MM:SS` / `YYYY-MM-DD HH:MM[:SS]` (UTC)."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        if len(value) > 12:
            raise MalformedPayload(f"bad timestamp {value!r}")
        return parse_timestamp(int(value), default)
    if len(value) > 10 and value[10] == "+":  # %t joins date and time with "+"
        value = f"{value[:10]} {value[11:]}"
    return parse_timestamp(value, default)


class KannelConnector:
    """Inbound SMS from a Kannel smsbox; `secret=None` runs unsigned (no `key` needed)."""

    name = "sms_kannel"
    channel = "sms"

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def _params(self, request: WireRequest) -> list[tuple[str, str]]:
        params = list(request.query)
        if request.method.upper() == "POST" and _is_form(request):
            try:
                body = request.body.decode("latin-1")
                params += parse_qsl(body, keep_blank_values=True, encoding="latin-1")
            except ValueError as exc:
                raise MalformedPayload(f"body is not form-encoded: {exc}") from exc
        return params

    def verify(self, request: WireRequest) -> None:
        if self.secret is None:
            return
        keys = [value for name, value in self._params(request) if name == "key"]
        if len(keys) != 1:
            raise SignatureError("key parameter missing or repeated")
        try:
            given = latin1_bytes(keys[0])
        except MalformedPayload as exc:
            raise SignatureError("key parameter unreadable") from exc
        if not hmac.compare_digest(given, self.secret.encode("utf-8")):
            raise SignatureError("key parameter wrong")

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        fields: dict[str, str] = {}
        for name, value in self._params(request):
            fields.setdefault(name, value)
        post_url = request.method.upper() == "POST" and not _is_form(request)

        extra: dict[str, Any] = {}
        if post_url:
            sender = request.header("x-kannel-from") or fields.get("from", "")
            receiver = request.header("x-kannel-to") or fields.get("to", "")
            when = request.header("x-kannel-time") or fields.get("ts", "")
            coding = request.header("x-kannel-coding") or fields.get("coding", "")
            content_type = request.header("content-type")
            charset = _content_type_charset(content_type)
            if not charset and content_type.lower().startswith("application/octet-stream"):
                coding = coding or "1"
            udh = request.header("x-kannel-udh") or fields.get("udh", "")
            smsc = request.header("x-kannel-smsc") or fields.get("smsc", "")
            data = request.body
        else:
            sender = fields.get("from", "")
            receiver = fields.get("to", "")
            when = fields.get("ts", "")
            coding = fields.get("coding", "")
            charset = fields.get("charset", "")
            udh = fields.get("udh", "")
            smsc = fields.get("smsc", "")
            data = latin1_bytes(fields.get("text", ""))

        if not sender:
            raise MalformedPayload("from (sender) missing")
        sender = latin1_bytes(sender).decode("utf-8", errors="replace")
        text, notes = decode_text(data, charset, coding)
        extra.update(notes)
        if receiver:
            extra["to"] = latin1_bytes(receiver).decode("utf-8", errors="replace")
        if smsc:
            extra["smsc"] = latin1_bytes(smsc).decode("utf-8", errors="replace")
        if coding:
            extra["coding"] = coding
        if charset:
            extra["charset"] = charset

        try:
            received_at = parse_kannel_time(when, now) if when else now
        except MalformedPayload:
            received_at = now  # a misconfigured %t must not lose the message
            extra["ts_unparsed"] = when

        external_id = fields.get("id", "")
        if not external_id:
            digest = hashlib.sha256(
                b"\0".join([sender.encode("utf-8"), when.encode("utf-8", "replace"), data])
            ).hexdigest()
            external_id = f"sha256:{digest}"
            extra["external_id_derived"] = True
        elif len(external_id) > MAX_ID_CHARS:
            raise MalformedPayload("id longer than 200 characters")

        group_key = None
        part = None
        concat = concat_udh(udh_bytes(udh)) if udh else None
        if udh:
            extra["udh_hex"] = udh_bytes(udh).hex()
        if concat:
            ref, total, number = concat
            group_key = f"concat:{self.name}:{sender}:{ref}"
            part = (number, total)

        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=received_at,
                sender=Sender(user_id=sender, phone=sender),
                text=text,
                group_key=group_key,
                part=part,
                extra=extra,
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        # Kannel would SMS any body back to the citizen: answer with nothing at all.
        return WireResponse(200, b"", "text/plain")


def _is_form(request: WireRequest) -> bool:
    return request.header("content-type").lower().startswith("application/x-www-form-urlencoded")


def _content_type_charset(content_type: str) -> str:
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return ""
