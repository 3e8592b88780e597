"""What `kanal serve` and `kanal poll` run: the one explicit list of background services
and of pollers (nothing registers itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.base.polling import Poller, run_scheduler
from gateway.base.runtime import Runtime
from gateway.crm.dispatcher import run_dispatcher
from gateway.crm.status import CRM_STATUS_POLLER
from gateway.intake.feeds import FEEDS_POLLER
from gateway.intake.imap import IMAP_POLLER
from gateway.intake.lapor import LAPOR_POLLER
from gateway.intake.smtp import run_smtp
from gateway.intake.telegram import TELEGRAM_POLLER
from gateway.intake.twitter import TWITTER_POLLER
from gateway.notify.worker import run_notifier
from gateway.pipeline.learning import LEARNING_POLLER, run_model_refresh
from gateway.pipeline.media import run_media
from gateway.store.personal import purge

log = logging.getLogger("kanal.retention")


async def purge_personal_data(runtime: Runtime) -> None:
    erased, log_emptied = await purge(runtime.store, runtime.settings.retention.personal_data_days)
    if erased.reports:
        log.info("retention: %s", erased.summary())
    if log_emptied is False:
        log.warning("retention: the write-ahead log was in use; emptied at the next run")


# `kanal purge` on its own: hourly, on one replica; off when personal data is kept for ever.
RETENTION_POLLER = Poller(
    name="retention",
    enabled=lambda rt: rt.settings.retention.personal_data_days > 0,
    interval_s=lambda rt: 3600.0,
    run=purge_personal_data,
)

# Each runs on one replica at a time (a lease in the store), when its channel is enabled.
POLLERS: tuple[Poller, ...] = (
    IMAP_POLLER,
    TWITTER_POLLER,
    TELEGRAM_POLLER,
    LAPOR_POLLER,
    FEEDS_POLLER,
    CRM_STATUS_POLLER,
    RETENTION_POLLER,
    LEARNING_POLLER,  # `kanal learn` every learning.retrain_every_s
)


async def run_pollers(runtime: Runtime) -> None:
    await run_scheduler(runtime, POLLERS)


@dataclass(frozen=True)
class Service:
    name: str
    run: Callable[[Runtime], Coroutine[Any, Any, None]]
    in_poll: bool  # also run by `kanal poll` (the daemon without the web surface)


# Besides these, both run the pipeline worker (gateway/process/server.py).
SERVICES: tuple[Service, ...] = (
    Service("scheduler", run_pollers, in_poll=True),
    Service("smtp", run_smtp, in_poll=False),
    Service("crm_dispatcher", run_dispatcher, in_poll=True),
    Service("media", run_media, in_poll=True),
    Service("notify", run_notifier, in_poll=True),
    # Each process picks up a newly activated text model within a minute.
    Service("model_refresh", run_model_refresh, in_poll=True),
)
