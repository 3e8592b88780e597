"""The WhatsApp provider of bench_e2e in a process of its own (its CPU not counted with
kanal's): the strict fake Graph API of the tests (bearer token, API version, one business
number, payload shape, the 24-hour window), plus read-outs for the benchmark.

    python bench/e2e_graph.py --token T --number 1065…   # prints its base URL on the first line

POST /bench/wrote  ["wa_id", ...]: these citizens wrote just now (opens their window)
GET  /bench/acks   [[to, type, text, accepted_at (Unix time)], ...] every accepted send
                   (text: a template's parameter, the ticket, for a template)
GET  /bench/count   {"sent": n, "requests": m}  (requests: refused ones included)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_crm import until_stopped  # noqa: E402
from tests.fakes.whatsapp_api import FakeWhatsAppGraph  # noqa: E402


class BenchGraph(FakeWhatsAppGraph):
    def __init__(self, token: str, numbers: set[str]) -> None:
        super().__init__(token, numbers)
        self.accepted: list[tuple[str, str, str, float]] = []

    def routes(self, app: web.Application) -> None:
        # Before the API's routes: "/bench/acks" would otherwise match "/{version}/{media_id}".
        app.router.add_post("/bench/wrote", self._wrote)
        app.router.add_get("/bench/acks", self._acks)
        app.router.add_get("/bench/count", self._count)
        super().routes(app)

    async def _send(self, request: web.Request) -> web.Response:
        before = len(self.sent)
        response = await super()._send(request)
        if len(self.sent) > before:
            body: dict[str, Any] = self.sent[-1]
            kind = str(body.get("type"))
            if kind == "text":
                text = str((body.get("text") or {}).get("body") or "")
            else:  # a template: its one body parameter, the ticket
                components = (body.get("template") or {}).get("components") or [{}]
                parameters = components[0].get("parameters") or [{}]
                text = str(parameters[0].get("text") or "")
            self.accepted.append((str(body["to"]), kind, text, time.time()))
        return response

    async def _wrote(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        wa_ids = await request.json()
        for wa_id in wa_ids:
            self.citizen_wrote(str(wa_id), now)
        return web.json_response({"citizens": len(wa_ids)})

    async def _acks(self, request: web.Request) -> web.Response:
        return web.json_response([list(a) for a in self.accepted])

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response({"sent": len(self.sent), "requests": len(self.requests)})


async def serve(token: str, number: str) -> None:
    async with BenchGraph(token, {number}) as graph:
        print(graph.graph_url, flush=True)
        await until_stopped()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--number", required=True, help="the business phone number id")
    args = parser.parse_args()
    asyncio.run(serve(args.token, args.number))


if __name__ == "__main__":
    main()
