"""Which webhook connectors run, built from the configuration, and the path each answers on."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from connectors.base import WebhookConnector
from gateway.base.config import LoadedConfig

# path under /webhooks/ → connector name (CONTRACT §4)
WEBHOOK_PATHS: dict[str, str] = {
    "sms/twilio": "sms_twilio",
    "sms/vonage": "sms_vonage",
    "sms/kannel": "sms_kannel",
    "sms/generic": "sms_generic",
    "jaki": "jaki",
    "lapor": "lapor",
    "meta": "meta",
    "twitter": "twitter",
    "telegram": "telegram",
}


def _factories(loaded: LoadedConfig) -> dict[str, Callable[[], WebhookConnector]]:
    s = loaded.settings.channels

    def secret(connector: str, key: str) -> str | None:
        # None means "do not verify": only reachable when allow_unsigned is set (config checks).
        return loaded.secret(connector, key)

    def make(module: str, cls: str, **kwargs: Any) -> Callable[[], WebhookConnector]:
        def build() -> WebhookConnector:
            connector: WebhookConnector = getattr(
                importlib.import_module(f"connectors.{module}"), cls
            )(**kwargs)
            return connector

        return build

    return {
        "sms_twilio": make(
            "sms_twilio", "TwilioConnector", auth_token=secret("sms_twilio", "auth_token")
        ),
        "sms_vonage": make(
            "sms_vonage",
            "VonageConnector",
            signature_secret=secret("sms_vonage", "signature_secret"),
            signature_method=s.sms_vonage.signature_method,
        ),
        "sms_kannel": make("sms_kannel", "KannelConnector", secret=secret("sms_kannel", "secret")),
        "sms_generic": make(
            "sms_generic", "GenericSmsConnector", secret=secret("sms_generic", "secret")
        ),
        "jaki": make("jaki", "JakiConnector", secret=secret("jaki", "secret")),
        "lapor": make("lapor", "LaporConnector", secret=secret("lapor", "secret")),
        "meta": make(
            "meta",
            "MetaConnector",
            app_secret=secret("meta", "app_secret"),
            verify_token=secret("meta", "verify_token"),
            accounts={k: (a.channel, a.owner) for k, a in s.meta.accounts.items()},
        ),
        "twitter": make(
            "twitter",
            "TwitterConnector",
            consumer_secret=secret("twitter", "consumer_secret"),
            own_user_ids={s.twitter.user_id} if s.twitter.user_id else None,
        ),
        "telegram": make(
            "telegram", "TelegramConnector", secret_token=secret("telegram", "secret_token")
        ),
    }


def build_webhook_connectors(loaded: LoadedConfig) -> dict[str, WebhookConnector]:
    """The enabled webhook connectors by name; a disabled one answers 404."""
    factories = _factories(loaded)
    enabled = {}
    for name in WEBHOOK_PATHS.values():
        section = loaded.settings.connector(name)
        if not section.enabled:
            continue
        if name == "twitter" and loaded.settings.channels.twitter.mode == "polling":
            continue
        if name == "telegram" and loaded.settings.channels.telegram.mode == "polling":
            continue
        enabled[name] = factories[name]()
    return enabled
