"""What `kanal serve` writes to its log at info level never holds a citizen's phone number,
e-mail address or words — whatever the message, well-formed or not."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import aiohttp

from tests.conftest import SECRETS, write_config
from tests.connectors.signing import kanal_sign, vonage_signed

PHONE, PHONE_INTL, EMAIL = "081298765432", "6281298765432", "rahasia.warga@example.id"
WORDS = "Pungutan liar di kantor kelurahan oleh oknum berbaju batik"


async def test_no_phone_address_or_text_reaches_the_log(tmp_path, serve_process):
    server = serve_process(write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db"))
    server.start()
    generic = json.dumps(
        {
            "id": "p1",
            "from": PHONE,
            "to": "1708",
            "text": WORDS,
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    jaki = json.dumps(
        {
            "id": "J-p",
            "reporter": {"name": "Warga", "phone": PHONE, "email": EMAIL},
            "text": WORDS,
            "location": {"lat": -6.2, "lon": 106.83},
            "photos": [],
            "created_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    bad = json.dumps({"id": "p2", "from": PHONE, "text": WORDS}).encode()  # "to" is missing
    part = vonage_signed(
        {
            "msisdn": PHONE_INTL,
            "to": "62215550000",
            "type": "text",
            "concat": "true",
            "concat-ref": "5",
            "concat-total": "2",
            "concat-part": "1",
            "messageId": "V1",
            "text": WORDS,
            "message-timestamp": "2026-11-27 01:00:00",
        },
        SECRETS["sms_vonage"],
        "sha256",
    )
    async with aiohttp.ClientSession(server.base_url) as http:
        for path, body, secret in (
            ("/webhooks/sms/generic", generic, SECRETS["sms_generic"]),
            ("/webhooks/jaki", jaki, SECRETS["jaki"]),
            ("/webhooks/sms/generic", bad, SECRETS["sms_generic"]),
            ("/webhooks/sms/generic", generic, "wrong"),
        ):
            async with http.post(path, data=body, headers=kanal_sign(secret, body)) as r:
                assert r.status in (200, 400, 401)
        async with http.get("/webhooks/sms/vonage?" + urlencode(part)) as r:
            assert r.status == 200
        await asyncio.sleep(3.5)  # normalized; the lonely part goes on incomplete (2 s)
    server.stop()
    logged = server.log_path.read_text()
    assert "kanal serve on" in logged  # the log is the real one, at info level
    for secret in (PHONE, PHONE_INTL, "+" + PHONE_INTL, EMAIL, "Pungutan liar", "batik"):
        assert secret not in logged, f"{secret!r} was logged"
