"""Every recorded fixture of every webhook connector, through the real `/webhooks/<path>`.

Zulip's `check_webhook` is the model: each file in tests/connectors/<connector>/ is sent,
signed with the platform's own scheme, to one in-process kanal (SQLite), and must be
answered 2xx; every message the connector's `parse` reads from it is stored once, by
(connector, external_id); the same signed request sent again stores nothing new. A
webhook connector without a folder of fixtures, or with an empty one, fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import pytest_asyncio
from sqlalchemy import func, select

import connectors
from gateway.store.schema import raw_messages
from tests.conftest import SECRETS, Kanal, start_kanal
from tests.connectors.cases import fixture_dir, wire
from tests.connectors.signing import (
    kanal_sign,
    meta_signature,
    telegram_headers,
    twilio_signature,
    twitter_signature,
    vonage_signed,
)
from tests.gateway.pipeline.social.helpers import (
    META_SECRET,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    TWITTER_SECRET,
    meta_extra,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WHATSAPP_SECRET = "whatsapp-app-secret"

EXTRA = f"""{meta_extra()}
[channels.twitter]
enabled = true
consumer_key = "ck"
consumer_secret = "{TWITTER_SECRET}"
access_token = "at"
access_token_secret = "ats"
user_id = "900"

[channels.telegram]
enabled = true
bot_token = "{TELEGRAM_TOKEN}"
secret_token = "{TELEGRAM_SECRET}"

[channels.whatsapp]
enabled = true
app_secret = "{WHATSAPP_SECRET}"
verify_token = "whatsapp-verify"
access_token = "whatsapp-token"

[channels.whatsapp.numbers."106540352242922"]
owner = "kota:31.71"
"""

# A fixture named `poll__*` is a record a poller reads (X's v2 API, LAPOR!'s API), not a
# webhook body: it is not sent here; the poller tests read it.
POLL_RECORD = "poll__"

# (connector, fixture) → the status it must get instead of 2xx, and why. Empty today.
STATUS: dict[tuple[str, str], tuple[int, str]] = {}

# (connector, fixture) → why the platform sends it although it holds no message of a
# citizen: these must be answered 2xx and store nothing; every other fixture must store
# at least one message.
NO_MESSAGE: dict[tuple[str, str], str] = {
    ("meta", "facebook__message__echo.json"): "Messenger echoes our own send back",
    ("twitter", "dm__own_send.json"): "our own DM (sender == for_user_id)",
    ("twitter", "favorite__event.json"): "a like",
    ("twitter", "tweet__own.json"): "our own tweet",
    ("twitter", "tweet__retweet.json"): "a retweet is not a new mention",
    ("telegram", "callback_query.json"): "a button pressed under one of our messages",
    ("whatsapp", "account__update_no_message.json"): "a change of the business account",
}

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
KANNEL_FIXTURE_KEY = "key=s3cret"  # the key recorded in Kannel's get-url fixtures

# The request a platform makes: method, path and query under the public URL, body, headers.
Request = tuple[str, str, bytes, dict[str, str]]


def _kanal_scheme(name: str) -> Callable[[Kanal, str, str, bytes], Request]:
    def build(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
        return "POST", path, body, {**JSON, **kanal_sign(SECRETS[name], body)}

    return build


def _twilio(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    params = parse_qsl(body.decode(), keep_blank_values=True)
    url = k.runtime.settings.server.public_url + path  # Twilio signs the URL it called
    signature = twilio_signature(SECRETS["sms_twilio"], url, params)
    return "POST", path, body, {**FORM, "X-Twilio-Signature": signature}


def _vonage(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    secret = SECRETS["sms_vonage"]  # signature_method = "sha256" in the test config
    if fixture.endswith(".json"):
        signed = vonage_signed(json.loads(body), secret, "sha256")
        return "POST", path, json.dumps(signed).encode(), JSON
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return "GET", f"{path}?{urlencode(vonage_signed(params, secret, 'sha256'))}", b"", {}


def _kannel(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    key = f"key={SECRETS['sms_kannel']}"
    if body.startswith(b"key="):  # get-url: the message is the query, bytes as recorded
        query = body.decode("ascii")
        assert query.count(KANNEL_FIXTURE_KEY) == 1, fixture
        return "GET", f"{path}?{query.replace(KANNEL_FIXTURE_KEY, key)}", b"", {}
    # post-url: the text is the body, the rest comes in X-Kannel-* headers
    headers = {
        "content-type": 'text/plain; charset="UTF-8"',
        "X-Kannel-From": "+6281355556666",
        "X-Kannel-To": "1500XXX",
        "X-Kannel-Time": "2026-01-01 00:05:00",
    }
    return "POST", f"{path}?{key}&id={Path(fixture).stem}", body, headers


def _meta(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    return "POST", path, body, {**JSON, "X-Hub-Signature-256": meta_signature(META_SECRET, body)}


def _twitter(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    signature = twitter_signature(TWITTER_SECRET, body)
    return "POST", path, body, {**JSON, "X-Twitter-Webhooks-Signature": signature}


def _whatsapp(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    signature = meta_signature(WHATSAPP_SECRET, body)  # the app secret, as for Messenger
    return "POST", path, body, {**JSON, "X-Hub-Signature-256": signature}


def _telegram(k: Kanal, path: str, fixture: str, body: bytes) -> Request:
    return "POST", path, body, telegram_headers(TELEGRAM_SECRET)


# How each platform signs and sends: a new webhook connector adds its line here.
SEND: dict[str, Callable[[Kanal, str, str, bytes], Request]] = {
    "sms_twilio": _twilio,
    "sms_vonage": _vonage,
    "sms_kannel": _kannel,
    "sms_generic": _kanal_scheme("sms_generic"),
    "jaki": _kanal_scheme("jaki"),
    "lapor": _kanal_scheme("lapor"),
    "meta": _meta,
    "twitter": _twitter,
    "telegram": _telegram,
    "whatsapp": _whatsapp,
}

WEBHOOK_CONNECTORS = [c for c in connectors.ALL if c.webhook]


def _cases() -> list[object]:
    cases: list[object] = []
    for connector in WEBHOOK_CONNECTORS:
        folder = fixture_dir(connector.name)
        found = folder.iterdir() if folder.is_dir() else ()
        files = sorted(p.name for p in found if p.is_file() and not p.name.startswith("."))
        if not files:
            cases.append(pytest.param(connector.name, None, id=f"{connector.name}-no fixtures"))
        for name in files:
            marks = []
            if name.startswith(POLL_RECORD):
                marks.append(pytest.mark.skip(reason="a poller's record, not a webhook body"))
            cases.append(
                pytest.param(connector.name, name, marks=marks, id=f"{connector.name}-{name}")
            )
    return cases


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kanal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Kanal]:
    k = await start_kanal(tmp_path_factory.mktemp("check_webhook"), extra=EXTRA)
    yield k
    await k.close()


async def _stored(k: Kanal, connector: str) -> dict[str, int]:
    """external_id → how many raw messages of the connector carry it."""
    async with k.store.read() as conn:
        rows = await conn.execute(
            select(raw_messages.c.external_id, func.count())
            .where(raw_messages.c.connector == connector)
            .group_by(raw_messages.c.external_id)
        )
        return {external_id: count for external_id, count in rows}


@pytest.mark.parametrize(("connector", "fixture"), _cases())
async def test_check_webhook(kanal: Kanal, connector: str, fixture: str | None) -> None:
    spec = connectors.BY_NAME[connector]
    assert fixture is not None, (
        f"{connector} has a webhook but no recorded fixtures in {fixture_dir(connector)}"
    )
    assert connector in SEND, f"{connector}: say in SEND how its platform signs a webhook"
    path = f"/webhooks/{spec.webhook}"
    body = (fixture_dir(connector) / fixture).read_bytes().rstrip(b"\n")
    method, path_qs, sent, headers = SEND[connector](kanal, path, fixture, body)

    request = wire(method, kanal.runtime.settings.server.public_url + path_qs, sent, headers)
    parsed = kanal.runtime.webhooks[connector].parse(request, datetime.now(UTC))
    expected = {m.external_id for m in parsed}
    if (connector, fixture) in NO_MESSAGE:
        assert not expected, f"declared as holding no message: {NO_MESSAGE[connector, fixture]}"
    else:
        assert expected, "no message read: declare it in NO_MESSAGE with the reason"

    before = await _stored(kanal, connector)
    response = await kanal.client.request(method, path_qs, data=sent, headers=headers)
    status, why = STATUS.get((connector, fixture), (None, ""))
    if status is None:
        assert 200 <= response.status < 300, f"{response.status}: {await response.text()}"
    else:
        assert response.status == status, why
    after = await _stored(kanal, connector)
    assert set(after) - set(before) == expected - set(before), "stored other than parse read"
    assert {e: after.get(e) for e in expected} == dict.fromkeys(expected, 1)

    again = await kanal.client.request(method, path_qs, data=sent, headers=headers)
    assert again.status == response.status
    assert await _stored(kanal, connector) == after, "the replay stored something new"
