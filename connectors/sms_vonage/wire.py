"""Vonage (Nexmo) SMS API inbound webhook (`sms_vonage`, channel `sms`).

Owns the `sig` parameter check (md5hash and HMAC modes, stale `timestamp` refused) and
the GET-query / POST-form / POST-JSON fields of an inbound SMS, multipart included.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.base import (
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WireRequest,
    WireResponse,
    hmac_hex,
    parse_timestamp,
    same,
)

SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
MAX_ID_CHARS = 200
KEPT_FIELDS = ("to", "keyword", "type", "api-key", "message-timestamp", "data", "udh")


def signing_string(params: dict[str, str]) -> str:
    """`&key=value` for each parameter but `sig`, keys sorted, `&`/`=` in values as `_`."""
    return "".join(
        f"&{key}={params[key].replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )


def expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    message = signing_string(params).encode("utf-8")
    if method == "md5hash":
        # Vonage's legacy scheme is plain MD5 over the string + secret, by definition.
        return hashlib.md5(message + secret.encode("utf-8")).hexdigest()  # noqa: S324
    return hmac_hex(secret, message, method)


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise MalformedPayload(f"field {name!r} must be a string, got {type(value).__name__}")


def read_params(request: WireRequest) -> dict[str, str]:
    """The inbound parameters: GET query, POST form or POST JSON (first value wins)."""
    method = request.method.upper()
    pairs: list[tuple[str, str]]
    if method == "GET" or (method == "POST" and not request.body):
        try:
            query = urlsplit(request.url).query
            pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"query string is not UTF-8 form data: {exc}") from exc
    elif request.header("content-type").lower().startswith("application/json"):
        data = request.json()
        if not isinstance(data, dict):
            raise MalformedPayload("JSON body must be an object")
        pairs = [(str(key), _scalar(key, value)) for key, value in data.items()]
    else:
        pairs = request.form()
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    return params


def _int_field(params: dict[str, str], name: str, low: int, high: int) -> int:
    raw = params.get(name, "")
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise MalformedPayload(f"{name} must be an integer in {low}..{high}, got {raw!r}")
    return int(raw)


class VonageConnector:
    """Inbound SMS from Vonage; `signature_secret=None` runs unsigned."""

    name = "sms_vonage"
    channel = "sms"

    def __init__(
        self,
        signature_secret: str | None = None,
        signature_method: str = "md5hash",
        max_age_s: int = 300,
    ) -> None:
        if signature_method not in SIGNATURE_METHODS:
            raise ValueError(f"signature_method must be one of {SIGNATURE_METHODS}")
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.max_age_s = max_age_s

    def verify(self, request: WireRequest, now: datetime | None = None) -> None:
        """Check `sig`, then refuse a `timestamp` more than max_age_s away from `now`.

        `now` defaults to the wall clock: the protocol's verify() has no clock argument.
        """
        if self.signature_secret is None:
            return
        try:
            params = read_params(request)
        except MalformedPayload as exc:
            raise SignatureError(f"cannot read the signed parameters: {exc}") from exc
        given = params.get("sig", "").strip().lower()
        if not given:
            raise SignatureError("sig missing")
        expected = expected_signature(params, self.signature_secret, self.signature_method)
        if not same(given, expected):
            raise SignatureError("sig does not match")
        raw = params.get("timestamp", "")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            raise SignatureError("signed request without a usable timestamp")
        now = now or datetime.now(UTC)
        if abs(now.timestamp() - int(raw)) > self.max_age_s:
            raise SignatureError(f"timestamp {raw} is stale (replayed or clock skew)")

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        params = read_params(request)
        external_id = params.get("messageId", "")
        if not external_id or len(external_id) > MAX_ID_CHARS:
            raise MalformedPayload("messageId missing or longer than 200 characters")
        msisdn = params.get("msisdn", "")
        if not msisdn:
            raise MalformedPayload("msisdn missing")

        extra: dict[str, Any] = {k: params[k] for k in KEPT_FIELDS if k in params}
        try:
            received_at = parse_timestamp(params.get("message-timestamp"), now)
        except MalformedPayload:
            received_at = now  # a platform quirk must not lose the message; raw kept above
            extra["message_timestamp_unparsed"] = True

        text = "" if params.get("type") == "binary" else params.get("text", "")

        group_key = None
        part = None
        if params.get("concat", "").lower() == "true":
            total = _int_field(params, "concat-total", 1, 255)
            number = _int_field(params, "concat-part", 1, total)
            ref = params.get("concat-ref", "")
            if not ref or len(ref) > MAX_ID_CHARS:
                raise MalformedPayload("concat-ref missing")
            group_key = f"concat:{self.name}:{msisdn}:{ref}"
            part = (number, total)

        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=received_at,
                sender=Sender(user_id=msisdn, phone=international(msisdn)),
                text=text,
                group_key=group_key,
                part=part,
                extra=extra,
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return WireResponse(200, b"", "text/plain")  # Vonage resends for 24 h unless 200/204


def international(msisdn: str) -> str:
    """Vonage's `msisdn` is international without '+' for every country: E.164 is '+' and
    it. Short codes and sender names stay as sent (the phone normalizer refuses them)."""
    return f"+{msisdn}" if msisdn.isdigit() and len(msisdn) > 6 else msisdn
