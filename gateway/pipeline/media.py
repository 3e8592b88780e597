"""Attachments that arrive as links or platform file ids, fetched soon after arrival.

One mechanism for every channel (Meta CDN links, Twilio MMS, X media, JAKI/LAPOR! photo
links, Telegram file ids): when a report with `pending` attachments is written, a row per
attachment goes into `media_jobs` in the same transaction (a store hook, see `install`).
The `media` service claims jobs (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer
on SQLite), downloads, stores the bytes with the report (`attachments` table, by sha256)
and marks the attachment `stored`; a failure is retried a few times with backoff and then
the attachment is marked `unavailable` with the error. The report never waits for this.
A fetched photo's EXIF GPS may place the report then (`gateway.pipeline.photo_location`).

Where and how each connector's media is fetched is its media.py's to say (hosts, signer,
file id → URL); downloads go through the one guarded downloader (`gateway.pipeline.fetch`).

Positions: attachment `i` of the report is job position `i`; attachment `j` of follow-up
`f` is `(f + 1) * POSITION_STRIDE + j`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from prometheus_client import Counter
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from connectors import BY_NAME
from connectors.media import MediaFetchError, MediaGone, MediaRefused, Signer
from connectors.spec import Connector
from crm_client.policy import RetryPolicy
from gateway.base.config import secrets_of
from gateway.base.runtime import Runtime
from gateway.pipeline.fetch import MediaFetcher, accepted_type
from gateway.pipeline.photo_location import located_by_photo
from gateway.store import Store, StoreUnavailable
from gateway.store.schema import media_jobs
from normalizers.canonical import Placement, photo_placement
from normalizers.report import Attachment, HistoryEntry, Report
from normalizers.sniff import (
    is_image,
)

log = logging.getLogger("kanal.media")

POSITION_STRIDE = 1000
CLAIM_TTL_S = 300.0
IDLE_POLL_S = 1.0


# --- jobs -----------------------------------------------------------------------------------


def pending_attachments(report: Report) -> Iterator[tuple[int, Attachment]]:
    """(job position, attachment) for every attachment still waiting to be fetched."""
    for index, attachment in enumerate(report.attachments):
        if attachment.state == "pending" and (attachment.source_url or attachment.file_id):
            yield index, attachment
    for f, follow_up in enumerate(report.follow_ups):
        for j, attachment in enumerate(follow_up.attachments[:POSITION_STRIDE]):
            if attachment.state == "pending" and (attachment.source_url or attachment.file_id):
                yield (f + 1) * POSITION_STRIDE + j, attachment


def attachment_at(report: Report, position: int) -> Attachment | None:
    if position < POSITION_STRIDE:
        return report.attachments[position] if position < len(report.attachments) else None
    f, j = divmod(position, POSITION_STRIDE)
    if f - 1 >= len(report.follow_ups):
        return None
    attachments = report.follow_ups[f - 1].attachments
    return attachments[j] if j < len(attachments) else None


def with_attachment(report: Report, position: int, attachment: Attachment) -> Report:
    """A copy of `report` with the attachment at `position` replaced."""
    if position < POSITION_STRIDE:
        attachments = list(report.attachments)
        attachments[position] = attachment
        return report.model_copy(update={"attachments": attachments})
    f, j = divmod(position, POSITION_STRIDE)
    follow_ups = list(report.follow_ups)
    items = list(follow_ups[f - 1].attachments)
    items[j] = attachment
    follow_ups[f - 1] = follow_ups[f - 1].model_copy(update={"attachments": items})
    return report.model_copy(update={"follow_ups": follow_ups})


_WAKE: weakref.WeakKeyDictionary[Store, asyncio.Event] = weakref.WeakKeyDictionary()


def install(store: Store) -> asyncio.Event:
    """Make `store` create media jobs whenever a report with pending attachments is
    written (idempotent). Returns the event set when jobs were created."""
    wake = _WAKE.get(store)
    if wake is None:
        wake = _WAKE[store] = asyncio.Event()
        store.report_hooks.append(functools.partial(enqueue_jobs, store.dialect))
        store.on_hook_work.append(wake.set)
    return wake


def enqueue_jobs(dialect: str, conn: Connection, report: Report) -> bool:
    """Insert a job per pending attachment (existing ones are kept). True if any pending.
    Runs inside the transaction that writes the report."""
    rows = [
        {
            "report_id": report.id,
            "position": position,
            "connector": report.connector,
            "url": attachment.source_url,
            "file_id": attachment.file_id[:255] if attachment.file_id else None,
            "state": "pending",
            "attempts": 0,
        }
        for position, attachment in pending_attachments(report)
    ]
    if not rows:
        return False
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(media_jobs).on_conflict_do_nothing(index_elements=["report_id", "position"])
    conn.execute(stmt, rows)
    return True


class MediaMetrics:
    """Fetched / failed counters by connector, on the runtime's registry (once per runtime)."""

    def __init__(self, runtime: Runtime):
        r = runtime.metrics.registry
        self.fetched = Counter(
            "kanal_media_fetched_total",
            "Attachments fetched and stored, by connector.",
            ["connector"],
            registry=r,
        )
        self.failed = Counter(
            "kanal_media_failed_total",
            "Attachment fetch failures by connector and outcome (retry, unavailable).",
            ["connector", "outcome"],
            registry=r,
        )

    @classmethod
    def of(cls, runtime: Runtime) -> MediaMetrics:
        return runtime.part(cls, lambda: cls(runtime))


@dataclass
class Job:
    id: int
    report_id: str
    position: int
    connector: str
    url: str | None
    file_id: str | None
    attempts: int


class MediaWorker:
    """Claims media jobs and fetches them; one per process (the `media` service)."""

    def __init__(self, runtime: Runtime, *, resolver: AbstractResolver | None = None):
        self.runtime = runtime
        self.store = runtime.store
        settings = runtime.settings
        p = settings.pipeline
        self.concurrency = p.media_concurrency
        self.policy = RetryPolicy(
            base_s=p.media_retry_base_s,
            max_delay_s=max(p.media_retry_base_s * 60, p.media_retry_base_s),
            max_attempts=p.media_attempts,
        )
        self.allow_loopback = p.allow_private_media_hosts
        self.fetcher = MediaFetcher(
            max_bytes=settings.server.max_upload_bytes,
            timeout_s=p.media_timeout_s,
            allow_loopback=self.allow_loopback,
            resolver=resolver,
        )
        self.metrics = MediaMetrics.of(runtime)
        self.worker_id = f"{runtime.worker_id}:media"
        self.wake = install(self.store)
        self._rng = random.Random()
        # Platform API calls (a file id → its URL) go to the operator-configured API hosts,
        # not to addresses citizens sent: a plain session, apart from the guarded fetcher.
        self.api_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=p.media_timeout_s)
        )

    async def __aenter__(self) -> MediaWorker:
        await self.fetcher.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.fetcher.__aexit__(*exc_info)
        await self.api_session.close()

    # -- configuration per connector

    def _section(self, connector: str) -> tuple[Connector, Any] | None:
        spec = BY_NAME.get(connector)
        if spec is None or spec.config_section is None:
            return None
        return spec, self.runtime.settings.connector(spec.config_section)

    def hosts_for(self, connector: str) -> list[str]:
        found = self._section(connector)
        return found[0].media.hosts(found[1]) if found else []

    def signer_for(self, connector: str, url: str) -> Signer | None:
        """The credentials a platform wants for its own media host, and only there."""
        found = self._section(connector)
        if found is None or found[0].media.signer is None:
            return None
        spec, section = found
        assert spec.media.signer is not None
        return spec.media.signer(section, secrets_of(section), url)

    # -- claiming

    async def claim(self, limit: int) -> list[Job]:
        now = self.store.clock()
        claimable = and_(
            media_jobs.c.state == "pending",
            or_(media_jobs.c.next_attempt_at.is_(None), media_jobs.c.next_attempt_at <= now),
            or_(media_jobs.c.claimed_until.is_(None), media_jobs.c.claimed_until < now),
        )
        pick = select(media_jobs.c.id).where(claimable).order_by(media_jobs.c.id).limit(limit)
        if self.store.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(media_jobs)
            .where(media_jobs.c.id.in_(pick.scalar_subquery()))
            .values(claimed_by=self.worker_id, claimed_until=now + timedelta(seconds=CLAIM_TTL_S))
            .returning(
                media_jobs.c.id,
                media_jobs.c.report_id,
                media_jobs.c.position,
                media_jobs.c.connector,
                media_jobs.c.url,
                media_jobs.c.file_id,
                media_jobs.c.attempts,
            )
        )
        async with self.store.write() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Job(*row) for row in sorted(rows)]

    async def work_once(self) -> int:
        """Claim a batch and work it; returns the number of jobs handled."""
        jobs = await self.claim(self.concurrency * 4)
        if not jobs:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(job: Job) -> None:
            async with gate:
                await self.handle(job)

        await asyncio.gather(*(one(job) for job in jobs))
        return len(jobs)

    async def drain(self, rounds: int = 50) -> int:
        """Work until no job is due (tests, `kanal ingest`)."""
        total = 0
        for _ in range(rounds):
            n = await self.work_once()
            total += n
            if n == 0:
                break
        return total

    async def run(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self.store.yield_to_intake()
                done = await self.work_once()
                backoff = 1.0
            except StoreUnavailable as exc:
                log.warning("media: store unavailable (%s); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if done == 0:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=IDLE_POLL_S)
                    await asyncio.sleep(0.05)  # let the transaction that made the jobs commit
                except TimeoutError:
                    pass

    # -- one job

    async def handle(self, job: Job) -> None:
        try:
            data, content_type = await self.download(job)
        except MediaRefused as exc:
            await self.give_up(job, str(exc))
            return
        except MediaFetchError as exc:
            await self.failed_attempt(job, str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected library error: retried, then given up
            log.warning("media job %s: unexpected %s", job.id, type(exc).__name__)
            await self.failed_attempt(job, f"{type(exc).__name__}: {exc}"[:300])
            return
        await self.stored(job, data, content_type)

    async def download(self, job: Job) -> tuple[bytes, str]:
        hosts = self.hosts_for(job.connector)
        filename: str | None = None
        found = self._section(job.connector)
        if job.file_id and found and found[0].media.file_url:
            return await self._download_file_id(job.connector, job.file_id, hosts, *found)
        if job.url:
            url = job.url
            filename = urlsplit(url).path.rsplit("/", 1)[-1] or None
        else:
            raise MediaRefused("attachment has neither a URL nor a file id this kanal can fetch")
        fetched = await self.fetcher.fetch(url, hosts, sign=self.signer_for(job.connector, url))
        return fetched.data, accepted_type(fetched.data, fetched.declared_type, filename)

    async def _download_file_id(
        self, connector: str, file_id: str, hosts: list[str], spec: Connector, section: Any
    ) -> tuple[bytes, str]:
        """A platform file id: asked for its URL, fetched; a URL that lapsed before it was
        fetched (WhatsApp's live ~5 minutes) is asked for once more. Bytes that do not
        match the sha256 the platform gave are not kept (retried: a damaged transfer)."""
        assert spec.media.file_url is not None
        for last_try in (False, True):
            located = await spec.media.file_url(
                self.api_session, section, secrets_of(section), file_id, self.fetcher.max_bytes
            )
            if isinstance(located, str):
                url, digest = located, None
            else:
                url, digest = located.url, located.sha256
            try:
                fetched = await self.fetcher.fetch(url, hosts, sign=self.signer_for(connector, url))
            except MediaGone:
                if last_try:
                    raise
                continue
            if digest and hashlib.sha256(fetched.data).hexdigest() != digest:
                raise MediaFetchError("sha256 of the bytes does not match the platform's")
            return fetched.data, accepted_type(fetched.data, fetched.declared_type, None)
        raise AssertionError("unreachable")

    async def failed_attempt(self, job: Job, error: str) -> None:
        attempts = job.attempts + 1
        if self.policy.gives_up(attempts):
            await self.give_up(job, f"{error} (after {attempts} attempts)")
            return
        delay = self.policy.next_delay(attempts, None, self._rng)
        self.metrics.failed.labels(job.connector, "retry").inc()
        log.info(
            "media job %s attempt %d failed (%s); again in %.1fs",
            job.id,
            attempts,
            error[:120],
            delay,
        )
        async with self.store.write() as conn:
            await conn.execute(
                update(media_jobs)
                .where(media_jobs.c.id == job.id, media_jobs.c.claimed_by == self.worker_id)
                .values(
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=self.store.clock() + timedelta(seconds=delay),
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    async def give_up(self, job: Job, error: str) -> None:
        self.metrics.failed.labels(job.connector, "unavailable").inc()
        log.info(
            "media job %s (report %s, #%d) unavailable: %s",
            job.id,
            job.report_id,
            job.position,
            error[:200],
        )

        def change(attachment: Attachment) -> tuple[Attachment, str]:
            return (
                attachment.model_copy(update={"state": "unavailable", "error": error[:500]}),
                f"attachment {job.position} unavailable: {error[:300]}",
            )

        await self._settle(job, "unavailable", error, change)

    async def stored(self, job: Job, data: bytes, content_type: str) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.metrics.fetched.labels(job.connector).inc()
        placement = None
        if is_image(content_type):
            placement = await asyncio.to_thread(photo_placement, [data], self.runtime.areas)

        def change(attachment: Attachment) -> tuple[Attachment, str]:
            return (
                attachment.model_copy(
                    update={
                        "sha256": digest,
                        "size": len(data),
                        "content_type": content_type,
                        "state": "stored",
                        "error": None,
                    }
                ),
                f"attachment {job.position} stored ({content_type}, {len(data)} bytes)",
            )

        await self._settle(
            job, "stored", None, change, blob=(digest, content_type, data), placement=placement
        )

    async def _settle(
        self,
        job: Job,
        state: str,
        error: str | None,
        change: Any,
        blob: tuple[str, str, bytes] | None = None,
        placement: Placement | None = None,
    ) -> None:
        """Job state, blob, report attachment and where a photo places the report in one
        transaction, if the claim holds."""
        now = self.store.clock()
        async with self.store.write() as conn:
            result = await conn.execute(
                update(media_jobs)
                .where(media_jobs.c.id == job.id, media_jobs.c.claimed_by == self.worker_id)
                .values(
                    state=state,
                    attempts=job.attempts + 1,
                    last_error=error[:2000] if error else None,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            if result.rowcount != 1:
                log.info("media job %s: claim lapsed; another worker has it", job.id)
                return
            report = await self.store.load_report(conn, job.report_id, for_update=True)
            if report is None:
                return
            current = attachment_at(report, job.position)
            if (
                current is None
                or current.state != "pending"
                or (current.source_url, current.file_id) != (job.url, job.file_id)
            ):
                return  # the attachment changed meanwhile (edited, fetched elsewhere)
            if blob is not None:
                await self.store.put_blob_in(conn, *blob, now)
            replaced, note = change(current)
            updated = with_attachment(report, job.position, replaced)
            updated = updated.model_copy(
                update={
                    "history": [
                        HistoryEntry(
                            at=now,
                            status="attachment",
                            by="media",
                            note=note,
                            changes={"attachment": job.position, "state": replaced.state},
                        )
                    ]
                }
            )
            if placement is not None:
                history = await self.store.load_history(conn, report.id)
                located = located_by_photo(
                    updated, placement, attachment=job.position, history=history, now=now
                )
                updated = located or updated
            await self.store.save_report(conn, updated, report.version)


async def run_media(runtime: Runtime) -> None:
    if runtime.settings.pipeline.allow_private_media_hosts:
        log.warning(
            "pipeline.allow_private_media_hosts is set: media may be fetched from LOOPBACK "
            "addresses. This is for tests only; never set it in production."
        )
    async with MediaWorker(runtime) as worker:
        await worker.run()
