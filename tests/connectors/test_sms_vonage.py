"""Vonage inbound SMS: `sig` in every method, stale timestamps, multipart, binary."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, WireRequest
from connectors.sms_vonage.wire import VonageConnector, expected_signature
from normalizers.phone import normalize_phone
from tests.connectors.cases import NOW, Case, fixture, run_case, wire
from tests.connectors.signing import vonage_sig, vonage_signed

SECRET = "vonage-signature-secret"
URL = "https://gw.example.id/webhooks/sms/vonage"
FORM = {"content-type": "application/x-www-form-urlencoded"}
TS = int(NOW.timestamp())


def params_of(name: str) -> dict[str, str]:
    return dict(parse_qsl(fixture("sms_vonage", name).decode(), keep_blank_values=True))


def get(params: dict[str, str]) -> WireRequest:
    return wire("GET", f"{URL}?{urlencode(params)}")


def signed_get(
    name: str, method: str = "md5hash", ts: int = TS, secret: str = SECRET
) -> WireRequest:
    return get(vonage_signed(params_of(name), secret, method, ts))


def signed_form(name: str, method: str = "md5hash") -> WireRequest:
    body = urlencode(vonage_signed(params_of(name), SECRET, method, TS)).encode()
    return wire("POST", URL, body, FORM)


def signed_json(name: str, method: str = "sha256") -> WireRequest:
    params = json.loads(fixture("sms_vonage", name))
    body = json.dumps(vonage_signed(params, SECRET, method, TS)).encode()
    return wire("POST", URL, body, {"content-type": "application/json"})


GROUP = "concat:sms_vonage:6281234567890:12"

CASES = [
    Case(
        "part 1 of 2 by GET, md5hash: grouped by msisdn and concat-ref",
        signed_get("part_1_of_2.txt"),
        text="Jalan ambles di",
        sender="6281234567890",
        external_id="0A0000001",
        group_key=GROUP,
        part=(1, 2),
        check=lambda ms: ms[0].received_at.isoformat() == "2026-01-01T07:00:00+00:00",
    ),
    Case(
        "part 2 of 2 by POST form, HMAC-SHA1",
        signed_form("part_2_of_2.txt", "sha1"),
        text=" depan Pasar Senen, bahaya untuk motor",
        external_id="0A0000002",
        group_key=GROUP,
        part=(2, 2),
    ),
    Case(
        "a unicode SMS keeps its emoji, HMAC-SHA512",
        signed_get("unicode.txt", "sha512"),
        text="Sampah menumpuk di kali — bau sekali 😷",
        check=lambda ms: ms[0].extra["keyword"] == "SAMPAH",
    ),
    Case(
        "a binary SMS has no text; data and udh kept as hex, HMAC-MD5",
        signed_get("binary.txt", "md5"),
        text="",
        check=lambda ms: (
            (ms[0].extra["data"], ms[0].extra["udh"]) == ("0102030405", "050003CC0201")
        ),
    ),
    Case(
        "a POST JSON inbound, HMAC-SHA256",
        signed_json("inbound.json"),
        text="Parkir liar di trotoar Jl. Sabang",
        sender="6281277778888",
        external_id="0C0000005",
    ),
    Case(
        "a replayed request (timestamp 10 minutes old) gets 401",
        signed_get("part_1_of_2.txt", ts=TS - 600),
        status=401,
    ),
    Case(
        "a timestamp from 10 minutes in the future gets 401",
        signed_get("part_1_of_2.txt", ts=TS + 600),
        status=401,
    ),
    Case(
        "a timestamp 4 minutes old is still fresh",
        signed_get("part_1_of_2.txt", ts=TS - 240),
        external_id="0A0000001",
        group_key=GROUP,
        part=(1, 2),
    ),
    Case(
        "signed with another secret gets 401",
        signed_get("part_1_of_2.txt", secret="not-ours"),
        status=401,
    ),
    Case(
        "signed with another method gets 401",
        signed_get("part_1_of_2.txt", method="sha256"),
        status=401,
    ),
    Case("no sig at all gets 401", get(params_of("unicode.txt")), status=401),
    Case(
        "a changed text after signing gets 401",
        get({**vonage_signed(params_of("unicode.txt"), SECRET, "md5hash", TS), "text": "x"}),
        status=401,
    ),
    Case(
        "a signed request without timestamp gets 401",
        get(
            {
                **params_of("unicode.txt"),
                "sig": vonage_sig(params_of("unicode.txt"), SECRET),
            }
        ),
        status=401,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vonage_signed(case: Case) -> None:
    method = {"sha1": "sha1", "sha512": "sha512", "md5": "md5", "sha256": "sha256"}
    # Each case is signed with the method named in its label (md5hash otherwise).
    chosen = next((m for k, m in method.items() if f"HMAC-{k.upper()}" in case.label), "md5hash")
    run_case(VonageConnector(SECRET, chosen), case)


UNSIGNED = [
    Case(
        "unsigned mode stores a GET without sig",
        get(params_of("unicode.txt")),
        external_id="0B0000003",
    ),
    Case("messageId missing gets 400", get({"msisdn": "62812", "text": "x"}), status=400),
    Case("msisdn missing gets 400", get({"messageId": "1", "text": "x"}), status=400),
    Case(
        "concat-part beyond concat-total gets 400",
        get({**params_of("part_1_of_2.txt"), "concat-part": "3"}),
        status=400,
    ),
    Case(
        "concat-total that is not a number gets 400",
        get({**params_of("part_1_of_2.txt"), "concat-total": "dua"}),
        status=400,
    ),
    Case(
        "an unreadable message-timestamp falls back to arrival time, flagged",
        get({**params_of("unicode.txt"), "message-timestamp": "kemarin"}),
        check=lambda ms: ms[0].received_at == NOW and ms[0].extra["message_timestamp_unparsed"],
    ),
    Case(
        "a JSON body that is a list gets 400",
        wire("POST", URL, b"[]", {"content-type": "application/json"}),
        status=400,
    ),
    Case(
        "a JSON field that is an object gets 400",
        wire("POST", URL, b'{"msisdn": {"a": 1}}', {"content-type": "application/json"}),
        status=400,
    ),
]


@pytest.mark.parametrize("case", UNSIGNED, ids=str)
def test_vonage_unsigned(case: Case) -> None:
    run_case(VonageConnector(None), case)


def test_md5hash_matches_the_vonage_sdk_known_vector() -> None:
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_sig(params, "secret") == "6af838ef94998832dbfc29020b564830"
    assert expected_signature(params, "secret", "md5hash") == "6af838ef94998832dbfc29020b564830"


def test_ampersand_and_equals_in_values_are_signed_as_underscores() -> None:
    params = {"messageId": "1", "msisdn": "62812", "text": "a=b&c", "timestamp": str(TS)}
    sig = vonage_sig({**params, "text": "a_b_c"}, SECRET)
    VonageConnector(SECRET).verify(get({**params, "sig": sig.upper()}), now=NOW)


def test_respond_is_200_with_empty_body() -> None:
    response = VonageConnector(SECRET).respond([], [])
    assert (response.status, response.body) == (200, b"")


def test_unknown_signature_method_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        VonageConnector(SECRET, "sha3")


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    query=st.text(max_size=80),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", ""]),
)
def test_any_request_fails_only_with_connector_errors(
    method: str, query: str, body: bytes, content_type: str
) -> None:
    request = WireRequest(
        method, f"{URL}?{query}", "/webhooks/sms/vonage", (), {"content-type": content_type}, body
    )
    for connector in (VonageConnector(SECRET), VonageConnector(None)):
        try:
            connector.verify(request, now=NOW)
            connector.parse(request, NOW)
        except ConnectorError:
            pass


@pytest.mark.parametrize(
    ("msisdn", "phone"),
    [
        ("6281234567890", "+6281234567890"),
        ("2349067554729", "+2349067554729"),
        ("447911123456", "+447911123456"),
        ("1500", "1500"),
        ("KANAL", "KANAL"),
    ],
)
def test_every_valid_msisdn_becomes_e164(msisdn: str, phone: str) -> None:
    """Vonage sends the msisdn international without '+', whatever the country."""
    params = {"messageId": "0A01", "msisdn": msisdn, "to": "6281100001500", "text": "Jalan rusak"}
    [message] = VonageConnector(None).parse(get(params), NOW)
    assert message.sender.phone == phone
    if phone.startswith("+"):
        assert normalize_phone(message.sender.phone).e164 == phone
