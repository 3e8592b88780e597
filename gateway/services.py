"""Background services started with kanal (pollers' scheduler, SMTP, CRM dispatcher, …).

Each module that provides one registers it here; `gateway.server` imports those modules
(see SERVICE_MODULES) and starts what they registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.runtime import Runtime

Service = Callable[["Runtime"], Awaitable[None]]
SERVICES: dict[str, tuple[Service, bool]] = {}  # name → (service, also run by `kanal poll`)

# Modules whose import registers services and pollers.
SERVICE_MODULES: list[str] = ["gateway.scheduler"]


def register_service(name: str, *, in_poll: bool = True) -> Callable[[Service], Service]:
    def decorate(service: Service) -> Service:
        SERVICES[name] = (service, in_poll)
        return service

    return decorate
