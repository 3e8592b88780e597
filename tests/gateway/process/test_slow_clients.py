"""Slow and abusive clients against a real `kanal serve`: idle
connections, partial headers and partial bodies are cut off in time, open connections
are capped, and a flood of slow uploads neither grows the process by more than 50 MB
nor delays an honest signed webhook."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import SECRETS, write_config
from tests.connectors.signing import kanal_sign

SHORT = {"KANAL_SERVER__HEADER_TIMEOUT_S": "1", "KANAL_SERVER__BODY_TIMEOUT_S": "1"}


def host_port(server: Any) -> tuple[str, int]:
    host, port = server.http.rsplit(":", 1)
    return host, int(port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails if it is still open after `seconds`."""
    received = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            received += chunk
    return received


@pytest.fixture
def short_timeouts(tmp_path: Path, serve_process: Any) -> Any:
    server = serve_process(write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db"), SHORT)
    server.start()
    return server


async def test_an_idle_connection_is_closed_after_the_header_timeout(short_timeouts):
    reader, writer = await asyncio.open_connection(*host_port(short_timeouts))
    started = time.monotonic()
    assert await closed_within(reader, 3) == b""
    assert time.monotonic() - started >= 0.9
    writer.close()


async def test_partial_headers_are_cut_off_after_the_header_timeout(short_timeouts):
    reader, writer = await asyncio.open_connection(*host_port(short_timeouts))
    writer.write(b"POST /webhooks/jaki HTTP/1.1\r\nHost: kanal\r\nContent-Type: appl")
    await writer.drain()
    await closed_within(reader, 3)
    writer.close()


async def test_a_partial_body_gets_408_and_the_connection_closes(short_timeouts):
    reader, writer = await asyncio.open_connection(*host_port(short_timeouts))
    writer.write(
        b"POST /webhooks/jaki HTTP/1.1\r\nHost: kanal\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1048000\r\n\r\n" + b"x" * 1000
    )
    await writer.drain()
    answer = await closed_within(reader, 3)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    writer.close()


async def test_a_slow_client_between_requests_is_cut_off_too(short_timeouts):
    reader, writer = await asyncio.open_connection(*host_port(short_timeouts))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: kanal\r\n\r\n")
    await writer.drain()
    first = await reader.readuntil(b'"ok"}')
    assert first.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: ka")  # a second request, never finished
    await writer.drain()
    await closed_within(reader, 3)
    writer.close()


async def test_a_keep_alive_client_with_prompt_requests_outlives_the_header_timeout(
    short_timeouts,
):
    # One header timer per connection, looked at when it fires: the deadline of an earlier
    # request must not cut off a connection whose later requests came in time.
    reader, writer = await asyncio.open_connection(*host_port(short_timeouts))
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # 2.5 header timeouts of prompt requests
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: kanal\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b'"ok"}'), 2)
        assert answer.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.3)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: ka")  # then one never finished
    await writer.drain()
    cut = time.monotonic()
    await closed_within(reader, 3)
    assert time.monotonic() - cut >= 0.9  # its own full timeout, not an earlier one's
    writer.close()


async def test_connections_past_the_cap_are_refused_at_once(tmp_path, serve_process):
    env = {"KANAL_SERVER__MAX_CONNECTIONS": "20", "KANAL_SERVER__HEADER_TIMEOUT_S": "30"}
    server = serve_process(write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db"), env)
    server.start()
    held = [await asyncio.open_connection(*host_port(server)) for _ in range(20)]
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(*host_port(server))
    started = time.monotonic()
    answer = await closed_within(reader, 2)
    assert answer.startswith(b"HTTP/1.1 503") and time.monotonic() - started < 1
    writer.close()
    for _, w in held[:5]:
        w.close()
    await asyncio.sleep(0.3)
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/healthz") as r:
        assert r.status == 200  # room again once connections go
    for _, w in held[5:]:
        w.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def generic_body(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"honest-{i}",
            "from": "081234567890",
            "to": "1708",
            "text": "Pohon tumbang menutup jalan",
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()


async def honest_webhook(http: aiohttp.ClientSession, base_url: str, i: int) -> float:
    body = generic_body(i)
    started = time.monotonic()
    async with http.post(
        f"{base_url}/webhooks/sms/generic",
        data=body,
        headers=kanal_sign(SECRETS["sms_generic"], body),
    ) as r:
        assert r.status == 200, await r.text()
    return time.monotonic() - started


SLOW_CLIENTS = 200
DECLARED, SENT = 1_048_000, 1_000_000


async def slow_upload(host: str, port: int, hold: asyncio.Event) -> None:
    """Declares 1,048,000 bytes, sends 1,000,000, then waits without finishing."""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    try:
        writer.write(
            b"POST /webhooks/jaki HTTP/1.1\r\nHost: kanal\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {DECLARED}\r\n\r\n".encode()
        )
        chunk = b"x" * 65536
        for start in range(0, SENT, len(chunk)):
            writer.write(chunk[: SENT - start])
            await writer.drain()
        await hold.wait()
    except (OSError, ConnectionError):
        pass  # refused or cut off: what the server may do to it
    finally:
        writer.close()


@pytest.mark.slow
async def test_a_flood_of_slow_uploads_stays_within_50_mb_and_honest_webhooks_pass(
    tmp_path, serve_process
):
    server = serve_process(write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db"))
    server.start()
    pid = server.proc.pid
    async with aiohttp.ClientSession() as http:
        for i in range(5):  # warm: the first requests load what every request needs
            await honest_webhook(http, server.base_url, i)
        before = rss_mb(pid)
        hold = asyncio.Event()
        host, port = host_port(server)
        flood = [asyncio.create_task(slow_upload(host, port, hold)) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(4)  # every slow client has sent what it will send
        during = rss_mb(pid)
        honest = [await honest_webhook(http, server.base_url, 100 + i) for i in range(5)]
        hold.set()
        await asyncio.gather(*flood)
    print(
        f"RSS {before:.0f} MB -> {during:.0f} MB under {SLOW_CLIENTS} slow uploads; "
        f"honest webhooks {max(honest) * 1000:.0f} ms at most"
    )
    assert during - before <= 50, f"RSS grew from {before:.0f} to {during:.0f} MB"
    assert max(honest) < 1.0
