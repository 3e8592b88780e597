"""SP4N-LAPOR! webhook (`lapor`, channel `lapor`), kanal's own JSON format.

Also `map_lapor_record`, which turns a record of the (unpublished, per-institution)
LAPOR! API into that webhook body through a configured field mapping, so the poller
feeds the same parser as the webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    MalformedPayload,
    RawMessage,
    Sender,
    WireRequest,
    WireResponse,
)
from connectors.kanal_format import (
    KanalSigned,
    optional_bool,
    read_coordinates,
    read_object,
    read_sender,
    read_urls,
    require_id,
    require_str,
    require_time,
    ticket_response,
)


class LaporConnector(KanalSigned):
    """Complaints forwarded from LAPOR!, signed with `X-Kanal-Signature`; `None` unsigned.

    `anonymous` drops the reporter entirely (only the fact is kept); `confidential` keeps
    the identity and flags it, so that only province scope sees it and the CRM never does.
    """

    name = "lapor"
    channel = "lapor"

    def parse(self, request: WireRequest, now: datetime) -> list[RawMessage]:
        body = read_object(request)
        external_id = require_id(body, "tracking_id")
        title = require_str(body, "title")
        text = require_str(body, "text")
        received_at = require_time(body, "created_at", now)
        confidential = optional_bool(body, "confidential")
        anonymous = optional_bool(body, "anonymous")
        sender = read_sender(body)  # validated even when dropped: a bad body is a bad body
        extra: dict[str, Any] = {}
        if anonymous:
            sender = Sender()
            extra["anonymous"] = True
        coordinates = read_coordinates(body)
        return [
            RawMessage(
                connector=self.name,
                channel=self.channel,
                external_id=external_id,
                received_at=received_at,
                sender=sender,
                text=text,
                title=title or None,
                coordinates=coordinates,
                location_hint=coordinates.address if coordinates else None,
                attachments=read_urls(body, "attachments"),
                confidential=confidential,
                anonymous=anonymous,
                extra=extra,
            )
        ]

    def respond(self, messages: list[RawMessage], tickets: list[str]) -> WireResponse:
        return ticket_response(tickets)


# --- mapping a LAPOR! API record into the webhook body -----------------------------------

# Targets a mapping may fill, as dotted paths into the webhook body.
LAPOR_FIELDS = frozenset(
    {
        "tracking_id",
        "title",
        "text",
        "reporter.name",
        "reporter.phone",
        "reporter.email",
        "confidential",
        "anonymous",
        "location.lat",
        "location.lon",
        "location.accuracy_m",
        "location.address",
        "attachments",
        "created_at",
    }
)
_MISSING = object()
_TRUE = {"1", "true", "yes", "y", "ya"}
_FALSE = {"0", "false", "no", "n", "tidak", ""}


def _lookup(record: Any, path: str) -> Any:
    """Follow `a.b.0.c`; a `*` segment maps the rest of the path over a list."""
    segments = path.split(".")
    for index, segment in enumerate(segments):
        if segment == "*":
            if not isinstance(record, list):
                return _MISSING
            rest = ".".join(segments[index + 1 :])
            values = [_lookup(item, rest) if rest else item for item in record]
            return [value for value in values if value is not _MISSING and value is not None]
        if isinstance(record, dict) and segment in record:
            record = record[segment]
        elif isinstance(record, list) and segment.isdigit() and int(segment) < len(record):
            record = record[int(segment)]
        else:
            return _MISSING
    return record


def _coerce(target: str, value: Any) -> Any:
    """Bring a foreign value to the webhook type where the intent is unambiguous."""
    if target == "tracking_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if target in ("confidential", "anonymous"):
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    if target.startswith("location.") and target != "location.address":
        if isinstance(value, str):
            try:
                return float(value.strip().replace(",", "."))
            except ValueError:
                return value  # left for the parser to reject with the field's name
    if target == "created_at" and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            return value
    if target == "attachments" and isinstance(value, str):
        return [value]
    return value


def map_lapor_record(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The webhook body for one LAPOR! API record.

    `mapping` maps a webhook target (`"reporter.name"`) to a dotted source path in the
    record (`"pelapor.nama"`; `"lampiran.*.url"` collects a list). Sources that are absent
    leave the target out, so the webhook parser names what is missing. Unknown targets are
    a configuration error (ValueError); a record that is not an object is MalformedPayload.
    """
    unknown = sorted(set(mapping) - LAPOR_FIELDS)
    if unknown:
        raise ValueError(f"unknown LAPOR! mapping targets: {', '.join(unknown)}")
    if not isinstance(record, dict):
        raise MalformedPayload("LAPOR! record must be an object")
    body: dict[str, Any] = {}
    for target, source in sorted(mapping.items()):
        if not isinstance(source, str) or not source:
            raise ValueError(f"LAPOR! mapping for {target!r} must be a non-empty path")
        value = _lookup(record, source)
        if value is _MISSING:
            continue
        value = _coerce(target, value)
        head, _, leaf = target.partition(".")
        if leaf:
            nested = body.setdefault(head, {})
            nested[leaf] = value
        else:
            body[head] = value
    return body
