"""Acknowledgements on Telegram, Messenger, Instagram, X DMs and e-mail: through each
platform's API (local fakes that check auth and fields like the platform), in the citizen's
own conversation or mail thread, and never to machines."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import tweepy
from aiosmtpd.controller import Controller

from connectors.base import Coordinates, RawMessage, Sender
from gateway.store.ids import new_id
from tests.conftest import free_port
from tests.fakes.meta_api import FakeMetaGraph
from tests.fakes.telegram_api import FakeTelegramApi
from tests.fakes.twitter_api import FakeTwitterApi
from tests.gateway.notify.helpers import arrive, notification, notifier

BOT_TOKEN = "123456:ABC-def_ghi"
PAGE_ID, PAGE_TOKEN = "111", "page-token-111"


def chat_message(
    channel: str,
    connector: str,
    user: str,
    extra: dict[str, Any],
    when: datetime | None = None,
    external_id: str | None = None,
    kind: str = "message",
) -> RawMessage:
    return RawMessage(
        connector=connector,
        channel=channel,
        external_id=external_id or new_id(),
        received_at=when or datetime.now(UTC),
        sender=Sender(user_id=user, name="Sari"),
        text="Sampah menumpuk di pasar Minggu",
        extra=extra,
        kind=kind,
    )


async def test_a_telegram_report_is_acknowledged_in_its_chat(make_kanal: Any) -> None:
    k = await make_kanal()
    async with FakeTelegramApi(BOT_TOKEN) as telegram:
        telegram.add_chat(12345)
        settings = k.runtime.settings.channels.telegram
        settings.bot_token, settings.base_url = BOT_TOKEN, telegram.base_url
        report = await arrive(
            k,
            chat_message(
                "telegram",
                "telegram",
                "12345",
                {"chat_id": 12345, "chat_type": "private", "message_id": 77},
            ),
        )
        group = await arrive(
            k,
            chat_message(
                "telegram", "telegram", "999", {"chat_id": -100999, "chat_type": "supergroup"}
            ),
        )
        n = notifier(k)
        await n.drain()
        await n.close()
    assert len(telegram.sent) == 1
    assert telegram.sent[0]["chat_id"] == 12345 and report.ticket in telegram.sent[0]["text"]
    assert (await notification(k, report.id))["state"] == "sent"
    assert (await notification(k, group.id))["error"] == "not_a_private_chat"


async def test_messenger_acks_inside_the_24_hour_window_and_skips_outside(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    async with FakeMetaGraph(PAGE_TOKEN) as graph:
        meta = k.runtime.settings.channels.meta
        from connectors.meta.config import MetaAccount

        meta.accounts = {PAGE_ID: MetaAccount(channel="facebook", page_token=PAGE_TOKEN)}
        meta.graph_url = graph.base_url
        extra = {"recipient_id": PAGE_ID, "entry_id": PAGE_ID}
        fresh = await arrive(k, chat_message("facebook", "meta", "7001", extra))
        old = await arrive(
            k,
            chat_message(
                "instagram", "meta", "7002", extra, when=datetime.now(UTC) - timedelta(hours=25)
            ),
        )
        comment = await arrive(k, chat_message("instagram", "meta", "7003", extra, kind="comment"))
        n = notifier(k)
        await n.drain()
        await n.close()
    assert len(graph.sent) == 1
    body = graph.sent[0]
    assert body["recipient"] == {"id": "7001"} and body["messaging_type"] == "RESPONSE"
    assert fresh.ticket in body["message"]["text"]
    assert (await notification(k, fresh.id))["state"] == "sent"
    assert (await notification(k, old.id))["error"] == "outside_24h_window"
    assert (await notification(k, comment.id))["error"] == "public_comment"


async def test_an_x_dm_is_answered_by_dm_and_a_public_mention_is_not(make_kanal: Any) -> None:
    k = await make_kanal()
    fake = FakeTwitterApi(own_user_id="900")
    client = tweepy.Client(
        consumer_key="ck",
        consumer_secret="cs",
        access_token="at",
        access_token_secret="ats",
        return_type=dict,
        wait_on_rate_limit=False,
    )
    fake.install(client)
    dm = await arrive(
        k, chat_message("twitter", "twitter", "42", {"for_user_id": "900"}, external_id="dm:1777")
    )
    mention = await arrive(
        k, chat_message("twitter", "twitter", "43", {}, kind="mention", external_id="1888")
    )
    n = notifier(k)
    n.senders["twitter"].client = client  # type: ignore[attr-defined]
    await n.drain()
    await n.close()
    assert len(fake.sent_dms) == 1
    assert fake.sent_dms[0]["participant_id"] == "42" and dm.ticket in fake.sent_dms[0]["text"]
    assert fake.requests[-1].authorization.startswith("OAuth ")
    assert (await notification(k, dm.id))["state"] == "sent"
    assert (await notification(k, mention.id))["error"] == "public_mention"


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


TRUSTED_MX = "mx.jakarta.go.id"  # channels.email.trusted_authserv_ids of these tests


def passed(sender: str, authserv_id: str = TRUSTED_MX) -> str:
    """An Authentication-Results value saying the sender's domain passed DMARC."""
    return f"{authserv_id}; dmarc=pass header.from={sender.rsplit('@', 1)[-1]}"


def mail(
    automated: str | None = None,
    sender: str = "budi@example.id",
    authentication_results: tuple[str, ...] | None = None,
) -> RawMessage:
    """A citizen's reply by e-mail; by default one the trusted mail host verified."""
    results = [passed(sender)] if authentication_results is None else list(authentication_results)
    return RawMessage(
        connector="email",
        channel="email",
        external_id=f"{new_id()}@example.id",
        received_at=datetime.now(UTC),
        sender=Sender(user_id=sender, email=sender, name="Budi"),
        text="Jalan berlubang di RT 03/RW 05",
        title="Re: Jalan rusak",
        in_reply_to=("older@example.id",),
        automated=automated,
        extra={
            "to": ["pengaduan@jakarta.go.id"],
            "message_id": None,
            "authentication_results": results,
        },
    )


async def test_an_email_is_answered_in_its_thread_from_the_official_address(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        section = k.runtime.settings.channels.email
        section.recipients = ["pengaduan@jakarta.go.id"]
        section.smtp_relay = f"127.0.0.1:{port}"
        section.trusted_authserv_ids = [TRUSTED_MX]
        report = await arrive(k, mail())
        bounce = await arrive(k, mail(automated="auto-submitted: auto-replied"))
        daemon = await arrive(k, mail(sender="mailer-daemon@example.id"))
        n = notifier(k)
        await n.drain()
        await n.close()
    finally:
        controller.stop()
    assert len(sink.messages) == 1
    mail_from, rcpt, content = sink.messages[0]
    assert rcpt == ["budi@example.id"] and mail_from == "pengaduan@jakarta.go.id"
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert parsed["In-Reply-To"] == f"<{report.external_id}>"
    assert parsed["References"].split() == ["<older@example.id>", f"<{report.external_id}>"]
    assert parsed["Subject"] == f"Laporan Anda diterima [{report.ticket}]"
    assert parsed["From"] == "pengaduan@jakarta.go.id"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert report.ticket in parsed.get_content()
    assert (await notification(k, report.id))["state"] == "sent"
    assert (await notification(k, bounce.id))["error"] == "automated"
    assert (await notification(k, daemon.id))["error"] == "automated"


async def test_jaki_gets_its_ticket_in_the_webhook_response_and_desks_print_receipts(
    make_kanal: Any,
) -> None:
    k = await make_kanal()
    jaki = await arrive(
        k,
        RawMessage(
            connector="jaki",
            channel="jaki",
            external_id=new_id(),
            received_at=datetime.now(UTC),
            text="Pohon tumbang",
        ),
    )
    imported = await arrive(k, mail(), intake="import")
    n = notifier(k)
    await n.drain()
    await n.close()
    note = await notification(k, jaki.id)
    assert note["state"] == "sent" and note["channel"] == "webhook_response"
    assert (await notification(k, imported.id))["error"] == "imported"
    await asyncio.sleep(0)


async def test_a_shared_location_without_words_is_acknowledged_and_a_full_round_goes_again(
    make_kanal: Any,
) -> None:
    """A citizen who only shares where it is gets the ticket (no words is not "noise"); and
    sends due beyond one round go out at once, not one round per poll interval."""
    k = await make_kanal()
    k.runtime.settings.notify.poll_interval_s = 3600.0  # only a full round may go again
    async with FakeTelegramApi(BOT_TOKEN) as telegram:
        settings = k.runtime.settings.channels.telegram
        settings.bot_token, settings.base_url = BOT_TOKEN, telegram.base_url
        reports = []
        for i in range(30):
            telegram.add_chat(5000 + i)
            message = chat_message(
                "telegram",
                "telegram",
                str(5000 + i),
                {"chat_id": 5000 + i, "chat_type": "private", "message_id": 1},
            )
            if i == 0:
                message = replace(message, text="", coordinates=Coordinates(-6.1955, 106.8235))
            reports.append(await arrive(k, message))
        assert reports[0].geo_tagged and not reports[0].text
        n = notifier(k)
        assert 30 > n.claim_size
        task = asyncio.create_task(n.run())
        try:
            for _ in range(200):
                if len(telegram.sent) >= 30:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert sorted(m["chat_id"] for m in telegram.sent) == [5000 + i for i in range(30)]
    assert (await notification(k, reports[0].id))["state"] == "sent"
