"""Several `kanal serve` replicas on one PostgreSQL: shared work, no duplicates, no loss,
one killed with SIGKILL mid-burst; PostgreSQL restarted mid-burst; concurrent upgrades."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.store.migrate import head_revision
from tests.conftest import free_port, need_peer, wait_for, write_config
from tests.fakes.open311 import FakeOpen311
from tests.fakes.pg_cluster import PgCluster, usable
from tests.gateway.crm.helpers import crm_section, jaki_body, jaki_headers

# Claims of a killed replica must lapse within the test's time: raw-message claims
# (pipeline) and CRM claims (crm.claim_ttl_s in crm_section).
FAST_CLAIMS = {"KANAL_PIPELINE__CLAIM_TTL_S": "3"}


async def deliver(session: aiohttp.ClientSession, base_url: str, n: int) -> str | None:
    """One signed JAKI webhook; its ticket when acknowledged (2xx), else None."""
    body = jaki_body(n, prefix="R")
    try:
        async with session.post(
            f"{base_url}/webhooks/jaki", data=body, headers=jaki_headers(body)
        ) as r:
            if r.status == 200:
                return str((await r.json())["ticket"])
            return None
    except (aiohttp.ClientError, TimeoutError):
        return None


def replica_config(tmp_path: Path, name: str, db_url: str, crm: FakeOpen311) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return write_config(
        directory, db_url, crm_section(crm.endpoint, timeout_s=2.0), http_port=free_port()
    )


async def all_at_crm(crm: FakeOpen311, tickets: set[str]) -> bool:
    return {r.form.get("attribute[ticket]") for r in crm.created} >= tickets


def assert_exactly_once(crm: FakeOpen311, tickets: set[str]) -> None:
    at_crm = [r.form.get("attribute[ticket]") for r in crm.created]
    assert crm.duplicates() == set()
    assert len(at_crm) == len(set(at_crm))
    assert set(at_crm) == tickets  # every acknowledged message, and nothing else


async def test_two_replicas_share_the_work_and_one_killed_loses_and_duplicates_nothing(
    tmp_path, pg_url, serve_process
):
    async with FakeOpen311(latency_s=0.02) as crm:
        a = serve_process(replica_config(tmp_path, "a", pg_url, crm), env=FAST_CLAIMS)
        b = serve_process(replica_config(tmp_path, "b", pg_url, crm), env=FAST_CLAIMS)
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        acknowledged: set[str] = set()
        unacknowledged: list[int] = []
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for wave in range(6):  # 6 × 40 messages, alternating replicas; A dies after wave 2
                if wave == 2:
                    a.kill()
                numbers = range(wave * 40, wave * 40 + 40)
                results = await asyncio.gather(
                    *(deliver(session, (a, b)[n % 2].base_url, n) for n in numbers)
                )
                for n, ticket in zip(numbers, results, strict=True):
                    if ticket:
                        acknowledged.add(ticket)
                    else:
                        unacknowledged.append(n)
            # As a platform would: deliver again what was not acknowledged, to the survivor.
            for n in unacknowledged:
                ticket = await deliver(session, b.base_url, n)
                assert ticket, f"message {n} not acknowledged by the surviving replica"
                acknowledged.add(ticket)
        assert len(acknowledged) == 240
        await wait_for(lambda: all_at_crm(crm, acknowledged), timeout=40, interval=0.25)
        await asyncio.sleep(1.0)  # anything late (a lapsed claim re-posting) would show now
        await crm.settle()
        assert_exactly_once(crm, acknowledged)
        keys = {h.get("Idempotency-Key") for h, _ in crm.requests}
        assert None not in keys


async def test_postgresql_restarted_mid_burst_gives_503_then_recovers_without_loss(
    tmp_path, serve_process
):
    ok, what = usable()
    need_peer(ok, "postgresql", what)
    cluster = PgCluster.temporary(free_port()).init()
    cluster.start()
    try:
        async with FakeOpen311() as crm:
            config = replica_config(tmp_path, "a", cluster.url, crm)
            server = serve_process(config, env=FAST_CLAIMS)
            await asyncio.to_thread(server.start)
            acknowledged: set[str] = set()
            statuses: list[int] = []
            timeout = aiohttp.ClientTimeout(total=15)
            async with aiohttp.ClientSession(timeout=timeout) as session:

                async def send(n: int) -> None:
                    body = jaki_body(n, prefix="P")
                    async with session.post(
                        f"{server.base_url}/webhooks/jaki", data=body, headers=jaki_headers(body)
                    ) as r:
                        statuses.append(r.status)
                        if r.status == 200:
                            acknowledged.add(str((await r.json())["ticket"]))
                        else:
                            assert r.status == 503, await r.text()
                            assert r.headers.get("Retry-After")

                await asyncio.gather(*(send(n) for n in range(50)))
                await asyncio.to_thread(cluster.stop, "immediate")
                down_statuses = len(statuses)
                await asyncio.gather(*(send(n) for n in range(50, 70)))
                assert statuses[down_statuses:] == [503] * 20  # platforms will deliver again
                await asyncio.to_thread(cluster.start)

                async def recovered() -> bool:
                    before = len(acknowledged)
                    await send(1000 + len(statuses))
                    return len(acknowledged) > before

                await wait_for(recovered, timeout=30, interval=0.5)
                # The platform redelivers what got 503, plus a further burst.
                await asyncio.gather(*(send(n) for n in range(50, 120)))
            await wait_for(lambda: all_at_crm(crm, acknowledged), timeout=40, interval=0.25)
            await asyncio.sleep(0.5)
            await crm.settle()
            assert_exactly_once(crm, acknowledged)
            assert server.proc is not None and server.proc.poll() is None  # never restarted
    finally:
        cluster.destroy()


def test_db_upgrade_by_three_replicas_at_once_is_safe(tmp_path, pg_url):
    config = write_config(tmp_path, pg_url)
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs: list[Any] = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert f"schema at {head_revision()}".encode() in out, out.decode()
    assert time.monotonic() - started < 60
    result = subprocess.run(
        ["psql", pg_url, "-At", "-c", "SELECT count(*), min(version_num) FROM alembic_version"],
        capture_output=True,
        check=True,
        text=True,
    )
    assert result.stdout.strip() == f"1|{head_revision()}"


@pytest.fixture(autouse=True)
def _bounded(request: pytest.FixtureRequest) -> Any:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 60, f"{request.node.name} took over 60 s"
