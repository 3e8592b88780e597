"""CRM delivery benchmark: `kanal serve` replicas on PostgreSQL against a fake Open311 CRM
answering after 50 ms.

1. Throughput: N reports already `ready` (stored while crm.mode = "hold"), then 1 or 2
   replicas in open311 mode; reports per second from the first POST to the last confirmed.
2. Latency: a steady 200 signed JAKI webhooks per second for `--seconds` across two
   replicas; time from sending the webhook to the CRM creating the request, p50/p99.

    .venv/bin/python bench/bench_crm.py [--reports 2000] [--seconds 20] [--rate 200]

Needs PostgreSQL on 127.0.0.1:5432 (a throw-away database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PG_ADMIN_URL, ServerProcess, free_port, write_config  # noqa: E402
from tests.fakes.open311 import FakeOpen311  # noqa: E402
from tests.gateway.crm.helpers import crm_section, jaki_body, jaki_headers  # noqa: E402

LATENCY_S = 0.05
CONCURRENCY = 16  # crm.concurrency per replica (default 4 caps a replica at 80/s at 50 ms)


def psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN_URL, "-q", "-c", sql], check=True, capture_output=True)


class Bench:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.servers: list[ServerProcess] = []

    def replica(self, name: str, db_url: str, crm: FakeOpen311, mode: str) -> ServerProcess:
        directory = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        section = crm_section(
            crm.endpoint,
            mode=mode,
            concurrency=CONCURRENCY,
            timeout_s=5.0,
            claim_ttl_s=30.0,
            status_poll_interval_s=3600,
        )
        config = write_config(directory, db_url, section, http_port=free_port())
        server = ServerProcess(config, directory)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()


async def send(session: aiohttp.ClientSession, base_url: str, n: int, prefix: str) -> str:
    body = jaki_body(n, prefix=prefix)
    for _ in range(20):
        async with session.post(
            f"{base_url}/webhooks/jaki", data=body, headers=jaki_headers(body)
        ) as r:
            if r.status == 200:
                return str((await r.json())["ticket"])
        await asyncio.sleep(0.2)
    raise RuntimeError(f"message {n} not acknowledged")


async def wait_count(crm: FakeOpen311, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(crm.created) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(crm.created)} of {n} reached the CRM")
        await asyncio.sleep(0.02)


async def throughput(bench: Bench, replicas: int, reports: int) -> float:
    name = f"kanal_bench_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        async with FakeOpen311(latency_s=LATENCY_S, service_notice=None) as crm:
            holder = bench.replica("hold", db_url, crm, "hold")
            await asyncio.to_thread(holder.start)
            async with aiohttp.ClientSession() as session:
                sem = asyncio.Semaphore(64)

                async def one(n: int) -> str:
                    async with sem:
                        return await send(session, holder.base_url, n, "T")

                await asyncio.gather(*(one(n) for n in range(reports)))
                # Wait until the pipeline made every message a ready report.
                while True:
                    out = subprocess.run(
                        [
                            "psql",
                            db_url,
                            "-Atc",
                            "SELECT count(*) FROM reports WHERE status='ready'",
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.strip()
                    if int(out) >= reports:
                        break
                    await asyncio.sleep(0.2)
            bench.stop_all()
            senders = [bench.replica(f"r{i}", db_url, crm, "open311") for i in range(replicas)]
            await asyncio.gather(*(asyncio.to_thread(s.start) for s in senders))
            await wait_count(crm, reports, timeout=600)
            first = min(r.requested_datetime for r in crm.created)
            last = max(r.requested_datetime for r in crm.created)
            assert not crm.duplicates()
            bench.stop_all()
            # The CRM confirms `latency` after the request arrives; count from the first arrival.
            return reports / ((last - first).total_seconds() + LATENCY_S)
    finally:
        bench.stop_all()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def latency(bench: Bench, rate: int, seconds: float) -> tuple[float, float, float, int]:
    name = f"kanal_bench_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        async with FakeOpen311(latency_s=LATENCY_S, service_notice=None) as crm:
            servers = [bench.replica(f"l{i}", db_url, crm, "open311") for i in range(2)]
            await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
            sent_at: dict[str, float] = {}
            total = int(rate * seconds)
            started = time.time()
            async with aiohttp.ClientSession() as session:

                async def one(n: int) -> None:
                    t = time.time()
                    ticket = await send(session, servers[n % 2].base_url, n, "L")
                    sent_at[ticket] = t

                tasks = []
                for n in range(total):
                    # A steady rate: message n leaves at n / rate seconds.
                    delay = started + n / rate - time.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(n)))
                await asyncio.gather(*tasks)
            await wait_count(crm, total, timeout=120)
            assert not crm.duplicates()
            lags = sorted(
                r.requested_datetime.timestamp() + LATENCY_S - sent_at[r.form["attribute[ticket]"]]
                for r in crm.created
            )
            p50 = statistics.median(lags)
            p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            achieved = total / (time.time() - started)
            return p50, p99, lags[-1], total if achieved else 0
    finally:
        bench.stop_all()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanal-bench-") as tmp:
        bench = Bench(Path(tmp))
        one = await throughput(bench, 1, args.reports)
        two = await throughput(bench, 2, args.reports)
        p50, p99, worst, total = await latency(bench, args.rate, args.seconds)
    print(
        f"\nCRM delivery, PostgreSQL, fake Open311 answering after {LATENCY_S * 1000:.0f} ms, "
        f"crm.concurrency = {CONCURRENCY} per replica"
    )
    print(f"{'measure':<52} {'value':>12}")
    print(
        f"{'ready → confirmed, 1 replica (' + str(args.reports) + ' reports)':<52} {one:>8.0f} /s"
    )
    print(
        f"{'ready → confirmed, 2 replicas (' + str(args.reports) + ' reports)':<52} {two:>8.0f} /s"
    )
    label = f"webhook → CRM at {args.rate}/s for {args.seconds:g} s, 2 replicas"
    print(f"{label + ', p50':<52} {p50 * 1000:>9.0f} ms")
    print(f"{label + ', p99':<52} {p99 * 1000:>9.0f} ms")
    print(f"{label + ', max':<52} {worst * 1000:>9.0f} ms")
    print(f"{'messages in the latency run':<52} {total:>12}")


if __name__ == "__main__":
    asyncio.run(main())
