"""One sender per provider for messages back to citizens (gateway/notify.py drives them).

Each sender's `send(message)` returns the provider's id for the message, or raises one of:
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

import asyncio
import base64
import json
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

import aiohttp

from connectors.base import kanal_signature
from crm_client import parse_retry_after
from gateway.base.config import Settings, parse_host_port, read_secret

__all__ = [
    "OutboundMessage",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "Sender",
    "UncertainSendError",
    "build_senders",
    "is_gsm7",
]

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


class Sender(Protocol):
    async def send(self, message: OutboundMessage) -> str: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- GSM-7

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ!\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    """Whether the text fits the GSM 03.38 alphabet (else it goes as UCS-2: 70 per SMS)."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in text)


# --------------------------------------------------------------------------- HTTP


class HttpSender:
    """Shared HTTP plumbing: one session, timeouts, and the mapping of failures to errors."""

    def __init__(self, timeout_s: float):
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(5.0, timeout_s))
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self, provider: str, method: str, url: str, **kwargs: Any
    ) -> tuple[int, bytes, Mapping[str, str]]:
        try:
            async with self.session().request(method, url, **kwargs) as response:
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

    @staticmethod
    def check_status(provider: str, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        if 200 <= status < 300:
            return
        text = body.decode("utf-8", "replace").strip()[:200]
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(headers.get("Retry-After"), now=datetime.now(UTC))
            raise RetryableSendError(
                f"{provider}: HTTP {status}: {text}", retry_after_s=retry_after
            )
        raise PermanentSendError(f"{provider}: HTTP {status}: {text}")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _json(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        # Accepted (2xx) but unreadable: the message most likely went out.
        raise UncertainSendError(f"{provider}: unreadable answer") from exc


# --------------------------------------------------------------------------- SMS


class TwilioSender(HttpSender):
    """`POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` (Basic AccountSid:AuthToken)."""

    def __init__(
        self, base_url: str, account_sid: str, auth_token: str, from_number: str, timeout_s: float
    ):
        super().__init__(timeout_s)
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)

    async def send(self, message: OutboundMessage) -> str:
        if not (self.account_sid and self.auth_token):
            raise PermanentSendError("sms_twilio: account_sid and auth_token are not configured")
        sender = self.from_number or str(message.meta.get("from") or "")
        if not sender:
            raise PermanentSendError("sms_twilio: no sender number (from_number or inbound To)")
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        status, body, headers = await self.request(
            "twilio",
            "POST",
            url,
            data={"To": message.to, "From": sender, "Body": message.body},
            headers={"Authorization": _basic(self.account_sid, self.auth_token)},
        )
        self.check_status("twilio", status, body, headers)
        sid = _json("twilio", body).get("sid")
        return str(sid or "")


# Vonage SMS API statuses that mean "not now" rather than "never" (1 throttled, 5 internal).
VONAGE_RETRYABLE = {"1", "5"}


class VonageSender(HttpSender):
    """`POST {base}/sms/json` with api_key, api_secret, from, to, text (type=unicode if needed)."""

    def __init__(
        self, base_url: str, api_key: str, api_secret: str, from_number: str, timeout_s: float
    ):
        super().__init__(timeout_s)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.from_number = from_number

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.api_secret)

    async def send(self, message: OutboundMessage) -> str:
        if not (self.api_key and self.api_secret):
            raise PermanentSendError("sms_vonage: api_key and api_secret are not configured")
        sender = self.from_number or str(message.meta.get("from") or "")
        if not sender:
            raise PermanentSendError("sms_vonage: no sender (from_number or inbound to)")
        form = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "from": sender,
            "to": message.to.lstrip("+"),  # Vonage wants international format without '+'
            "text": message.body,
        }
        if not is_gsm7(message.body):
            form["type"] = "unicode"
        status, body, headers = await self.request(
            "vonage", "POST", f"{self.base_url}/sms/json", data=form
        )
        self.check_status("vonage", status, body, headers)
        answer = _json("vonage", body)
        parts = answer.get("messages") or []
        if not parts:
            raise UncertainSendError("vonage: answer without messages")
        failed = [p for p in parts if str(p.get("status")) != "0"]
        if failed:
            first = failed[0]
            text = f"vonage: status {first.get('status')}: {first.get('error-text', '')}"
            if str(first.get("status")) in VONAGE_RETRYABLE and len(failed) == len(parts):
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return ",".join(str(p.get("message-id")) for p in parts)


class KannelSender(HttpSender):
    """Kannel's `GET …/cgi-bin/sendsms?username=&password=&from=&to=&text=` (smsbox)."""

    def __init__(self, url: str, user: str, password: str, timeout_s: float):
        super().__init__(timeout_s)
        self.url = url
        self.user = user
        self.password = password

    @property
    def configured(self) -> bool:
        return bool(self.url and self.user)

    async def send(self, message: OutboundMessage) -> str:
        if not (self.url and self.user):
            raise PermanentSendError("sms_kannel: sendsms_url and sendsms_user are not configured")
        params = {
            "username": self.user,
            "password": self.password,
            "to": message.to,
            "text": message.body,
        }
        sender = str(message.meta.get("from") or "")
        if sender:
            params["from"] = sender
        if not message.body.isascii():
            params.update(charset="UTF-8", coding="2")
        status, body, headers = await self.request("kannel", "GET", self.url, params=params)
        # Kannel answers 202 "0: Accepted for delivery" / "3: Queued for later delivery";
        # 4xx for bad credentials or parameters, 503 while bearerbox is away.
        self.check_status("kannel", status, body, headers)
        return f"kannel:{message.id}"  # Kannel gives no message id back without DLR setup


class GenericSmsSender(HttpSender):
    """POST JSON `{"id","to","from","text"}` to `channels.sms_generic.reply_url`, signed with
    `X-Kanal-Signature` like the inbound side; the `id` lets the gateway drop a resend."""

    def __init__(self, url: str, secret: str, timeout_s: float):
        super().__init__(timeout_s)
        self.url = url
        self.secret = secret

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def send(self, message: OutboundMessage) -> str:
        if not self.url:
            raise PermanentSendError("sms_generic: reply_url is not configured")
        body = json.dumps(
            {
                "id": message.id,
                "to": message.to,
                "from": message.meta.get("from"),
                "text": message.body,
            },
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["X-Kanal-Signature"] = kanal_signature(self.secret, body)
        status, answer, answer_headers = await self.request(
            "sms_generic", "POST", self.url, data=body, headers=headers
        )
        self.check_status("sms_generic", status, answer, answer_headers)
        try:
            data = json.loads(answer) if answer else {}
        except ValueError:
            data = {}
        return str((data.get("id") if isinstance(data, dict) else None) or message.id)


# --------------------------------------------------------------------------- chat


class TelegramSender(HttpSender):
    """Bot API `sendMessage` at `{base_url}{token}/sendMessage` (base_url from config)."""

    def __init__(self, base_url: str, token: str, timeout_s: float):
        super().__init__(timeout_s)
        self.base_url = base_url
        self.token = token

    @property
    def configured(self) -> bool:
        return bool(self.token)

    async def send(self, message: OutboundMessage) -> str:
        if not self.token:
            raise PermanentSendError("telegram: bot_token is not configured")
        status, body, headers = await self.request(
            "telegram",
            "POST",
            f"{self.base_url}{self.token}/sendMessage",
            json={
                "chat_id": int(message.to) if message.to.lstrip("-").isdigit() else message.to,
                "text": message.body,
                "disable_web_page_preview": True,
            },
        )
        if status == 429:
            try:
                retry = float(json.loads(body)["parameters"]["retry_after"])
            except (ValueError, KeyError, TypeError):
                retry = None
            raise RetryableSendError("telegram: flood control (429)", retry_after_s=retry)
        self.check_status("telegram", status, body, headers)
        result = _json("telegram", body).get("result") or {}
        return str(result.get("message_id") or "")


# Graph errors meaning "this user cannot be messaged now / any more": never retried.
class MetaSender(HttpSender):
    """Send API: `POST {graph}/v21.0/me/messages?access_token=PAGE_TOKEN`, messaging_type
    RESPONSE (allowed only within the 24-hour window, checked by the caller too)."""

    def __init__(self, graph_url: str, page_tokens: Mapping[str, str], timeout_s: float):
        super().__init__(timeout_s)
        self.graph_url = graph_url.rstrip("/")
        self.page_tokens = dict(page_tokens)

    @property
    def configured(self) -> bool:
        return bool(self.page_tokens)

    async def send(self, message: OutboundMessage) -> str:
        page = str(message.meta.get("page_id") or "")
        token = self.page_tokens.get(page)
        if not token:
            raise PermanentSendError("meta: no page_token configured for this page/account")
        status, body, _ = await self.request(
            "meta",
            "POST",
            f"{self.graph_url}/v21.0/me/messages",
            params={"access_token": token},
            json={
                "recipient": {"id": message.to},
                "messaging_type": "RESPONSE",
                "message": {"text": message.body[:2000]},
            },
        )
        if status >= 400:
            try:
                error = json.loads(body).get("error") or {}
            except (ValueError, AttributeError):
                error = {}
            text = f"meta: HTTP {status}: {error.get('message') or body[:200]!r}"
            # Graph codes 4/17/32/613 are rate limits; 1/2 are transient service errors.
            if status == 429 or status >= 500 or error.get("code") in (1, 2, 4, 17, 32, 613):
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return str(_json("meta", body).get("message_id") or "")


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

    async def send(self, message: OutboundMessage) -> str:
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

    async def close(self) -> None:
        return None


# --------------------------------------------------------------------------- e-mail


class EmailSender:
    """A reply in the citizen's thread through the configured SMTP relay (stdlib smtplib in a
    worker thread). The Message-ID is fixed per outbound row, so a resend is recognisable."""

    def __init__(self, relay: str, timeout_s: float):
        self.relay = relay
        self.timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        return bool(self.relay)

    async def send(self, message: OutboundMessage) -> str:
        if not self.relay:
            raise PermanentSendError("email: channels.email.smtp_relay is not configured")
        mail = self.build(message)
        await asyncio.to_thread(self._send_sync, mail)
        return str(mail["Message-ID"])

    @staticmethod
    def build(message: OutboundMessage) -> EmailMessage:
        meta = message.meta
        mail = EmailMessage()
        mail["From"] = str(meta.get("from") or "")
        mail["To"] = message.to
        mail["Subject"] = str(meta.get("subject") or "")
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = str(meta.get("message_id"))
        if meta.get("in_reply_to"):
            mail["In-Reply-To"] = str(meta["in_reply_to"])
        if meta.get("references"):
            mail["References"] = str(meta["references"])
        # RFC 3834: our mail is automatic, so the citizen's autoresponder must not answer it.
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
        mail.set_content(message.body)
        return mail

    def _send_sync(self, mail: EmailMessage) -> None:
        host, port = parse_host_port(self.relay)
        try:
            smtp = smtplib.SMTP(host, port, timeout=self.timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            # Nothing was handed over before the session opened: safe to try again.
            raise RetryableSendError(f"email: cannot connect to the relay: {exc}") from exc
        try:
            with smtp:
                smtp.ehlo_or_helo_if_needed()
                if smtp.has_extn("starttls") and host not in ("127.0.0.1", "localhost", "::1"):
                    smtp.starttls()
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(400 <= c < 500 for c in codes):
                raise RetryableSendError(f"email: recipient deferred {codes}") from exc
            raise PermanentSendError(f"email: recipient refused {codes}") from exc
        except smtplib.SMTPResponseException as exc:
            text = f"email: SMTP {exc.smtp_code} {exc.smtp_error[:120]!r}"
            if 400 <= exc.smtp_code < 500:
                raise RetryableSendError(text) from exc
            raise PermanentSendError(text) from exc
        except (ConnectionRefusedError, smtplib.SMTPConnectError) as exc:
            raise RetryableSendError(f"email: cannot connect to the relay: {exc}") from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            raise UncertainSendError(f"email: relay stopped answering: {exc}") from exc
        except OSError as exc:
            raise RetryableSendError(f"email: relay unreachable: {exc}") from exc

    async def close(self) -> None:
        return None


# --------------------------------------------------------------------------- wiring


def build_senders(settings: Settings) -> dict[str, Sender]:
    """One sender per connector that can answer a citizen, built from the configuration."""
    ch = settings.channels
    timeout = settings.notify.timeout_s
    tokens = {
        page: token
        for page, account in ch.meta.accounts.items()
        if (token := read_secret(account, "page_token"))
    }
    meta = MetaSender(ch.meta.graph_url, tokens, timeout)
    twitter = ch.twitter
    return {
        "sms_twilio": TwilioSender(
            ch.sms_twilio.api_base_url,
            ch.sms_twilio.account_sid,
            read_secret(ch.sms_twilio, "auth_token") or "",
            ch.sms_twilio.from_number,
            timeout,
        ),
        "sms_vonage": VonageSender(
            ch.sms_vonage.api_base_url,
            ch.sms_vonage.api_key,
            read_secret(ch.sms_vonage, "api_secret") or "",
            ch.sms_vonage.from_number,
            timeout,
        ),
        "sms_kannel": KannelSender(
            ch.sms_kannel.sendsms_url,
            ch.sms_kannel.sendsms_user,
            read_secret(ch.sms_kannel, "sendsms_password") or "",
            timeout,
        ),
        "sms_generic": GenericSmsSender(
            ch.sms_generic.reply_url, read_secret(ch.sms_generic, "secret") or "", timeout
        ),
        "email": EmailSender(ch.email.smtp_relay, timeout),
        "telegram": TelegramSender(
            ch.telegram.base_url, read_secret(ch.telegram, "bot_token") or "", timeout
        ),
        "meta": meta,
        "twitter": XSender(
            {
                "consumer_key": twitter.consumer_key or None,
                "consumer_secret": read_secret(twitter, "consumer_secret"),
                "access_token": twitter.access_token or None,
                "access_token_secret": read_secret(twitter, "access_token_secret"),
                "bearer_token": read_secret(twitter, "bearer_token"),
            }
        ),
    }
