"""Generic SMS gateway JSON, signed with X-Kanal-Signature; strict field types."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, WireRequest
from connectors.sms_generic.wire import GenericSmsConnector
from tests.connectors.cases import NOW, Case, fixture, run_case, wire
from tests.connectors.signing import kanal_sign

SECRET = "generic-sms-secret"
URL = "https://gw.example.id/webhooks/sms/generic"
BODY = json.loads(fixture("sms_generic", "text.json"))


def signed(body: bytes | dict[str, object], secret: str = SECRET) -> WireRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return wire("POST", URL, raw, {"content-type": "application/json", **kanal_sign(secret, raw)})


CASES = [
    Case(
        "a signed SMS is read with its own timestamp",
        signed(fixture("sms_generic", "text.json")),
        text="Saluran air tersumbat di RT 03/RW 05 Kel. Menteng",
        sender="+6281234567890",
        external_id="gw-000123",
        check=lambda ms: (
            ms[0].received_at.isoformat() == "2026-01-05T08:00:00+07:00"
            and ms[0].extra == {"to": "1500XXX"}
        ),
    ),
    Case("signed with another secret gets 401", signed(BODY, "other"), status=401),
    Case(
        "no signature gets 401", wire("POST", URL, fixture("sms_generic", "text.json")), status=401
    ),
    Case(
        "a body changed after signing gets 401",
        wire("POST", URL, fixture("sms_generic", "text.json") + b" ", signed(BODY).headers),
        status=401,
    ),
    Case(
        "a signature with upper-case hex is accepted",
        wire(
            "POST",
            URL,
            json.dumps(BODY).encode(),
            {
                "x-kanal-signature": signed(BODY)
                .headers["x-kanal-signature"]
                .upper()
                .replace("SHA256=", "sha256=")
            },
        ),
        text=BODY["text"],
    ),
    Case("not JSON gets 400", signed(b"id=1&from=2"), status=400),
    Case("a JSON list gets 400", signed(b"[]"), status=400),
    Case("id as a number gets 400", signed({**BODY, "id": 123}), status=400),
    Case("an empty id gets 400", signed({**BODY, "id": ""}), status=400),
    Case("text as null gets 400", signed({**BODY, "text": None}), status=400),
    Case(
        "from missing gets 400", signed({k: v for k, v in BODY.items() if k != "from"}), status=400
    ),
    Case(
        "received_at that is not RFC 3339 gets 400",
        signed({**BODY, "received_at": "kemarin"}),
        status=400,
    ),
    Case(
        "received_at as a date only gets 400",
        signed({**BODY, "received_at": "2026-01-05"}),
        status=400,
    ),
    Case(
        "received_at as epoch seconds gets 400",
        signed({**BODY, "received_at": 1767225600}),
        status=400,
    ),
    Case("deeply nested JSON gets 400, not a crash", signed(b"[" * 100_000), status=400),
    Case("an empty text is still a message", signed({**BODY, "text": ""}), text=""),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_generic_sms(case: Case) -> None:
    run_case(GenericSmsConnector(SECRET), case)


def test_the_400_message_names_the_field() -> None:
    with pytest.raises(ConnectorError, match="received_at"):
        GenericSmsConnector(None).parse(signed({**BODY, "received_at": 5}), NOW)


def test_respond_answers_the_ticket() -> None:
    response = GenericSmsConnector(SECRET).respond([], ["KNL-7Q4M-2K9D"])
    assert (response.status, json.loads(response.body)) == (200, {"ticket": "KNL-7Q4M-2K9D"})
    assert response.content_type == "application/json"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=300)
    | st.dictionaries(st.sampled_from(list(BODY)), JSON).map(lambda d: json.dumps(d).encode())
)
def test_any_body_fails_only_with_connector_errors(body: bytes) -> None:
    for connector in (GenericSmsConnector(SECRET), GenericSmsConnector(None)):
        try:
            connector.verify(wire("POST", URL, body, {"x-kanal-signature": "sha256=00"}))
            connector.parse(wire("POST", URL, body), NOW)
        except ConnectorError:
            pass
