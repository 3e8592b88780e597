"""`kanal serve` with some of its stages held until bench_e2e releases them, so that the CPU
of each stage can be read from /proc alone (kanal has no configuration key that holds the
pipeline or the notifier).

    BENCH_E2E_HOLD=pipeline,crm_dispatcher,notify python bench/e2e_serve.py serve --config F

Each SIGUSR1 releases the next held stage in the order given; SIGUSR2 releases all of them.
Nothing else changes: the stages run kanal's own code once released. With
BENCH_E2E_CPROFILE=FILE the whole process runs under cProfile and writes FILE at exit
(used when py-spy cannot attach).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import cli  # noqa: E402
from gateway.base.runtime import Runtime  # noqa: E402
from gateway.process import server  # noqa: E402
from gateway.process.services import SERVICES, Service  # noqa: E402


class Gates:
    """One event per held stage, released in order by SIGUSR1 (all at once by SIGUSR2)."""

    def __init__(self, held: list[str]):
        self.order = held
        self.events = {name: asyncio.Event() for name in held}
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.release_next)
        loop.add_signal_handler(signal.SIGUSR2, self.release_all)
        self.installed = True

    def release_next(self) -> None:
        for name in self.order:
            if not self.events[name].is_set():
                self.events[name].set()
                return

    def release_all(self) -> None:
        for event in self.events.values():
            event.set()

    async def wait(self, name: str) -> None:
        self.install()
        if name in self.events:
            await self.events[name].wait()


GATES = Gates([name for name in os.environ.get("BENCH_E2E_HOLD", "").split(",") if name])


Run = Callable[[Runtime], Coroutine[Any, Any, None]]


def held(name: str, run: Run) -> Run:
    async def gated(runtime: Runtime) -> None:
        await GATES.wait(name)
        await run(runtime)

    return gated


class HeldPipeline:
    """The real pipeline, warmed up at start as usual, running once released."""

    def __init__(self, real: Any):
        self.real = real

    def warm_up(self) -> None:
        self.real.warm_up()

    async def run(self) -> None:
        await GATES.wait("pipeline")
        await self.real.run()


def main() -> int:
    make_pipeline = server.make_pipeline
    server.make_pipeline = lambda runtime: HeldPipeline(make_pipeline(runtime))  # type: ignore[assignment,return-value]
    server.SERVICES = tuple(Service(s.name, held(s.name, s.run), s.in_poll) for s in SERVICES)
    profile_path = os.environ.get("BENCH_E2E_CPROFILE")
    if not profile_path:
        return cli.main(sys.argv[1:])
    import cProfile

    profiler = cProfile.Profile()
    try:
        return int(profiler.runcall(cli.main, sys.argv[1:]))
    finally:
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    sys.exit(main())
