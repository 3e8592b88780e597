"""The polling daemon's scheduler (APScheduler): every poller runs on one replica at a time.

A poller holds a lease in the store while it runs; when its replica dies the lease lapses
and another replica's scheduler takes the poller over. Failures back off, show in /readyz
and /metrics, and never stop anything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.base.runtime import ComponentState, Runtime

log = logging.getLogger("kanal.scheduler")


@dataclass(frozen=True)
class Poller:
    name: str
    # Whether this poller runs under the given configuration, and how often (seconds).
    enabled: Callable[[Runtime], bool]
    interval_s: Callable[[Runtime], float]
    run: Callable[[Runtime], Awaitable[None]]
    max_backoff_s: float = 900.0


class PollerRunner:
    """Runs one poller's ticks: lease, run, record state; backs off after failures."""

    def __init__(self, runtime: Runtime, poller: Poller):
        self.runtime = runtime
        self.poller = poller
        self.state = runtime.components.setdefault(f"poller:{poller.name}", ComponentState())
        self.backoff_until: datetime | None = None
        self._running = asyncio.Lock()

    async def tick(self) -> None:
        if self._running.locked():
            return  # the previous run is still going (IMAP IDLE, a slow platform)
        async with self._running:
            await self._tick()

    async def _tick(self) -> None:
        now = datetime.now(UTC)
        if self.backoff_until and now < self.backoff_until:
            return
        interval = self.poller.interval_s(self.runtime)
        metrics = self.runtime.metrics
        try:
            holder = await self.runtime.store.take_lease(
                f"poller:{self.poller.name}", self.runtime.worker_id, max(3 * interval, 30.0)
            )
        except Exception as exc:
            self.state.state, self.state.detail = "failing", f"store: {type(exc).__name__}"
            return
        if not holder:
            self.state.state, self.state.detail = "standby", "another replica runs this poller"
            return
        try:
            await self.poller.run(self.runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.state.consecutive_failures += 1
            delay = min(
                interval * 2 ** min(self.state.consecutive_failures, 10), self.poller.max_backoff_s
            )
            self.backoff_until = datetime.now(UTC) + _seconds(delay)
            self.state.state = "failing"
            self.state.detail = f"{type(exc).__name__}: {str(exc)[:200]}; next try in {delay:.0f}s"
            metrics.poller_errors.labels(self.poller.name).inc()
            metrics.poller_up.labels(self.poller.name).set(0)
            log.warning(
                "poller %s failed (%s); backing off %.0fs",
                self.poller.name,
                type(exc).__name__,
                delay,
            )
            return
        self.state.consecutive_failures = 0
        self.backoff_until = None
        self.state.state, self.state.detail = "ok", None
        self.state.last_ok = datetime.now(UTC).isoformat()
        metrics.poller_up.labels(self.poller.name).set(1)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


async def run_scheduler(runtime: Runtime, pollers: Sequence[Poller]) -> None:
    """Run the enabled ones of `pollers` on their intervals until cancelled."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    runners = []
    for poller in pollers:
        if not poller.enabled(runtime):
            continue
        runner = PollerRunner(runtime, poller)
        runners.append(runner)
        scheduler.add_job(
            runner.tick,
            "interval",
            seconds=poller.interval_s(runtime),
            id=poller.name,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        log.info("poller %s scheduled every %.0fs", poller.name, poller.interval_s(runtime))
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
