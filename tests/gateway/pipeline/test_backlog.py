"""A backlog through the pipeline: every message becomes its report, in few write
transactions (each settling transaction also claims the next batch), on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from connectors.base import RawMessage, Sender
from gateway.pipeline.worker import make_pipeline
from gateway.store import NewRaw
from tests.gateway.pipeline.helpers import as_raw, spoil_report


def sms(n: int) -> NewRaw:
    message = RawMessage(
        connector="sms_generic",
        channel="sms",
        external_id=f"backlog-{n}",
        received_at=datetime.now(UTC),
        sender=Sender(phone=f"08121{n:07d}"),
        text=f"Lampu PJU mati di Jl. Kebon Sirih no {n}",
    )
    return as_raw(message)


async def test_a_backlog_takes_one_write_transaction_per_batch(make_kanal: Any, db_url: str):
    k = await make_kanal(db_url)
    await k.store.insert_raw_batch([sms(n) for n in range(10)])
    pipeline = make_pipeline(k.runtime)
    pipeline.batch_size = 4
    transactions = 0
    run_write = k.store.run_write

    async def counted(fn: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return await run_write(fn)

    k.store.run_write = counted
    assert await pipeline.drain() == 10
    # The first claim; the second batch claimed at once, to be normalized while the first
    # settles; three batches (4, 4, 2), each settled by one transaction that also claims
    # the batch after next after a full one; the claim that finds nothing left.
    assert transactions == 6
    assert await k.store.count_raw("done") == 10
    reports, _ = await k.store.list_reports("province", limit=20)
    assert sorted(r.external_id for r in reports) == sorted(f"backlog-{n}" for n in range(10))


async def test_messages_claimed_ahead_lapse_like_any_claim_when_their_worker_dies(
    make_kanal: Any, db_url: str
):
    k = await make_kanal(db_url)
    await k.store.insert_raw_batch([sms(n) for n in range(8)])
    dying = make_pipeline(k.runtime)
    dying.batch_size, dying.claim_ttl_s = 4, 0.0
    await dying.process_once()  # claims the other 4 ahead, settles the first 4…
    assert len(dying._claimed_ahead) == 4
    await dying._settled()  # … then "dies"
    other = make_pipeline(k.runtime)
    other.worker_id = "another-replica"
    assert await other.drain() == 4  # the lapsed claims are taken over
    assert await k.store.count_raw("done") == 8


async def test_a_backlog_is_normalized_while_webhooks_keep_the_inbox_busy(make_kanal: Any):
    """Intake never falling idle (webhooks without pause) delays each round of the pipeline
    by a few milliseconds, not by the second it once waited for the inbox to go quiet."""
    k = await make_kanal()
    await k.store.insert_raw_batch([sms(n) for n in range(12)])
    pipeline = make_pipeline(k.runtime)
    pipeline.batch_size = 2
    k.store.writer().idle.clear()  # as while webhooks keep arriving
    k.store.writer().last_active = time.monotonic() + 60
    task = asyncio.create_task(pipeline.run())
    try:
        started = time.monotonic()
        while await k.store.count_raw("done") < 12:
            assert time.monotonic() - started < 3.0, "the pipeline waited for intake to stop"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_backlog_batch_is_normalized_while_the_one_before_settles(
    make_kanal: Any, db_url: str, monkeypatch: Any
):
    """Messages that stand alone: the next batch's normalization (the event loop's work)
    runs while the previous batch's transaction runs in the store's thread, in order."""
    import gateway.pipeline.worker as pipeline_module

    k = await make_kanal(db_url)
    await k.store.insert_raw_batch([sms(n) for n in range(12)])
    pipeline = make_pipeline(k.runtime)
    pipeline.batch_size = 4
    events: list[str] = []
    settle_raw = k.store.settle_raw
    real_build = pipeline_module.build_report

    async def slow_settle(*args: Any, **kwargs: Any) -> Any:
        events.append("settle")
        await asyncio.sleep(0.1)
        try:
            return await settle_raw(*args, **kwargs)
        finally:
            events.append("settled")

    def build(messages: Any, **kwargs: Any) -> Any:
        events.append("normalize")
        return real_build(messages, **kwargs)

    monkeypatch.setattr(k.store, "settle_raw", slow_settle)
    monkeypatch.setattr(pipeline_module, "build_report", build)
    assert await pipeline.drain() == 12
    assert await k.store.count_raw("done") == 12
    overlapped = 0
    settling = False
    for event in events:
        settling = {"settle": True, "settled": False}.get(event, settling)
        overlapped += event == "normalize" and settling
    assert overlapped >= 4, events  # at least one whole batch
    # One settling at a time: never two "settle" without a "settled" between them.
    opened = [e for e in events if e != "normalize"]
    assert opened == ["settle", "settled"] * (len(opened) // 2)


async def test_a_report_the_store_refuses_fails_alone_when_its_batch_settles_meanwhile(
    make_kanal: Any, db_url: str, monkeypatch: Any
):
    spoil_report(monkeypatch, "backlog-5")
    k = await make_kanal(db_url)
    await k.store.insert_raw_batch([sms(n) for n in range(12)])
    pipeline = make_pipeline(k.runtime)
    pipeline.batch_size = 4
    assert await pipeline.drain() == 12
    assert await k.store.count_raw("done") == 11
    assert await k.store.count_raw("failed") == 1
    reports, _ = await k.store.list_reports("province", limit=20)
    assert sorted(r.external_id for r in reports) == sorted(
        f"backlog-{n}" for n in range(12) if n != 5
    )
