"""Meta webhooks (Messenger page inbox, Instagram): handshake, signature, envelope → messages."""

from __future__ import annotations

import json

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, RawMessage, WireRequest
from connectors.meta.wire import MetaConnector
from tests.connectors.cases import NOW, Case, fixture, mutated_fixtures, run_case, wire
from tests.connectors.signing import meta_signature
from tests.fakes.meta_api import FakeMetaGraph

APP_SECRET = "meta-app-secret-0123456789"
VERIFY_TOKEN = "kanal-verify-7f3a"
PAGE = "111222333444"
IG = "17841400000000001"
ACCOUNTS = {PAGE: ("facebook", "province"), IG: ("instagram", "office:balai_kota")}
URL = "https://kanal.example/webhooks/meta"
SUBSCRIBE = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"


def connector() -> MetaConnector:
    return MetaConnector(APP_SECRET, VERIFY_TOKEN, ACCOUNTS)


def signed(body: bytes, secret: str = APP_SECRET) -> WireRequest:
    return wire("POST", URL, body, {"X-Hub-Signature-256": meta_signature(secret, body)})


def fb(name: str) -> bytes:
    return fixture("meta", f"facebook__{name}")


def ig(name: str) -> bytes:
    return fixture("meta", f"instagram__{name}")


def _check_two_entries(messages: list[RawMessage]) -> None:
    assert [m.external_id for m in messages] == ["m_batch_1", "m_batch_2", "m_batch_3"]
    # An account missing from the configuration still lands, by object, with no owner.
    assert messages[2].channel == "facebook"
    assert messages[2].extra["owner"] is None
    assert messages[2].group_key == "dm:facebook:999000999:7007"


def _check_sticker(messages: list[RawMessage]) -> None:
    assert messages[0].in_reply_to == ("m_text_1",)
    assert messages[0].extra["sticker_id"] == "369239263222822"
    assert messages[0].extra["quick_reply_payload"] == "YA"


CASES = [
    # What a chat sends besides complaints: greetings and reactions, never reports.
    Case(
        "Messenger's Get Started button is a greeting",
        signed(fb("postback__get_started.json")),
        kind="greeting",
        text="Get Started",
        group_key=f"dm:facebook:{PAGE}:7005",
        extra={"postback_payload": "GET_STARTED"},
    ),
    Case(
        "an Instagram ice-breaker is a greeting",
        signed(ig("postback__ice_breaker.json")),
        kind="greeting",
        channel="instagram",
        text="Bagaimana cara melapor?",
        group_key=f"dm:instagram:{IG}:17850000000000043",
        extra={"postback_payload": "CARA_LAPOR"},
    ),
    Case(
        "a ❤️ on Instagram is a reaction to the message it answers",
        signed(ig("reaction__heart.json")),
        kind="reaction",
        channel="instagram",
        text="❤️",
        group_key=f"dm:instagram:{IG}:17850000000000042",
        check=lambda ms: ms[0].in_reply_to == ("aWdfZAG1faXRlbToxOklH",),
    ),
    Case(
        "a page DM becomes a facebook message owned by the page's owner",
        signed(fb("message__text.json")),
        text="Lampu jalan mati di Jl. Cikini Raya sejak 3 hari",
        sender="7001",
        external_id="m_text_1",
        channel="facebook",
        group_key=f"dm:facebook:{PAGE}:7001",
        extra={"owner": "province"},
        check=lambda ms: ms[0].received_at.isoformat().startswith("2026-01-01T00:00:00"),
    ),
    Case(
        "photo, video and file attachments keep their CDN URLs and a type by kind",
        signed(fb("message__with_photo.json")),
        text="Sampah menumpuk",
        external_id="m_photo_1",
        group_key=f"dm:facebook:{PAGE}:7001",
        attachments=[
            (
                "https://scontent.xx.fbcdn.net/v/t1.15752-9/sampah_n.jpg?_nc_cat=1&oh=abc",
                "image/jpeg",
            ),
            ("https://video.xx.fbcdn.net/v/t42.3356-2/clip?dl=1", "video/mp4"),
            ("https://cdn.fbsbx.com/v/t59.2708-21/laporan.pdf?dl=1", "application/pdf"),
        ],
    ),
    Case(
        "a shared location inside Jakarta comes out as coordinates (lat, long)",
        signed(fb("message__location.json")),
        coordinates=(-6.1862, 106.8341),
        attachments=[("https://cdn.example/x.jpg", "image/jpeg")],
        group_key=f"dm:facebook:{PAGE}:7001",
    ),
    Case(
        "a location outside Jakarta is passed on as is (the geo normalizer decides)",
        signed(fb("message__location_outside_jakarta.json")),
        text="",
        coordinates=(-6.9147, 107.6098),
        group_key=f"dm:facebook:{PAGE}:7002",
    ),
    Case("our own echoed send is no message", signed(fb("message__echo.json")), count=0),
    Case(
        "a postback button is a message whose text is the button title",
        signed(fb("message__postback.json")),
        text="Lapor jalan rusak",
        external_id="m_pb_1",
        group_key=f"dm:facebook:{PAGE}:7003",
        extra={"postback_payload": "LAPOR_JALAN"},
    ),
    Case(
        "delivery and read receipts create nothing; a ❤ reaction is kept as a reaction",
        signed(fb("message__receipts.json")),
        kind="reaction",
        text="❤",
        group_key=f"dm:facebook:{PAGE}:7001",
        check=lambda ms: (
            ms[0].in_reply_to == ("m_out_1",) and ms[0].extra["reaction"]["reaction"] == "love"
        ),
    ),
    Case(
        "a message on the standby channel (handover) is still taken in",
        signed(fb("message__standby.json")),
        text="Banjir setinggi lutut",
        group_key=f"dm:facebook:{PAGE}:7004",
        extra={"standby": True},
    ),
    Case(
        "a sticker sent alone is a reaction (its image kept); reply_to becomes in_reply_to",
        signed(fb("message__sticker_and_reply.json")),
        kind="reaction",
        attachments=[("https://scontent.xx.fbcdn.net/v/t39.1997-6/like.png", "image/png")],
        group_key=f"dm:facebook:{PAGE}:7001",
        check=_check_sticker,
    ),
    Case(
        "every entry and every messaging item is read",
        signed(fb("message__two_entries.json")),
        count=3,
        group_key=f"dm:facebook:{PAGE}:7005",
        check=_check_two_entries,
    ),
    Case(
        "an Instagram DM is an instagram message owned as configured",
        signed(ig("message__text.json")),
        text="Pak Gubernur, trotoar di Sudirman rusak",
        sender="17850000000000042",
        channel="instagram",
        external_id="aWdfZAG1faXRlbToxOklH",
        group_key=f"dm:instagram:{IG}:17850000000000042",
        extra={"owner": "office:balai_kota"},
    ),
    Case(
        "an Instagram unsend is a delete tombstone for the mid",
        signed(ig("message__deleted.json")),
        kind="delete",
        external_id="delete:aWdfZAG1faXRlbToxOklH",
        channel="instagram",
        group_key=f"dm:instagram:{IG}:17850000000000042",
        extra={"deletes": "aWdfZAG1faXRlbToxOklH"},
    ),
    Case(
        "an Instagram story mention keeps its link in extra, the image as attachment",
        signed(ig("message__with_photo.json")),
        attachments=[
            ("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x", "image/jpeg")
        ],
        channel="instagram",
        group_key=f"dm:instagram:{IG}:17850000000000043",
        check=lambda ms: ms[0].extra["links"][0]["type"] == "story_mention",
    ),
    Case(
        "an Instagram comment is a comment with the commenter's handle",
        signed(ig("comment__on_post.json")),
        kind="comment",
        text="@dkijakarta lampu PJU di Jl. Kemang mati",
        sender="17850000000000099",
        external_id="17865799348089039",
        channel="instagram",
        extra={"media_id": "17900000000000001", "owner": "office:balai_kota"},
        check=lambda ms: (
            ms[0].sender.handle == "warga_kemang"
            and ms[0].in_reply_to == ("17865799348089000",)
            and ms[0].received_at.year == 2026
        ),
    ),
    Case(
        "an Instagram mention carries no text: media and comment ids are kept",
        signed(ig("mention__in_comment.json")),
        kind="mention",
        text="",
        external_id="mention:17894227972186120",
        channel="instagram",
        extra={"media_id": "17920238422030506", "comment_id": "17894227972186120"},
    ),
    Case(
        "an unsigned request is refused",
        wire("POST", URL, fb("message__text.json")),
        status=401,
    ),
    Case(
        "a signature made with another secret is refused",
        signed(fb("message__text.json"), secret="not-the-app-secret"),
        status=401,
    ),
    Case(
        "uppercase hex is not Meta's format and is refused",
        wire(
            "POST",
            URL,
            fb("message__text.json"),
            {
                "X-Hub-Signature-256": "sha256="
                + meta_signature(APP_SECRET, fb("message__text.json"))[7:].upper()
            },
        ),
        status=401,
    ),
    Case(
        "the legacy SHA-1 header alone is not enough",
        wire("POST", URL, fb("message__text.json"), {"X-Hub-Signature": "sha1=" + "0" * 40}),
        status=401,
    ),
    Case(
        "a signature over a re-serialized body does not match the raw bytes",
        wire(
            "POST",
            URL,
            fb("message__text.json"),
            {
                "X-Hub-Signature-256": meta_signature(
                    APP_SECRET, json.dumps(json.loads(fb("message__text.json"))).encode()
                )
            },
        ),
        status=401,
    ),
    Case("signed but not JSON is malformed", signed(b'{"object": "page", "entry": ['), 400),
    Case(
        "an object other than page or instagram is malformed",
        signed(b'{"object": "whatsapp_business_account", "entry": []}'),
        status=400,
    ),
    Case("entry must be an array", signed(b'{"object": "page", "entry": {"id": "1"}}'), 400),
    Case(
        "a message without sender is malformed",
        signed(
            b'{"object":"page","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},'
            b'"timestamp":1767225600000,"message":{"mid":"m_1","text":"x"}}]}]}'
        ),
        status=400,
    ),
    Case(
        "a message without mid is malformed",
        signed(
            b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},'
            b'"recipient":{"id":"1"},"timestamp":1767225600000,"message":{"text":"x"}}]}]}'
        ),
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_meta_webhook(case: Case) -> None:
    run_case(connector(), case)


def test_the_same_body_delivered_twice_gives_the_same_external_ids() -> None:
    body = fb("message__two_entries.json")
    first = connector().parse(signed(body), NOW)
    again = connector().parse(signed(body), NOW)
    assert [m.external_id for m in first] == [m.external_id for m in again]
    assert first == again


def test_a_large_batch_of_fifty_entries_is_read_whole() -> None:
    entries = [
        {
            "id": PAGE,
            "time": 1767225600000 + i,
            "messaging": [
                {
                    "sender": {"id": f"80{i:02d}"},
                    "recipient": {"id": PAGE},
                    "timestamp": 1767225600000 + i,
                    "message": {"mid": f"m_bulk_{i}", "text": "Jalan rusak " * 80},
                }
            ],
        }
        for i in range(50)
    ]
    body = json.dumps({"object": "page", "entry": entries}).encode()
    request = signed(body)
    conn = connector()
    conn.verify(request)
    messages = conn.parse(request, NOW)
    assert len(messages) == 50
    assert len({m.external_id for m in messages}) == 50
    assert len(body) > 50_000


def test_non_ascii_is_signed_as_it_was_sent() -> None:
    # Meta signs the \\u-escaped body on the wire; hashing the raw bytes is what matches.
    body = (
        b'{"object":"page","entry":[{"id":"111222333444","messaging":[{"sender":{"id":"7"},'
        b'"recipient":{"id":"111222333444"},"timestamp":1767225600000,'
        b'"message":{"mid":"m_u","text":"Jalan \\u00e4 rusak"}}]}]}'
    )
    request = signed(body)
    connector().verify(request)
    assert connector().parse(request, NOW)[0].text == "Jalan ä rusak"


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        (f"{SUBSCRIBE}&hub.challenge=1158201444", 200, b"1158201444"),
        (f"{SUBSCRIBE}&hub.challenge=abc%20def", 200, b"abc def"),
        ("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", 403, None),
        (f"hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1", 403, None),
        ("hub.challenge=1", 403, None),
    ],
)  # fmt: skip
def test_subscription_handshake(query: str, status: int, body: bytes | None) -> None:
    response = connector().handshake(wire("GET", f"{URL}?{query}"))
    assert response.status == status
    if body is not None:
        assert response.body == body
        assert response.content_type == "text/plain"


def test_an_empty_verify_token_never_matches() -> None:
    request = wire("GET", f"{URL}?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
    assert MetaConnector(APP_SECRET, "", ACCOUNTS).handshake(request).status == 403


def test_meta_is_answered_event_received() -> None:
    response = connector().respond([], [])
    assert (response.status, response.body) == (200, b"EVENT_RECEIVED")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["object", "entry", "messaging", "standby", "changes", "id", "time", "sender",
             "recipient", "timestamp", "message", "mid", "text", "attachments", "type",
             "payload", "url", "coordinates", "lat", "long", "is_echo", "is_deleted",
             "postback", "title", "field", "value", "from", "media", "media_id", "comment_id"]
        ) | st.text(max_size=5),
        inner,
        max_size=6,
    ),
    max_leaves=30,
)  # fmt: skip
_envelope = st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "instagram"]), "entry": st.lists(_json, max_size=3)}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), _json.map(json.dumps).map(str.encode),
                 _envelope.map(json.dumps).map(str.encode)))  # fmt: skip
def test_any_body_yields_messages_or_a_connector_error(body: bytes) -> None:
    request = signed(body)
    try:
        connector().verify(request)
        for message in connector().parse(request, NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass


# --- the fake Graph API, through aiohttp -----------------------------------------------------

PAGE_TOKEN = "EAAGpagetoken"


async def test_an_attachment_url_from_a_webhook_is_fetched_from_the_cdn() -> None:
    async with FakeMetaGraph(PAGE_TOKEN) as graph:
        url = graph.add_cdn_file("v/t1.15752-9/sampah_n.jpg", b"\xff\xd8\xffJPEG", "image/jpeg")
        body = json.dumps(
            {"object": "page", "entry": [{"id": PAGE, "time": 1767225600000, "messaging": [
                {"sender": {"id": "7001"}, "recipient": {"id": PAGE}, "timestamp": 1767225600000,
                 "message": {"mid": "m_cdn", "attachments": [
                     {"type": "image", "payload": {"url": url}}]}}]}]}
        ).encode()  # fmt: skip
        (message,) = connector().parse(signed(body), NOW)
        attachment = message.attachments[0]
        assert attachment.url is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(attachment.url) as response:
                assert response.status == 200
                assert response.content_type == attachment.content_type == "image/jpeg"
                assert await response.read() == b"\xff\xd8\xffJPEG"
            async with session.get(f"{graph.base_url}/cdn/expired.jpg") as response:
                assert response.status == 404


@pytest.mark.parametrize(
    ("token", "body", "status", "code"),
    [
        (PAGE_TOKEN, {"recipient": {"id": "7001"}, "messaging_type": "RESPONSE",
                      "message": {"text": "Laporan diterima: KNL-7Q4M-2K9D"}}, 200, None),
        ("EAAGwrong", {"recipient": {"id": "7001"}, "messaging_type": "RESPONSE",
                       "message": {"text": "x"}}, 400, 190),
        (PAGE_TOKEN, {"recipient": {"id": "7001"}, "messaging_type": "RESPONSE",
                      "message": {"text": "x" * 2001}}, 400, 100),
        (PAGE_TOKEN, {"recipient": {"id": "7001"}, "messaging_type": "UPDATE",
                      "message": {"text": "x"}}, 400, 100),
        (PAGE_TOKEN, {"messaging_type": "RESPONSE", "message": {"text": "x"}}, 400, 100),
    ],
)  # fmt: skip
async def test_the_fake_send_api_checks_token_and_shape(
    token: str, body: dict, status: int, code: int | None
) -> None:
    async with FakeMetaGraph(PAGE_TOKEN) as graph, aiohttp.ClientSession() as session:
        async with session.post(
            f"{graph.graph_url}/me/messages", params={"access_token": token}, json=body
        ) as response:
            answer = await response.json()
            assert response.status == status
        if code is None:
            assert answer == {"recipient_id": "7001", "message_id": "m_fake_1"}
            assert graph.sent == [body]
        else:
            assert answer["error"]["code"] == code
            assert graph.sent == []
        assert len(graph.requests) == 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures("meta"))
def test_recorded_payloads_with_odd_values_yield_messages_or_a_connector_error(
    body: bytes,
) -> None:
    try:
        for message in connector().parse(signed(body), NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass
