"""Sign social-platform webhooks the way Meta, X and Telegram do, and run table cases.

The signatures are computed with the standard library straight from the documented
schemes (PROTOCOLS §1, §2, §4), not with connectors.base, so that they are an independent
witness of each connector's check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.base import ConnectorError, RawMessage, WireRequest
from tests.connectors.cases import fixture_dir

NOW = datetime(2026, 1, 10, 3, 0, 0, tzinfo=UTC)


def meta_signature(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: sha256= + lowercase hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def twitter_signature(consumer_secret: str, body: bytes) -> str:
    """`x-twitter-webhooks-signature`: sha256= + base64 HMAC-SHA256 of the raw body."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def telegram_headers(secret_token: str) -> dict[str, str]:
    """Headers Telegram sends to a webhook registered with `secret_token`."""
    return {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": secret_token,
    }


def social_wire(
    method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> WireRequest:
    """A WireRequest as the gateway builds it: query decoded, header names lower-cased."""
    parts = urlsplit(url)
    return WireRequest(
        method=method,
        url=url,
        path=parts.path,
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        remote="203.0.113.7",
    )


@dataclass
class SocialCase:
    """One row of a connector table: a request and what must come of it.

    Expectations left as None are not checked; they apply to the first message.
    """

    label: str
    request: WireRequest
    status: int = 200  # 200 stored (maybe nothing), 401 bad signature, 400 malformed
    count: int = 1
    text: str | None = None
    sender: str | None = None  # Sender.user_id
    external_id: str | None = None
    kind: str = "message"
    channel: str | None = None
    attachments: list[tuple[str | None, str | None]] | None = None  # (url or file_id, type)
    coordinates: tuple[float, float] | None = None
    location_hint: str | None = None
    group_key: str | None = None
    # anything else: asserts inside, or a predicate that must not return False
    check: Callable[[list[RawMessage]], object] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # subset of the first message's extra

    def __str__(self) -> str:
        return self.label


def run_social_case(connector: Any, case: SocialCase) -> list[RawMessage]:
    """verify + parse as the gateway does, then assert the case's expectations."""
    try:
        connector.verify(case.request)
        messages = connector.parse(case.request, NOW)
    except ConnectorError as exc:
        assert exc.status == case.status, f"{case.label}: got {exc.status} ({exc})"
        return []
    assert case.status == 200, f"{case.label}: expected {case.status}, got {messages}"
    assert len(messages) == case.count, f"{case.label}: {messages}"
    for message in messages:
        assert message.connector == connector.name
        assert message.received_at.tzinfo is not None
        json.dumps(message.to_json())  # extra stays JSON-safe
        assert RawMessage.from_json(message.to_json()) == message
    if not messages:
        return messages
    first = messages[0]
    assert first.kind == case.kind
    if case.text is not None:
        assert first.text == case.text
    if case.sender is not None:
        assert first.sender.user_id == case.sender
    if case.external_id is not None:
        assert first.external_id == case.external_id
    if case.channel is not None:
        assert first.channel == case.channel
    if case.attachments is not None:
        got = [(a.url or a.file_id, a.content_type) for a in first.attachments]
        assert got == case.attachments
    if case.coordinates is not None:
        assert first.coordinates is not None
        assert (first.coordinates.lat, first.coordinates.lon) == case.coordinates
    else:
        assert first.coordinates is None
    assert first.location_hint == case.location_hint
    assert first.group_key == case.group_key
    for key, value in case.extra.items():
        assert first.extra.get(key) == value, f"{case.label}: extra[{key!r}]"
    if case.check is not None:
        assert case.check(messages) is not False, f"{case.label}: check failed"
    return messages


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


def mutated_fixtures(connector: str) -> Any:
    """A hypothesis strategy: a recorded payload of `connector` with one to three values,
    anywhere in it, replaced by something of another type (JSON bytes)."""
    from hypothesis import strategies as st

    documents = [json.loads(p.read_bytes()) for p in sorted(fixture_dir(connector).glob("*.json"))]
    odd: Any = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats()
        | st.text(max_size=5)
        | st.builds(list)
        | st.builds(dict)
        | st.builds(lambda: [1])
        | st.builds(lambda: {"id": 1})
    )

    @st.composite
    def mutate(draw: Any) -> bytes:
        document = json.loads(json.dumps(draw(st.sampled_from(documents))))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(_paths(document)))
            document = _replace(document, path, draw(odd))
        return json.dumps(document).encode()

    return mutate()
