"""Raw rows for pipeline tests, as intake stores them."""

from __future__ import annotations

from typing import Any

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


def spoil_report(monkeypatch: Any, external_id: str) -> None:
    """Simulate a normalizer bug: the report of the message `external_id` gets text no
    store can keep (a lone surrogate, past every repair), so its insert fails."""
    import gateway.pipeline.worker as pipeline_module

    real_build = pipeline_module.build_report

    def build_with_a_bug(messages: Any, **kwargs: Any) -> Any:
        normalized = real_build(messages, **kwargs)
        if messages[0].external_id == external_id:
            normalized.report.text = "\ud800"
        return normalized

    monkeypatch.setattr(pipeline_module, "build_report", build_with_a_bug)
