"""Property: whatever bytes arrive by SMTP, the message is stored, never lost."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.store.schema import raw_messages
from tests.gateway.intake.email.conftest import smtp_transaction

# Lines of arbitrary bytes (no CR/LF inside, within SMTP's 1000-byte line limit).
LINE = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
MESSAGE = st.lists(LINE, max_size=12).map(lambda lines: b"\r\n".join(lines) + b"\r\n")


async def test_arbitrary_bytes_sent_by_smtp_are_always_stored(mail_kanal):
    k = await mail_kanal()
    loop = asyncio.get_running_loop()

    async def payloads() -> list[bytes]:
        async with k.store.read() as conn:
            return [r[0] for r in await conn.execute(select(raw_messages.c.payload))]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(MESSAGE)
    def one(raw: bytes) -> None:
        result = smtp_transaction(k.smtp_port, raw)
        assert result.data is not None and result.data[0] == 250, result
        stored = asyncio.run_coroutine_threadsafe(payloads(), loop).result(30)
        assert raw in stored

    await asyncio.to_thread(one)
