"""Background services started with kanal (pollers' scheduler, SMTP, CRM dispatcher, …).

Each module that provides one registers it here; `gateway.server` imports those modules
(see SERVICE_MODULES) and starts what they registered.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.runtime import Runtime

Service = Callable[["Runtime"], Coroutine[Any, Any, None]]
SERVICES: dict[str, tuple[Service, bool]] = {}  # name → (service, also run by `kanal poll`)

# Modules whose import registers services and pollers.
SERVICE_MODULES: list[str] = ["gateway.scheduler"]
SERVICE_MODULES.append("gateway.people")
SERVICE_MODULES.append("gateway.feeds")
SERVICE_MODULES.append("gateway.lapor_poller")
SERVICE_MODULES += ["gateway.dispatcher", "gateway.crm_status"]  # CRM delivery, status back
SERVICE_MODULES += ["gateway.smtp", "gateway.imap", "gateway.mbox"]  # e-mail (issue 4)
SERVICE_MODULES += ["gateway.media_fetch", "gateway.telegram_poller", "gateway.twitter_poller"]
SERVICE_MODULES.append("gateway.notify")  # acknowledgements and "done" news (issue 9)


def register_service(name: str, *, in_poll: bool = True) -> Callable[[Service], Service]:
    def decorate(service: Service) -> Service:
        SERVICES[name] = (service, in_poll)
        return service

    return decorate
