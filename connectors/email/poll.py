"""Polling a mailbox over IMAP (imapclient, which blocks: every call runs in a worker
thread): a logged-in session, and waiting in IDLE until new mail shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from connectors.email.config import EmailConfig

T = TypeVar("T")


IDLE_CHECK_S = 2.0  # one blocking idle_check; short so that stopping kanal is quick


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """imapclient blocks: every call runs in a worker thread, never on the loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass
class ImapSession:
    """One logged-in connection, kept between ticks of the poller."""

    client: IMAPClient
    capabilities: frozenset[bytes]
    broken: bool = False
    created_folders: set[str] = field(default_factory=set)
    keyword_ok: dict[str, bool] = field(default_factory=dict)  # folder → flag allowed

    def has(self, capability: str) -> bool:
        return capability.upper().encode() in self.capabilities


def connect(email: EmailConfig, password: str | None) -> tuple[IMAPClient, frozenset[bytes]]:
    client = IMAPClient(
        email.imap_host, port=email.imap_port, ssl=email.imap_ssl, timeout=email.imap_timeout_s
    )
    try:
        client.normalise_times = False  # INTERNALDATE as aware datetimes
        client.login(email.imap_username, password or "")
        capabilities = frozenset(c.upper() for c in client.capabilities())
    except BaseException:
        close_quietly(client)
        raise
    return client, capabilities


def close_quietly(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError):
        try:
            client.shutdown()
        except OSError:
            pass  # the socket is already gone; nothing is left to release


def is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple)
        and len(response) >= 2
        and response[1]
        in (
            b"EXISTS",
            b"RECENT",
        )
    )


async def idle_wait(session: ImapSession, seconds: float) -> bool:
    """IDLE on the selected folder for up to `seconds`; True as soon as new mail shows.

    Dovecot sends `* OK Still here` every few seconds, and flag changes arrive as FETCH:
    neither is new mail, so the wait goes on.
    """
    client = session.client
    await call(client.idle)
    try:
        deadline = time.monotonic() + seconds
        found = False
        while not found:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            responses = await call(client.idle_check, timeout=min(remaining, IDLE_CHECK_S))
            found = any(is_new_mail(r) for r in responses)
    except BaseException:
        session.broken = True  # mid-IDLE: the connection's state is unknown, start over
        raise
    await call(client.idle_done)
    return found
