"""Twilio inbound SMS/MMS: signature over the public URL, fields, media, empty TwiML."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, WireRequest
from connectors.sms_twilio.wire import TwilioConnector, decode_possible_base64
from tests.connectors.cases import NOW, Case, fixture, run_case, wire
from tests.connectors.signing import twilio_body_sha256, twilio_signature

TOKEN = "twilio-auth-token-0123456789abcdef"
URL = "https://gw.example.id/webhooks/sms/twilio"
FORM = {"content-type": "application/x-www-form-urlencoded"}
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/MM11111111111111111111111111111111/Media/ME"


def post(
    body: bytes, *, url: str = URL, signed_url: str | None = None, token: str = TOKEN
) -> WireRequest:
    params = parse_qsl(body.decode(), keep_blank_values=True)
    signature = twilio_signature(token, signed_url or url, params)
    return wire("POST", url, body, {**FORM, "X-Twilio-Signature": signature})


def unsigned(body: bytes) -> WireRequest:
    return wire("POST", URL, body, FORM)


JSON_BODY = json.dumps(
    {"MessageSid": "SM33333333333333333333333333333333", "From": "+6281200001111", "Body": "Halo"}
).encode()
JSON_URL = f"{URL}?bodySHA256={twilio_body_sha256(JSON_BODY)}"
GET_URL = (
    URL + "?" + urlencode({"MessageSid": "SM44", "From": "+6281200002222", "Body": "Got mampet"})
)

CASES = [
    Case(
        "a body that is not form-encoded gets 400 malformed, not 401",
        wire("POST", URL, b"\xff\xfe not form \x00", {**FORM, "X-Twilio-Signature": "x"}),
        status=400,
    ),
    Case(
        "a signed SMS is read: text, sender, MessageSid, city in extra",
        post(fixture("sms_twilio", "text.txt")),
        text="Banjir setinggi lutut di RW 05 Kel. Kampung Melayu, mohon bantuan",
        sender="+6281234567890",
        external_id="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        attachments=[],
        check=lambda ms: (
            ms[0].extra["FromCity"] == "JAKARTA" and ms[0].extra["To"] == "+62215550000"
        ),
    ),
    Case(
        "an MMS with two photos gives two attachments with their content types",
        post(fixture("sms_twilio", "with_media.txt")),
        text="Jalan berlubang depan SDN 01 Menteng",
        sender="+6281298765432",
        external_id="MM11111111111111111111111111111111",
        attachments=[
            (MEDIA + "00000000000000000000000000000000", "image/jpeg"),
            (MEDIA + "11111111111111111111111111111111", "image/png"),
        ],
    ),
    Case(
        "a clearly base64 Body (concatenated SMS sent as MMS) is decoded and flagged",
        post(fixture("sms_twilio", "base64_body.txt")),
        text="Lampu PJU di Jl. Matraman Raya mati sejak tiga hari, mohon segera diperbaiki ya pak",
        check=lambda ms: ms[0].extra["body_base64_decoded"] is True,
    ),
    Case(
        "behind a proxy: Twilio signed without :443, the gateway rebuilt the URL with it",
        post(
            fixture("sms_twilio", "text.txt"), url="https://gw.example.id:443/webhooks/sms/twilio"
        ),
        sender="+6281234567890",
    ),
    Case(
        "behind a proxy: Twilio signed with :443, the gateway rebuilt the URL without it",
        post(
            fixture("sms_twilio", "text.txt"),
            signed_url="https://gw.example.id:443/webhooks/sms/twilio",
        ),
        sender="+6281234567890",
    ),
    Case(
        "plain http with :80 signed, URL rebuilt without the port",
        post(
            fixture("sms_twilio", "text.txt"),
            url="http://gw.example.id/webhooks/sms/twilio",
            signed_url="http://gw.example.id:80/webhooks/sms/twilio",
        ),
        sender="+6281234567890",
    ),
    Case(
        "a non-default port is part of the URL: signed without it does not match",
        post(
            fixture("sms_twilio", "text.txt"),
            url="https://gw.example.id:8443/webhooks/sms/twilio",
            signed_url=URL,
        ),
        status=401,
    ),
    Case(
        "signed for another path gets 401",
        post(fixture("sms_twilio", "text.txt"), signed_url=URL + "/other"),
        status=401,
    ),
    Case(
        "signed with another account's token gets 401",
        post(fixture("sms_twilio", "text.txt"), token="some-other-token"),
        status=401,
    ),
    Case("no X-Twilio-Signature gets 401", unsigned(fixture("sms_twilio", "text.txt")), status=401),
    Case(
        "a tampered body gets 401",
        wire(
            "POST",
            URL,
            fixture("sms_twilio", "text.txt").replace(b"Banjir", b"Aman"),
            {
                **FORM,
                "X-Twilio-Signature": post(fixture("sms_twilio", "text.txt")).headers[
                    "x-twilio-signature"
                ],
            },
        ),
        status=401,
    ),
    Case(
        "a GET webhook is signed over the URL with its query and read from it",
        wire("GET", GET_URL, b"", {"X-Twilio-Signature": twilio_signature(TOKEN, GET_URL)}),
        text="Got mampet",
        sender="+6281200002222",
        external_id="SM44",
    ),
    Case(
        "JSON variant: URL-only signature and bodySHA256 both match",
        wire(
            "POST",
            JSON_URL,
            JSON_BODY,
            {
                "content-type": "application/json",
                "X-Twilio-Signature": twilio_signature(TOKEN, JSON_URL),
            },
        ),
        text="Halo",
        external_id="SM33333333333333333333333333333333",
    ),
    Case(
        "JSON variant with a body that does not match bodySHA256 gets 401",
        wire(
            "POST",
            JSON_URL,
            JSON_BODY.replace(b"Halo", b"Hola"),
            {
                "content-type": "application/json",
                "X-Twilio-Signature": twilio_signature(TOKEN, JSON_URL),
            },
        ),
        status=401,
    ),
    Case(
        "multi-valued parameters are signed name by name, values sorted",
        post(b"MessageSid=SM55&From=%2B6281&Body=b&Tag=z&Tag=a"),
        text="b",
    ),
    Case("a form without MessageSid gets 400", post(b"From=%2B6281&Body=x"), status=400),
    Case(
        "SmsSid stands in for a missing MessageSid",
        post(b"SmsSid=SM66&From=%2B6281&Body=x"),
        external_id="SM66",
    ),
    Case("a form without From gets 400", post(b"MessageSid=SM77&Body=x"), status=400),
    Case(
        "NumMedia that is not a count gets 400",
        post(b"MessageSid=SM88&From=%2B6281&NumMedia=lots"),
        status=400,
    ),
    Case(
        "a body that is not UTF-8 form data gets 400 malformed when signed, not 401",
        wire("POST", URL, b"\xff\xfe", {**FORM, "X-Twilio-Signature": "AAAA"}),
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_twilio_signed(case: Case) -> None:
    run_case(TwilioConnector(TOKEN), case)


UNSIGNED_CASES = [
    Case(
        "unsigned mode stores a request without X-Twilio-Signature",
        unsigned(fixture("sms_twilio", "text.txt")),
        external_id="SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ),
    Case(
        "unsigned mode still rejects a body that is not a form", unsigned(b"\xff\x00"), status=400
    ),
    Case(
        "unsigned mode still rejects a 201-character MessageSid",
        unsigned(b"From=1&MessageSid=" + b"S" * 201),
        status=400,
    ),
]


@pytest.mark.parametrize("case", UNSIGNED_CASES, ids=str)
def test_twilio_unsigned(case: Case) -> None:
    run_case(TwilioConnector(None), case)


def test_signature_matches_twilio_python_known_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    request = wire(
        "POST",
        url,
        urlencode(params).encode(),
        {**FORM, "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    )
    TwilioConnector("12345").verify(request)


@pytest.mark.parametrize(
    "body",
    [
        "Banjir di Kampung Melayu sudah setinggi pinggang orang dewasa, mohon dibantu evakuasi",
        "AduanJalanRusakDiDepanSekolahDasarNegeri01MentengSudahLamaSekali",  # no spaces, 64
        "A" * 80,  # base64 alphabet, decodes to non-UTF-8 bytes
        "QUJD",  # valid base64 of "ABC" but far too short to be an encoded SMS
    ],
)
def test_real_text_is_never_base64_decoded(body: str) -> None:
    assert decode_possible_base64(body) is None


def test_respond_is_empty_twiml_so_twilio_sends_no_sms() -> None:
    response = TwilioConnector(TOKEN).respond([], [])
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    query=st.text(max_size=60),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", ""]),
    signature=st.text(max_size=40),
)
def test_any_request_fails_only_with_connector_errors(
    method: str, query: str, body: bytes, content_type: str, signature: str
) -> None:
    request = wire(
        method, URL, body, {"content-type": content_type, "x-twilio-signature": signature}
    )
    request = replace(request, url=f"{URL}?{query}")
    for connector in (TwilioConnector(TOKEN), TwilioConnector(None)):
        try:
            connector.verify(request)
            connector.parse(request, NOW)
        except ConnectorError:
            pass
