"""The IMAP poller: mail from a mailbox (imapclient, in worker threads) into the store.

Incremental by UID, with UIDVALIDITY kept per folder in kv_state: when a server renumbers
a folder, kanal reads it again from UID 1 and the Message-ID dedupe keeps that from
creating anything twice. Bodies are fetched with BODY.PEEK[] so nothing looks read before
it is stored; only then is the mail flagged or moved (`channels.email.imap_after`). Mail
over `channels.email.max_message_bytes` is not fetched whole: its headers are stored as a
failed raw message, shown in /api/v1/inbox, and the message stays on the server. Between
polls the poller waits in IDLE when the server offers it, so new mail arrives in about a
second. A failure ends the tick: the scheduler backs off and shows it in /readyz.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from imapclient.exceptions import IMAPClientError
from prometheus_client import Counter

from connectors.email.config import EmailConfig
from connectors.email.poll import ImapSession, call, close_quietly, connect, idle_wait
from gateway.base.config import read_secret
from gateway.base.polling import Poller
from gateway.base.runtime import ComponentState, Runtime
from gateway.intake.mail import (
    TOO_LARGE,
    MailEnvelope,
    PreparedMail,
    prepare_mail,
    prepare_too_large,
    store_mail,
)

log = logging.getLogger("kanal.imap")

POLLER = "imap"
FETCH_CHUNK = 50  # messages per FETCH and per group commit
IDLE_RENEW_S = 540.0  # re-enter IDLE before servers drop idle clients (RFC 2177: 29 min)
IDLE_MAX_WINDOW_S = 25 * 60.0


class ImapMetrics:
    def __init__(self, runtime: Runtime):
        registry = runtime.metrics.registry
        self.messages = Counter(
            "kanal_imap_messages_total",
            "Messages read from IMAP by outcome (stored, duplicate, malformed, too_large).",
            ["outcome"],
            registry=registry,
        )
        self.resyncs = Counter(
            "kanal_imap_uidvalidity_resyncs_total",
            "Folders read again from UID 1 because the server changed UIDVALIDITY.",
            registry=registry,
        )


def _metrics(runtime: Runtime) -> ImapMetrics:
    return runtime.part(ImapMetrics, lambda: ImapMetrics(runtime))


def state_key(email: EmailConfig, folder: str) -> str:
    return f"imap:{email.imap_username}@{email.imap_host}:{email.imap_port}:{folder}"


async def open_session(runtime: Runtime) -> ImapSession:
    email = runtime.settings.channels.email
    password = read_secret(email, "imap_password")
    client, capabilities = await call(connect, email, password)
    log.info(
        "imap: connected to %s:%d (IDLE %s)",
        email.imap_host,
        email.imap_port,
        "offered" if b"IDLE" in capabilities else "not offered",
    )
    return ImapSession(client, capabilities)


async def close_session(runtime: Runtime) -> None:
    session = runtime.drop(ImapSession)
    if session is not None:
        await call(close_quietly, session.client)


async def _session(runtime: Runtime) -> tuple[ImapSession, bool]:
    """The kept session if it still answers, else a new one; True when new."""
    session = runtime.find(ImapSession)
    if session is not None and not session.broken:
        try:
            await call(session.client.noop)
            return session, False
        except (IMAPClientError, OSError):
            log.info("imap: the kept connection is gone; reconnecting")
        await close_session(runtime)
    elif session is not None:
        await close_session(runtime)
    session = await open_session(runtime)
    runtime.keep(session)
    return session, True


# --- one folder ----------------------------------------------------------------------------


async def sync_folder(
    runtime: Runtime, session: ImapSession, folder: str, *, lookback_days: int = 0
) -> int:
    """Store every message of `folder` not read before (and, with lookback, those of the last
    days again: duplicates are recognised); returns how many messages were handled."""
    email = runtime.settings.channels.email
    store = runtime.store
    client = session.client
    info = await call(client.select_folder, folder)
    uidvalidity = int(info[b"UIDVALIDITY"])
    key = state_key(email, folder)
    known = await store.get_state(key) or {}
    last_uid = int(known.get("last_uid", 0))
    if known and known.get("uidvalidity") != uidvalidity:
        # The server renumbered the folder: UIDs mean other messages now. Read it all again.
        log.warning("imap: UIDVALIDITY of %s changed; reading the folder again", folder)
        _metrics(runtime).resyncs.inc()
        last_uid = 0
    uids = {u for u in await call(client.search, ["UID", f"{last_uid + 1}:*"]) if u > last_uid}
    if lookback_days > 0:
        since = date.today() - timedelta(days=lookback_days)
        uids |= set(await call(client.search, ["SINCE", since]))
    if session.keyword_ok.get(folder) is None:
        permanent = {f.upper() for f in info.get(b"PERMANENTFLAGS", ())}
        wanted = email.imap_flag.encode().upper()
        session.keyword_ok[folder] = wanted in permanent or b"\\*" in permanent
    handled = 0
    ordered = sorted(uids)
    for start in range(0, len(ordered), FETCH_CHUNK):
        chunk = ordered[start : start + FETCH_CHUNK]
        # Sizes first: a message over `max_message_bytes` (as SMTP refuses it) is not
        # fetched whole; its headers are stored as a failed raw message, visible in the
        # inbox, and the message itself stays on the server.
        sizes = await call(client.fetch, chunk, ["RFC822.SIZE"])
        limit = email.max_message_bytes
        size_of = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in sizes.items()}
        whole = [uid for uid in chunk if uid in size_of and size_of[uid] <= limit]
        large = [uid for uid in chunk if uid in size_of and size_of[uid] > limit]
        fetched = await call(client.fetch, whole, ["BODY.PEEK[]", "INTERNALDATE"]) if whole else {}
        heads = (
            await call(client.fetch, large, ["BODY.PEEK[HEADER]", "INTERNALDATE"]) if large else {}
        )
        prepared: list[PreparedMail] = []
        present: list[int] = []
        for uid in chunk:
            if uid in fetched:
                prepared.append(_prepare(folder, uidvalidity, uid, fetched[uid]))
            elif uid in heads:
                prepared.append(
                    _prepare_too_large(folder, uidvalidity, uid, heads[uid], size_of[uid], limit)
                )
            else:
                continue  # expunged since the SEARCH
            present.append(uid)
        if prepared:
            stored = await store_mail(runtime, prepared)  # raises → nothing flagged or moved
            counter = _metrics(runtime).messages
            for item, p in zip(stored, prepared, strict=True):
                if not item.created:
                    outcome = "duplicate"
                elif p.malformed:
                    outcome = TOO_LARGE if p.malformed.startswith(TOO_LARGE) else "malformed"
                else:
                    outcome = "stored"
                counter.labels(outcome).inc()
            await _after_store(runtime, session, folder, present)
        handled += len(present)
        last_uid = max(last_uid, *chunk)
        await store.set_state(key, {"uidvalidity": uidvalidity, "last_uid": last_uid})
    if not ordered and known.get("uidvalidity") != uidvalidity:
        await store.set_state(key, {"uidvalidity": uidvalidity, "last_uid": last_uid})
    return handled


def _envelope(folder: str, uidvalidity: int, uid: int, data: dict[bytes, Any]) -> MailEnvelope:
    when = data.get(b"INTERNALDATE")
    if not isinstance(when, datetime):
        when = datetime.now(UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return MailEnvelope(
        intake="poll",
        source=f"imap:{folder}:{uidvalidity}:{uid}",
        received_at=when,
        extra_headers=((":folder", folder), (":uidvalidity", str(uidvalidity)), (":uid", str(uid))),
    )


def _prepare(folder: str, uidvalidity: int, uid: int, data: dict[bytes, Any]) -> PreparedMail:
    raw = data.get(b"BODY[]") or b""
    return prepare_mail(bytes(raw), _envelope(folder, uidvalidity, uid, data))


def _prepare_too_large(
    folder: str, uidvalidity: int, uid: int, data: dict[bytes, Any], size: int, limit: int
) -> PreparedMail:
    """A message over the size limit: its headers only (one failed raw message per folder,
    UIDVALIDITY and UID, so a re-poll adds nothing)."""
    return prepare_too_large(
        bytes(data.get(b"BODY[HEADER]") or b""),
        _envelope(folder, uidvalidity, uid, data),
        f"the message is {size} bytes, over channels.email.max_message_bytes ({limit}); "
        f"its headers are kept here, the message stays on the IMAP server "
        f"(folder {folder}, UID {uid})",
    )


async def _after_store(
    runtime: Runtime, session: ImapSession, folder: str, uids: Sequence[int]
) -> None:
    """Flag or move mail that is now durably stored (`imap_after`)."""
    email = runtime.settings.channels.email
    client = session.client
    if not uids or email.imap_after == "keep":
        return
    if email.imap_after == "flag":
        flag = email.imap_flag if session.keyword_ok.get(folder, True) else "\\Seen"
        await call(client.add_flags, list(uids), [flag])
        return
    target = email.imap_move_to
    if target == folder:
        return
    if target not in session.created_folders:
        if not await call(client.folder_exists, target):
            await call(client.create_folder, target)
            log.info("imap: created folder %s for processed mail", target)
        session.created_folders.add(target)
    if session.has("MOVE"):
        await call(client.move, list(uids), target)
        return
    await call(client.copy, list(uids), target)
    await call(client.add_flags, list(uids), [b"\\Deleted"])
    if session.has("UIDPLUS"):
        await call(client.uid_expunge, list(uids))
    else:
        await call(client.expunge)


def idle_window(email: EmailConfig) -> float:
    """How long one tick waits in IDLE: most of the poll interval, so ticks follow each other
    and the poller's lease (3 intervals) never lapses while it waits."""
    return min(email.imap_poll_interval_s * 0.9, IDLE_MAX_WINDOW_S)


# --- the poller ----------------------------------------------------------------------------


async def poll_imap(runtime: Runtime) -> None:
    """One tick: read every folder, then wait in IDLE (when offered) for more mail."""
    email = runtime.settings.channels.email
    state = runtime.components.setdefault(f"poller:{POLLER}", ComponentState())
    session, fresh = await _session(runtime)
    try:
        # A new connection follows a start or an outage: read the last days again.
        lookback = email.imap_lookback_days if fresh else 0
        for folder in email.imap_folders:
            await sync_folder(runtime, session, folder, lookback_days=lookback)
        if not (email.imap_idle and session.has("IDLE")):
            return
        folder = email.imap_folders[0]
        await call(session.client.select_folder, folder)
        deadline = time.monotonic() + idle_window(email)
        state.state, state.detail = "ok", f"IDLE on {folder}"
        state.last_ok = datetime.now(UTC).isoformat()
        while (remaining := deadline - time.monotonic()) > 0.5:
            if await idle_wait(session, min(remaining, IDLE_RENEW_S)):
                await sync_folder(runtime, session, folder)
                await call(session.client.select_folder, folder)
    except asyncio.CancelledError:
        # kanal is stopping, perhaps mid-IDLE in a worker thread: just drop the socket.
        runtime.drop(ImapSession)
        try:
            session.client.shutdown()
        except OSError:
            pass  # already closed
        raise
    except BaseException:
        await close_session(runtime)
        raise


IMAP_POLLER = Poller(
    name=POLLER,
    enabled=lambda rt: bool(
        rt.settings.channels.email.enabled and rt.settings.channels.email.imap_host
    ),
    interval_s=lambda rt: float(rt.settings.channels.email.imap_poll_interval_s),
    run=poll_imap,
)
