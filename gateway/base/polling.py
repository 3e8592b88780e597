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
        self.key = f"poller:{poller.name}"
        self.held = False  # whether this replica held the lease at the last take or renewal
        self.current: asyncio.Task[None] | None = None

    async def renew(self) -> bool:
        """Take or renew this poller's lease: whether this replica holds it now."""
        self.held = await self.runtime.store.take_lease(
            self.key, self.runtime.worker_id, self.runtime.settings.server.poller_lease_s
        )
        return self.held

    @property
    def running(self) -> bool:
        return self._running.locked()

    async def tick(self) -> None:
        if self._running.locked():
            return  # the previous run is still going (IMAP IDLE, a slow platform)
        async with self._running:
            self.current = asyncio.current_task()
            try:
                await self._tick()
            finally:
                self.current = None

    async def _tick(self) -> None:
        now = datetime.now(UTC)
        if self.backoff_until and now < self.backoff_until:
            return
        interval = self.poller.interval_s(self.runtime)
        metrics = self.runtime.metrics
        try:
            holder = await self.renew()
        except Exception as exc:
            self.held = False
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
    every_s = runtime.settings.server.poller_lease_s / 3
    heartbeat = asyncio.create_task(keep_leases(runners, every_s))
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
        heartbeat.cancel()
        await stop_runners(runtime, runners)


async def keep_leases(runners: list[PollerRunner], every_s: float) -> None:
    """The heartbeat: renews the leases this replica holds, during runs and between ticks,
    so that they can be short; and takes over, with a tick at once, a poller whose lease
    lapsed (its replica died) instead of waiting for the next scheduled tick."""
    started: set[asyncio.Task[None]] = set()
    while True:
        await asyncio.sleep(every_s)
        for runner in runners:
            held_before = runner.held
            try:
                held = await runner.renew()
            except Exception as exc:
                log.warning("poller %s: lease not renewed (%s)", runner.poller.name, exc)
                continue
            if held and not held_before and not runner.running:
                task = asyncio.create_task(runner.tick(), name=f"poller:{runner.poller.name}")
                started.add(task)
                task.add_done_callback(started.discard)


async def stop_runners(runtime: Runtime, runners: list[PollerRunner]) -> None:
    """A clean stop: runs in progress end, then the leases are given up, so that a restarted
    or another replica runs these pollers at once rather than when the leases lapse."""
    running = [r.current for r in runners if r.current is not None]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=5.0)
    try:
        await runtime.store.release_leases([r.key for r in runners if r.held], runtime.worker_id)
    except Exception as exc:
        log.warning("poller leases not released at stop (%s): they lapse", type(exc).__name__)
