"""The LAPOR! poller: pages through `channels.lapor.poll_endpoint` since the last position.

LAPOR! publishes no integration specification, so the wire is kanal's:
`GET {poll_endpoint}?since=<position>&limit=<n>` with `Authorization: Bearer <poll_token>`,
answered by `{"records": [...], "next_cursor": "<opaque>" | null, "has_more": bool}`
(`data` or `items` are read as `records` too). Each record goes through
`connectors.lapor.wire.map_lapor_record` (the configured `field_mapping`; none = records are
already in the webhook's shape) and the webhook's own parser, and is stored as connector
`lapor`, intake `poll`: the tracking id is the external id, so a report that came by
webhook and by poll is stored once. The position is kept in kv_state after each stored
page; a crash re-reads at most one page, which dedupes.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from connectors.base import MalformedPayload, WireRequest
from connectors.lapor.poll import fetch_page
from connectors.lapor.wire import LaporConnector, map_lapor_record
from gateway.base.config import read_secret
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw
from gateway.store import NewRaw

log = logging.getLogger("kanal.lapor")

POSITION_KEY = "lapor:poll_position"
MAX_PAGES_PER_RUN = 50
TIMEOUT_S = 30.0


def record_rows(records: list[Any], mapping: dict[str, str], url: str, now: Any) -> list[NewRaw]:
    """Raw rows for one page: mapped and parsed like a webhook body; an unreadable record is
    stored flagged (visible in the inbox), never dropped."""
    connector = LaporConnector(secret=None)
    rows: list[NewRaw] = []
    for record in records:
        try:
            body = map_lapor_record(record, mapping) if mapping else record
        except MalformedPayload:
            body = record
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
        wire = WireRequest(
            method="GET",
            url=url,
            path=urlsplit(url).path or "/",
            query=(),
            headers={"content-type": "application/json"},
            body=payload,
            remote="poll",
        )
        try:
            rows += [to_new_raw(message, wire, "poll") for message in connector.parse(wire, now)]
        except MalformedPayload as exc:
            rows.append(malformed_raw("lapor", "lapor", wire, "poll", str(exc)))
    return rows


async def poll_lapor(runtime: Runtime) -> int:
    """One run: every page since the stored position. Returns how many reports were new."""
    settings = runtime.settings.channels.lapor
    endpoint = settings.poll_endpoint
    token = read_secret(settings, "poll_token")
    mapping = dict(settings.field_mapping)
    if mapping:
        map_lapor_record({}, mapping)  # a bad mapping is a configuration error: fail loudly
    position = await runtime.store.get_state(POSITION_KEY)
    created = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(MAX_PAGES_PER_RUN):
            page = await fetch_page(session, endpoint, token, position)
            records, cursor, has_more = page.records, page.cursor, page.has_more
            rows = record_rows(records, mapping, page.url, runtime.store.clock())
            if rows:
                stored = await runtime.store.writer().submit(rows)
                new = sum(1 for s in stored if s.created)
                created += new
                if new:
                    runtime.metrics.raw_messages_stored.labels("lapor", "poll").inc(new)
            if not cursor or cursor == position:
                break  # nowhere further to go; the next run asks from the same position
            position = cursor
            await runtime.store.set_state(POSITION_KEY, position)  # after the page is stored
            more = has_more if has_more is not None else bool(records)
            if not more or not records:
                break
    log.info("LAPOR! poll: %d new reports", created)
    return created


async def _run(runtime: Runtime) -> None:
    await poll_lapor(runtime)


def _enabled(runtime: Runtime) -> bool:
    lapor = runtime.settings.channels.lapor
    return bool(lapor.enabled and lapor.poll_endpoint)


LAPOR_POLLER = Poller(
    name="lapor",
    enabled=_enabled,
    interval_s=lambda runtime: float(runtime.settings.channels.lapor.poll_interval_s),
    run=_run,
)
