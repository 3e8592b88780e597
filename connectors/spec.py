"""What kanal knows of a connector besides its wire format: its channels and their labels,
its configuration section, its webhook path, how it is built from its configuration, and
how the citizen hears back. `connectors.ALL` lists one `Connector` per folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Secrets, WebhookConnector
from connectors.media import MediaAccess
from connectors.outbound import FindRecipient, Sender

OWNER_PATTERN = re.compile(
    r"^(province|kota:\d{2}\.\d{2}|kecamatan:\d{2}\.\d{2}\.\d{2}|"
    r"kelurahan:\d{2}\.\d{2}\.\d{2}\.\d{4}|office:[a-z0-9_]+)$"
)


def check_owner(value: str) -> str:
    if not OWNER_PATTERN.match(value):
        raise ValueError(
            "must be province, kota:NN.NN, kecamatan:NN.NN.NN, "
            "kelurahan:NN.NN.NN.NNNN or office:NAME"
        )
    return value


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return host.strip("[]"), int(port)


def read_secret(section: BaseModel, key: str) -> str | None:
    value = getattr(section, key, "")
    if value:
        return str(value)
    path = getattr(section, f"{key}_file", "")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


class Strict(BaseModel):
    """A configuration model that refuses keys it does not know."""

    model_config = ConfigDict(extra="forbid")


class ConnectorConfig(Strict):
    """What every `[channels.<section>]` has."""

    enabled: bool = False
    owner: str = "province"
    allow_unsigned: bool = False
    # Hosts attachments may be fetched from ("*.example.com" = any subdomain); none = none.
    media_hosts: list[str] = Field(default_factory=list)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        return check_owner(value)

    # The names of the secret fields this connector needs to verify what it receives.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()


class SecretConfig(ConnectorConfig):
    """A connector verified with one shared secret (kanal's own scheme, Kannel's key)."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret",)
    secret: str = ""
    secret_file: str = ""


# How the citizen learns the ticket and hears the news: in the webhook's answer, a message
# on the same chat, an SMS, an e-mail, a printed receipt at the desk, or not at all.
Answer = Literal["webhook", "chat", "sms", "email", "receipt", "none"]


@dataclass(frozen=True)
class Channel:
    code: str  # e.g. sms, jaki, facebook, kelurahan
    label: str  # as the pages show it, in Bahasa Indonesia


@dataclass(frozen=True)
class Connector:
    """One connector: everything the gateway derives its routes, sections and plans from."""

    name: str  # its [channels.*] name, e.g. "sms_twilio"
    channels: tuple[Channel, ...]  # the first is its messages' channel unless they say
    answers: Answer = "none"
    config: type[ConnectorConfig] | None = None
    section: str | None = None  # [channels.<section>]; the name when there is a config
    webhook: str | None = None  # its path under /webhooks/
    # Builds the webhook connector from its configuration section and its secrets.
    build: Callable[[Any, Secrets], WebhookConnector] | None = None
    # Whether the webhook is served under this configuration (polling modes turn it off).
    serves_webhook: Callable[[Any], bool] = lambda config: True
    # Builds what answers citizens on this connector's platform (its send.py).
    sender: Callable[[Any, Secrets], Sender] | None = None
    # answers = "chat": whom to answer, from the stored message (its send.py).
    recipient: FindRecipient | None = None
    # How its attachments are fetched (its media.py); by default from its media_hosts.
    media: MediaAccess = field(default_factory=MediaAccess)

    @property
    def channel(self) -> str:
        return self.channels[0].code

    @property
    def config_section(self) -> str | None:
        if self.config is None:
            return None
        return self.section or self.name


def built_with_secret(
    make: Callable[..., WebhookConnector],
) -> Callable[[Any, Secrets], WebhookConnector]:
    """`build` of a connector verified with its section's one `secret` (kanal's own scheme,
    Kannel's key)."""
    return lambda config, secret: make(secret=secret("secret"))
