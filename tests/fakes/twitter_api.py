"""A fake X API v2 mounted into tweepy's `requests` session (tweepy's host is hard-coded).

    fake = FakeTwitterApi(own_user_id="900")
    client = tweepy.Client(consumer_key=…, …, return_type=dict, wait_on_rate_limit=False)
    fake.install(client)            # mounts on client.session for https://api.twitter.com
    fake.add_dm_event({...}); fake.add_user({...})

Served, like the real API where kanal depends on it:
- `GET /2/dm_events`: newest first, `max_results` 1–100 (400 otherwise), `pagination_token`,
  only the requested `dm_event.fields` (plus id, event_type, text), `includes.users` /
  `includes.media` only for the requested `expansions`; 15 calls per 15 minutes, then 429
  with `x-rate-limit-reset`.
- `GET /2/users/:id/mentions`: `since_id`, `max_results` 5–100, `pagination_token`,
  `tweet.fields`, expansions `author_id`, `geo.place_id`, `attachments.media_keys`,
  `meta.newest_id`/`oldest_id`/`next_token`.
- `POST /2/dm_conversations/with/:participant_id/messages`: `text` 1–10000 characters,
  recorded in `sent_dms`.
Every request needs an `Authorization` header (401 otherwise) and is recorded in
`requests` with its query parameters. `throttle_next(path)` makes the next matching call 429.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

__all__ = ["FakeTwitterApi", "RecordedRequest"]

HOST = "https://api.twitter.com"
DM_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    authorization: str


class FakeTwitterApi(BaseAdapter):
    """A requests transport adapter answering like api.twitter.com. See the module docstring."""

    def __init__(
        self,
        own_user_id: str = "900",
        *,
        dm_limit: int = 15,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.own_user_id = own_user_id
        self.dm_limit = dm_limit
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self.dm_events: list[dict[str, Any]] = []
        self.mentions: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.places: dict[str, dict[str, Any]] = {}
        self.sent_dms: list[dict[str, Any]] = []
        self._dm_calls: list[float] = []
        self._throttled: list[str] = []
        self._event_ids = itertools.count(1900000000000000001)

    # ------------------------------------------------------------------ test controls

    def install(self, client: Any) -> FakeTwitterApi:
        """Mount on a tweepy Client's session (or any requests.Session)."""
        session = getattr(client, "session", client)
        session.mount(HOST, self)
        return self

    def add_user(self, user: dict[str, Any]) -> None:
        self.users[str(user["id"])] = user

    def add_media(self, media: dict[str, Any]) -> None:
        self.media[media["media_key"]] = media

    def add_place(self, place: dict[str, Any]) -> None:
        self.places[place["id"]] = place

    def add_dm_event(self, event: dict[str, Any]) -> None:
        self.dm_events.append(event)
        self.dm_events.sort(key=lambda e: int(e["id"]), reverse=True)

    def add_mention(self, post: dict[str, Any]) -> None:
        self.mentions.append(post)
        self.mentions.sort(key=lambda p: int(p["id"]), reverse=True)

    def load(self, response_json: dict[str, Any], kind: str) -> None:
        """Load a recorded `GET /2/dm_events` (kind "dm") or mentions answer (kind "mention")."""
        includes = response_json.get("includes") or {}
        for user in includes.get("users") or []:
            self.add_user(user)
        for media in includes.get("media") or []:
            self.add_media(media)
        for place in includes.get("places") or []:
            self.add_place(place)
        for item in response_json.get("data") or []:
            (self.add_dm_event if kind == "dm" else self.add_mention)(item)

    def throttle_next(self, path_prefix: str) -> None:
        """The next request whose path starts with `path_prefix` gets a 429."""
        self._throttled.append(path_prefix)

    # ------------------------------------------------------------------ transport

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        body: Any = None
        if request.body:
            raw = request.body if isinstance(request.body, bytes) else str(request.body).encode()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        authorization = str(request.headers.get("Authorization", ""))
        method = request.method or "GET"
        self.requests.append(RecordedRequest(method, parts.path, params, body, authorization))

        if not authorization.startswith(("OAuth ", "Bearer ")):
            return self._answer(request, 401, {"title": "Unauthorized", "status": 401})
        for prefix in self._throttled:
            if parts.path.startswith(prefix):
                self._throttled.remove(prefix)
                return self._too_many(request, int(self.clock()) + DM_WINDOW_S)

        if method == "GET" and parts.path == "/2/dm_events":
            return self._dm_events(request, params)
        match = re.fullmatch(r"/2/users/(\d+)/mentions", parts.path)
        if method == "GET" and match:
            return self._mentions(request, params)
        match = re.fullmatch(r"/2/dm_conversations/with/(\d+)/messages", parts.path)
        if method == "POST" and match:
            return self._send_dm(request, match.group(1), body)
        return self._answer(request, 404, {"title": "Not Found Error", "status": 404})

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ endpoints

    def _dm_events(self, request: requests.PreparedRequest, params: dict[str, str]) -> Any:
        now = self.clock()
        self._dm_calls = [t for t in self._dm_calls if t > now - DM_WINDOW_S]
        if len(self._dm_calls) >= self.dm_limit:
            return self._too_many(request, int(self._dm_calls[0] + DM_WINDOW_S))
        self._dm_calls.append(now)
        max_results = int(params.get("max_results", "100"))
        if not 1 <= max_results <= 100:
            return self._invalid(request, "max_results", "[1,100]")
        events = self.dm_events
        if params.get("event_types"):
            wanted = set(params["event_types"].split(","))
            events = [e for e in events if e.get("event_type") in wanted]
        fields = {"id", "event_type", "text", *_split(params.get("dm_event.fields"))}
        page, next_token = _page(events, params.get("pagination_token"), max_results)
        data = [{k: v for k, v in e.items() if k in fields} for e in page]
        expansions = set(_split(params.get("expansions")))
        includes: dict[str, Any] = {}
        if "sender_id" in expansions:
            ids = {e.get("sender_id") for e in page}
            includes["users"] = [u for i, u in self.users.items() if i in ids]
        if "attachments.media_keys" in expansions:
            keys = {k for e in page for k in (e.get("attachments") or {}).get("media_keys", [])}
            includes["media"] = [m for k, m in self.media.items() if k in keys]
        meta: dict[str, Any] = {"result_count": len(data)}
        if next_token:
            meta["next_token"] = next_token
        answer: dict[str, Any] = {"meta": meta}
        if data:
            answer["data"] = data
        if any(includes.values()):
            answer["includes"] = {k: v for k, v in includes.items() if v}
        return self._answer(request, 200, answer)

    def _mentions(self, request: requests.PreparedRequest, params: dict[str, str]) -> Any:
        max_results = int(params.get("max_results", "10"))
        if not 5 <= max_results <= 100:
            return self._invalid(request, "max_results", "[5,100]")
        posts = self.mentions
        if params.get("since_id"):
            posts = [p for p in posts if int(p["id"]) > int(params["since_id"])]
        fields = {"id", "text", "edit_history_tweet_ids", *_split(params.get("tweet.fields"))}
        page, next_token = _page(posts, params.get("pagination_token"), max_results)
        data = [{k: v for k, v in p.items() if k in fields} for p in page]
        expansions = set(_split(params.get("expansions")))
        includes: dict[str, Any] = {}
        if "author_id" in expansions:
            ids = {p.get("author_id") for p in page}
            includes["users"] = [u for i, u in self.users.items() if i in ids]
        if "geo.place_id" in expansions:
            ids = {(p.get("geo") or {}).get("place_id") for p in page}
            includes["places"] = [pl for i, pl in self.places.items() if i in ids]
        if "attachments.media_keys" in expansions:
            keys = {k for p in page for k in (p.get("attachments") or {}).get("media_keys", [])}
            includes["media"] = [m for k, m in self.media.items() if k in keys]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta["newest_id"] = data[0]["id"]
            meta["oldest_id"] = data[-1]["id"]
        if next_token:
            meta["next_token"] = next_token
        answer: dict[str, Any] = {"meta": meta}
        if data:
            answer["data"] = data
        if any(includes.values()):
            answer["includes"] = {k: v for k, v in includes.items() if v}
        return self._answer(request, 200, answer)

    def _send_dm(self, request: requests.PreparedRequest, participant_id: str, body: Any) -> Any:
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not 1 <= len(text) <= 10000:
            return self._invalid(request, "text", "1 to 10000 characters")
        event_id = str(next(self._event_ids))
        low, high = sorted([participant_id, self.own_user_id], key=int)
        self.sent_dms.append({"participant_id": participant_id, "text": text, "id": event_id})
        answer = {"data": {"dm_conversation_id": f"{low}-{high}", "dm_event_id": event_id}}
        return self._answer(request, 201, answer)

    # ------------------------------------------------------------------ answers

    def _invalid(self, request: requests.PreparedRequest, name: str, allowed: str) -> Any:
        problem = {
            "errors": [
                {"parameters": {name: []}, "message": f"The `{name}` value must be {allowed}"}
            ],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        }
        return self._answer(request, 400, problem)

    def _too_many(self, request: requests.PreparedRequest, reset: int) -> Any:
        headers = {
            "x-rate-limit-limit": str(self.dm_limit),
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        }
        answer = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
        return self._answer(request, 429, answer, headers)

    def _answer(
        self,
        request: requests.PreparedRequest,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
                           404: "Not Found", 429: "Too Many Requests"}.get(status, "")  # fmt: skip
        response._content = json.dumps(body).encode()
        response._content_consumed = True
        response.headers = CaseInsensitiveDict(
            {"content-type": "application/json; charset=utf-8", **(headers or {})}
        )
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _page(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    start = int(token.removeprefix("page_")) if token else 0
    page = items[start : start + size]
    more = start + size < len(items)
    return page, (f"page_{start + size}" if more else None)
