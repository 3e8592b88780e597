"""JAKI (JakLapor) webhook (`jaki`, channel `jaki`), kanal's own JSON format."""

from __future__ import annotations

from datetime import datetime

from connectors.base import RawMessage, WireRequest, WireResponse
from connectors.kanal_format import (
    KanalSigned,
    optional_str,
    read_coordinates,
    read_object,
    read_sender,
    read_urls,
    require_id,
    require_str,
    require_time,
    ticket_response,
)


class JakiConnector(KanalSigned):
    """Reports from the JAKI app, signed with `X-Kanal-Signature`; `secret=None` unsigned."""

    name = "jaki"
    channel = "jaki"

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        body = read_object(request)
        external_id = require_id(body, "id")
        text = require_str(body, "text")
        received_at = require_time(body, "created_at", now)
        sender = read_sender(body)
        coordinates = read_coordinates(body)
        category = optional_str(body, "category")
        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=received_at,
                sender=sender,
                text=text,
                coordinates=coordinates,
                location_hint=coordinates.address if coordinates else None,
                attachments=read_urls(body, "photos"),
                category_hint=category,
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return ticket_response(tickets)
