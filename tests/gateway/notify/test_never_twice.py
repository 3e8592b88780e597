"""Never twice, even under kill -9: a `kanal serve` killed while the provider holds its
request (recorded and claimed, maybe sent) does not send again after a restart; the ack is
marked failed with "interrupted; not resent to avoid a duplicate"."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import select

from gateway.notify.worker import INTERRUPTED
from gateway.store import Store
from gateway.store.schema import outbound
from tests.conftest import wait_for, write_config
from tests.fakes.twilio_api import FakeTwilioApi
from tests.gateway.notify.helpers import CITIZEN, OUR_NUMBER, TWILIO_SID, TWILIO_TOKEN

NOTIFY = """
[notify]
poll_interval_s = 0.2
scan_interval_s = 0.5
timeout_s = 2
claim_ttl_s = 3
"""


def twilio_signature(url: str, params: dict[str, str]) -> str:
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def post_twilio_sms(base_url: str, public_url: str, sid: str) -> None:
    params = {
        "MessageSid": sid,
        "AccountSid": TWILIO_SID,
        "From": CITIZEN,
        "To": OUR_NUMBER,
        "Body": "Jalan berlubang di depan SDN 01 Menteng",
        "NumMedia": "0",
    }
    url = f"{public_url}/webhooks/sms/twilio"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base_url}/webhooks/sms/twilio",
            data=urlencode(params),
            headers={
                "X-Twilio-Signature": twilio_signature(url, params),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def outbound_rows(db_url: str) -> list[dict[str, Any]]:
    store = Store(db_url)
    try:
        async with store.read() as conn:
            return [dict(r) for r in (await conn.execute(select(outbound))).mappings()]
    finally:
        await store.close()


async def test_kill_9_between_recorded_and_sent_never_sends_twice(
    tmp_path: Path, serve_process: Any
) -> None:
    db_url = f"sqlite:///{tmp_path}/kanal.db"
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        twilio.hold()  # the provider takes the request and does not answer
        config = write_config(tmp_path, db_url, NOTIFY)
        env = {
            "KANAL_CHANNELS__SMS_TWILIO__ACCOUNT_SID": TWILIO_SID,
            "KANAL_CHANNELS__SMS_TWILIO__API_BASE_URL": twilio.base_url,
        }
        server = serve_process(config, env)
        await asyncio.to_thread(server.start)
        await post_twilio_sms(server.base_url, server.base_url, "SM" + "a" * 32)

        async def provider_has_it() -> bool:
            return len(twilio.requests) == 1

        await wait_for(provider_has_it, timeout=15)
        [row] = await outbound_rows(db_url)
        assert row["state"] == "sending"  # recorded and claimed; the provider has it
        server.kill()  # SIGKILL while the send is in flight
        twilio.release()  # from now on the provider answers at once

        await asyncio.to_thread(server.start)

        async def settled() -> bool:
            rows = await outbound_rows(db_url)
            return bool(rows) and rows[0]["state"] not in ("queued", "sending")

        await wait_for(settled, timeout=20)
        await asyncio.sleep(1.5)  # a few more rounds of the notifier: still nothing resent
        [row] = await outbound_rows(db_url)
        server.stop()
    assert len(twilio.requests) == 1, "the provider was called again after the restart"
    assert row["state"] == "failed" and row["last_error"] == INTERRUPTED


async def test_kill_9_before_sending_sends_exactly_once_after_restart(
    tmp_path: Path, serve_process: Any
) -> None:
    db_url = f"sqlite:///{tmp_path}/kanal.db"
    async with FakeTwilioApi(TWILIO_SID, TWILIO_TOKEN) as twilio:
        config = write_config(tmp_path, db_url, NOTIFY)
        # A provider that refuses connections at first (nothing sent: safe to retry).
        env = {"KANAL_CHANNELS__SMS_TWILIO__API_BASE_URL": "http://127.0.0.1:9"}
        env["KANAL_CHANNELS__SMS_TWILIO__ACCOUNT_SID"] = TWILIO_SID
        server = serve_process(config, {**env, "KANAL_NOTIFY__RETRY_BASE_S": "1"})
        await asyncio.to_thread(server.start)
        await post_twilio_sms(server.base_url, server.base_url, "SM" + "b" * 32)

        async def queued_for_retry() -> bool:  # port 9 refuses: safe to retry later
            rows = await outbound_rows(db_url)
            return bool(rows) and rows[0]["state"] == "queued" and rows[0]["attempts"] >= 1

        await wait_for(queued_for_retry, timeout=15)
        server.kill()
        restarted = serve_process(
            config,
            {
                "KANAL_CHANNELS__SMS_TWILIO__ACCOUNT_SID": TWILIO_SID,
                "KANAL_CHANNELS__SMS_TWILIO__API_BASE_URL": twilio.base_url,
                "KANAL_NOTIFY__RETRY_BASE_S": "0.1",
            },
        )
        await asyncio.to_thread(restarted.start)

        async def sent() -> bool:
            rows = await outbound_rows(db_url)
            return rows[0]["state"] == "sent"

        await wait_for(sent, timeout=60)
        await asyncio.sleep(1.0)
        restarted.stop()
    assert len(twilio.sent) == 1 and len(twilio.requests) == 1
