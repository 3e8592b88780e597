"""What every connector's `send.py` shares: the message to send, the three ways a send
fails, and one HTTP exchange through an `aiohttp.ClientSession` handed in.

A sender's `send(session, message)` returns the provider's id for the message, or raises:
- `RetryableSendError`: the provider did not take the message (5xx, 429, connection refused,
  connect timeout, SMTP 4xx) — safe to try again later;
- `PermanentSendError`: the provider refused it for good (4xx: bad number, blocked user,
  outside the messaging window, bad credentials; missing configuration);
- `UncertainSendError`: the request may have reached the provider and no answer came (read
  timeout, connection dropped mid-exchange) — sending again could deliver it twice.

Senders know the provider's wire and nothing of reports or the store. Text and addresses
are never logged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiohttp

from crm_client import parse_retry_after

ERROR_CHARS = 300  # provider error text kept on the outbound row and the report


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send, as recorded in the `outbound` table."""

    id: str  # outbound row id: stable across attempts
    report_id: str
    kind: str  # ack | done
    channel: str  # the report's channel
    connector: str  # the connector the report came in through: picks the provider
    to: str  # provider address: E.164 phone, e-mail, chat id, PSID, X user id
    body: str
    meta: Mapping[str, Any] = field(default_factory=dict)  # from, subject, threading, page id…


class SendError(Exception):
    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message[:ERROR_CHARS])
        self.message = message[:ERROR_CHARS]
        self.retry_after_s = retry_after_s


class RetryableSendError(SendError):
    """The provider did not accept the message; sending again is safe."""


class PermanentSendError(SendError):
    """The provider refused the message; sending again would fail the same way."""


class UncertainSendError(SendError):
    """The provider may have accepted the message; sending again risks a duplicate."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who on a chat platform gets the answer, and what the sender needs besides."""

    to: str  # chat id, PSID, X user id
    meta: Mapping[str, Any] = field(default_factory=dict)
    # The platform takes answers only within a window after the citizen last wrote (Meta's
    # 24 hours: `notify.meta_window_h`).
    windowed: bool = False
    # Outside the window: "skip" (nothing may be sent), or "template" (WhatsApp: a
    # pre-approved template, which the sender picks when `meta["template"]` is set).
    after_window: Literal["skip", "template"] = "skip"


@dataclass(frozen=True, slots=True)
class NoRecipient:
    reason: str  # why nobody can be answered: public_comment, not_a_private_chat, …


# A chat connector's rule: the stored RawMessage JSON of the report's first message and the
# reporter's channel user id in, whom to answer out.
FindRecipient = Callable[[Mapping[str, Any], "str | None"], "Recipient | NoRecipient"]


class Sender(Protocol):
    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str: ...


async def request(
    session: aiohttp.ClientSession, provider: str, method: str, url: str, **kwargs: Any
) -> tuple[int, bytes, Mapping[str, str]]:
    """One exchange; failures to reach the provider become the send errors above."""
    try:
        async with session.request(method, url, **kwargs) as response:
            body = await response.read()
            return response.status, body, response.headers
    except aiohttp.ConnectionTimeoutError as exc:
        raise RetryableSendError(f"{provider}: connect timeout") from exc
    except aiohttp.ClientConnectorError as exc:
        raise RetryableSendError(f"{provider}: cannot connect: {exc.os_error}") from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UncertainSendError(f"{provider}: no answer in time (timeout)") from exc
    except aiohttp.ClientError as exc:
        raise UncertainSendError(f"{provider}: connection lost: {type(exc).__name__}") from exc


def check_status(provider: str, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    if 200 <= status < 300:
        return
    text = body.decode("utf-8", "replace").strip()[:200]
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=datetime.now(UTC))
        raise RetryableSendError(f"{provider}: HTTP {status}: {text}", retry_after_s=retry_after)
    raise PermanentSendError(f"{provider}: HTTP {status}: {text}")


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def read_json(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        # Accepted (2xx) but unreadable: the message most likely went out.
        raise UncertainSendError(f"{provider}: unreadable answer") from exc
