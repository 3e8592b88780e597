"""Sign test payloads the way each platform does, for connector and end-to-end tests.

Written straight from the platforms' documented schemes with the standard library (not
with connectors.base), so that a test signature is an independent witness of the
connector's check. Known vectors from twilio-python and the Vonage Python SDK are checked
in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.base import ConnectorError, RawMessage, WireRequest

Params = Mapping[str, str | list[str]] | Iterable[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for name, value in params.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((name, v) for v in values)
        return pairs
    return list(params)


def twilio_signature(auth_token: str, url: str, params: Params = ()) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of URL + name+value, names and values sorted.

    For GET webhooks and the JSON variant (`bodySHA256` in the URL) pass no params.
    """
    by_name: dict[str, list[str]] = {}
    for name, value in _pairs(params):
        by_name.setdefault(name, []).append(value)
    message = url + "".join(n + v for n in sorted(by_name) for v in sorted(by_name[n]))
    digest = hmac.new(auth_token.encode(), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_body_sha256(body: bytes) -> str:
    """The `bodySHA256` query value Twilio adds to the URL of a JSON webhook."""
    return hashlib.sha256(body).hexdigest()


def vonage_sig(params: Mapping[str, str], secret: str, method: str = "md5hash") -> str:
    """Vonage `sig`: `&k=v` sorted (`&`/`=` in values → `_`), md5hash or HMAC-<method>."""
    message = "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    ).encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(message + secret.encode()).hexdigest()
    return hmac.new(secret.encode(), message, getattr(hashlib, method)).hexdigest()


def vonage_signed(
    params: Mapping[str, str], secret: str, method: str = "md5hash", timestamp: int | None = None
) -> dict[str, str]:
    """`params` plus `timestamp` (now unless given) and their `sig`."""
    signed = {**params, "timestamp": str(int(time.time()) if timestamp is None else timestamp)}
    return {**signed, "sig": vonage_sig(signed, secret, method)}


def kanal_sign(secret: str, body: bytes) -> dict[str, str]:
    """Headers of kanal's own scheme: `X-Kanal-Signature: sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-kanal-signature": f"sha256={digest}"}


# --- building requests as the gateway does, and running a table of cases ------------------

NOW = datetime(2026, 1, 10, 3, 0, 0, tzinfo=UTC)


def wire(
    method: str,
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> WireRequest:
    """A WireRequest like the gateway's: query percent-decoded as latin-1, headers lower."""
    parts = urlsplit(url)
    query = tuple(parse_qsl(parts.query, keep_blank_values=True, encoding="latin-1"))
    return WireRequest(
        method=method,
        url=url,
        path=parts.path,
        query=query,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        remote="203.0.113.7",
    )


@dataclass
class Case:
    """One row of a connector table: a request and what must come of it."""

    label: str
    request: WireRequest
    status: int = 200  # 200 stored, 401 bad signature, 400 malformed
    text: str | None = None
    sender: str | None = None  # Sender.user_id
    external_id: str | None = None
    attachments: list[tuple[str | None, str | None]] | None = None  # (url, content_type)
    coordinates: tuple[float, float] | None = None
    group_key: str | None = None
    part: tuple[int, int] | None = None
    count: int = 1
    check: Callable[[RawMessage], None] | None = None  # anything else worth asserting
    now: datetime = NOW

    def __str__(self) -> str:
        return self.label


def run_case(connector: Any, case: Case) -> list[RawMessage]:
    """verify + parse as the gateway does; assert the case's expectations."""
    try:
        if "now" in inspect.signature(connector.verify).parameters:
            connector.verify(case.request, now=case.now)
        else:
            connector.verify(case.request)
        messages = connector.parse(case.request, case.now)
    except ConnectorError as exc:
        assert exc.status == case.status, f"{case.label}: got {exc.status} ({exc})"
        return []
    assert case.status == 200, f"{case.label}: expected {case.status}, got stored"
    assert len(messages) == case.count
    for message in messages:
        assert message.connector == connector.name
        assert message.received_at.tzinfo is not None
        json.dumps(message.to_json())  # extra stays JSON-safe
        assert RawMessage.from_json(message.to_json()) == message
    first = messages[0]
    if case.text is not None:
        assert first.text == case.text
    if case.sender is not None:
        assert first.sender.user_id == case.sender
    if case.external_id is not None:
        assert first.external_id == case.external_id
    if case.attachments is not None:
        assert [(a.url, a.content_type) for a in first.attachments] == case.attachments
    if case.coordinates is not None:
        assert first.coordinates is not None
        assert (first.coordinates.lat, first.coordinates.lon) == case.coordinates
    assert first.group_key == case.group_key
    assert first.part == case.part
    if case.check is not None:
        case.check(first)
    return messages
