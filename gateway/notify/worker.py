"""Telling citizens: the acknowledgement with their ticket, and news when a report is done.

Owns finding the reports to tell, recording what was planned for each (planning.py says
what, templates.py with which words; per-recipient rate limits here), and the delivery state
machine of the `outbound` table. The pipeline never waits for any of it: the notifier is a
service of its own that finds its work in the store.

Finding work: every `notify.poll_interval_s` (sooner when new messages arrive) the notifier
looks at reports made in the last minutes that have no `outbound` row of kind "ack", and
every `notify.scan_interval_s` at the whole look-back window (`notify.lookback_days`) and at
`done` reports without an outbound row of kind "done". Every report it looks at gets a row:
`queued` when a message will go out, `skipped` with the reason when not (machine mail,
short codes, sender names, rejected noise, imports, desks, rate limits…), or `sent` through
"webhook_response" for JAKI and LAPOR! (their ticket is in the webhook's answer).

Never twice: the row is RECORDED (unique on report and kind) before anything is sent. The
row is also what the report shows (`report.notifications` is read from this table by the
store), so delivery never rewrites a report nor bumps its version under an admin. A
replica then claims due rows (`queued` → `sending`, with `claimed_by`/`claimed_until`;
PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's single writer), sends, and records `sent`
with the provider's message id, or on a provider error (5xx, 429, connection refused)
`queued` again with backoff (crm_client.RetryPolicy), `failed` after `notify.max_attempts`
or on a refusal (4xx).

At most once, by choice: none of the providers (Twilio, Vonage, Kannel, Telegram, Meta, X,
SMTP) offers an idempotency key for sending, so a send interrupted after the request may
have left (kill -9, a lapsed claim, a read timeout) is marked `failed` with "interrupted;
not resent to avoid a duplicate" instead of being sent again. A citizen may thus miss an
acknowledgement (rare; visible on the report and in /metrics) but never gets two.
`notify.resend_when_unsure = true` turns this into at-least-once. The window in which a
crash loses a message that was never sent is the few milliseconds between committing the
claim and writing the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import Counter, Gauge
from sqlalchemy import and_, func, literal, or_, select, text, update
from sqlalchemy.engine import Connection

from connectors.outbound import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    Sender,
    SendError,
    UncertainSendError,
)
from crm_client import RetryPolicy
from gateway.base.config import Settings
from gateway.base.runtime import ComponentState, Runtime
from gateway.notify.planning import Plan, plan_message, skipped
from gateway.notify.senders import build_senders
from gateway.notify.templates import Templates, render_body
from gateway.store import Store, StoreUnavailable
from gateway.store.ids import new_id
from gateway.store.schema import outbound, raw_messages, report_history, reports
from normalizers.report import HistoryEntry, Report

log = logging.getLogger("kanal.notify")

INTERRUPTED = "interrupted; not resent to avoid a duplicate"
RECENT_WINDOW = timedelta(minutes=15)  # the frequent scan: reports made this recently
COUNTED_STATES = ("queued", "sending", "sent")  # what rate limits count
BATCH = 20  # reports per recording transaction while webhooks arrive (they wait for the
BATCH_IDLE = 100  # one writer); otherwise more, for fewer commits


# --------------------------------------------------------------------------- metrics


class NotifyMetrics:
    def __init__(self, runtime: Runtime):
        r = runtime.metrics.registry
        self.outcomes = Counter(
            "kanal_notify_messages_total",
            "Messages to citizens by channel, kind and outcome (sent, failed, skipped, retry).",
            ["channel", "kind", "outcome"],
            registry=r,
        )
        self.skipped = Counter(
            "kanal_notify_skipped_total", "Messages not sent, by reason.", ["reason"], registry=r
        )
        self.queue = Gauge(
            "kanal_notify_outbound", "Outbound messages by state.", ["state"], registry=r
        )
        self.follow_ups_after_done = Counter(
            "kanal_follow_ups_after_done_total",
            "Citizen follow-ups on reports already done, flagged for the owner.",
            registry=r,
        )

    @staticmethod
    def of(runtime: Runtime) -> NotifyMetrics:
        return runtime.part(NotifyMetrics, lambda: NotifyMetrics(runtime))


# --------------------------------------------------------------------------- the report side


def ulid_floor(when: datetime) -> str:
    """The smallest ULID made at `when` (report ids sort by creation time)."""
    from ulid import ULID

    return str(ULID.from_timestamp(when.timestamp()))[:10] + "0" * 16


def _insert(store: Store) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (pg_insert if store.dialect == "postgresql" else sqlite_insert)(outbound)


def _advisory_key(recipient: str) -> int:
    return int.from_bytes(hashlib.sha256(recipient.encode()).digest()[:8], "big", signed=True)


# --------------------------------------------------------------------------- the notifier


@dataclass(frozen=True, slots=True)
class Claimed:
    row: Mapping[str, Any]

    def message(self) -> OutboundMessage:
        r = self.row
        return OutboundMessage(
            id=r["id"],
            report_id=r["report_id"],
            kind=r["kind"],
            channel=r["channel"],
            connector=r["connector"],
            to=r["recipient"].split(":", 1)[1],
            body=r["body"],
            meta=json.loads(r["meta"]) if r["meta"] else {},
        )


class Notifier:
    """One per process: `run()` until cancelled; `run_once()`/`drain()` for tests and CLI."""

    def __init__(
        self,
        runtime: Runtime,
        senders: Mapping[str, Sender] | None = None,
        *,
        rng: random.Random | None = None,
    ):
        settings = runtime.settings
        self.runtime = runtime
        self.settings: Settings = settings
        self.store = runtime.store
        # One statement, parameters per row: compiled once (see Store.insert_report).
        self._record_stmt = (
            _insert(self.store)
            .on_conflict_do_nothing(index_elements=["report_id", "kind"])
            .returning(outbound.c.id)
        )
        self.worker_id = runtime.worker_id
        self.notify = settings.notify
        self.templates = Templates.load(self.notify.templates_dir, self.notify.language)
        self.senders: dict[str, Sender] = dict(senders or build_senders(settings))
        self.policy = RetryPolicy(
            base_s=self.notify.retry_base_s,
            max_delay_s=max(self.notify.retry_max_delay_s, self.notify.retry_base_s),
            max_attempts=self.notify.max_attempts,
        )
        self.rng = rng or random.Random()
        self.metrics = NotifyMetrics.of(runtime)
        self.state = runtime.components.setdefault("notify", ComponentState())
        self.semaphore = asyncio.Semaphore(self.notify.concurrency)
        self._wake = asyncio.Event()
        self._last_full_scan = 0.0
        self.store.on_new_work.append(self._wake.set)
        self._session: aiohttp.ClientSession | None = None

    def sender_for(self, connector: str) -> Sender | None:
        return self.senders.get(connector)

    def session(self) -> aiohttp.ClientSession:
        """One HTTP session for every provider: senders take it, they do not own one."""
        if self._session is None or self._session.closed:
            timeout = self.notify.timeout_s
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(5.0, timeout))
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 1.0
        try:
            while True:
                try:
                    await self.store.yield_to_intake()
                    tried = await self.run_once()
                    backoff = 1.0
                    if self.state.state != "ok":
                        self.state.state, self.state.detail = "ok", None
                    if tried >= self.claim_size:
                        continue  # a full round: more is due now, not after a poll interval
                except StoreUnavailable as exc:
                    self.state.state, self.state.detail = "failing", f"store: {exc}"[:200]
                    log.warning("notify: store unavailable; retrying in %.0fs", backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                except Exception:
                    log.exception("notify: unexpected error; continuing")
                    await asyncio.sleep(1.0)
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.notify.poll_interval_s)
                    # New messages were stored: give the pipeline a moment to make reports.
                    await asyncio.sleep(min(0.3, self.notify.poll_interval_s))
                except TimeoutError:
                    pass
        finally:
            await self.close()

    async def run_once(self) -> int:
        """One round: expire lapsed claims, record new work, send what is due. Returns the
        number of messages sent or tried."""
        full = time.monotonic() - self._last_full_scan >= self.notify.scan_interval_s
        await self.expire_lapsed()
        await self.discover(full=full)
        if full:
            self._last_full_scan = time.monotonic()
            await self.refresh_gauges()
        return await self.deliver_due()

    async def drain(self, rounds: int = 20) -> int:
        """Record and send everything due now (tests, `kanal notify`)."""
        self._last_full_scan = 0.0
        total = 0
        for _ in range(rounds):
            self._last_full_scan = 0.0
            n = await self.run_once()
            total += n
            if n == 0:
                break
        return total

    # --- finding work -----------------------------------------------------------------------

    async def discover(self, *, full: bool) -> int:
        now = self.store.clock()
        recorded = 0
        if self.notify.ack_enabled:
            since = now - (timedelta(days=self.notify.lookback_days) if full else RECENT_WINDOW)
            recorded += await self._discover_kind("ack", self._ack_candidates(since, now, full))
        if full:
            recorded += await self._discover_kind("done", self._done_candidates(now))
            await self.flag_follow_ups_after_done(now)
        return recorded

    def _without(self, kind: str) -> Any:
        return (
            ~select(outbound.c.id)
            .where(outbound.c.report_id == reports.c.id, outbound.c.kind == kind)
            .exists()
        )

    def _ack_candidates(self, since: datetime, now: datetime, full: bool) -> Any:
        cond = reports.c.received_at >= since if full else reports.c.id >= ulid_floor(since)
        # `received_at` bounds the full scan; a backfilled report stays unacknowledged.
        return and_(
            cond,
            reports.c.received_at >= now - timedelta(days=self.notify.lookback_days),
            self._without("ack"),
        )

    def _done_candidates(self, now: datetime) -> Any:
        return and_(
            reports.c.status == "done",
            reports.c.received_at >= now - timedelta(days=self.notify.done_lookback_days),
            self._without("done"),
        )

    async def _discover_kind(self, kind: str, condition: Any) -> int:
        recorded = 0
        last_id = ""
        while True:
            stmt = (
                select(reports.c.id, reports.c.version, reports.c.doc, raw_messages.c.message)
                .select_from(
                    reports.outerjoin(raw_messages, raw_messages.c.id == reports.c.raw_message_id)
                )
                .where(condition, reports.c.id > last_id)
                .order_by(reports.c.id)
                .limit(BATCH if self.store.intake_active() else BATCH_IDLE)
            )
            async with self.store.read() as conn:
                rows = (await conn.execute(stmt)).all()
            if not rows:
                return recorded
            last_id = rows[-1].id
            planned = []
            now = self.store.clock()
            for row in rows:
                # What the pipeline of this process just wrote is not parsed again.
                report = self.store.recent_report(
                    row.id, row.version
                ) or Report.model_validate_json(row.doc)
                raw = json.loads(row.message) if row.message else {}
                planned.append((report, self._plan(report, raw, kind, now)))
                await asyncio.sleep(0)  # CPU work: let webhooks be acknowledged meanwhile
            recorded += await self.record(kind, planned)
            await self.store.yield_to_intake(max_wait_s=0.2)

    def _plan(self, report: Report, raw: Mapping[str, Any], kind: str, now: datetime) -> Plan:
        plan = plan_message(report, raw, kind, self.settings, now)
        if plan.state != "queued":
            return plan
        sender = self.sender_for(plan.connector)
        if sender is None:
            return skipped(report, "no_sender_for_connector", plan.recipient)
        if not getattr(sender, "configured", True):
            # e.g. no Twilio account sid, no SMTP relay: nothing can go out on this channel.
            return skipped(report, f"not_configured:{plan.connector}", plan.recipient)
        return plan

    async def record(self, kind: str, planned: Sequence[tuple[Report, Plan]]) -> int:
        """Insert the outbound rows (unique per report and kind), in one transaction; rate
        limits are counted inside it. The reports show them when read. On SQLite the whole
        transaction is one trip to the writer thread (webhooks wait for its lock)."""
        now = self.store.clock()
        made = await self.store.run_write(
            functools.partial(self._record_sync, kind=kind, planned=planned, now=now)
        )
        for channel, state, reason in made:
            if state == "skipped":
                self.metrics.outcomes.labels(channel, kind, "skipped").inc()
                self.metrics.skipped.labels(reason.split(":", 1)[0]).inc()
            elif state == "sent":
                self.metrics.outcomes.labels(channel, kind, "sent").inc()
        return len(made)

    def _record_sync(
        self,
        conn: Connection,
        *,
        kind: str,
        planned: Sequence[tuple[Report, Plan]],
        now: datetime,
    ) -> list[tuple[str, str, str]]:
        made: list[tuple[str, str, str]] = []  # (channel, state, reason)
        for report, plan in planned:
            state, reason = plan.state, plan.reason
            if state == "queued":
                limited = self._over_limit(conn, plan.recipient, kind, now)
                if limited is not None:
                    state, reason = "skipped", limited
            body, meta = "", dict[str, Any]()
            if state == "queued":
                body, meta = render_body(plan, report, kind, self.templates, self.settings)
            inserted = conn.execute(
                self._record_stmt,
                {
                    "id": new_id(),
                    "report_id": report.id,
                    "kind": kind,
                    "channel": plan.channel,
                    "connector": plan.connector,
                    "recipient": plan.recipient,
                    "body": body,
                    "state": state,
                    "attempts": 0,
                    "next_attempt_at": None,
                    "last_error": reason if state != "queued" else None,
                    "created_at": now,
                    "sent_at": now if state == "sent" else None,
                    "meta": json.dumps(meta, ensure_ascii=False) if meta else None,
                },
            )
            if inserted.first() is None:
                continue  # another replica recorded it first
            made.append((plan.channel, state, reason or ""))
        return made

    def _over_limit(self, conn: Connection, recipient: str, kind: str, now: datetime) -> str | None:
        """Why one more message of `kind` to `recipient` would be too many, else None."""
        if self.store.dialect == "postgresql":
            # Two replicas recording for one citizen at once must not both see room left.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _advisory_key(recipient)})
        row = conn.execute(
            select(
                func.count().filter(outbound.c.created_at >= now - timedelta(hours=1)),
                func.count(),
                func.count().filter(outbound.c.kind == "ack"),
            ).where(
                outbound.c.recipient == recipient,
                outbound.c.created_at >= now - timedelta(days=1),
                outbound.c.state.in_(COUNTED_STATES),
            )
        ).one()
        if int(row[0] or 0) >= self.notify.per_hour or int(row[1] or 0) >= self.notify.per_day:
            return "rate_limited"
        if kind == "ack" and int(row[2] or 0) >= self.notify.ack_per_day:
            return "rate_limited:ack_per_day"
        return None

    # --- lapsed claims ----------------------------------------------------------------------

    async def expire_lapsed(self) -> int:
        """`sending` rows whose claim lapsed (the replica died mid-send): maybe sent. Marked
        failed (at most once), or queued again with `notify.resend_when_unsure`."""
        now = self.store.clock()
        resend = self.notify.resend_when_unsure
        async with self.store.read() as conn:
            probe = (
                await conn.execute(
                    select(outbound.c.id)
                    .where(outbound.c.state == "sending", outbound.c.claimed_until < now)
                    .limit(1)
                )
            ).first()
        if probe is None:
            return 0
        async with self.store.write() as conn:
            rows = (
                await conn.execute(
                    update(outbound)
                    .where(outbound.c.state == "sending", outbound.c.claimed_until < now)
                    .values(
                        state="queued" if resend else "failed",
                        last_error=INTERRUPTED if not resend else "interrupted; sending again",
                        claimed_by=None,
                        claimed_until=None,
                        next_attempt_at=None,
                    )
                    .returning(outbound.c.report_id, outbound.c.kind, outbound.c.channel)
                )
            ).all()
        for _, kind, channel in rows:
            if not resend:
                self.metrics.outcomes.labels(channel, kind, "failed").inc()
        if rows:
            log.warning(
                "notify: %d interrupted send(s) found (%s)",
                len(rows),
                "queued again" if resend else "not resent",
            )
        return len(rows)

    # --- sending ----------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        now = self.store.clock()
        pick = (
            select(outbound.c.id)
            .where(
                outbound.c.state == "queued",
                or_(outbound.c.next_attempt_at.is_(None), outbound.c.next_attempt_at <= now),
            )
            .order_by(outbound.c.created_at, outbound.c.id)
            .limit(limit)
        )
        if self.store.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(outbound)
            .where(outbound.c.id.in_(pick.scalar_subquery()))
            .values(
                state="sending",
                claimed_by=self.worker_id,
                claimed_until=now + timedelta(seconds=self.notify.claim_ttl_s),
                attempts=outbound.c.attempts + 1,
            )
            .returning(*outbound.c)
        )
        async with self.store.write() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [Claimed(dict(r)) for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]))]

    @property
    def claim_size(self) -> int:
        """Messages taken per round: enough to keep `notify.concurrency` sends in flight."""
        return 2 * self.notify.concurrency

    async def deliver_due(self) -> int:
        async with self.store.read() as conn:
            due = (
                await conn.execute(
                    select(literal(1))
                    .where(
                        outbound.c.state == "queued",
                        or_(
                            outbound.c.next_attempt_at.is_(None),
                            outbound.c.next_attempt_at <= self.store.clock(),
                        ),
                    )
                    .limit(1)
                )
            ).first()
        if due is None:
            return 0
        claims = await self.claim(self.claim_size)
        if claims:
            await asyncio.gather(*(self._deliver(c) for c in claims))
        return len(claims)

    async def _deliver(self, claimed: Claimed) -> None:
        message = claimed.message()
        row = claimed.row
        sender = self.sender_for(message.connector)
        try:
            if sender is None:
                raise PermanentSendError(f"no sender for connector {message.connector}")
            if "last_message_at" in message.meta:  # a platform with a messaging window
                message = self._check_meta_window(message)
            async with self.semaphore:
                provider_id = await sender.send(self.session(), message)
        except _OutsideWindow as exc:
            await self._settle(row, "skipped", error=str(exc))
            return
        except SendError as exc:
            await self._failed_attempt(row, exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a sender: the message may or may not have left
            log.exception("notify: outbound %s: sender crashed", message.id)
            error = UncertainSendError(f"sender error: {type(exc).__name__}")
            await self._failed_attempt(row, error)
            return
        await self._settle(row, "sent", provider_id=provider_id)

    def _check_meta_window(self, message: OutboundMessage) -> OutboundMessage:
        """The message as it may go now; _OutsideWindow when the window closed meanwhile
        and the platform takes nothing but (for `after_window = "template"`) a template."""
        last = message.meta.get("last_message_at")
        if not last:
            return message
        age = self.store.clock() - datetime.fromisoformat(str(last))
        if age <= timedelta(hours=self.notify.meta_window_h):
            return message
        if message.meta.get("after_window") == "template":
            return dataclasses.replace(message, meta={**message.meta, "template": True})
        raise _OutsideWindow("outside_24h_window")

    async def _failed_attempt(self, row: Mapping[str, Any], exc: SendError) -> None:
        attempts = int(row["attempts"])
        uncertain = isinstance(exc, UncertainSendError)
        if uncertain and not self.notify.resend_when_unsure:
            error = f"{exc.message}; not resent to avoid a duplicate"
            await self._settle(row, "failed", error=error)
            return
        if isinstance(exc, PermanentSendError) or self.policy.gives_up(attempts):
            await self._settle(row, "failed", error=exc.message)
            return
        assert isinstance(exc, RetryableSendError | UncertainSendError)
        delay = self.policy.next_delay(attempts, exc.retry_after_s, self.rng)
        at = self.store.clock() + timedelta(seconds=delay)
        await self._settle(row, "queued", error=exc.message, next_attempt_at=at)

    async def _settle(
        self,
        row: Mapping[str, Any],
        state: str,
        *,
        provider_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        now = self.store.clock()
        mine = and_(outbound.c.claimed_by == self.worker_id, outbound.c.state == "sending")
        if state == "sent":
            # The truth wins even if our claim lapsed meanwhile (a slow provider).
            mine = or_(mine, outbound.c.state.in_(("failed", "queued")))
        values: dict[str, Any] = {
            "state": state,
            "claimed_by": None,
            "claimed_until": None,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
        }
        if state == "sent":
            values.update(
                sent_at=now, provider_message_id=(provider_id or "")[:255], last_error=None
            )
        async with self.store.write() as conn:
            result = await conn.execute(
                update(outbound).where(outbound.c.id == row["id"], mine).values(**values)
            )
            if result.rowcount != 1:
                log.warning(
                    "notify: outbound %s: claim lapsed before the outcome (%s) was recorded",
                    row["id"],
                    state,
                )
                return
        outcome = "retry" if state == "queued" else state
        self.metrics.outcomes.labels(row["channel"], row["kind"], outcome).inc()
        if state == "failed":
            log.warning(
                "notify: outbound %s (report %s, %s) failed: %s",
                row["id"],
                row["report_id"],
                row["channel"],
                (error or "")[:120],
            )

    # --- follow-ups after done --------------------------------------------------------------

    async def flag_follow_ups_after_done(self, now: datetime) -> int:
        """A citizen who writes again on a `done` report is heard: the report keeps its
        status, gets a history entry "follow_up_after_done" (the owner sees it in the
        report's history) and is counted in /metrics. Idempotent: one entry per follow-up."""
        since = now - timedelta(seconds=max(self.notify.scan_interval_s * 4, 300))
        async with self.store.read() as conn:
            rows = (
                await conn.execute(
                    select(reports.c.id, reports.c.doc).where(
                        reports.c.status == "done", reports.c.updated_at >= since
                    )
                )
            ).all()
            candidates = []
            for row in rows:
                report = Report.model_validate_json(row.doc)
                if not report.follow_ups:
                    continue
                history = (
                    await conn.execute(
                        select(report_history.c.status, report_history.c.at, report_history.c.note)
                        .where(report_history.c.report_id == report.id)
                        .order_by(report_history.c.id)
                    )
                ).all()
                done_at = max((h.at for h in history if h.status == "done"), default=None)
                flagged = " ".join(
                    h.note or "" for h in history if h.status == "follow_up_after_done"
                )
                late = [
                    f
                    for f in report.follow_ups
                    if done_at is not None
                    and f.at >= done_at
                    and (f.raw_message_id or f.at.isoformat()) not in flagged
                ]
                if late:
                    candidates.append((report.id, late))
        flagged_count = 0
        for report_id, late in candidates:

            def change(report: Report, late: Iterable[Any] = late) -> Report:
                # Back in the owner's queue (the report stays done) until an admin has seen it.
                changed = report.model_copy(
                    update={"history": [], "attention": "follow_up_after_done"}
                )
                for f in late:
                    changed.history.append(
                        HistoryEntry(
                            at=now,
                            status="follow_up_after_done",
                            by="notify",
                            note=f"citizen wrote again after done ({f.channel}, "
                            f"{f.raw_message_id or f.at.isoformat()}); owner to review",
                        )
                    )
                return changed

            await self.store.update_report(report_id, change)
            flagged_count += len(list(late))
        if flagged_count:
            self.metrics.follow_ups_after_done.inc(flagged_count)
        return flagged_count

    # --- visibility -------------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        async with self.store.read() as conn:
            rows = (
                await conn.execute(
                    select(outbound.c.state, func.count())
                    .where(outbound.c.state.in_(("queued", "sending")))
                    .group_by(outbound.c.state)
                )
            ).all()
        counts: dict[str, int] = {str(k): int(v) for k, v in rows}
        for state in ("queued", "sending"):
            self.metrics.queue.labels(state).set(counts.get(state, 0))


class _OutsideWindow(Exception):
    pass


async def run_notifier(runtime: Runtime) -> None:
    await Notifier(runtime).run()
