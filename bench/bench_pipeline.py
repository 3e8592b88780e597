"""The report side of one process, in process, without HTTP: a backlog of stored raw
messages normalized by the pipeline (non-geo SMS, then geo-tagged JAKI reports; then SMS
with the notifier recording each one's acknowledgement alongside), and the CRM dispatcher
delivering ready reports to a fake Open311 CRM answering after 20 ms (bench/e2e_crm.py, a
process of its own).

    .venv/bin/python bench/bench_pipeline.py [--reports 3000] [--store sqlite|postgresql]
        [--profile pipeline|notify|dispatch]

Prints reports per second and CPU milliseconds per report (this process, all threads) for
each stage; `--profile` prints the top of a cProfile of that stage instead of timing it.
PostgreSQL needs a server on 127.0.0.1:5432 (a throw-away database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_crm import API_KEY  # noqa: E402
from connectors.base import Coordinates, RawMessage, Sender  # noqa: E402
from gateway.store.ids import new_id  # noqa: E402
from gateway.store.inbox import NewRaw  # noqa: E402
from tests.conftest import PG_ADMIN_URL, write_config  # noqa: E402
from tests.gateway.crm.helpers import crm_section  # noqa: E402

CRM_LATENCY_S = 0.02
CRM_CONCURRENCY = 16


def raw_rows(count: int, *, geo: bool, prefix: str) -> list[NewRaw]:
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        message = RawMessage(
            connector="jaki" if geo else "sms_generic",
            channel="jaki" if geo else "sms",
            external_id=f"{prefix}-{i}",
            received_at=now,
            sender=Sender(phone="0812" + f"{i % 10**8:08d}"),
            text=f"Lampu PJU mati di Jl. Kebon Sirih no {i % 200}, mohon diperbaiki",
            coordinates=Coordinates(lat=-6.1862 + (i % 50) * 1e-4, lon=106.8229) if geo else None,
        )
        rows.append(
            NewRaw(
                id=new_id(),
                connector=message.connector,
                channel=message.channel,
                intake="webhook",
                external_id=message.external_id,
                received_at=now,
                payload=b"{}",
                headers={},
                message=message.to_json(),
            )
        )
    return rows


async def crm_count(endpoint: str) -> dict[str, int]:
    base = endpoint.split("/", 3)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base[0]}//{base[2]}/bench/count") as r:
            return dict(await r.json())


async def recorded(store: Any) -> int:
    """Outbound rows (acknowledgements planned or skipped) recorded so far."""
    from sqlalchemy import func, select

    from gateway.store.schema import outbound

    async with store.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbound))).scalar_one())


def cpu_s() -> float:
    return time.process_time()


async def stage(name: str, work: Any, count: int, profile: bool) -> None:
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await work()
        profiler.disable()
        print(f"\n== profile: {name} ({count} reports)")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        return
    wall, cpu = time.perf_counter(), cpu_s()
    await work()
    wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
    print(f"{name:<44} {count / wall:>8.0f} /s {cpu / count * 1000:>8.3f} ms CPU/report")


async def run(db_url: str, workdir: Path, reports: int, profile: str | None) -> None:
    from gateway.base.config import load_config
    from gateway.base.runtime import build_runtime
    from gateway.crm.dispatcher import Dispatcher
    from gateway.notify.worker import Notifier
    from gateway.process.server import make_pipeline

    crm = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "e2e_crm.py"), "--latency-ms", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert crm.stdout is not None
        endpoint = crm.stdout.readline().strip()
        section = crm_section(
            endpoint,
            api_key=API_KEY,
            concurrency=CRM_CONCURRENCY,
            timeout_s=5.0,
            claim_ttl_s=30.0,
            status_poll_interval_s=3600,
        )
        config = write_config(workdir, db_url, section)
        runtime = build_runtime(load_config(str(config), environ={}))
        store = runtime.store
        await store.migrate()
        pipeline = make_pipeline(runtime)
        pipeline.warm_up()
        try:
            for geo in (False, True):
                rows = raw_rows(reports, geo=geo, prefix="g" if geo else "s")
                for start in range(0, len(rows), 500):
                    await store.insert_raw_batch(rows[start : start + 500])
                label = "geo (JAKI)" if geo else "non-geo (SMS)"
                await stage(
                    f"pipeline backlog, {label}",
                    pipeline.drain,
                    reports,
                    profile == "pipeline",
                )
            # The pipeline and the notifier together, as in `kanal serve`: a backlog of
            # SMS reports normalized and each one's acknowledgement recorded.
            notifier = Notifier(runtime)
            await notifier.drain()  # the reports above, untimed
            rows = raw_rows(reports, geo=False, prefix="n")
            for start in range(0, len(rows), 500):
                await store.insert_raw_batch(rows[start : start + 500])

            async def normalize_and_notify() -> None:
                task = asyncio.create_task(notifier.run())
                try:
                    await pipeline.drain()
                    while await recorded(store) < 3 * reports:
                        await asyncio.sleep(0.01)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

            await stage(
                "pipeline + notifier, non-geo (SMS)",
                normalize_and_notify,
                reports,
                profile == "notify",
            )
            dispatcher = Dispatcher(runtime)

            async def deliver() -> None:
                task = asyncio.create_task(dispatcher.run())
                try:
                    while (await crm_count(endpoint))["created"] < reports:
                        await asyncio.sleep(0.01)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

            await stage(
                f"dispatch, CRM at {CRM_LATENCY_S * 1000:.0f} ms × {CRM_CONCURRENCY}",
                deliver,
                reports,
                profile == "dispatch",
            )
            assert (await crm_count(endpoint))["posts"] == reports  # none twice
        finally:
            await store.close()
    finally:
        crm.terminate()
        crm.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", choices=("pipeline", "notify", "dispatch"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanal-bench-") as tmp:
        workdir = Path(tmp)
        if args.store == "sqlite":
            asyncio.run(run(f"sqlite:///{workdir}/kanal.db", workdir, args.reports, args.profile))
            return
        name = f"kanal_bench_{uuid.uuid4().hex[:10]}"
        psql = ["psql", PG_ADMIN_URL, "-q", "-c"]
        subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, capture_output=True)
        try:
            db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            asyncio.run(run(db_url, workdir, args.reports, args.profile))
        finally:
            subprocess.run(
                [*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                check=True,
                capture_output=True,
            )


if __name__ == "__main__":
    main()
