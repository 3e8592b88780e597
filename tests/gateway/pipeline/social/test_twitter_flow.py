"""X (Twitter) from signed webhook and from polling (tweepy through the fake X API) to
canonical report: CRC, DM conversations, the persisted DM budget, rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from gateway.intake.twitter import STATE_KEY, poll_twitter, poller_for
from tests.connectors.cases import fixture
from tests.fakes.twitter_api import FakeTwitterApi
from tests.gateway.pipeline.social.helpers import (
    T0_MS,
    TWITTER_SECRET,
    all_reports,
    group_key_column,
    post_twitter,
)


def twitter_extra(mode: str = "webhook") -> str:
    return f"""
[channels.twitter]
enabled = true
mode = "{mode}"
consumer_key = "ck"
consumer_secret = "{TWITTER_SECRET}"
access_token = "at"
access_token_secret = "ats"
user_id = "900"
"""


def dm(event_id: str, at_s: float, text: str, sender: str = "42") -> dict[str, Any]:
    return {
        "for_user_id": "900",
        "direct_message_events": [
            {
                "type": "message_create",
                "id": event_id,
                "created_timestamp": str(T0_MS + int(at_s * 1000)),
                "message_create": {
                    "target": {"recipient_id": "900"},
                    "sender_id": sender,
                    "message_data": {"text": text, "entities": {}},
                },
            }
        ],
        "users": {sender: {"id": sender, "screen_name": f"warga{sender}", "name": "Warga"}},
    }


async def test_crc_and_signed_dms_become_one_conversation_report(make_kanal):
    k = await make_kanal(extra=twitter_extra())
    r = await k.client.get("/webhooks/twitter", params={"crc_token": "challenge-1"})
    expected = hmac.new(TWITTER_SECRET.encode(), b"challenge-1", hashlib.sha256).digest()
    assert (await r.json())["response_token"] == "sha256=" + base64.b64encode(expected).decode()

    assert (await post_twitter(k, dm("1777", 0, "Sampah menumpuk di pasar Senen"))).status == 200
    assert (await post_twitter(k, dm("1778", 50, "sejak kemarin"))).status == 200
    assert (await post_twitter(k, dm("1778", 50, "sejak kemarin"))).status == 200  # again
    assert (await post_twitter(k, dm("1779", 10, "x"), signed=False)).status == 401
    assert await k.drain() == 2
    [report] = await all_reports(k)
    assert report.channel == "twitter" and report.reporter.handle in ("warga42", "@warga42")
    assert report.text == "Sampah menumpuk di pasar Senen\nsejak kemarin"
    assert await group_key_column(k, report.id) == "dm:twitter:900:42"
    assert await k.store.count_raw() == 2


async def test_polling_stores_dms_and_mentions_once_and_persists_its_positions(make_kanal):
    k = await make_kanal(extra=twitter_extra("polling"))
    assert (await post_twitter(k, dm("1", 0, "x"))).status == 404  # polling: no webhook
    fake = FakeTwitterApi("900")
    fake.load(json.loads(fixture("twitter", "poll__dm_events.json")), "dm")
    fake.load(json.loads(fixture("twitter", "poll__mentions.json")), "mention")
    fake.install(poller_for(k.runtime).client)

    stored = await poll_twitter(k.runtime)
    assert stored >= 2
    state = await k.store.get_state(STATE_KEY)
    assert len(state["dm_calls"]) == 1 and state["dm"]["newest_id"] == "1781"
    assert state["mentions_since_id"]
    assert await poll_twitter(k.runtime) == 0  # nothing new: nothing stored twice
    assert (await k.drain()) == stored
    reports = await all_reports(k)
    assert reports and {r.intake for r in reports} == {"poll"}
    assert {r.channel for r in reports} == {"twitter"}


async def test_the_dm_budget_is_respected_across_runs_and_rate_limits_pause_an_endpoint(
    make_kanal,
):
    k = await make_kanal(extra=twitter_extra("polling"))
    fake = FakeTwitterApi("900")
    fake.install(poller_for(k.runtime).client)
    now = time.time()
    # 15 DM calls in the last 15 minutes (another replica, or before a restart)
    await k.store.set_state(STATE_KEY, {"dm_calls": [now - 60 * i for i in range(15)]})
    await poll_twitter(k.runtime)
    assert [r.path for r in fake.requests] == ["/2/users/900/mentions"]

    fake.requests.clear()
    await k.store.set_state(STATE_KEY, {})
    fake.throttle_next("/2/users/")
    await poll_twitter(k.runtime)
    state = await k.store.get_state(STATE_KEY)
    assert state["mentions_paused_until"] > now + 600
    fake.requests.clear()
    await poll_twitter(k.runtime)
    assert [r.path for r in fake.requests] == ["/2/dm_events"]  # mentions left alone
