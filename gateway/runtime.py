"""Everything one kanal process holds: config, store, metrics, reference data, connectors."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from connectors.base import RawMessage, WebhookConnector
from gateway.config import CONNECTOR_NAMES, LoadedConfig, Settings
from gateway.metrics import Metrics
from gateway.registry import build_webhook_connectors
from gateway.store import Store
from normalizers.category import Taxonomy, default_taxonomy
from normalizers.geo import AreaIndex, default_index

log = logging.getLogger("kanal")


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
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def owner_of(self, message: RawMessage) -> str:
        """Whose queue a non-geo report of this message joins."""
        owner = message.extra.get("owner") if message.extra else None
        if isinstance(owner, str) and owner:
            return owner
        if message.connector in CONNECTOR_NAMES:
            return self.settings.connector(message.connector).owner
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
