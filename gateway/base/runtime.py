"""Everything one kanal process holds: config, store, metrics, reference data, connectors."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from connectors import BY_NAME
from connectors.base import RawMessage, WebhookConnector
from gateway.base.config import LoadedConfig, Settings
from gateway.base.metrics import Metrics
from gateway.base.registry import build_webhook_connectors
from gateway.store import Store
from normalizers.category import Taxonomy, default_taxonomy
from normalizers.geo import AreaIndex, default_index

log = logging.getLogger("kanal")
T = TypeVar("T")


@dataclass
class ComponentState:
    """What /readyz shows for a connector or poller; failures here never make it 503."""

    state: str = "starting"  # starting | ok | degraded | failing | disabled
    detail: str | None = None
    last_ok: str | None = None
    consecutive_failures: int = 0


@dataclass
class Runtime:
    loaded: LoadedConfig
    store: Store
    metrics: Metrics
    areas: AreaIndex
    taxonomy: Taxonomy
    webhooks: dict[str, WebhookConnector]
    worker_id: str
    components: dict[str, ComponentState] = field(default_factory=dict)
    # One object of each kind that a room keeps for the process (its metrics, a platform
    # client, a secret read once), keyed by its class: see `part`, `find`, `keep`.
    _parts: dict[type, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def part(self, kind: type[T], make: Callable[[], T]) -> T:
        """This process's one `kind`, made by `make` on first use."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = make()
        return cast(T, found)

    def find(self, kind: type[T]) -> T | None:
        return cast(T | None, self._parts.get(kind))

    def keep(self, part: T) -> T:
        self._parts[type(part)] = part
        return part

    def drop(self, kind: type[T]) -> T | None:
        return cast(T | None, self._parts.pop(kind, None))

    def owner_of(self, message: RawMessage) -> str:
        """Whose queue a non-geo report of this message joins."""
        owner = message.extra.get("owner") if message.extra else None
        if isinstance(owner, str) and owner:
            return owner
        connector = BY_NAME.get(message.connector)
        if connector is not None and connector.config_section:
            return self.settings.connector(connector.config_section).owner
        return "province"


def build_runtime(
    loaded: LoadedConfig, *, store: Store | None = None, worker_id: str | None = None
) -> Runtime:
    settings = loaded.settings
    store = store or Store(settings.database.url)
    runtime = Runtime(
        loaded=loaded,
        store=store,
        metrics=Metrics(),
        areas=default_index(),
        taxonomy=default_taxonomy(),
        webhooks=build_webhook_connectors(loaded),
        worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
    )
    for name in runtime.webhooks:
        runtime.components[f"connector:{name}"] = ComponentState(state="ok")
    return runtime
