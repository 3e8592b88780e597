"""Raw rows for pipeline tests, as intake stores them."""

from __future__ import annotations

from connectors.base import RawMessage
from gateway.store import NewRaw
from gateway.store.ids import new_id


def as_raw(message: RawMessage) -> NewRaw:
    """The row intake stores for a webhook's message (its group key kept, as intake does)."""
    return NewRaw(
        id=new_id(),
        connector=message.connector,
        channel=message.channel,
        intake="webhook",
        external_id=message.external_id,
        received_at=message.received_at,
        payload=b"{}",
        headers={},
        message=message.to_json(),
        group_key=message.group_key,
    )
