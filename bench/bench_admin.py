"""Latency of the admin API on a big store: the queue's first page, a search by kelurahan,
and the stats, as province, kota and kelurahan admins; p50/p95 over real HTTP on loopback.

Run (after bench/gen_reports.py filled the store):
    .venv/bin/python bench/bench_admin.py --db sqlite:////tmp/kanal_bench.db
    .venv/bin/python bench/bench_admin.py --db postgresql://postgres@127.0.0.1:5432/kanal_bench
Target: p95 under 50 ms for each. Requests go one at a time (latency, not throughput), each
kind repeated --rounds times after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from gateway.base.config import load_config  # noqa: E402
from gateway.base.runtime import build_runtime  # noqa: E402
from gateway.store.schema import reports  # noqa: E402
from gateway.web.app import create_app  # noqa: E402
from gateway.web.auth import hash_token, new_token  # noqa: E402
from tests.conftest import write_config  # noqa: E402

TARGET_MS = 50.0


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as directory:
        loaded = load_config(str(write_config(Path(directory), args.db)), environ={})
        runtime = build_runtime(loaded)
        store = runtime.store
        await store.migrate()
        async with store.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(reports))).scalar_one()
            # The busiest kelurahan and its kota: the worst case for scoped queries.
            kel = (
                await conn.execute(
                    select(reports.c.kelurahan_code, func.count().label("n"))
                    .where(reports.c.kelurahan_code.is_not(None))
                    .group_by(reports.c.kelurahan_code)
                    .order_by(func.count().desc())
                    .limit(1)
                )
            ).first()
            # The kelurahan with the longest own queue, for the kelurahan admin's view.
            waiting = (
                await conn.execute(
                    select(reports.c.owner)
                    .where(
                        reports.c.status == "pending_enrichment",
                        reports.c.owner.like("kelurahan:%"),
                    )
                    .group_by(reports.c.owner)
                    .order_by(func.count().desc())
                    .limit(1)
                )
            ).first()
        if kel is None:
            print(
                "the store has no located reports: run bench/gen_reports.py first", file=sys.stderr
            )
            return 2
        kelurahan = kel[0]
        kota = ".".join(kelurahan.split(".")[:2])
        tokens = {}
        own_queue = waiting[0] if waiting else f"kelurahan:{kelurahan}"
        for scope in ("province", f"kota:{kota}", f"kelurahan:{kelurahan}", own_queue):
            token = new_token()
            await store.create_token(
                f"bench-{uuid.uuid4().hex[:8]}", hash_token(token), "admin", scope
            )
            tokens[scope] = token
        server = TestServer(create_app(runtime), host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        cases = []
        for scope, token in tokens.items():
            cases += [
                (f"queue first page  [{scope}]", "/api/v1/queue", token),
                (f"search kelurahan  [{scope}]", f"/api/v1/reports?kelurahan={kelurahan}", token),
                (f"stats             [{scope}]", "/api/v1/stats", token),
            ]
        print(f"{store.dialect}: {total:,} reports; kelurahan {kelurahan} ({kel[1]:,} reports)")
        print(f"{'request':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  items")
        worst = 0.0
        async with ClientSession() as session:
            for label, path, token in cases:
                headers = {"Authorization": f"Bearer {token}"}
                times = []
                items = 0
                for i in range(args.warmup + args.rounds):
                    started = time.perf_counter()
                    async with session.get(base + path, headers=headers) as r:
                        body = await r.json()
                        assert r.status == 200, body
                    if i >= args.warmup:
                        times.append((time.perf_counter() - started) * 1000)
                    items = len(body.get("items", body.get("by_owner", {})))
                times.sort()
                p50 = statistics.median(times)
                p95 = times[max(0, round(0.95 * len(times)) - 1)]
                worst = max(worst, p95)
                flag = "" if p95 < TARGET_MS else "  <-- over target"
                print(f"{label:<52} {p50:8.1f} {p95:8.1f} {times[-1]:8.1f}  {items}{flag}")
        await server.close()
        await store.close()
    print(f"worst p95 {worst:.1f} ms (target {TARGET_MS:.0f} ms)")
    return 0 if worst < TARGET_MS else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:////tmp/kanal_bench.db")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
