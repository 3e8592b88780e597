"""Connectors: one module per channel; wire format in, raw messages out (pure, no I/O)."""

from connectors.base import (
    AttachmentRef,
    ConnectorError,
    Coordinates,
    MalformedPayload,
    RawMessage,
    Sender,
    SignatureError,
    WebhookConnector,
    WireRequest,
    WireResponse,
)

__all__ = [
    "AttachmentRef",
    "ConnectorError",
    "Coordinates",
    "MalformedPayload",
    "RawMessage",
    "Sender",
    "SignatureError",
    "WebhookConnector",
    "WireRequest",
    "WireResponse",
]
