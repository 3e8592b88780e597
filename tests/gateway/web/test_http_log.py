"""A malformed HTTP request is one INFO line in the log, not an ERROR with a traceback:
strangers cannot fill the log."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest

MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webhooks/jaki HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
]


async def raw_exchange(base_url: str, data: bytes) -> bytes:
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


@pytest.mark.parametrize("data", MALFORMED)
async def test_a_malformed_request_is_one_info_line_without_traceback(make_kanal, caplog, data):
    k = await make_kanal()
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    answer = await raw_exchange(k.base_url, data)
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    await asyncio.sleep(0.05)
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.INFO and record.exc_info is None and not record.exc_text
    assert "malformed HTTP request from 127.0.0.1" in record.getMessage()
    assert "\n" not in caplog.text.strip()


async def test_a_handler_that_fails_is_still_an_error_with_its_traceback(make_kanal, caplog):
    k = await make_kanal()

    async def broken(_request):
        raise RuntimeError("a real bug")

    caplog.set_level(logging.INFO, logger="aiohttp.server")
    k.client.server.app.router._frozen = False
    k.client.server.app.router.add_get("/broken", broken)
    r = await k.client.get("/broken")
    assert r.status == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info is not None
