"""Answers on X: direct messages through tweepy (in a worker thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from connectors.outbound import (
    NoRecipient,
    OutboundMessage,
    PermanentSendError,
    Recipient,
    RetryableSendError,
    UncertainSendError,
)
from connectors.spec import Secrets
from connectors.twitter.config import TwitterConfig


class XSender:
    """X DM: `POST /2/dm_conversations/with/:participant_id/messages` through tweepy (sync,
    in a worker thread). tweepy's host is fixed; tests mount a fake on `client.session`."""

    def __init__(self, credentials: Mapping[str, str | None], client: Any = None):
        self.credentials = dict(credentials)
        self.client = client

    @property
    def configured(self) -> bool:
        creds = self.credentials
        return self.client is not None or bool(
            creds.get("access_token") or creds.get("bearer_token")
        )

    def _client(self) -> Any:
        if self.client is None:
            if not (self.credentials.get("access_token") or self.credentials.get("bearer_token")):
                raise PermanentSendError("twitter: no user credentials to send DMs with")
            import tweepy

            self.client = tweepy.Client(
                return_type=dict, wait_on_rate_limit=False, **self.credentials
            )
        return self.client

    async def send(self, session: aiohttp.ClientSession, message: OutboundMessage) -> str:
        client = self._client()
        return await asyncio.to_thread(self._send_sync, client, message)

    @staticmethod
    def _send_sync(client: Any, message: OutboundMessage) -> str:
        import requests
        import tweepy

        user_auth = bool(getattr(client, "access_token", None))
        try:
            answer = client.create_direct_message(
                participant_id=message.to, text=message.body, user_auth=user_auth
            )
        except tweepy.TooManyRequests as exc:
            raise RetryableSendError("twitter: rate limited (429)") from exc
        except tweepy.TwitterServerError as exc:
            raise RetryableSendError(f"twitter: server error {exc.response.status_code}") from exc
        except tweepy.HTTPException as exc:
            raise PermanentSendError(f"twitter: {exc}") from exc
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or "Connection refused" in str(exc):
                raise RetryableSendError("twitter: cannot connect") from exc
            raise UncertainSendError("twitter: connection lost") from exc
        except requests.Timeout as exc:
            raise UncertainSendError("twitter: no answer in time (timeout)") from exc
        data = answer.get("data") if isinstance(answer, dict) else None
        return str((data or {}).get("dm_event_id") or "")


def sender(config: TwitterConfig, secret: Secrets) -> XSender:
    return XSender(
        {
            "consumer_key": config.consumer_key or None,
            "consumer_secret": secret("consumer_secret"),
            "access_token": config.access_token or None,
            "access_token_secret": secret("access_token_secret"),
            "bearer_token": secret("bearer_token"),
        }
    )


def recipient(raw: Mapping[str, Any], user_id: str | None) -> Recipient | NoRecipient:
    """The author of a direct message; public mentions are not answered by DM."""
    if raw.get("kind") == "mention" or not str(raw.get("external_id", "")).startswith("dm:"):
        return NoRecipient("public_mention")
    if not user_id:
        return NoRecipient("no_recipient")
    return Recipient(user_id)
