"""The CRM of bench_e2e in a process of its own (so that its CPU is not counted with
kanal's, nor with the load generator's): the strict fake Open311 CRM of the tests, answering
every request after `--latency-ms`, plus two read-outs for the benchmark.

    python bench/e2e_crm.py --latency-ms 20      # prints its endpoint on the first line

GET /bench/count     {"created": n, "posts": m}
GET /bench/arrivals  [[ticket, kanal_id, accepted_at (Unix time)], ...] in order of creation
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.open311 import FakeOpen311  # noqa: E402

API_KEY = "bench-key"


class BenchOpen311(FakeOpen311):
    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/bench/count", self._count)
        app.router.add_get("/bench/arrivals", self._arrivals)

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response({"created": len(self.created), "posts": len(self.requests)})

    async def _arrivals(self, request: web.Request) -> web.Response:
        # A record is made when the answer is ready, after the latency: the time the CRM
        # accepted the report.
        return web.json_response(
            [
                [r.form.get("attribute[ticket]"), r.kanal_id, r.requested_datetime.timestamp()]
                for r in self.created
            ]
        )


async def until_stopped() -> None:
    """Returns on SIGTERM or SIGINT: a fake's process serves until the benchmark stops it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(latency_s: float) -> None:
    async with BenchOpen311(API_KEY, latency_s=latency_s, service_notice=None) as crm:
        print(crm.endpoint, flush=True)
        await until_stopped()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency_ms / 1000))


if __name__ == "__main__":
    main()
