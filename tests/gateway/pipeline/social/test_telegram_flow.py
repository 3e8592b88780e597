"""Telegram from webhook (and from getUpdates polling) to canonical report: DMs joined,
albums gathered, photos fetched through getFile from the fake Bot API, edits ignored."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from gateway.intake.telegram import OFFSET_KEY, poll_telegram
from gateway.store.schema import raw_messages
from tests.fakes.telegram_api import FakeTelegramApi
from tests.gateway.pipeline.social.helpers import (
    MONAS,
    T0_MS,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    all_reports,
    group_key_column,
    jpeg,
    loopback_media,
    post_telegram,
    raw_states,
)

T0 = T0_MS // 1000
SARI = {"id": 12345, "is_bot": False, "first_name": "Sari", "username": "sariw"}
_ids = iter(range(500000, 600000))


def telegram_extra(fake: FakeTelegramApi, mode: str = "webhook") -> str:
    return f"""
[channels.telegram]
enabled = true
mode = "{mode}"
bot_token = "{TELEGRAM_TOKEN}"
secret_token = "{TELEGRAM_SECRET}"
base_url = "{fake.base_url}"
base_file_url = "{fake.base_file_url}"
poll_interval_s = 1
"""


def message(
    message_id: int,
    at_s: int = 0,
    *,
    chat: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    chat = chat or {"id": 12345, "type": "private", "first_name": "Sari"}
    body = {"message_id": message_id, "date": T0 + at_s, "chat": chat, "from": SARI, **fields}
    return {"update_id": next(_ids), "message": body}


def photo(file_id: str) -> list[dict[str, Any]]:
    return [
        {"file_id": f"{file_id}_s", "file_unique_id": f"{file_id}s", "width": 90, "height": 90},
        {"file_id": file_id, "file_unique_id": f"{file_id}l", "width": 1280, "height": 960},
    ]


async def test_a_dm_conversation_with_location_and_an_album_becomes_one_geo_tagged_report(
    make_kanal,
):
    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake))
        one, two = jpeg(colour="blue"), jpeg(colour="green")
        fake.add_file("P1", one, "photos/file_1.jpg")
        fake.add_file("P2", two, "photos/file_2.jpg")
        location = {"latitude": MONAS[0], "longitude": MONAS[1]}
        updates = [
            message(1, 0, text="Selokan mampet, air meluap"),
            message(2, 15, location=location),
            message(3, 40, photo=photo("P1"), media_group_id="g1", caption="ini fotonya"),
            message(4, 41, photo=photo("P2"), media_group_id="g1"),
        ]
        for update in updates:
            r = await post_telegram(k, update)
            assert r.status == 200
        assert await k.drain() == 4
        async with loopback_media(k) as worker:
            assert await worker.drain() == 2

        [report] = await all_reports(k)
        assert report.channel == "telegram" and report.reporter.channel_user_id == "12345"
        assert report.text == "Selokan mampet, air meluap\nini fotonya"
        assert report.geo_tagged and report.status == "ready"
        assert [(a.state, a.file_id) for a in report.attachments] == [
            ("stored", "P1"),
            ("stored", "P2"),
        ]
        assert [await k.store.get_blob(a.sha256) for a in report.attachments] == [
            ("image/jpeg", one),
            ("image/jpeg", two),
        ]
        assert await group_key_column(k, report.id) == "dm:telegram:12345"
        assert [m for m, _ in fake.calls].count("getFile") == 2


async def test_an_album_in_a_group_gathers_into_one_report(make_kanal):
    group = {"id": -100777, "type": "supergroup", "title": "Warga RW 03"}
    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake))
        fake.add_file("G1", jpeg(), "photos/g1.jpg")
        fake.add_file("G2", jpeg(colour="white"), "photos/g2.jpg")
        await post_telegram(
            k, message(10, 0, chat=group, photo=photo("G1"), media_group_id="77", caption="Banjir")
        )
        await post_telegram(
            k, message(11, 1, chat=group, photo=photo("G2"), media_group_id="77", caption="RT 5")
        )
        await post_telegram(k, message(12, 2, chat=group, text="Ada pohon tumbang juga"))
        assert await k.drain() == 3
        async with loopback_media(k) as worker:
            await worker.drain()
        album, other = await all_reports(k)
        assert album.text == "Banjir\nRT 5"
        assert [a.state for a in album.attachments] == ["stored", "stored"]
        assert await group_key_column(k, album.id) == "album:-100777:77"
        # group chats are no conversations: a plain message there is a report of its own
        assert other.text == "Ada pohon tumbang juga"


async def test_an_unknown_file_id_is_unavailable_and_the_report_stands(make_kanal):
    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake))
        await post_telegram(k, message(20, 0, photo=photo("GONE"), caption="Lampu mati"))
        await k.drain()
        async with loopback_media(k) as worker:
            await worker.drain()
        [report] = await all_reports(k)
        assert report.attachments[0].state == "unavailable"
        assert "getFile" in (report.attachments[0].error or "")
        assert TELEGRAM_TOKEN not in json.dumps(report.model_dump(mode="json"))


async def test_a_wrong_secret_is_401_and_live_location_edits_make_no_report(make_kanal):
    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake))
        r = await post_telegram(k, message(30, 0, text="halo"), secret="wrong")
        assert r.status == 401
        assert await k.store.count_raw() == 0
        live = {"latitude": MONAS[0], "longitude": MONAS[1], "live_period": 900}
        start = message(31, 0, location=live, text=None)
        start["message"].pop("text")
        edit = {
            "update_id": next(_ids),
            "edited_message": {**start["message"], "edit_date": T0 + 30},
        }
        await post_telegram(k, start)
        await post_telegram(k, edit)
        await post_telegram(k, edit)  # redelivered
        assert await k.drain() == 2
        assert len(await all_reports(k)) == 1
        assert sorted((await raw_states(k)).values()) == ["done", "ignored"]


async def test_polling_stores_updates_once_and_keeps_its_offset(make_kanal):
    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake, mode="polling"))
        r = await post_telegram(k, message(40, 0, text="x"))
        assert r.status == 404  # polling: the webhook is not served
        first = message(41, 0, text="Jalan rusak di Cempaka Putih")
        second = message(42, 5, text="sudah lama")
        fake.add_update(first)
        fake.add_update(second)

        assert await poll_telegram(k.runtime, budget_s=0.5) == 2
        assert await k.store.get_state(OFFSET_KEY) == second["update_id"] + 1
        assert await poll_telegram(k.runtime, budget_s=0.5) == 0  # confirmed, not sent again
        assert fake.updates == []
        [_, *gets] = [p for m, p in fake.calls if m == "getUpdates"]
        assert all(0 <= int(p.get("timeout", 0)) <= 1 for p in gets)

        async with k.store.read() as conn:
            rows = (await conn.execute(select(raw_messages.c.intake, raw_messages.c.payload))).all()
        assert {i for i, _ in rows} == {"poll"}
        assert json.loads(rows[0][1])["update_id"] == first["update_id"]

        assert await k.drain() == 2
        [report] = await all_reports(k)
        assert report.intake == "poll"
        assert report.text == "Jalan rusak di Cempaka Putih\nsudah lama"


async def test_start_is_welcomed_and_a_sticker_joins_the_open_report_never_a_report(make_kanal):
    from gateway.store.schema import outbound

    async with FakeTelegramApi(TELEGRAM_TOKEN) as fake:
        k = await make_kanal(extra=telegram_extra(fake))
        sticker = {"file_id": "CAACsticker", "file_unique_id": "Ust", "emoji": "👍"}
        for update in (
            message(10, 0, text="/start"),
            message(11, 5, sticker=sticker),  # nothing open yet: kept, no report
        ):
            assert (await post_telegram(k, update)).status == 200
        await k.drain()
        assert await all_reports(k) == []
        async with k.store.read() as conn:
            welcomes = (
                await conn.execute(select(outbound.c.kind, outbound.c.state, outbound.c.recipient))
            ).all()
        assert [tuple(w) for w in welcomes] == [("welcome", "queued", "telegram:12345")]
        states = await raw_states(k)
        assert states == {"12345:10": "ignored", "12345:11": "ignored"}

        assert (
            await post_telegram(k, message(12, 10, text="Lampu jalan mati di Jl. Cikini"))
        ).status == 200
        assert (await post_telegram(k, message(13, 20, sticker=sticker))).status == 200
        await k.drain()
        [report] = await all_reports(k)
        assert report.text == "Lampu jalan mati di Jl. Cikini"
        assert report.status == "pending_enrichment"
