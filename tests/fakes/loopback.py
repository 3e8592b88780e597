"""The lifecycle every fake platform shares: an aiohttp app on 127.0.0.1, a free port,
`async with` to start and stop it. A fake adds its routes in `routes(app)`."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LoopbackServer:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def root(self) -> str:
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started; use `async with`")
        return f"http://{self.host}:{self.port}"

    async def start(self, port: int = 0) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, port)
        await self._site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
