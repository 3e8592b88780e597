"""Recorded fixtures and connector table cases.

Every connector's recorded payloads live in tests/connectors/<connector name>/; a file is
named after the event it shows (`message__text.json`), with the channel first where one
connector serves two (`facebook__message__text.json`). `poll__*` files are records a
poller reads, not webhook bodies.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors import BY_NAME
from connectors.base import ConnectorError, RawMessage, WireRequest

FIXTURES = Path(__file__).resolve().parent


def fixture_dir(connector: str) -> Path:
    """The folder of a connector's recorded fixtures."""
    return FIXTURES / connector


def fixture(connector: str, name: str) -> bytes:
    """A recorded payload of a connector (trailing newline dropped)."""
    return (fixture_dir(connector) / name).read_bytes().rstrip(b"\n")


NOW = datetime(2026, 1, 10, 3, 0, 0, tzinfo=UTC)


def wire(
    method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> WireRequest:
    """A WireRequest like the gateway's: query percent-decoded as latin-1, headers lower."""
    parts = urlsplit(url)
    return WireRequest(
        method=method,
        url=url,
        path=parts.path,
        query=tuple(parse_qsl(parts.query, keep_blank_values=True, encoding="latin-1")),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        remote="203.0.113.7",
    )


@dataclass
class Case:
    """One row of a connector table: a request and what must come of it.

    The expectations apply to the first message; every one is asserted, None included,
    except text, sender, external_id and attachments, which None leaves unchecked, and
    channel, which None sets to the connector's first channel.
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
    part: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # subset of the first message's extra
    # anything else: asserts inside, or a predicate that must not return False
    check: Callable[[list[RawMessage]], object] | None = None
    now: datetime = NOW

    def __str__(self) -> str:
        return self.label


def run_case(connector: Any, case: Case) -> list[RawMessage]:
    """verify + parse as the gateway does, then assert the case's expectations."""
    try:
        if "now" in inspect.signature(connector.verify).parameters:
            connector.verify(case.request, now=case.now)
        else:
            connector.verify(case.request)
        messages = connector.parse(case.request, case.now)
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
    assert first.kind == case.kind, f"{case.label}: kind"
    assert first.channel == (case.channel or BY_NAME[connector.name].channel), case.label
    if case.text is not None:
        assert first.text == case.text
    if case.sender is not None:
        assert first.sender.user_id == case.sender
    if case.external_id is not None:
        assert first.external_id == case.external_id
    if case.attachments is not None:
        got = [(a.url or a.file_id, a.content_type) for a in first.attachments]
        assert got == case.attachments
    got_coordinates = first.coordinates and (first.coordinates.lat, first.coordinates.lon)
    assert got_coordinates == case.coordinates, f"{case.label}: coordinates"
    assert first.location_hint == case.location_hint, f"{case.label}: location_hint"
    assert first.group_key == case.group_key, f"{case.label}: group_key"
    assert first.part == case.part, f"{case.label}: part"
    for key, value in case.extra.items():
        assert first.extra.get(key) == value, f"{case.label}: extra[{key!r}]"
    if case.check is not None:
        assert case.check(messages) is not False, f"{case.label}: check failed"
    return messages


def value_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += value_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += value_paths(item, (*prefix, index))
    return found


def replace_value(document: Any, path: tuple[Any, ...], value: Any) -> Any:
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
            path = draw(st.sampled_from(value_paths(document)))
            document = replace_value(document, path, draw(odd))
        return json.dumps(document).encode()

    return mutate()
