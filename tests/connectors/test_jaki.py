"""JAKI (JakLapor) reports: device GPS, photos, category, strict types, ticket answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, RawMessage, WireRequest
from connectors.jaki.wire import JakiConnector
from tests.connectors.cases import NOW, Case, fixture, run_case, wire
from tests.connectors.signing import kanal_sign

SECRET = "jaki-secret"
URL = "https://gw.example.id/webhooks/jaki"
GEO = json.loads(fixture("jaki", "geo_with_photos.json"))


def signed(body: bytes | dict[str, object], secret: str = SECRET) -> WireRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return wire("POST", URL, raw, {"content-type": "application/json", **kanal_sign(secret, raw)})


def with_location(**changes: object) -> dict[str, object]:
    return {**GEO, "location": {**GEO["location"], **changes}}


def geo_check(messages: list[RawMessage]) -> None:
    message = messages[0]
    assert message.coordinates.source == "device"
    assert message.coordinates.accuracy_m == 12.5
    assert (
        message.coordinates.address == message.location_hint == "Jl. Besuki, Menteng, Jakarta Pusat"
    )
    assert message.category_hint == "Jalan"
    assert (message.sender.name, message.sender.phone, message.sender.email) == (
        "Siti Rahma",
        "081234567890",
        "siti@example.id",
    )
    assert message.received_at.isoformat() == "2026-01-05T09:15:00+07:00"


CASES = [
    Case(
        "a geo-tagged report with two photos",
        signed(fixture("jaki", "geo_with_photos.json")),
        text="Jalan berlubang besar di depan SDN 01 Menteng",
        sender="081234567890",
        external_id="JAKI-2026-000001",
        coordinates=(-6.1958, 106.834),
        location_hint="Jl. Besuki, Menteng, Jakarta Pusat",
        attachments=[
            ("https://jaki.example.id/media/p1.jpg", None),
            ("https://jaki.example.id/media/p2.jpg", None),
        ],
        check=geo_check,
    ),
    Case(
        "a report with GPS off (location null) is kept for enrichment",
        signed(fixture("jaki", "no_location.json")),
        external_id="JAKI-2026-000002",
        attachments=[],
        check=lambda ms: ms[0].coordinates is None and ms[0].category_hint is None,
    ),
    Case("signed with another secret gets 401", signed(GEO, "other"), status=401),
    Case("no signature gets 401", wire("POST", URL, json.dumps(GEO).encode()), status=401),
    Case("lat out of range gets 400", signed(with_location(lat=-91)), status=400),
    Case("lon as a string gets 400", signed(with_location(lon="106.8")), status=400),
    Case("lat as a boolean gets 400", signed(with_location(lat=True)), status=400),
    Case(
        "lat NaN gets 400", signed(json.dumps(with_location(lat=float("nan"))).encode()), status=400
    ),
    Case("lon Infinity gets 400", signed(b'{"location": {"lat": 0, "lon": 1e999}}'), status=400),
    Case("negative accuracy gets 400", signed(with_location(accuracy_m=-1)), status=400),
    Case(
        "a photo that is not an http(s) URL gets 400",
        signed({**GEO, "photos": ["file:///etc/passwd"]}),
        status=400,
    ),
    Case("photos as a string gets 400", signed({**GEO, "photos": "https://x/1.jpg"}), status=400),
    Case("reporter as a string gets 400", signed({**GEO, "reporter": "Siti"}), status=400),
    Case(
        "a reporter phone as a number gets 400",
        signed({**GEO, "reporter": {"phone": 62812}}),
        status=400,
    ),
    Case(
        "created_at missing gets 400",
        signed({k: v for k, v in GEO.items() if k != "created_at"}),
        status=400,
    ),
    Case("an id of 201 characters gets 400", signed({**GEO, "id": "J" * 201}), status=400),
    Case("text as a list gets 400", signed({**GEO, "text": ["a"]}), status=400),
    Case("a JSON string body gets 400", signed(b'"hello"'), status=400),
    Case("deeply nested JSON gets 400, not a crash", signed(b'{"a":' * 50_000), status=400),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_jaki(case: Case) -> None:
    run_case(JakiConnector(SECRET), case)


def test_unsigned_mode_accepts_an_unsigned_report() -> None:
    run_case(
        JakiConnector(None),
        Case(
            "unsigned",
            wire("POST", URL, json.dumps(GEO).encode()),
            external_id=GEO["id"],
            coordinates=(-6.1958, 106.834),
            location_hint="Jl. Besuki, Menteng, Jakarta Pusat",
        ),
    )


def test_respond_gives_the_ticket() -> None:
    response = JakiConnector(SECRET).respond([], ["KNL-7Q4M-2K9D"])
    assert (response.status, response.content_type) == (200, "application/json")
    assert json.loads(response.body) == {"ticket": "KNL-7Q4M-2K9D"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=300)
    | st.fixed_dictionaries({}, optional={k: JSON for k in GEO}).map(
        lambda d: json.dumps(d).encode()
    )
    | st.fixed_dictionaries(
        {
            "location": st.fixed_dictionaries(
                {}, optional={"lat": JSON, "lon": JSON, "accuracy_m": JSON, "address": JSON}
            )
        }
    ).map(lambda d: json.dumps({**GEO, **d}).encode())
)
def test_any_body_fails_only_with_connector_errors(body: bytes) -> None:
    for connector in (JakiConnector(SECRET), JakiConnector(None)):
        try:
            connector.verify(wire("POST", URL, body, {"x-kanal-signature": "sha256=zz"}))
            connector.parse(wire("POST", URL, body), NOW)
        except ConnectorError:
            pass
