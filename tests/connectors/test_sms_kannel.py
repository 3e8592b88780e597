"""Kannel sms-service: `key` check, %b bytes in any charset, post-url, UDH, empty reply."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, WireRequest
from connectors.sms_kannel.wire import KannelConnector, concat_udh
from tests.connectors.cases import NOW, Case, fixture, run_case, wire

SECRET = "s3cret"  # the key= in the fixtures
URL = "https://gw.example.id/webhooks/sms/kannel"


def get(query: bytes | str) -> WireRequest:
    return wire("GET", f"{URL}?{query.decode() if isinstance(query, bytes) else query}")


def post_url(
    body: bytes, headers: dict[str, str], query: str = "key=s3cret&id=kannel-77"
) -> WireRequest:
    return wire("POST", f"{URL}?{query}", body, headers)


UTF8 = fixture("sms_kannel", "utf8.txt").decode()

CASES = [
    Case(
        "get-url with UTF-8 text: id, sender, unix ts",
        get(UTF8),
        text="Pohon tumbang di Jl. Cikini Raya, menutup jalan",
        sender="+6281234567890",
        external_id="9f1c2b1e-6f0a-4c6e-9d0a-1b2c3d4e5f60",
        check=lambda ms: ms[0].received_at.isoformat() == "2026-01-01T00:00:00+00:00",
    ),
    Case(
        "UCS-2 SMS (coding=2, charset UTF-16BE) with an emoji surrogate pair",
        get(fixture("sms_kannel", "utf16be.txt")),
        text="Banjir di Kemang — tolong 🙏",
        sender="+6281298765432",
    ),
    Case(
        "8-bit latin-1 bytes decoded as ISO-8859-1, %t time format, bytes kept as hex",
        get(fixture("sms_kannel", "latin1_bytes.txt")),
        text="Café liar di trotoar, £5",
        check=lambda ms: (
            ms[0].received_at.isoformat() == "2026-01-01T00:02:00+00:00"
            and ms[0].extra["data_hex"].startswith("436166e9")
        ),
    ),
    Case(
        "WINDOWS-1252 bytes (curly quotes) decoded with that charset",
        get("key=s3cret&id=w1&from=62811&charset=WINDOWS-1252&text=%93Banjir%94"),
        text="“Banjir”",
    ),
    Case(
        "an unknown charset is read as UTF-8 with replacement, and noted",
        get("key=s3cret&id=u1&from=62811&charset=KOI8-Z&text=ok%FF"),
        text="ok\ufffd",
        check=lambda ms: ms[0].extra["charset_unknown"] == "KOI8-Z",
    ),
    Case(
        "a concatenation UDH (8-bit ref) makes a group and a part",
        get(fixture("sms_kannel", "udh_part_1_of_2.txt")),
        text="Got mampet di RT 03/RW 05",
        group_key="concat:sms_kannel:+6281234567890:42",
        part=(1, 2),
    ),
    Case(
        "a 16-bit-ref concatenation UDH given as hex",
        get("key=s3cret&id=h1&from=62811&udh=06080401020302&text=b"),
        group_key="concat:sms_kannel:62811:258",
        part=(2, 3),
    ),
    Case(
        "no id: a stable sha256 id is derived from sender, time and text",
        get("key=s3cret&from=62811&ts=1767225600&text=halo"),
        check=lambda ms: (
            ms[0].external_id.startswith("sha256:") and ms[0].extra["external_id_derived"]
        ),
    ),
    Case(
        "post-url: text in the body, sender and time from X-Kannel headers",
        post_url(
            fixture("sms_kannel", "post_url_body.txt"),
            {
                "content-type": 'text/plain; charset="UTF-8"',
                "X-Kannel-From": "+6281355556666",
                "X-Kannel-To": "1500XXX",
                "X-Kannel-Time": "2026-01-01 00:05:00",
                "X-Kannel-SMSC": "telkomsel",
            },
        ),
        text="Lampu jalan mati di depan Kantor Lurah Menteng",
        sender="+6281355556666",
        external_id="kannel-77",
        check=lambda ms: ms[0].extra["smsc"] == "telkomsel",
    ),
    Case(
        "post-url UCS-2 body, sender from the from= parameter (send-sender off)",
        post_url(
            "Jalan rusak".encode("utf-16-be"),
            {"content-type": "text/plain; charset=UTF-16BE"},
            "key=s3cret&id=k2&from=%2B6281200001111",
        ),
        text="Jalan rusak",
        sender="+6281200001111",
    ),
    Case(
        "a form POST with the get-url fields",
        wire(
            "POST",
            URL,
            b"key=s3cret&id=f1&from=62811&text=Caf%C3%A9",
            {"content-type": "application/x-www-form-urlencoded"},
        ),
        text="Café",
    ),
    Case("a wrong key gets 401", get(UTF8.replace("key=s3cret", "key=guess")), status=401),
    Case("no key gets 401", get(UTF8.replace("key=s3cret&", "")), status=401),
    Case("a repeated key gets 401", get(UTF8 + "&key=s3cret"), status=401),
    Case("no sender gets 400", get("key=s3cret&id=x1&text=halo"), status=400),
    Case("a 201-character id gets 400", get(f"key=s3cret&from=1&id={'i' * 201}"), status=400),
    Case(
        "an unreadable ts falls back to arrival time and keeps the raw value",
        get("key=s3cret&id=t1&from=62811&ts=kemarin&text=x"),
        check=lambda ms: ms[0].received_at == NOW and ms[0].extra["ts_unparsed"] == "kemarin",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kannel(case: Case) -> None:
    run_case(KannelConnector(SECRET), case)


def test_unsigned_mode_needs_no_key() -> None:
    run_case(KannelConnector(None), Case("unsigned", get("id=1&from=62811&text=x"), text="x"))


@pytest.mark.parametrize(
    ("udh", "expected"),
    [
        (bytes.fromhex("050003CC0201"), (0xCC, 2, 1)),
        (bytes.fromhex("06080401020302"), (0x0102, 3, 2)),
        (bytes.fromhex("050003CC0203"), None),  # part 3 of 2
        (bytes.fromhex("0504020000"), None),  # port addressing, not concatenation
        (bytes.fromhex("0700030102"), None),  # length byte lies
        (b"", None),
    ],
)
def test_concat_udh(udh: bytes, expected: tuple[int, int, int] | None) -> None:
    assert concat_udh(udh) == expected


def test_respond_is_empty_so_kannel_sends_no_sms() -> None:
    response = KannelConnector(SECRET).respond([], [])
    assert (response.status, response.body, response.content_type) == (200, b"", "text/plain")


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    query=st.lists(
        st.tuples(
            st.sampled_from(["key", "id", "from", "ts", "text", "charset", "coding", "udh", "x"]),
            st.text(max_size=20),
        ),
        max_size=8,
    ),
    body=st.binary(max_size=200),
    headers=st.dictionaries(
        st.sampled_from(
            ["content-type", "x-kannel-from", "x-kannel-time", "x-kannel-udh", "x-kannel-coding"]
        ),
        st.text(max_size=30),
    ),
)
def test_any_request_fails_only_with_connector_errors(
    method: str, query: list[tuple[str, str]], body: bytes, headers: dict[str, str]
) -> None:
    request = WireRequest(method, URL, "/webhooks/sms/kannel", tuple(query), headers, body)
    for connector in (KannelConnector(SECRET), KannelConnector(None)):
        try:
            connector.verify(request)
            connector.parse(request, NOW)
        except ConnectorError:
            pass
