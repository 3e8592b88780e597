"""LAPOR! reports: confidential and anonymous honoured; mapping of foreign API records."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, MalformedPayload, RawMessage, Sender, WireRequest
from connectors.lapor.wire import LaporConnector, map_lapor_record
from tests.connectors.cases import NOW, Case, fixture, run_case, wire
from tests.connectors.signing import kanal_sign

SECRET = "lapor-secret"
URL = "https://gw.example.id/webhooks/lapor"
CONFIDENTIAL = json.loads(fixture("lapor", "confidential_with_location.json"))
ANONYMOUS = json.loads(fixture("lapor", "anonymous.json"))


def signed(body: bytes | dict[str, object], secret: str = SECRET) -> WireRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return wire("POST", URL, raw, {"content-type": "application/json", **kanal_sign(secret, raw)})


def confidential_check(messages: list[RawMessage]) -> None:
    message = messages[0]
    assert message.confidential and not message.anonymous
    assert message.title == "Pungli di kantor kelurahan"
    assert message.sender.name == "Andi"


def anonymous_check(messages: list[RawMessage]) -> None:
    message = messages[0]
    assert message.anonymous
    assert message.sender == Sender()  # no identity kept anywhere
    assert message.extra == {"anonymous": True}
    assert "6281355556666" not in json.dumps(message.to_json())


CASES = [
    Case(
        "a confidential report keeps the identity, flagged, with its location",
        signed(fixture("lapor", "confidential_with_location.json")),
        text="Petugas meminta uang untuk surat pengantar",
        sender="+6281311112222",
        external_id="1234567",
        coordinates=(-6.2146, 106.8451),
        location_hint="Kantor Lurah Setiabudi",
        attachments=[("https://lapor.example.go.id/lampiran/1.pdf", None)],
        check=confidential_check,
    ),
    Case(
        "an anonymous report keeps no identity, only that it was anonymous",
        signed(fixture("lapor", "anonymous.json")),
        external_id="1234568",
        attachments=[],
        check=anonymous_check,
    ),
    Case(
        "a report with no reporter, flags or location",
        signed(
            {"tracking_id": "9", "title": "", "text": "x", "created_at": "2026-01-06T03:00:00Z"}
        ),
        check=lambda ms: (
            ms[0].title is None and ms[0].sender == Sender() and ms[0].coordinates is None
        ),
    ),
    Case("signed with another secret gets 401", signed(ANONYMOUS, "other"), status=401),
    Case("no signature gets 401", wire("POST", URL, json.dumps(ANONYMOUS).encode()), status=401),
    Case(
        "tracking_id as a number gets 400",
        signed({**ANONYMOUS, "tracking_id": 1234568}),
        status=400,
    ),
    Case(
        "title missing gets 400",
        signed({k: v for k, v in ANONYMOUS.items() if k != "title"}),
        status=400,
    ),
    Case('anonymous as "1" gets 400', signed({**ANONYMOUS, "anonymous": "1"}), status=400),
    Case("confidential as 1 gets 400", signed({**CONFIDENTIAL, "confidential": 1}), status=400),
    Case(
        "a location without lon gets 400",
        signed({**CONFIDENTIAL, "location": {"lat": -6.2}}),
        status=400,
    ),
    Case(
        "attachments with a number gets 400",
        signed({**CONFIDENTIAL, "attachments": [1]}),
        status=400,
    ),
    Case(
        "a bad reporter is rejected even when anonymous",
        signed({**ANONYMOUS, "reporter": [1]}),
        status=400,
    ),
    Case("not JSON gets 400", signed(b"<lapor/>"), status=400),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_lapor(case: Case) -> None:
    run_case(LaporConnector(SECRET), case)


def test_respond_gives_the_ticket() -> None:
    response = LaporConnector(SECRET).respond([], ["KNL-AAAA-BBBB"])
    assert json.loads(response.body) == {"ticket": "KNL-AAAA-BBBB"}


MAPPING = {
    "tracking_id": "trackingID",
    "title": "judul",
    "text": "isi",
    "confidential": "rahasia",
    "anonymous": "anonim",
    "reporter.name": "pelapor.nama",
    "reporter.phone": "pelapor.telpon",
    "reporter.email": "pelapor.email",
    "location.lat": "lokasi.lintang",
    "location.lon": "lokasi.bujur",
    "location.address": "lokasi.alamat",
    "attachments": "lampiran.*.url",
    "created_at": "tanggal",
}


def test_a_foreign_record_maps_to_a_webhook_body_the_connector_accepts() -> None:
    body = map_lapor_record(json.loads(fixture("lapor", "poll__api_record.json")), MAPPING)
    assert body == {
        "tracking_id": "7654321",
        "title": "Jalan rusak",
        "text": "Jalan rusak parah di Cilincing",
        "confidential": True,
        "anonymous": False,
        "reporter": {"name": "Dewi", "phone": "081277778888", "email": "dewi@example.id"},
        "location": {"lat": -6.1205, "lon": 106.9466, "address": "Jl. Cilincing Raya"},
        "attachments": [
            "https://lapor.example.go.id/l/9.jpg",
            "https://lapor.example.go.id/l/10.jpg",
        ],
        "created_at": "2026-01-07T01:02:03Z",
    }
    [message] = LaporConnector(None).parse(wire("POST", URL, json.dumps(body).encode()), NOW)
    assert message.external_id == "7654321" and message.confidential
    assert message.coordinates is not None and message.coordinates.lat == -6.1205


@pytest.mark.parametrize(
    ("record", "mapping", "expected"),
    [
        ({"a": {"b": "x"}}, {"text": "a.b"}, {"text": "x"}),
        ({"a": {}}, {"text": "a.b"}, {}),  # absent source: target left out
        ({"a": "flat"}, {"text": "a.b"}, {}),  # path through a string
        ({"l": ["u0", "u1"]}, {"attachments": "l.1"}, {"attachments": ["u1"]}),  # one → list
        ({"t": 1767225600}, {"created_at": "t"}, {"created_at": "2026-01-01T00:00:00+00:00"}),
        ({"r": "Ya"}, {"anonymous": "r"}, {"anonymous": True}),
        ({"r": "tidak"}, {"confidential": "r"}, {"confidential": False}),
        ({"r": "maybe"}, {"confidential": "r"}, {"confidential": "maybe"}),  # parser will reject
        ({"lat": "-6,2"}, {"location.lat": "lat"}, {"location": {"lat": -6.2}}),
        (
            {"l": [{"u": "a"}, {"x": 1}, {"u": None}]},
            {"attachments": "l.*.u"},
            {"attachments": ["a"]},
        ),
    ],
)
def test_map_lapor_record(record: dict, mapping: dict[str, str], expected: dict) -> None:
    assert map_lapor_record(record, mapping) == expected


def test_mapping_to_an_unknown_target_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="judul"):
        map_lapor_record({}, {"judul": "title"})


def test_mapping_a_record_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        map_lapor_record(["x"], {"text": "isi"})  # type: ignore[arg-type]


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
    | st.fixed_dictionaries({}, optional={k: JSON for k in CONFIDENTIAL}).map(
        lambda d: json.dumps(d).encode()
    )
)
def test_any_body_fails_only_with_connector_errors(body: bytes) -> None:
    for connector in (LaporConnector(SECRET), LaporConnector(None)):
        try:
            connector.verify(wire("POST", URL, body, {"x-kanal-signature": "x"}))
            connector.parse(wire("POST", URL, body), NOW)
        except ConnectorError:
            pass


@settings(max_examples=150, deadline=None)
@given(
    record=st.dictionaries(
        st.sampled_from(
            ["trackingID", "judul", "pelapor", "lokasi", "lampiran", "tanggal", "rahasia"]
        ),
        JSON,
    )
)
def test_mapping_any_record_then_parsing_fails_only_with_connector_errors(record: dict) -> None:
    body = map_lapor_record(record, MAPPING)
    try:
        LaporConnector(None).parse(wire("POST", URL, json.dumps(body).encode()), NOW)
    except ConnectorError:
        pass
