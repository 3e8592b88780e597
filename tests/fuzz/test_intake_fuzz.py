"""Fuzzing every connector through the real HTTP path with valid signatures, and the SMTP
listener: payloads close to each wire format (recorded fixtures with values swapped for
hostile ones: lone surrogates, NUL, huge numbers, deep nesting, wrong types) never get a
5xx; a 2xx is stored once (the same request again stores nothing new); a 400 leaves the
payload in the inbox (`GET /api/v1/inbox`). One kanal for the module, SQLite, bounded."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SECRETS, free_port, write_config
from tests.connectors.cases import fixture_dir, replace_value, value_paths
from tests.connectors.signing import (
    kanal_sign,
    meta_signature,
    telegram_headers,
    twilio_signature,
    twitter_signature,
    vonage_signed,
)
from tests.gateway.intake.email.conftest import RECIPIENT, smtp_transaction

T = TypeVar("T")
META_SECRET, TWITTER_SECRET = "fuzz-meta-secret", "fuzz-twitter-secret"
TELEGRAM_SECRET, PAGE_ID = "fuzz-telegram-secret", "111222333444"
EXTRA = f"""
[channels.meta]
enabled = true
app_secret = "{META_SECRET}"
verify_token = "v"
[channels.meta.accounts."{PAGE_ID}"]
channel = "facebook"
[channels.meta.accounts."17841400000000001"]
channel = "instagram"

[channels.twitter]
enabled = true
consumer_secret = "{TWITTER_SECRET}"
user_id = "900"

[channels.telegram]
enabled = true
bot_token = "123456:fuzz"
secret_token = "{TELEGRAM_SECRET}"

[channels.email]
enabled = true
recipients = ["{RECIPIENT}"]
max_message_bytes = 200000
"""
FUZZ = settings(
    # 40 per connector keeps the module under ~20 s; KANAL_FUZZ_EXAMPLES=400 hunts longer.
    max_examples=int(os.environ.get("KANAL_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values a hostile or buggy sender puts where a field is expected ---------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "\ud800",
        "Lampu \udfff mati",
        "\x00",
        "a\x00b",
        "9" * 400,
        "-1e999",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "2026-13-45T99:99:99Z",
        "",
        " ",
        "KNL-AAAA-AAAA",
        "\u202e\ufeff",
        "%00%ff",
        "https://169.254.169.254/latest",
    ]
)
TEXT = st.text(max_size=40) | HOSTILE_TEXT
LEAF = (
    TEXT
    | st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**30), 2**63, -(2**63) - 1, 1e308, -0.0])
    | st.floats(allow_nan=False)
)
VALUE = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _documents(*folders_and_patterns: tuple[str, str]) -> list[Any]:
    found = []
    for folder, pattern in folders_and_patterns:
        found += [json.loads(p.read_bytes()) for p in sorted(fixture_dir(folder).glob(pattern))]
    return found


def mutated_json(*sources: tuple[str, str]) -> st.SearchStrategy[bytes]:
    """A recorded payload with up to four values anywhere in it swapped for hostile ones,
    now and then a raw body that is not JSON at all (deep nesting, bad UTF-8, NaN)."""
    documents = _documents(*sources)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        document = copy.deepcopy(draw(st.sampled_from(documents)))
        paths = value_paths(document)[1:]
        for _ in range(draw(st.integers(0, 3))):
            path = draw(st.sampled_from(paths))
            try:
                # Mostly text (what most fields hold, so the parser gets past its checks).
                document = replace_value(document, path, draw(TEXT | TEXT | VALUE))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier swap removed the path
        return json.dumps(document).encode()

    raw = st.sampled_from(
        [b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000, b"\xff\xfe{}", b'{"id": NaN}', b"{}", b"[]"]
    )
    return st.one_of(build(), build(), build(), build(), raw)


def mutated_form(connector: str, *, surrogates: bool) -> st.SearchStrategy[dict[str, str]]:
    """A recorded form/query payload with some values swapped (lone surrogates only where
    the scheme signs bytes kanal never decodes)."""
    documents = [
        dict(parse_qsl(p.read_text().strip(), keep_blank_values=True))
        for p in sorted(fixture_dir(connector).glob("*.txt"))
    ]
    text = TEXT if surrogates else st.text(max_size=40) | HOSTILE_TEXT.filter(_encodable)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, str]:
        params = dict(draw(st.sampled_from(documents)))
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from(sorted(params)) | text)
            params[key] = draw(text)
        if draw(st.booleans()) and params:
            params.pop(draw(st.sampled_from(sorted(params))))
        return params

    return build()


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- one kanal for the module, on an event loop of its own --------------------------------


class Running:
    """kanal (HTTP and SMTP) served from a background event loop; tests call in."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.kanal: Any = None
        self.smtp_port = 0
        self.token = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    async def start(self, directory: Path) -> None:
        from aiohttp.test_utils import TestClient, TestServer

        from gateway.base.config import load_config
        from gateway.base.runtime import build_runtime
        from gateway.intake.smtp import start_smtp
        from gateway.web.app import create_app
        from tests.conftest import Kanal

        config = write_config(directory, f"sqlite:///{directory}/kanal.db", EXTRA)
        runtime = build_runtime(load_config(str(config), environ={}))
        await runtime.store.migrate()
        client = TestClient(TestServer(create_app(runtime), host="127.0.0.1"))
        await client.start_server()
        self.kanal = Kanal(runtime, client, str(client.make_url("")).rstrip("/"))
        self.smtp_port = free_port()
        self.smtp = await start_smtp(runtime, "127.0.0.1", self.smtp_port)
        self.token = await self.kanal.token()

    async def stop(self) -> None:
        self.smtp.close()
        await self.kanal.client.close()
        await self.kanal.runtime.store.close()


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running()
    running.run(running.start(tmp_path_factory.mktemp("fuzz")))
    try:
        yield running
    finally:
        running.run(running.stop())
        running.loop.call_soon_threadsafe(running.loop.stop)
        running.thread.join(timeout=10)


# --- the properties ----------------------------------------------------------------------


async def _post(running: Running, path: str, body: bytes, headers: dict[str, str]) -> int:
    response = await running.kanal.client.post(path, data=body, headers=headers)
    await response.read()
    return response.status


async def _in_inbox(running: Running, body: bytes) -> bool:
    answer = await running.kanal.client.get(
        "/api/v1/inbox?limit=500", headers={"Authorization": f"Bearer {running.token}"}
    )
    assert answer.status == 200
    wanted = "malformed:" + hashlib.sha256(body).hexdigest()
    return any(item["external_id"] == wanted for item in (await answer.json())["items"])


def check_webhook(running: Running, path: str, body: bytes, headers: dict[str, str]) -> None:
    """No 5xx; a 2xx stores its messages once; a 400 keeps the payload in the inbox."""
    store = running.kanal.runtime.store

    async def exchange() -> None:
        status = await _post(running, path, body, headers)
        assert status < 500, f"{path} answered {status}"
        if 200 <= status < 300:
            stored = await store.count_raw()
            again = await _post(running, path, body, headers)
            assert 200 <= again < 300, f"{path}: the same request answered {again} the second time"
            assert await store.count_raw() == stored, f"{path}: a redelivery stored more"
        else:
            assert status == 400, f"{path} answered {status}"
            assert await _in_inbox(running, body), f"{path}: 400 but the payload is not kept"
        await running.kanal.drain()  # normalizing must not stall either

    running.run(exchange())


def json_headers(extra: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **extra}


@FUZZ
@given(body=mutated_json(("sms_generic", "*.json")))
def test_generic_sms_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    check_webhook(
        kanal, "/webhooks/sms/generic", body, json_headers(kanal_sign(SECRETS["sms_generic"], body))
    )


@FUZZ
@given(body=mutated_json(("jaki", "*.json")))
def test_jaki_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    check_webhook(kanal, "/webhooks/jaki", body, json_headers(kanal_sign(SECRETS["jaki"], body)))


@FUZZ
@given(body=mutated_json(("lapor", "*.json")))
def test_lapor_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    check_webhook(kanal, "/webhooks/lapor", body, json_headers(kanal_sign(SECRETS["lapor"], body)))


@FUZZ
@given(body=mutated_json(("meta", "*.json")))
def test_meta_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    signature = {"X-Hub-Signature-256": meta_signature(META_SECRET, body)}
    check_webhook(kanal, "/webhooks/meta", body, json_headers(signature))


@FUZZ
@given(body=mutated_json(("twitter", "dm__*.json"), ("twitter", "tweet__*.json")))
def test_twitter_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    signature = {"x-twitter-webhooks-signature": twitter_signature(TWITTER_SECRET, body)}
    check_webhook(kanal, "/webhooks/twitter", body, json_headers(signature))


@FUZZ
@given(body=mutated_json(("telegram", "*.json")))
def test_telegram_never_fails_with_a_5xx(kanal: Running, body: bytes) -> None:
    check_webhook(kanal, "/webhooks/telegram", body, telegram_headers(TELEGRAM_SECRET))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@FUZZ
@given(params=mutated_form("sms_twilio", surrogates=False))
def test_twilio_never_fails_with_a_5xx(kanal: Running, params: dict[str, str]) -> None:
    url = kanal.kanal.runtime.settings.server.public_url + "/webhooks/sms/twilio"
    body = urlencode(params).encode()
    signature = {"X-Twilio-Signature": twilio_signature(SECRETS["sms_twilio"], url, params)}
    if body:
        check_webhook(kanal, "/webhooks/sms/twilio", body, {**FORM, **signature})


@FUZZ
@given(params=mutated_form("sms_vonage", surrogates=False), as_json=st.booleans())
def test_vonage_never_fails_with_a_5xx(
    kanal: Running, params: dict[str, str], as_json: bool
) -> None:
    signed = vonage_signed(params, SECRETS["sms_vonage"], "sha256")
    if as_json:
        body, headers = json.dumps(signed).encode(), {"Content-Type": "application/json"}
    else:
        body, headers = urlencode(signed).encode(), FORM
    check_webhook(kanal, "/webhooks/sms/vonage", body, headers)


@FUZZ
@given(params=mutated_form("sms_kannel", surrogates=True))
def test_kannel_never_fails_with_a_5xx(kanal: Running, params: dict[str, str]) -> None:
    params["key"] = SECRETS["sms_kannel"]
    body = urlencode(params, encoding="utf-8", errors="surrogatepass").encode()
    check_webhook(kanal, "/webhooks/sms/kannel", body, FORM)


# --- SMTP ----------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
        "In-Reply-To", "References", "Content-Type", "Content-Transfer-Encoding",
        "MIME-Version", "Auto-Submitted", "Return-Path", "Authentication-Results",
    ]
)  # fmt: skip
HEADER_VALUES = (
    st.text(max_size=60)
    | HOSTILE_TEXT
    | st.sampled_from(
        [
            "multipart/mixed; boundary=x",
            "text/plain; charset=unknown-8bit",
            "=?utf-8?B?////?=",
            "=?x-bogus?Q?=FF?=",
            "<a@b> <c@d> " * 40,
            "Warga <warga@example.id>",
            "base64",
            "mx.example; dmarc=pass header.from=example.id",
        ]
    )
)
MAIL_BODY = st.binary(max_size=300) | st.text(max_size=300).map(
    lambda t: t.encode("utf-8", "surrogatepass")
)


@st.composite
def raw_mail(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
    lines = [
        f"{name}: {value}".encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        for name, value in headers
    ]
    if draw(st.booleans()):
        lines.append(f"Message-ID: <fuzz-{draw(st.integers(0, 10**6))}@example.id>".encode())
    body = draw(MAIL_BODY)
    if draw(st.booleans()):
        body = b"--x\r\nContent-Type: image/jpeg\r\n\r\n" + body + b"\r\n--x--\r\n"
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@FUZZ
@given(raw=raw_mail())
def test_any_mail_through_smtp_is_stored_once(kanal: Running, raw: bytes) -> None:
    store = kanal.kanal.runtime.store

    def deliver() -> int:
        result = smtp_transaction(kanal.smtp_port, raw)
        assert result.data is not None
        return result.data[0]

    assert deliver() == 250
    stored = kanal.run(store.count_raw())
    assert deliver() == 250
    assert kanal.run(store.count_raw()) == stored, "the same mail delivered again stored more"
    kanal.run(kanal.kanal.drain())
