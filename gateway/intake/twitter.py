"""X (Twitter) polling of DMs and mentions, when `channels.twitter.mode = "polling"`.

`connectors.twitter.poll.TwitterPoller` (tweepy, synchronous) runs in a worker thread. Its
positions live in kv_state under `twitter:poll`: the DM walk's pagination state, the
mentions' `since_id`, the times of recent `/2/dm_events` calls (the 15-per-15-minutes
budget survives restarts and replica changes), and, after a 429, the time until which each
endpoint is left alone. A DM call is counted before it is made, so a crash mid-call cannot
overspend the budget. Messages are stored (intake "poll") before their position moves on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import MalformedPayload, RawMessage, WireRequest
from connectors.twitter.poll import RateBudget, TwitterPoller
from connectors.twitter.wire import CONNECTOR, RateLimited, TwitterApiError
from gateway.base.config import read_secret
from gateway.base.polling import Poller
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import malformed_raw, to_new_raw

log = logging.getLogger("kanal.twitter")

STATE_KEY = "twitter:poll"
DM_BUDGET = RateBudget()  # 15 requests / 15 minutes per user
DEFAULT_PAUSE = timedelta(minutes=15)  # a 429 without x-rate-limit-reset


class TwitterPollError(Exception):
    """The poller is not configured, or an X API call failed (not a rate limit)."""


def enabled(runtime: Runtime) -> bool:
    section = runtime.settings.channels.twitter
    return bool(section.enabled and section.mode == "polling")


def interval_s(runtime: Runtime) -> float:
    return float(runtime.settings.channels.twitter.poll_interval_s)


def poller_for(runtime: Runtime) -> TwitterPoller:
    """The process's TwitterPoller (one tweepy client, kept by the runtime)."""
    poller = runtime.find(TwitterPoller)
    if poller is not None:
        return poller
    section = runtime.settings.channels.twitter
    if not section.user_id:
        raise TwitterPollError("channels.twitter.user_id is required for polling")
    poller = TwitterPoller.from_credentials(
        section.user_id,
        consumer_key=section.consumer_key or None,
        consumer_secret=read_secret(section, "consumer_secret"),
        access_token=section.access_token or None,
        access_token_secret=read_secret(section, "access_token_secret"),
        bearer_token=read_secret(section, "bearer_token"),
    )
    return runtime.keep(poller)


def _paused(state: dict[str, Any], key: str, now: datetime) -> bool:
    until = state.get(key)
    return isinstance(until, int | float) and now.timestamp() < until


def _pause_until(exc: RateLimited, now: datetime) -> float:
    reset = exc.reset_at if exc.reset_at and exc.reset_at > now else now + DEFAULT_PAUSE
    return reset.timestamp()


async def _store(runtime: Runtime, messages: list[RawMessage], endpoint: str) -> int:
    if not messages:
        return 0
    rows = []
    for message in messages:
        body = json.dumps(message.to_json()).encode()  # ASCII escapes: always encodes
        wire = WireRequest("GET", f"https://api.twitter.com{endpoint}", endpoint, (), {}, body)
        try:
            rows.append(to_new_raw(message, wire, "poll", payload=body))
        except MalformedPayload as exc:
            rows.append(malformed_raw(CONNECTOR, "twitter", wire, "poll", str(exc)))
    created = 0
    for item in await runtime.store.writer().submit(rows):
        if item.created:
            created += 1
            runtime.metrics.raw_messages_stored.labels(CONNECTOR, "poll").inc()
    return created


async def poll_twitter(runtime: Runtime, *, now: datetime | None = None) -> int:
    """One run: a DM page (budget permitting) and new mentions. Returns messages stored."""
    store = runtime.store
    poller = poller_for(runtime)
    now = now or datetime.now(UTC)
    state: dict[str, Any] = dict(await store.get_state(STATE_KEY) or {})
    stored = 0
    errors: list[str] = []

    # Direct messages: one page per run, within the per-user budget.
    calls = [t for t in state.get("dm_calls") or [] if isinstance(t, int | float)]
    if _paused(state, "dm_paused_until", now):
        pass
    elif not DM_BUDGET.allowed(calls, now):
        log.debug("twitter: DM budget spent until %s", DM_BUDGET.next_allowed_at(calls, now))
    else:
        state["dm_calls"] = DM_BUDGET.record(calls, now)
        await store.set_state(STATE_KEY, state)
        try:
            messages, dm_state = await asyncio.to_thread(poller.fetch_dms, state.get("dm"))
        except RateLimited as exc:
            state["dm_paused_until"] = _pause_until(exc, now)
            log.warning("twitter: DM rate limit; paused until %s", exc.reset_at)
        except TwitterApiError as exc:
            errors.append(f"dm_events: {exc}")
        else:
            stored += await _store(runtime, messages, "/2/dm_events")
            state["dm"] = dm_state
            state.pop("dm_paused_until", None)
        await store.set_state(STATE_KEY, state)

    # Mentions since the newest one seen.
    if not _paused(state, "mentions_paused_until", now):
        try:
            messages, newest = await asyncio.to_thread(
                poller.fetch_mentions, state.get("mentions_since_id")
            )
        except RateLimited as exc:
            state["mentions_paused_until"] = _pause_until(exc, now)
            log.warning("twitter: mentions rate limit; paused until %s", exc.reset_at)
        except TwitterApiError as exc:
            errors.append(f"mentions: {exc}")
        else:
            stored += await _store(runtime, messages, f"/2/users/{poller.own_user_id}/mentions")
            state["mentions_since_id"] = newest
            state.pop("mentions_paused_until", None)
        await store.set_state(STATE_KEY, state)

    if stored:
        log.info("twitter: %d message(s) stored by polling", stored)
    if errors:
        raise TwitterPollError("; ".join(errors)[:500])
    return stored


async def _run(runtime: Runtime) -> None:
    await poll_twitter(runtime)


TWITTER_POLLER = Poller("twitter", enabled=enabled, interval_s=interval_s, run=_run)
