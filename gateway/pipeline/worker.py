"""The pipeline worker: claims stored raw messages and turns them into canonical reports.

Claims live in the store (they lapse when a replica dies), so several workers in several
processes share the inbox without doing anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import Coordinates, RawMessage, Sender, repair_text, repaired
from gateway.base.metrics import Metrics
from gateway.base.runtime import Runtime
from gateway.pipeline import media as media_fetch
from gateway.pipeline.chatter import greets, record_delivery, welcome
from gateway.pipeline.conversations import Conversations, conversation_key
from gateway.pipeline.learning import ActiveModels, active_models
from gateway.pipeline.mail_threads import thread_follow_up, threads_by_email
from gateway.store import ClaimLost, Store, StoreUnavailable
from gateway.store.ids import new_id
from normalizers.canonical import build_report
from normalizers.category import Taxonomy
from normalizers.geo import AreaIndex
from normalizers.report import DuplicateSuggestion, Report

log = logging.getLogger("kanal.pipeline")
SETTLE_CHUNK_UNDER_INTAKE = 8  # reports per settling transaction while webhooks arrive
# (they wait for the write lock); with no intake a claimed batch settles in one transaction
# Longest wait for intake to fall idle before a round: webhooks arriving without pause kept
# it busy for the whole 1 s bound, and a round of 64 then ran once a second. 20 ms cost
# intake's peak a quarter (bench_webhooks); 0.1 s still lets 500 reports/s through.
INTAKE_YIELD_S = 0.1
# While intake surges (its peak: senders keep many requests waiting for each commit), the
# wait is as long as it was before 0.1 s: a burst is acknowledged first, then normalized.
SURGE_YIELD_S = 1.0
SLICE_S = 0.002  # longest stretch of normalizing between two turns of the event loop
MAX_ATTEMPTS = 5  # claims of one raw message before it is marked failed


@dataclass
class Outcome:
    """What one claimed batch came to, settled in the store together."""

    created: list[tuple[list[str], Report, list[Any]]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # SMS parts waiting for their group
    failed: list[tuple[str, str]] = field(default_factory=list)  # (raw id, why)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # edits, unsends
    follow_ups: list[Any] = field(default_factory=list)  # messages joining a report
    group_keys: dict[str, str | None] = field(default_factory=dict)  # report id → its key


def _failure(exc: BaseException) -> str:
    """The error kept with a failed raw message (shown in /api/v1/inbox)."""
    return repair_text(f"{type(exc).__name__}: {exc}")


class Pipeline:
    def __init__(
        self,
        store: Store,
        *,
        areas: AreaIndex,
        taxonomy: Taxonomy,
        owner_of: Callable[[RawMessage], str],
        metrics: Metrics,
        worker_id: str,
        batch_size: int = 64,
        claim_ttl_s: float = 60.0,
        parts_timeout_s: float = 600.0,
        idle_poll_s: float = 0.5,
        coalesce_s: float = 0.05,
        conversation_window_s: float = 120.0,
        welcome_text: str = "",
        models: ActiveModels | None = None,
    ):
        self.store = store
        # The text model learned from admins, swapped in place when a new one is activated.
        self.models = models or ActiveModels()
        self.areas = areas
        self.taxonomy = taxonomy
        self.owner_of = owner_of
        self.metrics = metrics
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.claim_ttl_s = claim_ttl_s
        self.parts_timeout_s = parts_timeout_s
        self.idle_poll_s = idle_poll_s
        self.coalesce_s = coalesce_s
        self.welcome_text = welcome_text  # the answer to a greeting (chatter.py)
        # DM conversations and albums gather into one report (gateway/conversations.py).
        self.conversations = Conversations(
            store,
            window_s=conversation_window_s,
            areas=areas,
            taxonomy=taxonomy,
            owner_of=owner_of,
            models=self.models,
        )
        media_fetch.install(store)  # reports with linked attachments get media jobs
        self._wake = asyncio.Event()
        store.on_new_raw.append(self._wake.set)
        # Raw messages claimed by the transaction that settled the previous batch.
        self._claimed_ahead: list[dict[str, Any]] = []
        # A batch settling (its transaction in the store's thread) while the next one is
        # normalized; it returns the rows it claimed ahead.
        self._settling: asyncio.Task[list[dict[str, Any]]] | None = None

    def wake(self) -> None:
        self._wake.set()

    def warm_up(self) -> None:
        """Normalize made-up messages before serving (one with a place name, one geo-tagged):
        the normalizers build their indexes and caches on first use (the gazetteer alone
        ~300 ms), which must not stall the first webhooks."""
        now = self._now()
        samples = [
            RawMessage(
                connector="sms_generic",
                channel="sms",
                external_id="warm-up",
                received_at=now,
                sender=Sender(phone="081200000000"),
                text="Lampu jalan mati di Jl. Kebon Sirih, Menteng, mohon diperbaiki",
            ),
            RawMessage(
                connector="jaki",
                channel="jaki",
                external_id="warm-up",
                received_at=now,
                text="Sampah menumpuk",
                coordinates=Coordinates(lat=-6.1862, lon=106.8229),
            ),
        ]
        for sample in samples:
            build_report(
                [sample],
                report_id=new_id(),
                ticket="KNL-0000-0000",
                intake="webhook",
                now=now,
                channel_owner="office:warm-up",
                areas=self.areas,
                taxonomy=self.taxonomy,
            )

    async def run(self) -> None:
        """Work until cancelled; sleeps on an event (same process) or a short poll (others)."""
        try:
            await self._run()
        finally:
            if self._settling is not None:
                # Cancelled: the batch's transaction commits or not; its claims lapse if not.
                self._settling.cancel()
                with contextlib.suppress(BaseException):
                    await self._settling
                self._settling = None

    async def _run(self) -> None:
        backoff = 1.0
        behind = False  # the last round took a full batch: more is waiting
        while True:
            try:
                await self._yield_to_intake(coalesce=not behind)
                done = await self.process_once()
                behind = done >= self.batch_size
                done += await self.finish_groups()
                backoff = 1.0
            except StoreUnavailable as exc:
                log.warning("pipeline: store unavailable (%s); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception:
                log.exception("pipeline: unexpected error; continuing")
                await asyncio.sleep(1.0)
                continue
            if done == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_s)
                except TimeoutError:
                    pass

    async def _yield_to_intake(self, *, coalesce: bool) -> None:
        """Acknowledging webhooks comes first: once caught up, let new messages gather
        (fewer, larger write transactions); let a busy inbox writer go ahead, for a bounded
        time."""
        if coalesce:
            await asyncio.sleep(self.coalesce_s)
        await self.store.wait_out_surge(SURGE_YIELD_S)
        await self.store.yield_to_intake(max_wait_s=INTAKE_YIELD_S)

    async def drain(self, rounds: int = 1000) -> int:
        """Process until nothing is left (tests and `kanal ingest`)."""
        total = 0
        for _ in range(rounds):
            n = await self.process_once() + await self.finish_groups()
            total += n
            if n == 0:
                break
        return total

    def _now(self) -> datetime:
        return self.store.clock()

    async def process_once(self) -> int:
        claimed, self._claimed_ahead = self._claimed_ahead, []
        if not claimed and self._settling is not None:
            await self._settled()  # it may have claimed the next batch
            claimed, self._claimed_ahead = self._claimed_ahead, []
        if not claimed:
            claimed = await self.store.claim_raw(self.worker_id, self.batch_size, self.claim_ttl_s)
        if not claimed:
            return 0
        # A message whose claims keep lapsing (its normalization kills or stalls the worker)
        # fails alone after MAX_ATTEMPTS, visibly, instead of being retried for ever.
        out = Outcome()
        out.failed += [
            (r["id"], f"gave up after {MAX_ATTEMPTS} attempts to normalize it")
            for r in claimed
            if r["attempts"] > MAX_ATTEMPTS
        ]
        rows = [r for r in claimed if r["attempts"] <= MAX_ATTEMPTS]
        messages = {row["id"]: self._readable(row) for row in rows}
        # A message that may join, answer or follow what the batch before made (a chat, an
        # e-mail thread, a reaction, a part, a greeting) waits for that batch to commit.
        independent = all(m is not None and self._independent(m) for m in messages.values())
        if not independent:
            await self._settled()
        created, held, failed, ignored = out.created, out.held, out.failed, out.ignored
        follow_ups, group_keys = out.follow_ups, out.group_keys
        made_here: dict[str, str] = {}  # external id / ticket → report id, for this batch
        made_reports: dict[str, Report] = {}  # report id → report, for this batch
        slice_started = time.perf_counter()
        for row in rows:
            # Normalizing is CPU work on the event loop: in slices of a few milliseconds.
            spent = time.perf_counter() - slice_started
            if spent > SLICE_S:
                await self.store.pace_background(spent)
                slice_started = time.perf_counter()
            try:
                message = messages[row["id"]] or self._message(row)
                if message.part is not None and message.group_key:
                    held.append(row["id"])
                    continue
                if message.kind == "status":
                    ignored.append((row["id"], await record_delivery(self.store, message)))
                    continue
                if message.kind == "reaction":
                    aside = await self.conversations.aside(
                        message, row["id"], self._now(), made_here
                    )
                    if aside is not None:
                        follow_ups.append(aside)
                    else:
                        ignored.append((row["id"], "reaction with no open report"))
                    continue
                if message.kind == "delete":
                    unsent = await self.conversations.unsent(
                        message, row["id"], self._now(), made_here
                    )
                    if unsent is not None:
                        follow_ups.append(unsent)
                        continue
                if message.kind in ("edit", "delete"):
                    # Edits (live locations) and unsends stay on record against the earlier
                    # message; they never become reports of their own.
                    ignored.append((row["id"], f"{message.kind} of an earlier message"))
                    continue
                duplicate: DuplicateSuggestion | None = None
                if threads_by_email(message):
                    found = await thread_follow_up(
                        self.store, message, row["id"], self._now(), made_here, made_reports
                    )
                    if isinstance(found, DuplicateSuggestion):
                        duplicate = found  # someone else's reply: a report of its own
                    elif found is not None:
                        follow_ups.append(found)
                        continue
                joined = await self.conversations.follow_up(
                    message, row["id"], row["intake"], self._now(), made_here
                )
                if joined is not None:
                    follow_ups.append(joined)
                    continue
                if greets(message):
                    note = await welcome(
                        self.store, message, row["id"], self.welcome_text, self._now()
                    )
                    ignored.append((row["id"], note))
                    continue
                normalized = build_report(
                    [message],
                    report_id=new_id(),
                    ticket=row["ticket"],
                    intake=row["intake"],
                    now=self._now(),
                    channel_owner=self.owner_of(message),
                    areas=self.areas,
                    taxonomy=self.taxonomy,
                    models=self.models.current,
                )
                if duplicate is not None:
                    normalized.report.suggestions.duplicate_of.append(duplicate)
                created.append(([row["id"]], normalized.report, normalized.blobs))
                made_here[message.external_id] = made_here[row["ticket"]] = normalized.report.id
                made_reports[normalized.report.id] = normalized.report
                group_keys[normalized.report.id] = self.conversations.note_created(
                    made_here, message, normalized.report
                )
            except StoreUnavailable:
                raise  # the claims lapse and the batch is taken again; nothing is marked failed
            except Exception as exc:  # stays stored, flagged, visible in /api/v1/inbox
                log.warning(
                    "raw message %s failed normalization: %s", row["id"], type(exc).__name__
                )
                failed.append((row["id"], _failure(exc)))
        # Batches settle in order, one at a time.
        await self._settled()
        # A full batch means a backlog: the transaction that settles it claims the next one.
        ahead = len(claimed) >= self.batch_size
        if ahead and independent:
            # A backlog of messages that stand alone: this batch settles in the store's thread
            # while the next is normalized on the event loop (the next claimed now when the
            # previous settling claimed none).
            if not self._claimed_ahead:
                self._claimed_ahead = await self.store.claim_raw(
                    self.worker_id, self.batch_size, self.claim_ttl_s
                )
            self._settling = asyncio.create_task(self._settle_batch(out, claim_ahead=True))
            return len(claimed)
        self._claimed_ahead += await self._settle_batch(out, claim_ahead=ahead)
        return len(claimed)

    async def _settled(self) -> None:
        """Wait for the batch settling in the background; keep what it claimed ahead."""
        task, self._settling = self._settling, None
        if task is not None:
            self._claimed_ahead += await task

    async def _settle_batch(self, out: Outcome, *, claim_ahead: bool) -> list[dict[str, Any]]:
        """Settle a normalized batch and count it; the rows claimed ahead."""
        try:
            claimed = await self._settle(out, claim_ahead=claim_ahead)
        except ClaimLost:
            log.warning("pipeline: a claim lapsed before settling; another worker has it")
            return []
        except StoreUnavailable:
            raise
        except Exception as exc:
            # The store refused something of this batch (not the store being down): settle
            # each message alone, so that one bad report fails alone and the others go on.
            count = len(out.created) + len(out.held) + len(out.failed) + len(out.ignored)
            log.warning(
                "pipeline: settling %d messages failed (%s); settling them one by one",
                count + len(out.follow_ups),
                type(exc).__name__,
            )
            out = await self._settle_one_by_one(out)
            claimed = []
        self._count(out.created, out.failed)
        return claimed

    def _readable(self, row: dict[str, Any]) -> RawMessage | None:
        """The row's message, or None when it cannot be read (the loop records why)."""
        try:
            return self._message(row)
        except Exception:
            return None

    def _independent(self, message: RawMessage) -> bool:
        """A message whose handling reads nothing an earlier batch writes: not part of a
        conversation, an e-mail thread or a multipart group, no reaction, edit, unsend or
        delivery status, no greeting."""
        return (
            message.kind == "message"
            and message.part is None
            and conversation_key(message, self.conversations.window_s) is None
            and not threads_by_email(message)
            and not greets(message)
        )

    async def _settle(self, out: Outcome, *, claim_ahead: bool = False) -> list[dict[str, Any]]:
        """One transaction (one fsync) for the batch; short ones while webhooks arrive, since
        SQLite has one writer and they wait for it. Follow-ups go with the last chunk, after
        the reports they may join were committed."""
        start = 0
        while True:
            size = (
                SETTLE_CHUNK_UNDER_INTAKE
                if self.store.intake_active()
                else max(len(out.created) - start, 1)
            )
            last = start + size >= len(out.created)
            settle_started = time.perf_counter()
            claimed = await self.store.settle_raw(
                self.worker_id,
                created=out.created[start : start + size],
                held=out.held if last else (),
                failed=out.failed if last else (),
                ignored=out.ignored if last else (),
                follow_ups=out.follow_ups if last else (),
                group_keys=out.group_keys,
                claim_next=(self.batch_size, self.claim_ttl_s) if last and claim_ahead else None,
            )
            await self.store.yield_writer(time.perf_counter() - settle_started)
            if last:
                return claimed
            start += size
            # The chunk ran in the writer thread (its wall time is mostly the wait for the
            # write lock and the fsync, the event loop free meanwhile): no rest is owed.
            await asyncio.sleep(0)

    async def _settle_one_by_one(self, out: Outcome) -> Outcome:
        """Settle a batch message by message after its transaction failed; what the store
        refuses is marked failed with the reason. Returns what was settled. Chunks
        committed before the failure are no longer claimed: ClaimLost skips them."""
        settled = Outcome(held=out.held, failed=list(out.failed), ignored=out.ignored)
        attempts: list[tuple[list[str], dict[str, Any]]] = [
            *((item[0], {"created": [item], "group_keys": out.group_keys}) for item in out.created),
            *((item[0], {"follow_ups": [item]}) for item in out.follow_ups),
        ]
        for raw_ids, parts in attempts:
            try:
                await self.store.settle_raw(self.worker_id, **parts)
            except ClaimLost:
                continue
            except StoreUnavailable:
                raise
            except Exception as exc:
                log.warning(
                    "raw message %s could not be stored as a report: %s",
                    raw_ids[0],
                    type(exc).__name__,
                )
                settled.failed += [(raw_id, _failure(exc)) for raw_id in raw_ids]
                continue
            settled.created += parts.get("created", [])
        with contextlib.suppress(ClaimLost):
            await self.store.settle_raw(
                self.worker_id, held=settled.held, failed=settled.failed, ignored=settled.ignored
            )
        return settled

    async def finish_groups(self) -> int:
        """Gather held parts whose group is complete, or waited too long, into one report."""
        done = 0
        for group_key, complete in await self.store.ripe_groups(self.parts_timeout_s):
            rows = await self.store.claim_group(group_key, self.worker_id, self.claim_ttl_s)
            if not rows:
                continue  # another worker took it
            try:
                messages = sorted(
                    (self._message(r) for r in rows), key=lambda m: m.part[0] if m.part else 0
                )
                # Redelivered parts share a part number: keep the first of each.
                seen: set[int] = set()
                unique = []
                for m in messages:
                    number = m.part[0] if m.part else 0
                    if number not in seen:
                        seen.add(number)
                        unique.append(m)
                total = max((m.part[1] for m in unique if m.part), default=len(unique))
                first_row = min(rows, key=lambda r: r["id"])
                normalized = build_report(
                    unique,
                    report_id=new_id(),
                    ticket=first_row["ticket"],
                    intake=first_row["intake"],
                    now=self._now(),
                    channel_owner=self.owner_of(unique[0]),
                    areas=self.areas,
                    taxonomy=self.taxonomy,
                    models=self.models.current,
                    incomplete=not complete or len(unique) < total,
                )
                created = [([r["id"] for r in rows], normalized.report, normalized.blobs)]
                await self.store.settle_raw(self.worker_id, created=created)
                self._count(created, [])
            except ClaimLost:
                continue
            except Exception as exc:
                # The group key holds the sender (an MSISDN): name the raw messages instead.
                log.warning(
                    "parts %s failed normalization: %s",
                    min(r["id"] for r in rows),
                    type(exc).__name__,
                )
                await self.store.settle_raw(
                    self.worker_id,
                    failed=[(r["id"], _failure(exc)) for r in rows],
                )
            done += 1
        return done

    @staticmethod
    def _message(row: dict[str, Any]) -> RawMessage:
        if not row.get("message"):
            raise ValueError(row.get("error") or "the connector could not read this payload")
        data = json.loads(row["message"])
        if "\\ud" in row["message"] or "\\u0000" in row["message"]:
            data = repaired(data)  # stored before text was repaired at intake
        return RawMessage.from_json(data)

    def _count(self, created: list[tuple[list[str], Report, list[Any]]], failed: list[Any]) -> None:
        for _, report, _ in created:
            self.metrics.reports_created.labels(report.channel, report.status).inc()
            lag = (datetime.now(UTC) - report.received_at).total_seconds()
            self.metrics.intake_to_report_seconds.observe(max(lag, 0.0))
        if failed:
            self.metrics.normalize_failures.inc(len(failed))


def make_pipeline(runtime: Runtime) -> Pipeline:
    p = runtime.settings.pipeline
    return Pipeline(
        runtime.store,
        areas=runtime.areas,
        taxonomy=runtime.taxonomy,
        owner_of=runtime.owner_of,
        metrics=runtime.metrics,
        worker_id=runtime.worker_id,
        batch_size=p.batch_size,
        claim_ttl_s=p.claim_ttl_s,
        parts_timeout_s=p.sms_parts_timeout_s,
        conversation_window_s=p.conversation_window_s,
        welcome_text=runtime.settings.notify.welcome_text,
        idle_poll_s=0.25 if runtime.store.dialect == "postgresql" else 1.0,
        models=active_models(runtime),
    )
