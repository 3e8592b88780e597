"""kill -9 during a burst of webhooks: every message that got a 2xx is stored exactly once,
and after a restart the pipeline turns every one of them into exactly one report."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from gateway.store import Store
from gateway.store.schema import raw_messages, reports
from tests.conftest import SECRETS, wait_for, write_config
from tests.connectors.signing import kanal_sign

BURST = 400  # bounded: the whole test stays within seconds


def body(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"crash-{i}",
            "from": f"0812{i:08d}",
            "to": "1708",
            "text": f"Saluran air mampet nomor {i}",
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()


async def burst(base_url: str, acked: set[int], kill_after: int, kill) -> None:  # type: ignore[no-untyped-def]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(BURST):
        queue.put_nowait(i)
    killed = asyncio.Event()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            payload = body(i)
            try:
                async with session.post(
                    f"{base_url}/webhooks/sms/generic",
                    data=payload,
                    headers=kanal_sign(SECRETS["sms_generic"], payload),
                ) as r:
                    if r.status == 200:
                        acked.add(i)
            except (TimeoutError, aiohttp.ClientError):
                pass  # the server died under this request: not acknowledged
            if len(acked) >= kill_after and not killed.is_set():
                killed.set()
                kill()

    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(16)))


@pytest.mark.slow
async def test_kill_9_during_a_burst_loses_no_acknowledged_message(tmp_path, serve_process, db_url):
    config = write_config(tmp_path, db_url)
    # The dead process's claims lapse after claim_ttl_s: short here, so that the restarted
    # one takes them over within the test (the default is a minute).
    server = serve_process(config, {"KANAL_PIPELINE__CLAIM_TTL_S": "5"})
    server.start()
    acked: set[int] = set()
    started = time.monotonic()
    await burst(server.base_url, acked, kill_after=BURST // 3, kill=server.kill)
    assert server.proc is not None and server.proc.returncode == -9
    assert BURST // 3 <= len(acked) < BURST, "the kill must land mid-burst"

    server.start()  # same database; the pipeline finishes what the dead process left
    store = Store(db_url, pool_size=2)
    try:

        async def settled() -> bool:
            async with store.read() as conn:
                waiting = (
                    await conn.execute(
                        select(func.count())
                        .select_from(raw_messages)
                        .where(raw_messages.c.state.in_(["new", "processing"]))
                    )
                ).scalar_one()
            return waiting == 0

        await wait_for(settled, timeout=90)
        async with store.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        raw_messages.c.external_id, raw_messages.c.report_id, raw_messages.c.state
                    )
                )
            ).all()
            report_rows = (await conn.execute(select(reports.c.raw_message_id))).all()
    finally:
        await store.close()
    stored = [external_id for external_id, _, _ in rows]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    missing = {f"crash-{i}" for i in acked} - set(stored)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
    assert all(state == "done" and report_id for _, report_id, state in rows)
    assert len(report_rows) == len(rows) == len({r[0] for r in report_rows})
    assert time.monotonic() - started < 150
