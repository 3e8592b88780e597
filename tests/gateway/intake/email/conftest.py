"""Fixtures for the e-mail channel: kanal with its SMTP listener on a loopback port, a
real SMTP client (smtplib, run in a thread so the listener's loop keeps serving), and a
real Dovecot."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port, need_binary
from tests.fakes.dovecot import PASSWORD, USER, Dovecot
from tests.gateway.notify.test_chat_and_email import TRUSTED_MX, Sink

RECIPIENT = "pengaduan@jakarta.go.id"
SENDER = "warga@example.id"


def email_toml(*, max_bytes: int = 2_000_000, more: str = "") -> str:
    return f"""
[channels.email]
enabled = true
recipients = ["{RECIPIENT}", "Lapor@Example.ID"]
max_message_bytes = {max_bytes}
{more}
"""


def imap_toml(dovecot: Dovecot, more: str = "") -> str:
    interval = "" if "imap_poll_interval_s" in more else "imap_poll_interval_s = 3"
    return f"""
imap_host = "127.0.0.1"
imap_port = {dovecot.port}
imap_ssl = false
imap_username = "{USER}"
imap_password = "{PASSWORD}"
{interval}
{more}
"""


@dataclass
class SmtpResult:
    ehlo: tuple[int, bytes] = (0, b"")
    mail: tuple[int, bytes] = (0, b"")
    rcpt: list[tuple[int, bytes]] = field(default_factory=list)
    data: tuple[int, bytes] | None = None


def smtp_transaction(
    port: int,
    raw: bytes,
    *,
    rcpts: Sequence[str] = (RECIPIENT,),
    mail_from: str = SENDER,
    mail_options: Sequence[str] = (),
) -> SmtpResult:
    """One SMTP transaction with smtplib, every reply recorded (blocking: run in a thread)."""
    result = SmtpResult()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        result.ehlo = client.ehlo()
        result.mail = client.mail(mail_from, list(mail_options))
        if result.mail[0] != 250:
            return result
        result.rcpt = [client.rcpt(r) for r in rcpts]
        if not any(code == 250 for code, _ in result.rcpt):
            return result
        result.data = client.data(raw)
    return result


async def send(port: int, raw: bytes, **kwargs: Any) -> SmtpResult:
    return await asyncio.to_thread(smtp_transaction, port, raw, **kwargs)


@pytest.fixture
async def mail_kanal(make_kanal: Any) -> AsyncIterator[Any]:
    """`await mail_kanal(...)` → the in-process kanal of `make_kanal`, plus `.smtp_port`."""
    from gateway.intake.smtp import start_smtp

    servers: list[asyncio.Server] = []
    made: list[Any] = []

    async def make(
        *, db_url: str | None = None, max_bytes: int = 2_000_000, more: str = "", smtp: bool = True
    ) -> Any:
        k = await make_kanal(db_url=db_url, extra=email_toml(max_bytes=max_bytes, more=more))
        made.append(k)
        if smtp:
            k.smtp_port = free_port()
            servers.append(await start_smtp(k.runtime, "127.0.0.1", k.smtp_port))
        return k

    yield make
    from gateway.intake.imap import close_session

    for k in made:
        await close_session(k.runtime)
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def relay() -> Iterator[tuple[Sink, int]]:
    """The outgoing mail relay kanal hands its acknowledgements to (aiosmtpd on loopback)."""
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def mail_settings(port: int, more: str = "") -> str:
    """[channels.email] keys for acknowledgements through `relay`, trusting TRUSTED_MX."""
    return f'smtp_relay = "127.0.0.1:{port}"\ntrusted_authserv_ids = ["{TRUSTED_MX}"]\n{more}'


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = need_binary("dovecot", "dovecot-imapd")
    server = Dovecot(binary).start()
    try:
        yield server
    finally:
        server.cleanup()


def message(
    n: int | str,
    *,
    subject: str = "Jalan berlubang",
    body: str = "Jalan berlubang besar di depan SDN 01 Menteng, mohon diperbaiki.",
    headers: str = "",
    sender: str = SENDER,
) -> bytes:
    """A small, plain complaint e-mail with Message-ID <n@example.id>."""
    return (
        f"From: Warga <{sender}>\r\n"
        f"To: {RECIPIENT}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Fri, 27 Nov 2026 08:00:00 +0700\r\n"
        f"Message-ID: <{n}@example.id>\r\n"
        f"{headers}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


async def raw_rows(store: Any) -> list[dict[str, Any]]:
    """Every stored raw e-mail message, oldest first."""
    from sqlalchemy import select

    from gateway.store.schema import raw_messages

    async with store.read() as conn:
        rows = await conn.execute(
            select(raw_messages)
            .where(raw_messages.c.channel == "email")
            .order_by(raw_messages.c.id)
        )
        return [dict(r) for r in rows.mappings()]


async def all_reports(store: Any) -> list[Any]:
    items, _ = await store.list_reports("province", limit=500, oldest_first=True)
    return [await store.get_report(r.id) for r in items]
