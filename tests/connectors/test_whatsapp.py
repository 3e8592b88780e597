"""WhatsApp Business Cloud API webhooks: handshake, signature, every entry, change, message
and status of a delivery → raw messages (table cases over the recorded fixtures)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from connectors.base import ConnectorError, RawMessage, WireRequest
from connectors.whatsapp.wire import WhatsAppConnector, e164
from tests.connectors.cases import NOW, Case, fixture, mutated_fixtures, run_case, wire
from tests.connectors.signing import meta_signature

APP_SECRET = "whatsapp-app-secret-0123"
VERIFY_TOKEN = "kanal-wa-verify"
NUMBER = "106540352242922"
OTHER_NUMBER = "106540352242999"
URL = "https://kanal.example/webhooks/whatsapp"
CITIZEN = "6281234567890"
DM = f"dm:whatsapp:{NUMBER}:{CITIZEN}"


def connector() -> WhatsAppConnector:
    return WhatsAppConnector(APP_SECRET, VERIFY_TOKEN, {NUMBER: "kota:31.71"})


def signed(body: bytes, secret: str = APP_SECRET) -> WireRequest:
    return wire("POST", URL, body, {"X-Hub-Signature-256": meta_signature(secret, body)})


def wa(name: str) -> WireRequest:
    return signed(fixture("whatsapp", name))


def wamid(n: int) -> str:
    return f"wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjA{n:05d}"


def _sender_is_the_citizen(messages: list[RawMessage]) -> None:
    sender = messages[0].sender
    assert (sender.user_id, sender.name, sender.phone) == (CITIZEN, "Siti Rahma", "+6281234567890")
    assert messages[0].extra["owner"] == "kota:31.71"
    assert messages[0].extra["phone_number_id"] == NUMBER


def _several(messages: list[RawMessage]) -> None:
    assert [m.kind for m in messages] == ["message", "message", "message", "status"]
    assert [m.external_id for m in messages[:3]] == [wamid(20), wamid(21), wamid(22)]
    # The second number is not configured: stored all the same, with no owner of its own.
    third = messages[2]
    assert third.group_key == f"dm:whatsapp:{OTHER_NUMBER}:6285712345678"
    assert third.extra["owner"] is None
    assert third.sender.name == "Joko"
    assert messages[1].coordinates is not None


def _failed(messages: list[RawMessage]) -> None:
    delivery = messages[0].extra["delivery"]
    assert delivery["state"] == "failed"
    assert delivery["error"].startswith("131047 Re-engagement message: Message failed")


CASES = [
    Case(
        "a text becomes a whatsapp message of the citizen, owned by the number's owner",
        wa("message__text.json"),
        text="Selamat siang, lampu jalan di Jl. Kebon Sirih depan no. 12 mati sejak 3 hari",
        sender=CITIZEN,
        external_id=wamid(1),
        group_key=DM,
        extra={"type": "text"},
        check=_sender_is_the_citizen,
    ),
    Case(
        "an image is a Graph media id with its caption as text",
        wa("message__image.json"),
        text="Sampah menumpuk di pinggir kali",
        attachments=[("1420123456789012", "image/jpeg")],
        group_key=DM,
    ),
    Case(
        "a video",
        wa("message__video.json"),
        text="Banjir setinggi lutut",
        attachments=[("1420123456789013", "video/mp4")],
        group_key=DM,
    ),
    Case(
        "a voice note is an audio attachment marked voice",
        wa("message__audio_voice.json"),
        text="",
        attachments=[("1420123456789014", "audio/ogg; codecs=opus")],
        group_key=DM,
        extra={"voice": True},
    ),
    Case(
        "a document keeps its file name",
        wa("message__document.json"),
        text="Surat pengaduan RT 03/RW 05",
        attachments=[("1420123456789015", "application/pdf")],
        group_key=DM,
        check=lambda m: m[0].attachments[0].filename == "pengaduan.pdf",
    ),
    Case(
        "a sticker is a reaction, its file kept as an attachment",
        wa("message__sticker.json"),
        kind="reaction",
        text="",
        attachments=[("1420123456789016", "image/webp")],
        group_key=DM,
    ),
    Case(
        "a shared location carries coordinates and its name as a hint",
        wa("message__location.json"),
        coordinates=(-6.1754, 106.8272),
        location_hint="Monas, Gambir, Jakarta Pusat",
        group_key=DM,
    ),
    Case(
        "a shared location outside Jakarta is read all the same (the normalizers judge it)",
        wa("message__location_outside_jakarta.json"),
        coordinates=(-6.9175, 107.6191),
        group_key=DM,
    ),
    Case(
        "a button reply reads as its title and answers our message",
        wa("message__interactive_button_reply.json"),
        text="Lapor baru",
        group_key=DM,
        extra={"reply_id": "lapor_baru", "interactive_type": "button_reply"},
        check=lambda m: m[0].in_reply_to == ("wamid.HBgNNjI4MTIzNDU2Nzg5MBURAGG00001",),
    ),
    Case(
        "a list reply reads as its title",
        wa("message__interactive_list_reply.json"),
        text="Jalan rusak",
        group_key=DM,
        extra={"reply_id": "kategori_jalan", "interactive_type": "list_reply"},
    ),
    Case(
        "a template's quick-reply button reads as its text",
        wa("message__button.json"),
        text="Cek status",
        group_key=DM,
        extra={"button_payload": "STATUS_LAPORAN"},
    ),
    Case(
        "a reply to an earlier message names it (context)",
        wa("message__text_reply_with_context.json"),
        text="Sudah 2 minggu belum diperbaiki",
        group_key=DM,
        check=lambda m: m[0].in_reply_to == ("wamid.HBgNNjI4MTIzNDU2Nzg5MBURAGG00003",),
    ),
    Case(
        "a reaction is kind reaction, its emoji as text",
        wa("message__reaction.json"),
        kind="reaction",
        text="\u2764\ufe0f",
        group_key=DM,
        extra={
            "reaction": {
                "message_id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBURAGG00003",
                "emoji": "\u2764\ufe0f",
            }
        },
    ),
    Case(
        "a removed reaction has no emoji",
        wa("message__reaction_removed.json"),
        kind="reaction",
        text="",
        group_key=DM,
        check=lambda m: m[0].extra["reaction"]["emoji"] is None,
    ),
    Case(
        "a contact card is kind reaction; the card's phone is not the sender's",
        wa("message__contacts.json"),
        kind="reaction",
        text="",
        group_key=DM,
        check=lambda m: (
            m[0].extra["contacts"][0]["phones"][0]["wa_id"] == "6281299990000"
            and m[0].sender.phone == "+6281234567890"
        ),
    ),
    Case(
        "an unsupported message is kept with its errors",
        wa("message__unsupported.json"),
        text="",
        group_key=DM,
        extra={"errors": ["131051 Message type unknown: Message type is currently not supported."]},
    ),
    Case(
        "a citizen writing from abroad gets an E.164 phone too",
        wa("message__from_abroad.json"),
        sender="2349067554729",
        group_key="dm:whatsapp:106540352242922:2349067554729",
        check=lambda m: m[0].sender.phone == "+2349067554729",
    ),
    Case(
        "a click-to-WhatsApp ad referral is kept",
        wa("message__referral.json"),
        text="Halo, saya mau lapor jalan rusak",
        group_key=DM,
        check=lambda m: m[0].extra["referral"]["source_type"] == "ad",
    ),
    Case(
        "a sent status is kind status, naming our message",
        wa("statuses__sent.json"),
        kind="status",
        external_id="status:wamid.HBgNNjI4MTIzNDU2Nzg5MBURAGG00101:sent",
        text="",
        extra={
            "delivery": {
                "provider_message_id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBURAGG00101",
                "state": "sent",
                "error": None,
            }
        },
    ),
    Case(
        "delivered and read of one message are two statuses",
        wa("statuses__delivered_and_read.json"),
        kind="status",
        count=2,
        check=lambda m: [x.extra["delivery"]["state"] for x in m] == ["delivered", "read"],
    ),
    Case(
        "a failed status says why",
        wa("statuses__failed.json"),
        kind="status",
        check=_failed,
    ),
    Case(
        "one delivery: every entry, change, message and status",
        wa("delivery__several_messages.json"),
        count=4,
        text="Ada pohon tumbang",
        group_key=DM,
        check=_several,
    ),
    Case("an account update holds no message", wa("account__update_no_message.json"), count=0),
    Case(
        "a wrong signature is 401",
        signed(fixture("whatsapp", "message__text.json"), "another-secret"),
        status=401,
    ),
    Case(
        "no signature is 401",
        wire("POST", URL, fixture("whatsapp", "message__text.json")),
        status=401,
    ),
    Case("a body that is not JSON is 400", signed(b"entry=1"), status=400),
    Case(
        "another object (a page) is 400",
        signed(json.dumps({"object": "page", "entry": []}).encode()),
        status=400,
    ),
    Case(
        "a message without from is 400",
        signed(
            json.dumps(
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "id": "1",
                            "changes": [
                                {
                                    "field": "messages",
                                    "value": {"messages": [{"id": "wamid.x", "type": "text"}]},
                                }
                            ],
                        }
                    ],
                }
            ).encode()
        ),
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_whatsapp_cases(case: Case) -> None:
    run_case(connector(), case)


def test_handshake_echoes_the_challenge_only_with_the_verify_token() -> None:
    good = wire("GET", f"{URL}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42")
    bad = wire("GET", f"{URL}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42")
    assert connector().handshake(good).body == b"42"
    assert connector().handshake(good).status == 200
    assert connector().handshake(bad).status == 403


@pytest.mark.parametrize(
    ("wa_id", "phone"),
    [("6281234567890", "+6281234567890"), ("2349067554729", "+2349067554729"), ("12", None)],
)
def test_wa_id_becomes_e164_for_any_country(wa_id: str, phone: str | None) -> None:
    assert e164(wa_id) == phone


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=mutated_fixtures("whatsapp"))
def test_a_mangled_delivery_is_read_or_refused_as_malformed_never_a_crash(body: bytes) -> None:
    try:
        messages = connector().parse(signed(body), NOW)
    except ConnectorError as exc:
        assert exc.status == 400
        return
    for message in messages:
        assert RawMessage.from_json(json.loads(json.dumps(message.to_json()))) == message
