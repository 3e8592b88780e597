"""Polling X through its v2 API (tweepy's Client, blocking: run it in a worker thread):
DMs and mentions since the newest seen, within the 15-requests-per-15-minutes DM budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import RawMessage
from connectors.json_fields import id_text, sub_object
from connectors.twitter.wire import (
    RateLimited,
    TwitterApiError,
    _int_id,
    messages_from_dm_events,
    messages_from_mentions,
)


@dataclass(frozen=True, slots=True)
class RateBudget:
    """At most `limit` calls per sliding `window`; call times are epoch seconds.

    `/2/dm_events` allows 15 requests per 15 minutes per user.
    """

    limit: int = 15
    window: timedelta = timedelta(minutes=15)

    def recent(self, call_times: Iterable[float], now: datetime) -> list[float]:
        """The call times still inside the window, oldest first (what to persist)."""
        start = now.timestamp() - self.window.total_seconds()
        return sorted(t for t in call_times if t > start)

    def allowed(self, call_times: Iterable[float], now: datetime) -> bool:
        return len(self.recent(call_times, now)) < self.limit

    def next_allowed_at(self, call_times: Iterable[float], now: datetime) -> datetime:
        recent = self.recent(call_times, now)
        if len(recent) < self.limit:
            return now
        freed = recent[len(recent) - self.limit] + self.window.total_seconds()
        return datetime.fromtimestamp(freed, UTC)

    def record(self, call_times: Iterable[float], now: datetime) -> list[float]:
        """The list to persist after making a call at `now`."""
        return [*self.recent(call_times, now), now.timestamp()]


DM_EVENT_FIELDS = [
    "id",
    "event_type",
    "text",
    "sender_id",
    "created_at",
    "dm_conversation_id",
    "attachments",
    "participant_ids",
]


MENTION_TWEET_FIELDS = [
    "id",
    "text",
    "author_id",
    "created_at",
    "geo",
    "attachments",
    "referenced_tweets",
    "conversation_id",
    "note_tweet",
]


class TwitterPoller:
    """Polls DMs and mentions through `tweepy.Client` (sync); one HTTP request per DM call.

    DM pagination state (JSON-safe, persisted by the scheduler):
    `{"newest_id": str | None, "resume_token": str | None, "resume_newest": str | None}`.
    `/2/dm_events` has no `since_id`: each walk goes from the newest page down until it
    reaches `newest_id`, one page per call, and only then moves `newest_id` forward.
    """

    def __init__(self, client: Any, own_user_id: str, *, clock: Any = None) -> None:
        self.client = client
        self.own_user_id = own_user_id
        self._now = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_credentials(
        cls,
        own_user_id: str,
        *,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        access_token: str | None = None,
        access_token_secret: str | None = None,
        bearer_token: str | None = None,
    ) -> TwitterPoller:
        import tweepy

        client = tweepy.Client(
            bearer_token=bearer_token,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            return_type=dict,
            wait_on_rate_limit=False,
        )
        return cls(client, own_user_id)

    @property
    def _user_auth(self) -> bool:
        # OAuth 1.0a user context when we have it, else an OAuth 2 user token as bearer.
        return bool(getattr(self.client, "access_token", None))

    def fetch_dms(
        self, pagination_state: dict[str, Any] | None, max_results: int = 100
    ) -> tuple[list[RawMessage], dict[str, Any]]:
        state = dict(pagination_state or {})
        stop_at = _int_id(state.get("newest_id"))
        token = state.get("resume_token")
        response = self._call(
            self.client.get_direct_message_events,
            max_results=max_results,
            event_types="MessageCreate",
            dm_event_fields=DM_EVENT_FIELDS,
            expansions=["sender_id", "attachments.media_keys"],
            user_fields=["id", "name", "username"],
            media_fields=["media_key", "type", "url", "preview_image_url", "variants"],
            pagination_token=token,
            user_auth=self._user_auth,
        )
        events = [e for e in response.get("data") or [] if isinstance(e, dict)]
        ids = [i for e in events if (i := _int_id(e.get("id"))) is not None]
        page_newest = max(ids, default=None)
        walk_newest = max(
            (i for i in (_int_id(state.get("resume_newest")), page_newest) if i is not None),
            default=None,
        )
        fresh = {str(i) for i in ids if stop_at is None or i > stop_at}
        response = {**response, "data": [e for e in events if id_text(e.get("id")) in fresh]}
        messages = messages_from_dm_events(response, self.own_user_id, self._now())
        next_token = sub_object(response, "meta").get("next_token")
        reached_known = stop_at is not None and any(i <= stop_at for i in ids)
        if next_token and not reached_known and ids:
            new_state = {
                "newest_id": state.get("newest_id"),
                "resume_token": next_token,
                "resume_newest": str(walk_newest) if walk_newest is not None else None,
            }
        else:
            newest = max((i for i in (stop_at, walk_newest) if i is not None), default=None)
            new_state = {
                "newest_id": str(newest) if newest is not None else None,
                "resume_token": None,
                "resume_newest": None,
            }
        return messages, new_state

    def fetch_mentions(
        self, since_id: str | None, max_results: int = 100, max_pages: int = 8
    ) -> tuple[list[RawMessage], str | None]:
        messages: list[RawMessage] = []
        newest_id = since_id
        token: str | None = None
        for _ in range(max_pages):
            response = self._call(
                self.client.get_users_mentions,
                self.own_user_id,
                since_id=since_id,
                max_results=max_results,
                pagination_token=token,
                tweet_fields=MENTION_TWEET_FIELDS,
                expansions=["author_id", "geo.place_id", "attachments.media_keys"],
                user_fields=["id", "name", "username"],
                place_fields=["id", "full_name", "country_code", "geo"],
                media_fields=["media_key", "type", "url", "preview_image_url", "variants"],
                user_auth=self._user_auth,
            )
            messages.extend(messages_from_mentions(response, self.own_user_id, self._now()))
            meta = sub_object(response, "meta")
            page_newest = _int_id(meta.get("newest_id"))
            if page_newest is not None and page_newest > (_int_id(newest_id) or 0):
                newest_id = str(page_newest)
            token = meta.get("next_token")
            if not token:
                break
        return messages, newest_id

    def _call(self, method: Any, *args: Any, **params: Any) -> dict[str, Any]:
        import requests
        import tweepy

        try:
            response = method(*args, **params)
        except tweepy.TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None)
            if reset is None:
                header = exc.response.headers.get("x-rate-limit-reset")
                reset = int(header) if header and header.isdigit() else None
            raise RateLimited(datetime.fromtimestamp(reset, UTC) if reset else None) from exc
        except tweepy.HTTPException as exc:
            raise TwitterApiError(f"X API error: {exc}", exc.response.status_code) from exc
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise TwitterApiError(f"X API unreachable: {exc}") from exc
        if not isinstance(response, dict):
            raise TwitterApiError("tweepy.Client must be built with return_type=dict")
        return response
