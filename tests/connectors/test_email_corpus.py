"""The hand-made e-mail corpus: each message's expected outcome is in expected.toml."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import RawMessage
from connectors.email.wire import parse_email
from normalizers.photo import photo_coordinates
from normalizers.sniff import sniff_content_type
from tests.connectors.cases import fixture_dir

CORPUS = fixture_dir("email")
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))
NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
MESSAGES = {path.stem: path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))}


def parsed(name: str) -> RawMessage:
    return parse_email(MESSAGES[name], received_at=NOW)


def none_if_empty(value: str) -> str | None:
    return value or None


def test_the_corpus_is_large_and_every_message_has_an_expectation() -> None:
    assert len(MESSAGES) >= 30
    assert set(MESSAGES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_parses_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    message = parsed(name)

    assert message.channel == "email"
    assert message.connector == "email"
    assert message.received_at == NOW
    assert isinstance(message.text, str)
    assert message.automated == expected.get("automated")
    # The connector carries the photos' bytes; their EXIF is the normalizers' to read.
    assert message.coordinates is None
    found = photo_coordinates(a.data for a in message.attachments if a.data)
    if "coordinates" in expected:
        assert found is not None and found.source == "exif"
        assert (round(found.lat, 4), round(found.lon, 4)) == tuple(expected["coordinates"])
    else:
        assert found is None
    # Declared types are carried; what the report will say is sniffed from the bytes.
    sniffed = [
        sniff_content_type(a.data or b"", a.content_type, a.filename) for a in message.attachments
    ]
    assert sniffed == expected.get("attachment_types", [])
    assert all(a.data is not None for a in message.attachments)

    if "text" in expected:
        assert message.text == expected["text"]
    for fragment in expected.get("text_contains", []):
        assert fragment in message.text
    for fragment in expected.get("text_not_contains", []):
        assert fragment not in message.text
    if "title" in expected:
        assert message.title == none_if_empty(expected["title"])
    if "sender_email" in expected:
        assert message.sender.email == none_if_empty(expected["sender_email"])
        email = none_if_empty(expected["sender_email"])
        assert message.sender.user_id == (email.lower() if email else None)
    if "sender_name" in expected:
        assert message.sender.name == none_if_empty(expected["sender_name"])
    if "user_id" in expected:
        assert message.sender.user_id == expected["user_id"]
    if "external_id" in expected:
        assert message.external_id == expected["external_id"]
    if "external_id_prefix" in expected:
        assert message.external_id.startswith(expected["external_id_prefix"])
    if "in_reply_to" in expected:
        assert list(message.in_reply_to) == expected["in_reply_to"]
    if "attachment_names" in expected:
        assert [a.filename for a in message.attachments] == expected["attachment_names"]
    for flag in expected.get("flags", []):
        assert flag in message.extra["flags"]
    for fragment in expected.get("defects_contain", []):
        assert any(fragment in defect for defect in message.extra["parse_defects"]), message.extra[
            "parse_defects"
        ]
    if "ticket" in expected:
        assert message.extra["ticket_in_subject"] == expected["ticket"]
    if "quote_cut" in expected:
        assert message.extra["quote_cut"] == expected["quote_cut"]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_corpus_message_is_json_safe_and_round_trips(name: str) -> None:
    message = parsed(name)
    data = message.to_json()
    import json

    encoded = json.dumps(data, ensure_ascii=False).encode("utf-8")  # no lone surrogates
    assert b"\\u0000" not in encoded
    assert RawMessage.from_json(json.loads(encoded)) == message


def test_the_same_message_always_gets_the_same_external_id() -> None:
    for name in ("missing_message_id", "garbage_headers"):
        assert parsed(name).external_id == parsed(name).external_id
    assert parsed("missing_message_id").external_id != parsed("garbage_headers").external_id


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    data = bytearray(MESSAGES[draw(st.sampled_from(sorted(MESSAGES)))])
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "insert":
            insert = draw(
                st.sampled_from(
                    [b"\r\n", b"\r\n\r\n", b"--", b"=?", b"?=", b"\x00", b"\xff", b";", b'"']
                )
                | st.binary(max_size=16)
            )
            data[position:position] = insert
        elif operation == "truncate":
            del data[position:]
        elif operation == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 200))]
    return bytes(data) or b"x"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus_message())
def test_mutated_corpus_messages_never_crash_the_parser(raw: bytes) -> None:
    message = parse_email(raw, received_at=NOW)
    assert isinstance(message.text, str)
    assert message.external_id
    assert isinstance(message.extra["parse_defects"], list)
