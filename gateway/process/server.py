"""Running kanal: `serve` (everything in one process) and `poll` (daemons only)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web

from connectors.spec import parse_host_port
from gateway.base.config import LoadedConfig
from gateway.base.replica import claim_identity
from gateway.base.runtime import build_runtime
from gateway.pipeline.worker import make_pipeline
from gateway.process.services import SERVICES
from gateway.web.app import create_app
from gateway.web.keys import CONNECTION_GUARD

log = logging.getLogger("kanal")


async def run(loaded: LoadedConfig, *, operations_only: bool = False) -> None:
    identity = claim_identity(loaded.settings)
    try:
        await _run(loaded, identity.name, operations_only=operations_only)
    finally:
        identity.close()


async def _run(loaded: LoadedConfig, worker_id: str, *, operations_only: bool) -> None:
    runtime = build_runtime(loaded, worker_id=worker_id)
    await runtime.store.migrate()
    # Claims this replica held when it last stopped (killed): no other live process has
    # its identity, so they are taken back now instead of after their time runs out.
    raw, crm = await runtime.store.release_claims(worker_id)
    if raw or crm:
        log.info("took back %d raw message and %d CRM claims from before a restart", raw, crm)
    app = create_app(runtime, operations_only=operations_only)
    host, port = parse_host_port(runtime.settings.server.http)
    pipeline = make_pipeline(runtime)
    pipeline.warm_up()
    # A small read buffer per connection (aiohttp buffers up to twice it before pausing the
    # socket): what a slow client can make us hold before a handler reads it.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, read_bufsize=16384)
    await runner.setup()
    assert runner.server is not None  # set up above
    # aiohttp's own protocol behind the slow-client guard (header deadline, connection cap)
    listener = await asyncio.get_running_loop().create_server(
        app[CONNECTION_GUARD].protocol_factory(runner.server),
        host,
        port,
        reuse_address=True,
        backlog=1024,
    )
    log.info(
        "kanal %s on http://%s:%d (store: %s)",
        "poll" if operations_only else "serve",
        host,
        port,
        runtime.store.dialect,
    )
    for name in runtime.webhooks:
        log.info("webhook connector %s enabled", name)

    tasks = [asyncio.create_task(pipeline.run(), name="pipeline")]
    for service in SERVICES:
        if operations_only and not service.in_poll:
            continue
        tasks.append(asyncio.create_task(service.run(runtime), name=service.name))

    # What was loaded at start (areas, gazetteer, taxonomy, compiled statements) lives as
    # long as the process: kept out of the cyclic GC's scans, so that a full collection
    # does not hold the event loop (measured: 135k objects, 88 ms per full collection).
    gc.collect()
    gc.freeze()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())
    log.info("kanal stopping")
    listener.close()  # stop taking requests first, then the workers
    await runner.cleanup()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    try:  # what this replica held is free for the others at once, not when it lapses
        await runtime.store.release_claims(worker_id)
    except Exception as exc:
        log.warning("claims not released at stop (%s): they lapse instead", type(exc).__name__)
    await runtime.store.close()
