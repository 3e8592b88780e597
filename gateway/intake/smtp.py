"""The SMTP listener (aiosmtpd) on kanal's own event loop: mail to the complaint addresses
is stored durably before it is acknowledged with 250.

Answers: 550 5.1.1 for recipients not in `channels.email.recipients`; 552 above
`channels.email.max_message_bytes` (advertised as SIZE); 451 4.3.0 when the store cannot
take the message, so the sending MTA retries. Mail kanal cannot read is still stored (as a
failed raw message, visible in /api/v1/inbox) and acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.spec import parse_host_port
from gateway.base.runtime import ComponentState, Runtime
from gateway.intake.mail import MailEnvelope, prepare_mail, store_mail

log = logging.getLogger("kanal.smtp")
# aiosmtpd logs every command, envelope addresses included, at INFO on "mail.log".
AIOSMTPD_LOG = "mail.log"
COMPONENT = "listener:smtp"


class KanalSmtpHandler:
    """aiosmtpd hooks: recipient check and durable storage."""

    def __init__(self, runtime: Runtime, recipients: Iterable[str]):
        self.runtime = runtime
        self.recipients = frozenset(r.strip().lower() for r in recipients)
        self.outcomes = runtime.metrics.smtp_messages

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.strip().lower() not in self.recipients:
            self.outcomes.labels("rejected_recipient").inc()
            log.debug("smtp: recipient %r refused", address)
            return "550 5.1.1 Recipient address rejected: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        peer = _peer_host(session.peer)
        mail_envelope = MailEnvelope(
            intake="smtp",
            source=f"smtp:{peer}",
            received_at=datetime.now(UTC),
            extra_headers=(
                (":helo", str(session.host_name or "")[:255]),
                (":mail_from", str(envelope.mail_from or "")[:320]),
                (":rcpt_to", ",".join(envelope.rcpt_tos)[:2000]),
                (":smtputf8", "yes" if envelope.smtp_utf8 else "no"),
            ),
        )
        prepared = prepare_mail(raw, mail_envelope)
        try:
            [stored] = await store_mail(self.runtime, [prepared])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to store: the sender must keep the message
            self.outcomes.labels("store_failed").inc()
            log.warning(
                "smtp: message of %d bytes not stored (%s); answered 451",
                len(raw),
                type(exc).__name__,
            )
            return "451 4.3.0 Temporary failure storing the message; try again later"
        outcome = "malformed" if prepared.malformed else "stored" if stored.created else "duplicate"
        self.outcomes.labels(outcome).inc()
        log.debug("smtp: message %s from %s %s as raw %s", stored.ticket, peer, outcome, stored.id)
        return f"250 2.0.0 OK queued as {stored.id}"


class KanalSMTP(SMTP):
    """aiosmtpd's protocol, counting the size refusals it answers on its own."""

    def __init__(self, handler: KanalSmtpHandler, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._outcomes = handler.outcomes

    async def push(self, status: Any) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("552"):
            self._outcomes.labels("too_large").inc()
        await super().push(status)


def _peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")


async def start_smtp(runtime: Runtime, host: str, port: int) -> asyncio.Server:
    """Listen on host:port in the running loop; the caller closes the returned server."""
    email = runtime.settings.channels.email
    aiosmtpd_log = logging.getLogger(AIOSMTPD_LOG)
    if aiosmtpd_log.level == logging.NOTSET:  # unless someone chose a level on purpose
        aiosmtpd_log.setLevel(logging.WARNING)
    handler = KanalSmtpHandler(runtime, email.recipients)
    loop = asyncio.get_running_loop()
    # aiosmtpd would call socket.getfqdn() (a DNS lookup) for every connection otherwise.
    hostname = await asyncio.to_thread(socket.getfqdn)

    def protocol() -> KanalSMTP:
        return KanalSMTP(
            handler,
            data_size_limit=email.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="kanal ESMTP",
            timeout=300,
            loop=loop,
        )

    return await loop.create_server(protocol, host=host, port=port, reuse_address=True)


async def run_smtp(runtime: Runtime) -> None:
    """`kanal serve`'s SMTP listener; idles when e-mail or `server.smtp` is off."""
    address = runtime.settings.server.smtp
    email = runtime.settings.channels.email
    state = runtime.components.setdefault(COMPONENT, ComponentState())
    if not email.enabled or not address:
        state.state, state.detail = "disabled", "channels.email off or server.smtp empty"
        await asyncio.Event().wait()
        return
    host, port = parse_host_port(address)
    try:
        server = await start_smtp(runtime, host, port)
    except OSError as exc:
        # The rest of kanal keeps running; /readyz says why mail is not taken.
        state.state, state.detail = "failing", f"cannot listen on {address}: {exc.strerror}"
        log.error("smtp: cannot listen on %s: %s", address, exc.strerror)
        await asyncio.Event().wait()
        return
    state.state, state.detail = "ok", f"listening on {address}"
    state.last_ok = datetime.now(UTC).isoformat()
    log.info("smtp listener on %s (%d recipient addresses)", address, len(email.recipients))
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await server.wait_closed()
