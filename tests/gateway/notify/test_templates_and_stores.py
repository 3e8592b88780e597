"""The texts (an SMS ack fits one GSM-7 SMS in both languages) and the whole record →
claim → send → settle path on both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.sms_vonage.gsm import is_gsm7
from gateway.notify.templates import Templates
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.notify.helpers import (
    TWILIO_SID,
    TWILIO_TOKEN,
    arrive,
    notification,
    notifier,
    sms,
)

TRACK = "https://pengaduan.jakarta.go.id/track/KNL-7Q4M-2K9D"


@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("kind", ["ack", "done"])
def test_sms_texts_fit_one_gsm7_sms(language: str, kind: str) -> None:
    text = Templates.load("", language).render(kind, "sms", ticket="KNL-7Q4M-2K9D", track_url=TRACK)
    assert is_gsm7(text) and len(text) <= 160
    assert "KNL-7Q4M-2K9D" in text and TRACK in text


@pytest.mark.parametrize("language", ["id", "en"])
def test_every_family_has_the_ticket_and_the_link(language: str) -> None:
    templates = Templates.load("", language)
    for kind in ("ack", "done"):
        for family in ("sms", "email", "chat"):
            text = templates.render(kind, family, ticket="KNL-A", track_url="URL", subject="S")
            assert "KNL-A" in text and "URL" in text


async def test_acks_and_rate_limits_on_both_stores(make_kanal: Any, db_url: str) -> None:
    k = await make_kanal(db_url=db_url)
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        section = k.runtime.settings.channels.sms_twilio
        section.account_sid, section.api_base_url = TWILIO_SID, twilio.base_url
        reports = [await arrive(k, sms(text=f"Saluran air mampet {i}")) for i in range(4)]
        n = notifier(k)
        await n.drain()
        await n.drain()
        await n.close()
    assert len(twilio.sent) == 3
    states = [(await notification(k, r.id))["state"] for r in reports]
    assert states == ["sent", "sent", "sent", "skipped"]
