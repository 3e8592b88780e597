"""What kanal keeps on disk: no webhook secret with a raw message, and every file and
folder it creates readable by its own user only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request

from sqlalchemy import select

from gateway.store.schema import raw_messages
from tests.conftest import SECRETS, free_port, wait_until_ready
from tests.connectors.signing import kanal_sign
from tests.gateway.pipeline.social.helpers import TELEGRAM_SECRET, TELEGRAM_TOKEN, post_telegram

TELEGRAM = f"""
[channels.telegram]
enabled = true
mode = "webhook"
bot_token = "{TELEGRAM_TOKEN}"
secret_token = "{TELEGRAM_SECRET}"
"""


async def test_a_telegram_message_is_stored_without_its_secret_token_header(make_kanal, db_url):
    k = await make_kanal(db_url, extra=TELEGRAM)
    update = {
        "update_id": 9001,
        "message": {
            "message_id": 1,
            "date": 1_800_000_000,
            "chat": {"id": 77, "type": "private", "first_name": "Sari"},
            "from": {"id": 77, "is_bot": False, "first_name": "Sari"},
            "text": "Lampu jalan mati",
        },
    }
    r = await post_telegram(k, update)
    assert r.status == 200
    async with k.store.read() as conn:
        rows = (await conn.execute(select(raw_messages.c.headers))).all()
    assert len(rows) == 1
    headers = rows[0][0] if isinstance(rows[0][0], dict) else json.loads(rows[0][0])
    assert "x-telegram-bot-api-secret-token" not in headers
    assert TELEGRAM_SECRET not in json.dumps(headers)
    assert headers[":method"] == "POST"  # the rest of the request is still on record


async def test_a_header_named_like_a_credential_is_not_stored(make_kanal):
    k = await make_kanal()
    body = json.dumps(
        {
            "id": "hdr-1",
            "from": "081234567890",
            "to": "1708",
            "text": "Sampah menumpuk",
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    headers = {
        **kanal_sign(SECRETS["sms_generic"], body),
        "X-Api-Key": "gateway-key-123",
        "X-Webhook-Secret": "shared-456",
    }
    r = await k.client.post("/webhooks/sms/generic", data=body, headers=headers)
    assert r.status == 200
    async with k.store.read() as conn:
        stored = json.dumps((await conn.execute(select(raw_messages.c.headers))).scalar_one())
    assert "gateway-key-123" not in stored and "shared-456" not in stored
    assert "x-kanal-signature" in stored  # a signature reveals no secret: kept


def _mode(path: os.PathLike[str]) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_kanal_serve_on_the_embedded_default_creates_private_files_and_folders(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "KANAL_SERVER__HTTP": f"127.0.0.1:{port}",
        "KANAL_SERVER__SMTP": f"127.0.0.1:{free_port()}",
    }
    env.pop("KANAL_CONFIG", None)
    log = (tmp_path / "serve.log").open("wb")
    previous = os.umask(0o022)  # the usual umask: kanal must not rely on the caller's
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        os.umask(previous)
    try:
        wait_until_ready(proc, f"http://127.0.0.1:{port}", tmp_path / "serve.log")
        secrets = tomllib_secret(tmp_path / "var" / "secrets.toml")
        body = json.dumps(
            {
                "id": "perm-1",
                "from": "081234567890",
                "to": "1708",
                "text": "Got mampet",
                "received_at": "2026-11-27T08:00:00+07:00",
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/sms/generic",
            data=body,
            headers=kanal_sign(secrets, body),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200  # the store has written its WAL
        var = tmp_path / "var"
        created = {p.relative_to(var).as_posix() for p in var.rglob("*")}
        assert {"kanal.db", "kanal.db-wal", "kanal.db-shm", "secrets.toml"} <= created
        assert "replicas/0.id" in created  # the replica's identity (gateway/replica.py)
        assert _mode(var) == 0o700
        for name in sorted(created):
            path = var / name
            wanted = 0o700 if path.is_dir() else 0o600
            assert _mode(path) == wanted, f"{name} is {oct(_mode(path))}"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def tomllib_secret(path: os.PathLike[str]) -> str:
    import tomllib

    with open(path, "rb") as file:
        return str(tomllib.load(file)["sms_generic"]["secret"])
