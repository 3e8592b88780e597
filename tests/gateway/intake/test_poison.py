"""One hostile message never holds others back: text no store can keep is repaired at
intake, an id or a time no store can keep is a 400 kept in the inbox, a row the store
refuses fails only its own request, and a report the store refuses fails alone, visibly,
after a bounded number of attempts (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from gateway.store.schema import raw_messages
from tests.conftest import SECRETS
from tests.connectors.signing import kanal_sign
from tests.gateway.intake.test_webhooks_http import api, generic_body, post_generic
from tests.gateway.pipeline.helpers import spoil_report

POISON = "Lampu \ud800 mati"
FAR = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))


async def post_signed(k: Any, path: str, connector: str, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()  # lone surrogates go out as "\ud800", as an attacker's
    headers = {**kanal_sign(SECRETS[connector], body), "Content-Type": "application/json"}
    return await k.client.post(path, data=body, headers=headers)


def generic(external_id: str, **fields: Any) -> dict[str, Any]:
    body = json.loads(generic_body(external_id))
    body.update(fields)
    return body


async def reports(k: Any) -> list[dict[str, Any]]:
    status, page = await api(k, "/api/v1/reports?limit=500", await k.token())
    assert status == 200
    return list(page["items"])


async def inbox(k: Any) -> list[dict[str, Any]]:
    status, page = await api(k, "/api/v1/inbox?limit=500", await k.token())
    assert status == 200
    return list(page["items"])


async def test_lone_surrogates_in_any_text_field_are_repaired_for_every_channel(make_kanal, db_url):
    k = await make_kanal(db_url)
    sent = [
        ("/webhooks/sms/generic", "sms_generic", generic("g1", text=POISON)),
        ("/webhooks/sms/generic", "sms_generic", generic("g2", **{"from": "0812\udfff"})),
        (
            "/webhooks/jaki",
            "jaki",
            {
                "id": "J1",
                "reporter": {"name": "Siti \ud800", "phone": "0812\ud800", "email": "s\udc00@x.id"},
                "text": POISON,
                "location": {"lat": -6.195, "lon": 106.823, "address": "Jl. \ud800 Thamrin"},
                "photos": ["https://jaki.example.id/p/\ud800.jpg"],
                "created_at": "2026-11-27T09:00:00+07:00",
            },
        ),
        (
            "/webhooks/lapor",
            "lapor",
            {
                "tracking_id": "L1",
                "title": "Judul \ud800",
                "text": POISON,
                "reporter": {"name": "\udfff", "phone": None, "email": None},
                "location": {"lat": -6.195, "lon": 106.823, "address": "\ud800"},
                "attachments": ["https://lapor.example.id/\udfff"],
                "created_at": "2026-11-27T09:00:00+07:00",
            },
        ),
    ]
    for path, connector, payload in sent:
        response = await post_signed(k, path, connector, payload)
        assert response.status == 200, (path, await response.text())
    assert await k.drain() == 4
    made = await reports(k)
    assert len(made) == 4
    assert not await inbox(k)
    texts = {r["external_id"]: r["text"] for r in made}
    assert texts["g1"] == texts["J1"] == texts["L1"] == "Lampu \ufffd mati"
    jaki = next(r for r in made if r["external_id"] == "J1")
    assert jaki["reporter"]["name"] == "Siti \ufffd"
    assert jaki["location"]["address"] == "Jl. \ufffd Thamrin"


async def test_a_poisoned_message_among_many_does_not_stall_the_others(make_kanal, db_url):
    k = await make_kanal(db_url)
    bodies = [generic(f"c{i}") for i in range(30)]
    bodies.insert(7, generic("bad", text=POISON, **{"from": "\ud800"}))
    answers = await asyncio.gather(
        *(post_signed(k, "/webhooks/sms/generic", "sms_generic", b) for b in bodies)
    )
    assert [a.status for a in answers] == [200] * 31
    assert await k.drain() == 31
    assert len(await reports(k)) == 31


async def test_a_report_the_store_refuses_fails_alone_and_shows_in_the_inbox(
    make_kanal, db_url, monkeypatch
):
    """A normalizer bug that produces text the store cannot keep (simulated): the report of
    that message fails, visibly and counted; every other message of its batch is a report."""
    spoil_report(monkeypatch, "bad")
    k = await make_kanal(db_url)
    for i in range(20):
        external_id = "bad" if i == 5 else f"c{i}"
        response = await post_generic(k, json.dumps(generic(external_id)).encode())
        assert response.status == 200
    await k.drain()
    made = await reports(k)
    assert sorted(r["external_id"] for r in made) == sorted(f"c{i}" for i in range(20) if i != 5)
    [failed] = await inbox(k)
    assert failed["external_id"] == "bad" and "Error" in failed["error"]
    async with k.store.read() as conn:
        stuck = (
            await conn.execute(
                raw_messages.select().where(raw_messages.c.state.in_(("new", "processing")))
            )
        ).all()
    assert stuck == []
    metrics = await (await k.client.get("/metrics")).text()
    [count] = [
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("kanal_normalize_failures_total ")
    ]
    assert count == 1


async def test_a_message_whose_claims_keep_lapsing_fails_after_five_attempts(make_kanal, db_url):
    k = await make_kanal(db_url)
    response = await post_generic(k, generic_body("stalls"))
    assert response.status == 200
    # As if five workers in a row had claimed it and died (its claim lapsed each time).
    async with k.store.write() as conn:
        await conn.execute(
            update(raw_messages).values(
                state="processing",
                attempts=5,
                claimed_by="dead",
                claimed_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    await k.drain()
    [failed] = await inbox(k)
    assert failed["external_id"] == "stalls" and "gave up after 5 attempts" in failed["error"]
    assert await reports(k) == []
    # `kanal inbox retry` gives it a fresh set of attempts.
    assert await k.store.retry_failed_raw() == 1
    assert await k.drain() == 1
    [report] = await reports(k)
    assert report["external_id"] == "stalls"


async def test_ids_and_times_no_store_can_keep_are_400_and_kept_in_the_inbox(make_kanal, db_url):
    k = await make_kanal(db_url)
    refused = [
        ("/webhooks/sms/generic", "sms_generic", generic("x-\udfff")),
        ("/webhooks/sms/generic", "sms_generic", generic("n\x00ul")),
        (
            "/webhooks/sms/generic",
            "sms_generic",
            generic("late", received_at="9999-12-31T23:59:59-23:59"),
        ),
        (
            "/webhooks/sms/generic",
            "sms_generic",
            generic("early", received_at="0001-01-01T00:00:00+23:59"),
        ),
        (
            "/webhooks/lapor",
            "lapor",
            {
                "tracking_id": "LAP-\ud800",
                "title": "t",
                "text": "Jalan rusak",
                "created_at": "2026-11-27T09:00:00+07:00",
            },
        ),
        (
            "/webhooks/jaki",
            "jaki",
            {
                "id": "J-late",
                "text": "Sampah",
                "location": {"lat": -6.195, "lon": 106.823},
                "created_at": "9999-12-31T23:59:59-23:59",
            },
        ),
    ]
    for path, connector, payload in refused:
        response = await post_signed(k, path, connector, payload)
        assert response.status == 400, (payload, await response.text())
        assert (await response.json())["error"]["code"] == "malformed"
    kept = await inbox(k)
    assert len(kept) == len(refused)
    assert all(item["error"] for item in kept)
    assert await k.drain() == 0
    assert await reports(k) == []


async def test_one_row_the_store_refuses_fails_only_its_own_request(
    make_kanal, db_url, monkeypatch
):
    """40 valid messages and one whose row the store refuses (a time past year 9999 in UTC,
    slipped past the checks), sharing group commits: the valid senders get 200, only the bad
    one gets an error (a 400, its payload kept)."""
    import gateway.intake.webhooks as webhooks

    real_row = webhooks.to_new_raw

    def row_past_the_checks(message: Any, *args: Any, **kwargs: Any) -> Any:
        row = real_row(message, *args, **kwargs)
        return replace(row, received_at=FAR) if message.external_id == "bad" else row

    monkeypatch.setattr(webhooks, "to_new_raw", row_past_the_checks)
    k = await make_kanal(db_url)
    bodies = [generic(f"ok{i}") for i in range(40)]
    bodies.insert(17, generic("bad"))
    answers = await asyncio.gather(
        *(post_signed(k, "/webhooks/sms/generic", "sms_generic", b) for b in bodies)
    )
    statuses = {b["id"]: a.status for b, a in zip(bodies, answers, strict=True)}
    assert statuses.pop("bad") == 400
    assert set(statuses.values()) == {200}
    assert await k.drain() == 40
    [kept] = await inbox(k)
    assert "not storable" in kept["error"]


async def test_the_group_commit_isolates_a_row_the_store_refuses(make_kanal, db_url):
    from tests.gateway.store.test_store import raw

    k = await make_kanal(db_url)
    rows = [raw(f"ok{i}") for i in range(10)]
    rows.insert(5, replace(raw("bad"), received_at=FAR))
    writer = k.store.writer()
    results = await asyncio.gather(*(writer.submit([r]) for r in rows), return_exceptions=True)
    assert isinstance(results[5], Exception)
    assert all(isinstance(r, list) and r[0].created for i, r in enumerate(results) if i != 5)
