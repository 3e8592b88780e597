"""Generic SMS gateway webhook (`sms_generic`, channel `sms`): kanal's own JSON format.

`{"id": str, "from": str, "to": str, "text": str, "received_at": RFC 3339}`, signed with
`X-Kanal-Signature`; for any SMS gateway that can POST JSON and sign it.
"""

from __future__ import annotations

from datetime import datetime

from connectors.base import (
    MalformedPayload,
    RawMessage,
    Sender,
    WireRequest,
    WireResponse,
)
from connectors.kanal_format import (
    KanalSigned,
    read_object,
    require_id,
    require_str,
    require_time,
    ticket_response,
)


class GenericSmsConnector(KanalSigned):
    """One SMS per request from a kanal-signing gateway; `secret=None` runs unsigned."""

    name = "sms_generic"
    channel = "sms"

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        body = read_object(request)
        external_id = require_id(body, "id")
        sender = require_str(body, "from")
        if not sender.strip():
            raise MalformedPayload("from: must be a non-empty string")
        receiver = require_str(body, "to")
        text = require_str(body, "text")
        received_at = require_time(body, "received_at", now)
        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=received_at,
                sender=Sender(user_id=sender, phone=sender),
                text=text,
                extra={"to": receiver},
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        # As JAKI and LAPOR!: the ticket, fixed when stored (a redelivery gets the first one),
        # so a gateway that can answer the sender by SMS has it at once.
        return ticket_response(tickets)
