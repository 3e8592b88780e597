"""Restarts do not stall work: poller leases are short, renewed while
the replica lives, given up on a clean stop, and recognised by the restarted replica;
a live replica's lease is never taken, a dead one's is taken over within the lease time.
Real `kanal serve` processes against a local fake LAPOR! API."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from gateway.store import NewRaw, Store
from gateway.store.schema import raw_messages
from tests.conftest import free_port, wait_for, write_config
from tests.gateway.intake.feeds.test_lapor_poller import TOKEN, FakeLapor


@pytest.fixture
async def lapor_api() -> Any:
    fake = FakeLapor([])
    app = web.Application()
    app.router.add_get("/api/laporan", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/api/laporan"))
    await server.close()


def poller_env(url: str, **extra: str) -> dict[str, str]:
    # An hour between polls: a second poll within the test can only come from a restart.
    return {
        "KANAL_CHANNELS__LAPOR__POLL_ENDPOINT": url,
        "KANAL_CHANNELS__LAPOR__POLL_TOKEN": TOKEN,
        "KANAL_CHANNELS__LAPOR__POLL_INTERVAL_S": "3600",
        **extra,
    }


async def polls_after(fake: FakeLapor, count: int, timeout: float) -> float:
    """Seconds until the fake has seen more than `count` polls."""
    started = time.monotonic()

    async def polled() -> bool:
        return len(fake.calls) > count

    await wait_for(polled, timeout=timeout)
    return time.monotonic() - started


async def lapor_state(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/readyz") as r:
        components: dict[str, Any] = (await r.json())["components"]
    return components.get("poller:lapor", {})


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
async def test_after_a_restart_the_pollers_run_again_within_ten_seconds(
    tmp_path, serve_process, db_url, lapor_api, how
):
    fake, url = lapor_api
    server = serve_process(write_config(tmp_path, db_url), poller_env(url))
    await asyncio.to_thread(server.start)
    await polls_after(fake, 0, timeout=10)
    if how == "SIGTERM":
        await asyncio.to_thread(server.stop)  # a clean stop gives the lease up
    else:
        server.kill()  # the lease stays with the dead process: the restart recognises it

    restarted = time.monotonic()
    await asyncio.to_thread(server.start)
    await polls_after(fake, 1, timeout=10)
    elapsed = time.monotonic() - restarted
    print(f"{how}: polled again {elapsed:.1f} s after the restart began (ready included)")
    assert elapsed <= 10  # the default lease is 30 s

    async def running_here() -> bool:  # not "standby" for a dead process
        return (await lapor_state(server.base_url)).get("state") == "ok"

    await wait_for(running_here, timeout=5)


@pytest.mark.slow
async def test_a_live_replica_keeps_its_lease_and_a_dead_ones_is_taken_over_within_the_lease(
    tmp_path, serve_process, db_url, lapor_api
):
    fake, url = lapor_api
    lease_s = 4.0
    env = poller_env(url, KANAL_SERVER__POLLER_LEASE_S=str(lease_s))
    first = serve_process(write_config(tmp_path, db_url), env)
    await asyncio.to_thread(first.start)
    await polls_after(fake, 0, timeout=10)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = serve_process(write_config(second_dir, db_url, http_port=free_port()), env)
    second.workdir = tmp_path  # same folder, so the same identity files: never shared alive
    await asyncio.to_thread(second.start)

    await asyncio.sleep(3 * lease_s)  # several heartbeats: the first keeps renewing
    assert len(fake.calls) == 1, "a live replica's lease was taken"
    assert (await lapor_state(second.base_url)).get("state") == "standby"

    first.kill()
    killed = time.monotonic()
    await polls_after(fake, 1, timeout=lease_s + lease_s / 3 + 5)
    elapsed = time.monotonic() - killed
    print(f"another replica took over {elapsed:.1f} s after kill -9 (lease {lease_s:.0f} s)")
    assert elapsed <= lease_s + lease_s / 3 + 2


async def test_a_released_lease_passes_on_at_once_and_a_live_one_never(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/kanal.db")
    await store.migrate()
    try:
        assert await store.take_lease("poller:lapor", "replica-a", 30)
        assert not await store.take_lease("poller:lapor", "replica-b", 30)
        await store.release_leases(["poller:lapor"], "replica-b")  # not b's to give
        assert not await store.take_lease("poller:lapor", "replica-b", 30)
        await store.release_leases(["poller:lapor"], "replica-a")
        assert await store.take_lease("poller:lapor", "replica-b", 30)
    finally:
        await store.close()


async def test_a_restarted_replica_takes_back_the_raw_messages_it_had_claimed(
    tmp_path, serve_process, db_url
):
    server = serve_process(write_config(tmp_path, db_url))
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.stop)
    [identity_file] = tmp_path.glob("**/replicas/0.id")  # beside SQLite, or in var/
    identity = identity_file.read_text().strip()
    # What a killed replica leaves: a message claimed for another minute by its identity.
    store = Store(db_url, pool_size=2)
    try:
        body = json.dumps({"id": "claimed-1"}).encode()
        [stored] = await store.writer().submit(
            [
                NewRaw(
                    id="01CLAIMEDBYTHEDEAD0000000",
                    connector="sms_generic",
                    channel="sms",
                    intake="webhook",
                    external_id="claimed-1",
                    received_at=store.clock(),
                    payload=body,
                    headers={},
                    message=None,
                )
            ]
        )
        async with store.write() as conn:
            await conn.execute(
                update(raw_messages)
                .where(raw_messages.c.id == stored.id)
                .values(
                    state="processing",
                    claimed_by=identity,
                    claimed_until=store.clock() + timedelta(seconds=60),
                )
            )
        restarted = time.monotonic()
        await asyncio.to_thread(server.start)

        async def settled() -> bool:
            async with store.read() as conn:
                state = (
                    await conn.execute(
                        select(raw_messages.c.state).where(raw_messages.c.id == stored.id)
                    )
                ).scalar_one()
            return state != "processing"

        await wait_for(settled, timeout=10)
        assert time.monotonic() - restarted <= 10  # not after the claim's minute
    finally:
        await store.close()
