"""Strict field readers of kanal's own JSON bodies (ids, strings, timestamps, reporter,
location, URL lists), shared by `jaki`, `lapor` and `sms_generic` so that all three formats
reject the same mistakes with the same messages."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from connectors.base import (
    AttachmentRef,
    Coordinates,
    MalformedPayload,
    Sender,
    WireRequest,
    WireResponse,
    parse_timestamp,
    verify_kanal_signature,
)

MAX_ID_CHARS = 200
MAX_URL_CHARS = 2048

# --- strict readers for kanal's own JSON bodies ------------------------------------------


def read_object(request: WireRequest) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise MalformedPayload("body must be a JSON object")
    return body


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def require_str(obj: dict[str, Any], field: str, path: str = "") -> str:
    value = obj.get(field)
    if not isinstance(value, str):
        raise MalformedPayload(f"{path}{field}: required string, got {_type_name(value)}")
    return value


def optional_str(obj: dict[str, Any], field: str, path: str = "") -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"{path}{field}: must be a string or null, got {_type_name(value)}")
    return value or None


def require_id(obj: dict[str, Any], field: str) -> str:
    value = require_str(obj, field)
    if not value.strip() or len(value) > MAX_ID_CHARS:
        raise MalformedPayload(f"{field}: must be a non-empty string of at most 200 characters")
    return value


def optional_bool(obj: dict[str, Any], field: str) -> bool:
    value = obj.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedPayload(f"{field}: must be true or false, got {_type_name(value)}")
    return value


def require_time(obj: dict[str, Any], field: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp (a naive one is taken as UTC, as parse_timestamp does)."""
    value = require_str(obj, field)
    if len(value) < 16 or value[10:11] not in ("T", "t", " "):
        raise MalformedPayload(f"{field}: must be an RFC 3339 date-time, got {value!r}")
    try:
        return parse_timestamp(value, now)
    except MalformedPayload as exc:
        raise MalformedPayload(f"{field}: must be an RFC 3339 date-time, got {value!r}") from exc


def _number(obj: dict[str, Any], field: str, path: str, low: float, high: float) -> float:
    value = obj.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedPayload(f"{path}{field}: required number, got {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise MalformedPayload(f"{path}{field}: number out of range") from exc
    if not math.isfinite(number) or not low <= number <= high:
        raise MalformedPayload(f"{path}{field}: must be a finite number in [{low}, {high}]")
    return number


def read_sender(obj: dict[str, Any], field: str = "reporter") -> Sender:
    """`{"name", "phone", "email"}`, each a string or null; absent or null → no sender."""
    reporter = obj.get(field)
    if reporter is None:
        return Sender()
    if not isinstance(reporter, dict):
        raise MalformedPayload(f"{field}: must be an object, got {_type_name(reporter)}")
    path = f"{field}."
    name = optional_str(reporter, "name", path)
    phone = optional_str(reporter, "phone", path)
    email = optional_str(reporter, "email", path)
    return Sender(user_id=phone or email, name=name, phone=phone, email=email)


def read_coordinates(obj: dict[str, Any], field: str = "location") -> Coordinates | None:
    """`{"lat", "lon", "accuracy_m"?, "address"?}` from the device; absent or null → None."""
    location = obj.get(field)
    if location is None:
        return None
    if not isinstance(location, dict):
        raise MalformedPayload(f"{field}: must be an object, got {_type_name(location)}")
    path = f"{field}."
    lat = _number(location, "lat", path, -90.0, 90.0)
    lon = _number(location, "lon", path, -180.0, 180.0)
    accuracy = None
    if location.get("accuracy_m") is not None:
        accuracy = _number(location, "accuracy_m", path, 0.0, 1e7)
    address = optional_str(location, "address", path)
    return Coordinates(lat=lat, lon=lon, accuracy_m=accuracy, address=address, source="device")


def read_urls(obj: dict[str, Any], field: str) -> list[AttachmentRef]:
    """A list of http(s) URLs; absent or null → []."""
    urls = obj.get(field)
    if urls is None:
        return []
    if not isinstance(urls, list):
        raise MalformedPayload(f"{field}: must be a list of URLs, got {_type_name(urls)}")
    refs = []
    for index, url in enumerate(urls):
        if (
            not isinstance(url, str)
            or not url.lower().startswith(("http://", "https://"))
            or len(url) > MAX_URL_CHARS
        ):
            raise MalformedPayload(f"{field}[{index}]: must be an http(s) URL")
        refs.append(AttachmentRef(url=url))
    return refs


def ticket_response(tickets: list[str]) -> WireResponse:
    """`{"ticket": "KNL-…"}`: one message per request in kanal's own formats."""
    body = json.dumps({"ticket": tickets[0] if tickets else None}).encode()
    return WireResponse(200, body, "application/json")


# --- the JAKI connector ------------------------------------------------------------------


class KanalSigned:
    """Connectors of kanal's own formats, signed with `X-Kanal-Signature`; a `None` secret
    means unsigned (only reachable with allow_unsigned)."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def verify(self, request: WireRequest) -> None:
        verify_kanal_signature(request, self.secret)
