"""The LAPOR! poller pages through a (fake, local) LAPOR! API since its last position and
stores each record as connector `lapor`, deduped with the webhook on the tracking id."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from connectors.base import kanal_signature
from connectors.lapor.poll import LaporPollError
from gateway.intake.lapor import POSITION_KEY, poll_lapor
from gateway.store.schema import raw_messages
from tests.conftest import SECRETS

TOKEN = "lapor-api-token"


def record(n: int, **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "TrackingID": 5000 + n,
        "judul": f"Laporan {n}",
        "isi": f"Jalan rusak nomor {n} di Kebayoran Baru",
        "pelapor": {"nama": f"Warga {n}", "telepon": "081234567890"},
        "rahasia": "0",
        "anonim": 0,
        "tanggal": "2026-11-27T08:00:00+07:00",
        **extra,
    }


MAPPING = """
[channels.lapor.field_mapping]
tracking_id = "TrackingID"
title = "judul"
text = "isi"
"reporter.name" = "pelapor.nama"
"reporter.phone" = "pelapor.telepon"
confidential = "rahasia"
anonymous = "anonim"
created_at = "tanggal"
"""


class FakeLapor:
    """Pages of `size` records after the cursor `since` (an index), Bearer-protected."""

    def __init__(self, records: list[dict], size: int = 2):  # type: ignore[type-arg]
        self.records, self.size = records, size
        self.calls: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        since = request.query.get("since")
        self.calls.append(since)
        start = int(since) if since else 0
        page = self.records[start : start + self.size]
        end = start + len(page)
        return web.json_response(
            {"records": page, "next_cursor": str(end), "has_more": end < len(self.records)}
        )


@pytest.fixture
async def fake_lapor():
    servers = []

    async def start(records):  # type: ignore[no-untyped-def]
        fake = FakeLapor(records)
        app = web.Application()
        app.router.add_get("/api/laporan", fake.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return fake, str(server.make_url("/api/laporan"))

    yield start
    for server in servers:
        await server.close()


async def make(make_kanal, tmp_path, url: str):  # type: ignore[no-untyped-def]
    (tmp_path / "lapor-token").write_text(TOKEN)
    k = await make_kanal()
    lapor = k.runtime.settings.channels.lapor
    lapor.poll_endpoint = url
    lapor.poll_token_file = str(tmp_path / "lapor-token")
    lapor.field_mapping = dict(
        line.replace('"', "").split(" = ") for line in MAPPING.strip().splitlines()[1:]
    )
    return k


async def stored(k) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with k.store.read() as conn:
        rows = await conn.execute(
            select(
                raw_messages.c.connector,
                raw_messages.c.intake,
                raw_messages.c.external_id,
                raw_messages.c.state,
            ).order_by(raw_messages.c.external_id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_the_poller_pages_from_its_position_and_dedupes_with_the_webhook(
    make_kanal, tmp_path, fake_lapor
):
    fake, url = await fake_lapor([record(1), record(2, rahasia="1"), record(3, anonim=1)])
    k = await make(make_kanal, tmp_path, url)
    # Record 2 arrived by webhook first.
    body = json.dumps(
        {
            "tracking_id": "5002",
            "title": "Laporan 2",
            "text": "Jalan rusak",
            "created_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    r = await k.client.post(
        "/webhooks/lapor",
        data=body,
        headers={
            "X-Kanal-Signature": kanal_signature(SECRETS["lapor"], body),
            "Content-Type": "application/json",
        },
    )
    assert r.status == 200
    assert await poll_lapor(k.runtime) == 2
    assert fake.calls == [None, "2"]
    assert await k.store.get_state(POSITION_KEY) == "3"
    assert [(c, i, e) for c, i, e, _ in await stored(k)] == [
        ("lapor", "poll", "5001"),
        ("lapor", "webhook", "5002"),
        ("lapor", "poll", "5003"),
    ]
    fake.records.append(record(4))
    assert await poll_lapor(k.runtime) == 1
    assert fake.calls[-1] == "3"
    await k.drain()
    token = await k.token()
    r = await k.client.get(
        "/api/v1/reports", params={"channel": "lapor"}, headers={"Authorization": f"Bearer {token}"}
    )
    by_id = {i["external_id"]: i for i in (await r.json())["items"]}
    assert sorted(by_id) == ["5001", "5002", "5003", "5004"]
    assert by_id["5001"]["reporter"]["name"] == "Warga 1"
    assert by_id["5001"]["reporter"]["phone"] == "+6281234567890"
    assert by_id["5003"]["reporter"]["name"] is None  # anonymous: no identity kept at all
    assert by_id["5004"]["intake"] == "poll"


async def test_a_record_the_mapping_cannot_read_is_kept_flagged_not_dropped(
    make_kanal, tmp_path, fake_lapor
):
    broken = record(9)
    del broken["isi"]
    _fake, url = await fake_lapor([record(8), broken])
    k = await make(make_kanal, tmp_path, url)
    await poll_lapor(k.runtime)
    states = [(e.split(":")[0], s) for _, _, e, s in await stored(k)]
    assert sorted(states) == [("5008", "new"), ("malformed", "failed")]


async def test_a_wrong_token_fails_the_run_and_keeps_the_position(make_kanal, tmp_path, fake_lapor):
    _fake, url = await fake_lapor([record(1)])
    k = await make(make_kanal, tmp_path, url)
    (tmp_path / "lapor-token").write_text("wrong")
    with pytest.raises(LaporPollError):
        await poll_lapor(k.runtime)
    assert await k.store.get_state(POSITION_KEY) is None
    assert await stored(k) == []
