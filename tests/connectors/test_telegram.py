"""Telegram: secret-token webhook, Update → messages, and getUpdates polling over aiohttp."""

from __future__ import annotations

import json

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot
from telegram.error import BadRequest, InvalidToken

from connectors.base import ConnectorError, RawMessage, WireRequest
from connectors.telegram.api import TelegramApiError
from connectors.telegram.poll import get_updates, next_offset
from connectors.telegram.wire import TelegramConnector, messages_from_updates
from tests.connectors.cases import NOW, Case, fixture, mutated_fixtures, run_case, wire
from tests.connectors.signing import telegram_headers
from tests.fakes.telegram_api import FakeTelegramApi

SECRET = "kanal_tg-Secret_0123"
URL = "https://kanal.example/webhooks/telegram"
TOKEN = "7000000001:AAHfake-token_for_tests"


def connector() -> TelegramConnector:
    return TelegramConnector(SECRET)


def tg(name: str) -> bytes:
    return fixture("telegram", name)


def signed(body: bytes, secret: str = SECRET) -> WireRequest:
    return wire("POST", URL, body, telegram_headers(secret))


def _sender_in_full(messages: list[RawMessage]) -> None:
    sender = messages[0].sender
    assert (sender.user_id, sender.name, sender.handle) == ("12345", "Sari Wulandari", "sariw")
    assert messages[0].extra["update_id"] == 500001


def _accuracy(messages: list[RawMessage]) -> None:
    assert messages[0].coordinates is not None
    assert messages[0].coordinates.accuracy_m == 12.5


CASES = [
    # What a chat sends besides complaints: greetings and reactions, never reports.
    Case(
        "/start is a greeting",
        signed(tg("message__start.json")),
        kind="greeting",
        text="/start",
        sender="12345",
        group_key="dm:telegram:12345",
    ),
    Case(
        "a sticker sent alone is a reaction",
        signed(tg("message__sticker.json")),
        kind="reaction",
        text="",
        group_key="dm:telegram:12345",
        extra={
            "sticker": {"emoji": "👍", "file_unique_id": "AgADsticker", "set_name": "HotCherry"}
        },
    ),
    Case(
        "a private text message keeps the sender in full; dedupe on chat + message id",
        signed(tg("message__text.json")),
        text="Jalan di depan rumah saya rusak parah",
        sender="12345",
        external_id="12345:70",
        channel="telegram",
        group_key="dm:telegram:12345",
        check=_sender_in_full,
    ),
    Case(
        "a shared location inside Jakarta comes with its horizontal accuracy",
        signed(tg("message__location.json")),
        text="",
        external_id="12345:71",
        coordinates=(-6.2088, 106.8456),
        group_key="dm:telegram:12345",
        check=_accuracy,
    ),
    Case(
        "a location outside Jakarta (Bogor) is passed on unchanged",
        signed(tg("message__location_outside_jakarta.json")),
        coordinates=(-6.5971, 106.806),
        group_key="dm:telegram:12345",
    ),
    Case(
        "a venue gives coordinates and a 'title, address' hint",
        signed(tg("message__venue.json")),
        coordinates=(-6.2842, 106.8442),
        location_hint="Pasar Minggu, Jl. Raya Ragunan",
        group_key="dm:telegram:12345",
    ),
    Case(
        "an album photo takes the largest size; the caption is the text",
        signed(tg("message__photo_album_part1.json")),
        text="Tumpukan sampah di kali",
        attachments=[("AgACa_l", "image/jpeg")],
        group_key="album:12345:13598871938502617",
    ),
    Case(
        "the album's second part shares the group key",
        signed(tg("message__photo_album_part2.json")),
        text="",
        attachments=[("AgACb_l", "image/jpeg")],
        group_key="album:12345:13598871938502617",
    ),
    Case(
        "a document keeps its declared type and file name",
        signed(tg("message__document.json")),
        text="Surat pengaduan",
        attachments=[("BQACAgUAAxkBAAIB", "application/pdf")],
        group_key="dm:telegram:12345",
        check=lambda ms: ms[0].attachments[0].filename == "pengaduan.pdf",
    ),
    Case(
        "the first message of a live location is a location like any other",
        signed(tg("message__live_location.json")),
        external_id="12345:83",
        coordinates=(-6.1751, 106.865),
        group_key="dm:telegram:12345",
        extra={"live_period": 900},
    ),
    Case(
        "a live-location update is an edit of its message, never a new report",
        signed(tg("edited_message__live_location.json")),
        kind="edit",
        external_id="edit:12345:83:1767225800",
        coordinates=(-6.176, 106.8661),
        group_key="dm:telegram:12345",
        extra={"edits": "12345:83"},
    ),
    Case(
        "a channel post is signed by the channel",
        signed(tg("channel_post__text.json")),
        text="Lampu lalu lintas mati di perempatan Menteng",
        sender="-1001234567890",
        external_id="-1001234567890:5",
        check=lambda ms: ms[0].sender.handle == "wargamenteng",
    ),
    Case(
        "a group message has no DM group key; a reply points at its message",
        signed(tg("message__group_text.json")),
        external_id="-4000111222:900",
        check=lambda ms: ms[0].in_reply_to == ("-4000111222:899",),
    ),
    Case(
        "a shared contact alone is a reaction; the sender's own gives their phone",
        signed(tg("message__contact.json")),
        kind="reaction",
        group_key="dm:telegram:12345",
        check=lambda ms: ms[0].sender.phone == "6281234567890",
    ),
    Case("a callback query is no message", signed(tg("callback_query.json")), count=0),
    Case(
        "a request without the secret header is refused",
        wire("POST", URL, tg("message__text.json"), {"content-type": "application/json"}),
        status=401,
    ),
    Case(
        "a wrong secret token is refused",
        signed(tg("message__text.json"), secret="kanal_tg-Secret_0124"),
        status=401,
    ),
    Case("with the secret but not JSON is malformed", signed(b"update_id=1"), status=400),
    Case("an update without update_id is malformed", signed(b'{"message": {}}'), 400),
    Case(
        "a message without chat is malformed",
        signed(b'{"update_id": 5, "message": {"message_id": 1, "date": 1767225600}}'),
        status=400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_telegram_webhook(case: Case) -> None:
    run_case(connector(), case)


def test_an_empty_configured_secret_accepts_nothing() -> None:
    with pytest.raises(ConnectorError):
        TelegramConnector("").verify(signed(tg("message__text.json"), secret=""))


def test_a_webhook_retry_gives_the_same_external_id() -> None:
    body = tg("message__venue.json")
    assert connector().parse(signed(body), NOW) == connector().parse(signed(body), NOW)


def test_polling_and_webhook_agree_on_external_ids_and_the_next_offset() -> None:
    updates = [json.loads(tg(n)) for n in ("message__text.json", "callback_query.json")]
    messages, offset = messages_from_updates(updates, NOW)
    assert [m.external_id for m in messages] == ["12345:70"]
    assert offset == 500012
    pushed = connector().parse(signed(tg("message__text.json")), NOW)
    assert pushed[0].external_id == messages[0].external_id


def test_a_batch_of_fifty_updates_with_one_unreadable_still_advances() -> None:
    base = json.loads(tg("message__text.json"))
    updates = [
        {"update_id": 600000 + i, "message": {**base["message"], "message_id": 1000 + i}}
        for i in range(50)
    ]
    updates.append({"update_id": 600050, "message": "garbage"})
    messages, offset = messages_from_updates(updates, NOW)
    assert len(messages) == 50
    assert offset == 600051
    assert messages_from_updates([], NOW) == ([], None)


# --- getUpdates against the fake Bot API ----------------------------------------------------


async def poll(fake: FakeTelegramApi, offset: int | None, timeout: int, token: str = TOKEN):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        return await get_updates(
            session, base_url=fake.base_url, token=token, offset=offset, timeout=timeout
        )


async def test_get_updates_long_polls_confirms_with_offset_and_parses_updates() -> None:
    async with FakeTelegramApi(TOKEN) as fake:
        for name in (
            "message__venue.json",
            "message__photo_album_part1.json",
            "callback_query.json",
        ):
            fake.add_update(json.loads(tg(name)))
        updates = await poll(fake, None, 0)
        messages, _ = messages_from_updates(updates, NOW)
        assert [m.external_id for m in messages] == ["12345:77", "12345:80"]
        venue, photo = messages
        assert venue.location_hint == "Pasar Minggu, Jl. Raya Ragunan"
        assert venue.sender.name == "Sari Wulandari"
        assert photo.attachments[0].file_id == "AgACa_l"
        assert photo.extra["chat_type"] == "private"
        json.dumps([m.to_json() for m in messages])
        # allowed_updates leaves the callback query out; the offset confirms the rest
        offset = next_offset(updates, None)
        assert offset == 500006
        assert await poll(fake, offset, 0) == []
        assert next_offset([], offset) == offset
        assert fake.updates == []  # the offset confirmed them
        method, params = fake.calls[-1]
        assert method == "getUpdates"
        assert params["offset"] == 500006 and params["timeout"] == 0
        assert params["allowed_updates"] == [
            "message",
            "edited_message",
            "channel_post",
            "edited_channel_post",
        ]


async def test_get_updates_returns_as_soon_as_an_update_arrives_during_the_long_poll() -> None:
    import asyncio

    async with FakeTelegramApi(TOKEN) as fake:
        waiting = asyncio.create_task(poll(fake, None, 5))
        await asyncio.sleep(0.1)
        fake.add_update(json.loads(tg("edited_message__live_location.json")))
        updates = await asyncio.wait_for(waiting, 3)
        messages, _ = messages_from_updates(updates, NOW)
        assert [m.kind for m in messages] == ["edit"]
        assert next_offset(updates, None) == 500010


async def test_a_wrong_token_is_refused_like_telegram_does() -> None:
    async with FakeTelegramApi(TOKEN) as fake:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"{fake.base_url}123:wrong/getUpdates")
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        with pytest.raises(TelegramApiError, match="Unauthorized") as refused:
            await poll(fake, None, 0, token="123:wrong")
        assert "123:wrong" not in str(refused.value)
        assert refused.value.retry_after is None
        bot = Bot("123:wrong", base_url=fake.base_url)
        with pytest.raises(InvalidToken):
            await bot.initialize()


async def test_the_fake_validates_send_message_and_set_webhook_through_ptb() -> None:
    async with FakeTelegramApi(TOKEN) as fake:
        fake.add_update(json.loads(tg("message__text.json")))
        async with Bot(TOKEN, base_url=fake.base_url) as bot:
            sent = await bot.send_message(chat_id=12345, text="Laporan diterima: KNL-7Q4M-2K9D")
            assert sent.message_id > 0 and sent.chat.id == 12345
            assert fake.sent[0]["text"] == "Laporan diterima: KNL-7Q4M-2K9D"
            with pytest.raises(BadRequest, match=r"(?i)too long"):
                await bot.send_message(chat_id=12345, text="x" * 4097)
            with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                await bot.send_message(chat_id=999, text="halo")
            assert await bot.set_webhook(URL, secret_token=SECRET)
            assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
            with pytest.raises(BadRequest):
                await bot.set_webhook(URL, secret_token="not allowed!")
            with pytest.raises(Exception, match="webhook is active"):
                await bot.get_updates(timeout=0)
            assert await bot.delete_webhook()
            fake.add_update(json.loads(tg("message__venue.json")))
            fake.add_update(json.loads(tg("message__document.json")))
            first = await bot.get_updates(timeout=0, limit=1)
            assert [u.update_id for u in first] == [500001]
            rest = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
            assert [u.update_id for u in rest] == [500004, 500007]


# --- nothing but ConnectorError, whatever arrives -----------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["update_id", "message", "edited_message", "channel_post", "chat", "id", "type",
             "message_id", "date", "edit_date", "from", "first_name", "username", "text",
             "caption", "photo", "file_id", "width", "height", "document", "location",
             "latitude", "longitude", "live_period", "venue", "title", "address",
             "media_group_id", "contact", "user_id", "phone_number", "sender_chat"]
        ) | st.text(max_size=5),
        inner,
        max_size=6,
    ),
    max_leaves=30,
)  # fmt: skip
_update = st.fixed_dictionaries(
    {"update_id": st.integers(min_value=1, max_value=10**9),
     "message": st.fixed_dictionaries({"message_id": st.integers(), "chat": _json}, optional={
         "date": _json, "location": _json, "venue": _json, "photo": _json, "text": _json})}
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), _json.map(json.dumps).map(str.encode),
                 _update.map(json.dumps).map(str.encode)))  # fmt: skip
def test_any_body_yields_messages_or_a_connector_error(body: bytes) -> None:
    request = signed(body)
    try:
        connector().verify(request)
        for message in connector().parse(request, NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(_json | _update, max_size=5))
def test_polled_batches_never_raise(updates: list[object]) -> None:
    _, offset = messages_from_updates(updates, NOW)
    assert offset is None or isinstance(offset, int)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures("telegram"))
def test_recorded_updates_with_odd_values_yield_messages_or_a_connector_error(
    body: bytes,
) -> None:
    try:
        for message in connector().parse(signed(body), NOW):
            json.dumps(message.to_json())
    except ConnectorError:
        pass
    messages_from_updates([json.loads(body)], NOW)  # skips what it cannot read, never raises
