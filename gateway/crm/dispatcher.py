"""The CRM dispatcher: delivers `ready` reports to the CRM exactly once, across replicas.

Owns the delivery state machine: `ready` → `posting` (claimed; stays
`posting` while it waits for a retry or for a token to resolve) → `posted`, or `failed`.

How several replicas share the work: a replica *claims* reports in one transaction
(PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`; SQLite has one writer anyway), marking
them `posting` with `crm_claimed_by`/`crm_claimed_until`. A claim that lapses (the replica
died mid-post) is taken by another replica, which posts again with the same
`Idempotency-Key` (the report id): a CRM that honours it creates nothing twice. Results are
recorded only while the claim is still ours. Idle replicas look for work by a short poll
(0.25 s on PostgreSQL, 0.5 s on SQLite; an in-process event wakes them sooner), not by
LISTEN/NOTIFY: the probe is one indexed read, and a poll cannot miss a notification sent
while the database was restarting.

Back-pressure: `crm.concurrency` posts at a time per replica (asyncio.Semaphore), a circuit
breaker per replica (an outage costs `crm.breaker_failures` failed posts, then one probe
every `crm.breaker_reset_s`), and exponential backoff with jitter per report, honouring
Retry-After (crm_client.RetryPolicy).

In `hold` mode nothing is sent: ready reports wait in the store, and switching to
`open311` sends them in order of arrival (received_at, then id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from prometheus_client import Gauge, Histogram
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from crm_client import (
    Accepted,
    BreakerState,
    CircuitBreaker,
    CrmError,
    Pending,
    PostOutcome,
    Rejected,
    RetryLater,
    RetryPolicy,
)
from gateway.base.runtime import ComponentState, Runtime
from gateway.crm.destinations import Destination, destination_for
from gateway.store import StoreUnavailable
from gateway.store.schema import reports
from normalizers.report import HistoryEntry, Report

log = logging.getLogger("kanal.crm")

CLAIMABLE = ("ready", "posting")
BY = "crm"  # history entries written by the delivery machinery
TOKEN_POLL_MIN_S = 1.0
TOKEN_POLL_MAX_S = 300.0
# Before a claim (a write) the dispatcher lets intake's pending commit go first, but waits
# no longer than this: delivering is mostly waiting on HTTP, and a dispatcher that waited
# for intake to fall idle got a turn at most once a second while webhooks kept arriving.
CLAIM_YIELD_S = 0.02
# Deliveries at once, in rounds of crm.concurrency: posting, or waiting for their outcome's
# commit.
MAX_INFLIGHT_ROUNDS = 4


# --------------------------------------------------------------------------- metrics


class CrmMetrics:
    """Metrics of the dispatcher, on the runtime's registry (one set per runtime)."""

    def __init__(self, runtime: Runtime):
        r = runtime.metrics.registry
        self.attempts = runtime.metrics.crm_attempts  # outcome: accepted|pending|retry|rejected|…
        self.outbox = runtime.metrics.crm_outbox  # status → reports
        self.post_seconds = Histogram(
            "kanal_crm_post_seconds",
            "Duration of one POST requests.json exchange with the CRM.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
            registry=r,
        )
        self.received_to_posted = Histogram(
            "kanal_crm_received_to_posted_seconds",
            "Time from a report's arrival to the CRM's confirmation.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 30, 120, 600, 3600, 86400),
            registry=r,
        )
        self.waiting_retry = Gauge(
            "kanal_crm_waiting_retry",
            "Reports whose last CRM attempt failed and that wait for their next attempt.",
            registry=r,
        )
        self.next_attempt = Gauge(
            "kanal_crm_next_attempt_timestamp_seconds",
            "Unix time of the earliest scheduled CRM retry (0 when none).",
            registry=r,
        )
        self.breaker_open = Gauge(
            "kanal_crm_breaker_open",
            "1 while this replica's CRM circuit breaker is open or half-open.",
            registry=r,
        )

    @staticmethod
    def of(runtime: Runtime) -> CrmMetrics:
        return runtime.part(CrmMetrics, lambda: CrmMetrics(runtime))


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    report: Report  # as saved by the claim (status posting)
    first_attempt_at: datetime
    action: Literal["post", "resolve"]
    # crm_claimed_until as this claim wrote it: with crm_claimed_by, it tells the claim from
    # a later one of the same worker (retries take no new version).
    claimed_until: datetime


@dataclass(frozen=True)
class _Outcome:
    """An outcome waiting to be recorded, and the delivery waiting for it."""

    claim: Claim
    change: Callable[[Report], Report]
    request_id: str | None
    visible: bool
    future: asyncio.Future[str]


def _fail(item: _Outcome, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)


def _claimable(now: datetime) -> Any:
    return and_(
        reports.c.status.in_(CLAIMABLE),
        or_(reports.c.next_attempt_at.is_(None), reports.c.next_attempt_at <= now),
        or_(reports.c.crm_claimed_until.is_(None), reports.c.crm_claimed_until < now),
    )


class Dispatcher:
    """One per process. `run()` works until cancelled; `drain()` sends what is due now."""

    def __init__(
        self,
        runtime: Runtime,
        destination: Destination | None = None,
        *,
        rng: random.Random | None = None,
    ):
        crm = runtime.settings.crm
        self.runtime = runtime
        self.store = runtime.store
        self.worker_id = runtime.worker_id
        self._destination = destination
        self.policy = RetryPolicy(
            base_s=crm.retry_base_s,
            max_delay_s=max(crm.retry_max_delay_s, crm.retry_base_s),
            max_attempts=crm.max_attempts,
        )
        self.breaker = CircuitBreaker(crm.breaker_failures, crm.breaker_reset_s)
        self.concurrency = crm.concurrency
        self.semaphore = asyncio.Semaphore(crm.concurrency)
        self.claim_ttl = timedelta(seconds=crm.claim_ttl_s)
        self.idle_poll_s = 0.25 if self.store.dialect == "postgresql" else 0.5
        self.metrics = CrmMetrics.of(runtime)
        self.rng = rng or random.Random()
        self.state = runtime.components.setdefault("crm:dispatcher", ComponentState())
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # Claims whose exchange with the CRM has not ended (waiting for a slot or posting);
        # deliveries past it only wait for their outcome's commit and hold no slot.
        self._unsent: set[str] = set()  # report ids
        self._sent_one = asyncio.Event()  # a claim's exchange ended, or a delivery
        self._outcomes: list[_Outcome] = []
        self._more_due = False  # the last claim was full: more is likely due
        self._recorder: asyncio.Task[None] | None = None
        self._probe_in_flight = False
        self._gauges_at = 0.0
        self.store.on_new_work.append(self._wake.set)

    @property
    def destination(self) -> Destination:
        """Where ready reports go (`crm.mode`), made on first use."""
        if self._destination is None:
            self._destination = destination_for(self.runtime)
        return self._destination

    @property
    def sending(self) -> bool:
        return self.destination.sends

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._recorder is not None:
            await asyncio.gather(self._recorder, return_exceptions=True)
        if self._destination is not None:
            await self._destination.close()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        if not self.sending:
            self.state.state, self.state.detail = "ok", self.destination.waiting
        backoff = 1.0
        try:
            while True:
                try:
                    await self._refresh_gauges()
                    started = await self.step() if self.sending else 0
                    backoff = 1.0
                except StoreUnavailable as exc:
                    self.state.state, self.state.detail = "failing", f"store: {exc}"[:200]
                    log.warning("dispatcher: store unavailable; retrying in %.0fs", backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                except Exception:
                    log.exception("dispatcher: unexpected error; continuing")
                    await asyncio.sleep(1.0)
                    continue
                if started == 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self._idle_s())
                    except TimeoutError:
                        pass
        finally:
            for task in self._inflight:
                task.cancel()
            await self.close()

    def _idle_s(self) -> float:
        return self.idle_poll_s if self.sending else 5.0

    async def step(self) -> int:
        """Claim due work for the free slots and start it. Returns how many reports were
        started (or 1 when a slot freed up)."""
        # Claims are taken in batches (one commit for many reports) and may run ahead of the
        # semaphore by one round: up to 2 × concurrency not yet sent, at most concurrency
        # posting. Deliveries waiting for their outcome's group commit do not count (while
        # webhooks arrive that wait is longer than the exchange itself), up to a bound.
        if len(self._unsent) >= self.concurrency or len(self._inflight) >= MAX_INFLIGHT_ROUNDS * (
            self.concurrency
        ):
            self._sent_one.clear()
            await self._sent_one.wait()
            return 1
        free = 2 * self.concurrency - len(self._unsent)
        breaker = self.breaker.state
        self.metrics.breaker_open.set(0 if breaker is BreakerState.CLOSED else 1)
        if breaker is BreakerState.OPEN or (
            breaker is BreakerState.HALF_OPEN and self._probe_in_flight
        ):
            self.state.state = "degraded"
            self.state.detail = f"CRM circuit breaker {breaker.value}"
            return 0
        if not self._more_due and not await self._any_due():
            return 0
        probing = breaker is BreakerState.HALF_OPEN
        await self.store.yield_to_intake(max_wait_s=CLAIM_YIELD_S)
        limit = 1 if probing else free
        claims = await self.claim(limit)
        self._more_due = len(claims) == limit
        for claim in claims:
            if probing and self.breaker.allow():
                self._probe_in_flight = True
            self._unsent.add(claim.report.id)
            task = asyncio.create_task(self._deliver(claim, probe=probing))
            self._inflight.add(task)
            task.add_done_callback(self._delivery_ended)
        return len(claims)

    def _delivery_ended(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._sent_one.set()

    @contextlib.asynccontextmanager
    async def _exchange(self, report_id: str) -> AsyncIterator[None]:
        """One of the `crm.concurrency` slots, for one exchange with the CRM."""
        try:
            async with self.semaphore:
                yield
        finally:
            self._sent(report_id)

    def _sent(self, report_id: str) -> None:
        if report_id in self._unsent:
            self._unsent.discard(report_id)
            self._sent_one.set()

    async def drain(self, timeout_s: float = 60.0) -> int:
        """Send everything due now, wait for those exchanges, return how many were tried."""
        deadline = time.monotonic() + timeout_s
        total = 0
        while time.monotonic() < deadline:
            started = await self.step()
            total += started
            if started == 0:
                if not self._inflight:
                    break
                await asyncio.wait(self._inflight, timeout=max(deadline - time.monotonic(), 0))
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=max(deadline - time.monotonic(), 0.1))
        return total

    async def _any_due(self) -> bool:
        """A cheap read before taking the writer (SQLite has one)."""
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(reports.c.id).where(_claimable(self.store.clock())).limit(1)
                )
            ).first()
        return row is not None

    async def claim(self, limit: int) -> list[Claim]:
        now = self.store.clock()
        pick = (
            select(reports.c.id, reports.c.version, reports.c.doc, reports.c.crm_first_attempt_at)
            .where(_claimable(now))
            .order_by(reports.c.received_at, reports.c.id)
            .limit(limit)
        )
        if self.store.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)

        def take(conn: Connection) -> tuple[list[Claim], bool]:
            # One synchronous transaction: on SQLite one trip to the writer thread, so the
            # write lock that webhooks wait for is not held across a trip per statement;
            # one UPDATE executed for the whole batch (report and claim columns together).
            items: list[tuple[Report, bool, dict[str, Any]]] = []
            firsts: list[datetime] = []
            until = now + self.claim_ttl
            actions: list[Literal["post", "resolve"]] = []
            for row in conn.execute(pick).all():
                # A report this process's pipeline just wrote is taken from memory (the
                # version tells it is what the store holds), else parsed.
                recent = self.store.recent_report(row.id, row.version)
                report = (
                    Report.model_validate_json(row.doc) if recent is None else _copy(recent, [])
                )
                resolve = bool(report.crm.token and not report.crm.request_id)
                # Taking a ready report is a change the API shows (status, history); taking
                # one back for a retry is bookkeeping: no new version.
                visible = report.status == "ready"
                if visible:
                    report.history.append(HistoryEntry(at=now, status="posting", by=BY))
                report.status = "posting"
                if not resolve:
                    report.delivery.attempts += 1
                report.delivery.next_attempt_at = None
                first = row.crm_first_attempt_at or now
                claim_columns = {
                    "crm_claimed_by": self.worker_id,
                    "crm_claimed_until": until,
                    "crm_first_attempt_at": first,
                }
                items.append((report, visible, claim_columns))
                firsts.append(first)
                actions.append("resolve" if resolve else "post")
            saved, fired = self.store.save_reports_sync(conn, items, delivery_only=True)
            claims = [
                Claim(report, first, action, until)
                for report, first, action in zip(saved, firsts, actions, strict=True)
            ]
            return claims, fired

        claims, fired = await self.store.run_write(take)
        if fired:
            self.store.hook_work_done()
        return claims

    # --- one delivery -----------------------------------------------------------------------

    async def _deliver(self, claim: Claim, *, probe: bool) -> None:
        report = claim.report
        try:
            if claim.action == "resolve":
                await self._resolve(claim)
                return
            try:
                async with self._exchange(report.id):
                    started = time.perf_counter()
                    outcome = await self.destination.post(report, claim.first_attempt_at)
                    self.metrics.post_seconds.observe(time.perf_counter() - started)
            except ValueError as exc:
                await self._settle(
                    claim,
                    _failed(f"cannot build the CRM request: {exc}", "system", self.store.clock()),
                )
                self.metrics.attempts.labels("invalid").inc()
                return
            self._breaker_saw(outcome)
            await self._record(claim, outcome)
        except StoreUnavailable as exc:
            # The claim lapses and the report is tried again, with the same Idempotency-Key.
            log.warning("report %s: outcome not recorded, store unavailable: %s", report.id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "report %s: delivery failed unexpectedly; its claim will lapse", report.id
            )
        finally:
            self._sent(report.id)
            if probe:
                self._probe_in_flight = False

    def _breaker_saw(self, outcome: PostOutcome) -> None:
        if isinstance(outcome, RetryLater):
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
            if self.state.state != "ok":
                self.state.state, self.state.detail = "ok", None

    async def _record(self, claim: Claim, outcome: PostOutcome) -> None:
        now = self.store.clock()
        attempts = claim.report.delivery.attempts
        if isinstance(outcome, Accepted):
            self.metrics.attempts.labels("accepted").inc()
            if await self._settle(
                claim,
                _posted(outcome.service_request_id, outcome.service_notice, now),
                request_id=outcome.service_request_id,
            ):
                lag = (now - claim.report.received_at).total_seconds()
                self.metrics.received_to_posted.observe(max(lag, 0.0))
            return
        if isinstance(outcome, Pending):
            self.metrics.attempts.labels("pending").inc()
            await self._settle(claim, _pending(outcome.token, now))
            return
        if isinstance(outcome, Rejected):
            self.metrics.attempts.labels("rejected").inc()
            log.warning("report %s: the CRM refused it (HTTP %d)", claim.report.id, outcome.status)
            await self._settle(claim, _failed(outcome.error, BY, now))
            return
        if self.policy.gives_up(attempts):
            self.metrics.attempts.labels("gave_up").inc()
            log.warning("report %s: giving up after %d attempts", claim.report.id, attempts)
            await self._settle(claim, _failed(outcome.error, BY, now))
            return
        self.metrics.attempts.labels("retry").inc()
        delay = self.policy.next_delay(attempts, outcome.retry_after_s, self.rng)
        await self._settle(
            claim, _retry_later(outcome.error, now + timedelta(seconds=delay)), visible=False
        )

    async def _resolve(self, claim: Claim) -> None:
        token = claim.report.crm.token or ""
        try:
            async with self._exchange(claim.report.id):
                request_id = await self.destination.resolve(token)
        except CrmError as exc:
            if exc.retryable:
                self.breaker.record_failure()
            delay = self._token_delay(claim.report)
            if exc.retry_after_s:
                delay = max(delay, min(exc.retry_after_s, TOKEN_POLL_MAX_S))
            await self._settle(
                claim,
                _retry_later(exc.message, self.store.clock() + timedelta(seconds=delay)),
                visible=False,
            )
            return
        self.breaker.record_success()
        now = self.store.clock()
        if request_id is None:
            await self._settle(
                claim,
                _retry_later(None, now + timedelta(seconds=self._token_delay(claim.report))),
                visible=False,
            )
            return
        self.metrics.attempts.labels("token_resolved").inc()
        if await self._settle(claim, _posted(request_id, None, now), request_id=request_id):
            lag = (now - claim.report.received_at).total_seconds()
            self.metrics.received_to_posted.observe(max(lag, 0.0))

    def _token_delay(self, report: Report) -> float:
        """Ask about a token sooner while it is young: half its age, within [1 s, 5 min]."""
        since = report.crm.posted_at
        age = (self.store.clock() - since).total_seconds() if since else 0.0
        return min(max(age / 2, TOKEN_POLL_MIN_S), TOKEN_POLL_MAX_S)

    async def _settle(
        self,
        claim: Claim,
        change: Callable[[Report], Report],
        *,
        request_id: str | None = None,
        visible: bool = True,
    ) -> bool:
        """Apply an outcome to the current report and release the claim, if still ours.
        Outcomes that arrive together are recorded in one transaction (one commit for many
        reports); `visible` False for bookkeeping that takes no new version (a retry)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._outcomes.append(_Outcome(claim, change, request_id, visible, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_outcomes(), name="crm-outcomes")
        outcome = await future
        if outcome == "lapsed":
            log.warning("report %s: claim lapsed before the outcome was recorded", claim.report.id)
        return outcome == "recorded"

    async def _record_outcomes(self) -> None:
        """Group commit of outcomes: whatever waits is recorded in the next transaction.
        When the store refuses a batch (not the store being down), each outcome is tried
        alone, so one bad report does not hold the others' outcomes."""
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._record_batch(batch)
            except Exception as exc:
                if len(batch) > 1 and not isinstance(exc, StoreUnavailable):
                    for item in batch:
                        try:
                            await self._record_batch([item])
                        except Exception as one:
                            _fail(item, one)
                    continue
                for item in batch:
                    _fail(item, exc)

    async def _record_batch(self, batch: list[_Outcome]) -> None:
        ids = {item.claim.report.id for item in batch}
        stmt = select(
            reports.c.id,
            reports.c.version,
            reports.c.crm_claimed_by,
            reports.c.crm_claimed_until,
            reports.c.crm_request_id,
        ).where(reports.c.id.in_(ids))
        if self.store.dialect == "postgresql":
            stmt = stmt.with_for_update()

        def record(conn: Connection) -> tuple[list[str], bool]:
            rows = {row.id: row for row in conn.execute(stmt).all()}
            # The report as the claim saved it, unless someone changed it since (a new
            # version: an admin's edit): then as the store holds it.
            changed_since = [
                row.id
                for item in batch
                if (row := rows.get(item.claim.report.id)) is not None
                and row.version != item.claim.report.version
            ]
            docs = (
                dict(
                    conn.execute(
                        select(reports.c.id, reports.c.doc).where(reports.c.id.in_(changed_since))
                    ).all()
                )
                if changed_since
                else {}
            )
            results: list[str] = []
            changed: dict[str, tuple[Report, bool, dict[str, Any]]] = {}
            for item in batch:
                report_id = item.claim.report.id
                row = rows.get(report_id)
                if (
                    row is None
                    or row.crm_claimed_by != self.worker_id
                    or row.crm_claimed_until != item.claim.claimed_until
                    or report_id in changed
                ):
                    results.append("lapsed")  # (a second outcome for one claim: the first won)
                    continue
                doc = docs.get(report_id)
                current = (
                    Report.model_validate_json(doc) if doc is not None else _copy(item.claim.report)
                )
                new = item.change(current)
                changed[report_id] = (
                    new,
                    item.visible,
                    {
                        "crm_claimed_by": None,
                        "crm_claimed_until": None,
                        "crm_request_id": item.request_id or row.crm_request_id,
                    },
                )
                results.append("recorded")
            _, fired = self.store.save_reports_sync(
                conn, list(changed.values()), delivery_only=True
            )
            return results, fired

        results, fired = await self.store.run_write(record)
        if fired:
            self.store.hook_work_done()
        for item, outcome in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(outcome)

    # --- visibility -------------------------------------------------------------------------

    async def _refresh_gauges(self, every_s: float = 5.0) -> None:
        if time.monotonic() - self._gauges_at < every_s:
            return
        self._gauges_at = time.monotonic()
        await refresh_outbox_gauges(self.runtime, self.metrics)


async def refresh_outbox_gauges(runtime: Runtime, metrics: CrmMetrics) -> None:
    async with runtime.store.read() as conn:
        rows = await conn.execute(
            select(reports.c.status, func.count())
            .where(reports.c.status.in_(("ready", "posting", "failed")))
            .group_by(reports.c.status)
        )
        counts: dict[str, int] = dict(rows.all())
        waiting = (
            await conn.execute(
                select(func.count(), func.min(reports.c.next_attempt_at)).where(
                    reports.c.status == "posting", reports.c.next_attempt_at.is_not(None)
                )
            )
        ).one()
    for status in ("ready", "posting", "failed"):
        metrics.outbox.labels(status).set(counts.get(status, 0))
    metrics.waiting_retry.set(waiting[0] or 0)
    metrics.next_attempt.set(waiting[1].timestamp() if waiting[1] else 0)


# --------------------------------------------------------------------------- state changes


def _copy(report: Report, history: list[HistoryEntry] | None = None) -> Report:
    """A report to change, apart from `report` (shared, or recorded again one outcome at a
    time when the store refuses a batch): the parts the claim and the changes below touch
    are new objects."""
    return report.model_copy(
        update={
            "crm": report.crm.model_copy(),
            "delivery": report.delivery.model_copy(),
            "history": list(report.history) if history is None else history,
        }
    )


# Each returns a function applied to the current report inside the settling transaction.


def _posted(request_id: str, notice: str | None, now: datetime) -> Callable[[Report], Report]:
    def change(report: Report) -> Report:
        report.status = "posted"
        report.crm.system = "open311"
        report.crm.request_id = request_id
        report.crm.status = "open"
        report.crm.posted_at = report.crm.posted_at or now
        report.delivery.last_error = None
        report.delivery.next_attempt_at = None
        note = f"service_request_id {request_id}" + (f"; {notice}" if notice else "")
        report.history.append(HistoryEntry(at=now, status="posted", by=BY, note=note))
        return report

    return change


def _pending(token: str, now: datetime) -> Callable[[Report], Report]:
    def change(report: Report) -> Report:
        report.crm.system = "open311"
        report.crm.token = token
        report.crm.posted_at = now
        report.delivery.last_error = None
        report.delivery.next_attempt_at = now + timedelta(seconds=TOKEN_POLL_MIN_S)
        report.history.append(
            HistoryEntry(at=now, status="posting", by=BY, note=f"accepted, token {token}")
        )
        return report

    return change


def _retry_later(error: str | None, at: datetime) -> Callable[[Report], Report]:
    def change(report: Report) -> Report:
        if error is not None:
            report.delivery.last_error = error
        report.delivery.next_attempt_at = at
        return report

    return change


def _failed(error: str, by: str, now: datetime) -> Callable[[Report], Report]:
    def change(report: Report) -> Report:
        report.status = "failed"
        report.delivery.last_error = error
        report.delivery.next_attempt_at = None
        report.history.append(HistoryEntry(at=now, status="failed", by=by, note=error))
        return report

    return change


# --------------------------------------------------------------------------- retry (API, CLI)


class NotFailed(Exception):
    def __init__(self, status: str):
        super().__init__(f"report is {status}, not failed")
        self.status = status


def revive(report: Report, now: datetime, by: str) -> Report:
    """A failed report goes back to `ready` with a fresh attempt budget."""
    if report.status != "failed":
        raise NotFailed(report.status)
    report.status = "ready"
    report.delivery.attempts = 0
    report.delivery.next_attempt_at = None
    report.history.append(HistoryEntry(at=now, status="ready", by=by, note="sent to the CRM again"))
    return report


async def retry_due_now(runtime: Runtime, *, dead: bool, by: str = "cli") -> tuple[int, int]:
    """`kanal crm retry`: reports waiting for a later attempt become due now; with `dead`,
    failed ones go back to ready. Returns (rescheduled, revived)."""
    store = runtime.store
    now = store.clock()
    async with store.write() as conn:
        waiting = await conn.execute(
            update(reports)
            .where(
                reports.c.status.in_(CLAIMABLE),
                reports.c.next_attempt_at > now,
                or_(reports.c.crm_claimed_until.is_(None), reports.c.crm_claimed_until < now),
            )
            .values(next_attempt_at=now)
        )
    rescheduled = int(waiting.rowcount or 0)
    revived = 0
    if dead:
        async with store.read() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    select(reports.c.id)
                    .where(reports.c.status == "failed")
                    .order_by(reports.c.received_at, reports.c.id)
                )
            ]
        for report_id in ids:

            def change(report: Report) -> Report | None:
                if report.status != "failed":
                    return None
                return revive(report.model_copy(update={"history": []}), now, by)

            await store.update_report(report_id, change)
            revived += 1
    store.notify_new_work()
    return rescheduled, revived


# --------------------------------------------------------------------------- wiring


async def run_dispatcher(runtime: Runtime) -> None:
    await Dispatcher(runtime).run()
