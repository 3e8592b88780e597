"""The Open311 GeoReport v2 wire (JSON format): what kanal sends, and what the answers mean.

Knows nothing of channels or the store. Posting returns an outcome value (``Accepted``,
``Pending``, ``RetryLater``, ``Rejected``) and never raises for anything the CRM or the
network does; the caller records it per report and applies the ``RetryPolicy``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp

__all__ = [
    "DESCRIPTION_MAX_CHARS",
    "RESERVED_ATTRIBUTES",
    "STATUS_BATCH_SIZE",
    "USER_AGENT",
    "Accepted",
    "CrmError",
    "Open311Client",
    "Pending",
    "PostOutcome",
    "Rejected",
    "RemoteStatus",
    "RetryLater",
    "ServiceRequest",
    "form_fields",
    "parse_retry_after",
]

USER_AGENT = "kanal/0.1"
DESCRIPTION_MAX_CHARS = 4000  # GeoReport v2: "description … may be up to 4,000 characters"
ERROR_TEXT_MAX_CHARS = 500
STATUS_BATCH_SIZE = 50  # ids per GET /requests.json; keeps the query string short
ELLIPSIS = "…"
RESERVED_ATTRIBUTES = frozenset({"kanal_id", "ticket", "channel", "kelurahan"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

# 408 Request Timeout, 409 Conflict (the IETF Idempotency-Key draft answers 409 while the
# first request with the same key is still being processed), 425 Too Early, 429 Too Many
# Requests: the same request can succeed later, so they are retried like 5xx.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})

_ATTRIBUTE_CODE = re.compile(r"^[A-Za-z0-9_.:-]+$")


# ---------------------------------------------------------------------------- what to send


@dataclass(frozen=True)
class ServiceRequest:
    """One report as the CRM should receive it; every choice was made by the caller.

    ``None`` (or empty) optional fields are left out of the form. A confidential report is
    one where the caller passed no name, e-mail or phone.
    """

    report_id: str
    ticket: str
    channel: str
    kelurahan_code: str | None
    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    description: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    media_url: str | None = None
    extra_attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.report_id:
            problems.append("report_id is required (it is the Idempotency-Key)")
        if not self.service_code:
            problems.append("service_code is required")
        if (self.lat is None) != (self.long is None):
            problems.append("lat and long go together: give both or neither")
        for name, value in (("lat", self.lat), ("long", self.long)):
            if value is not None and not math.isfinite(value):
                problems.append(f"{name} must be a finite number, not {value!r}")
        for code in self.extra_attributes:
            if code in RESERVED_ATTRIBUTES:
                problems.append(f"attribute[{code}] is set by kanal itself")
            elif not _ATTRIBUTE_CODE.match(code):
                problems.append(f"attribute code {code!r} has characters Open311 cannot carry")
        if problems:
            raise ValueError(f"report {self.report_id!r}: " + "; ".join(problems))


def format_coordinate(value: float) -> str:
    """At most 7 decimals (about 1 cm), no trailing zeros, never exponent notation."""
    text = f"{value:.7f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def truncate_description(text: str, limit: int = DESCRIPTION_MAX_CHARS) -> str:
    """Cut to ``limit`` characters, the last being an ellipsis, when the text is longer."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def form_fields(req: ServiceRequest, api_key: str, jurisdiction_id: str) -> list[tuple[str, str]]:
    """The form of ``POST /requests.json`` for ``req``, in a stable order. Pure.

    The description is sent as plain text (GeoReport forbids HTML; kanal never produces
    any), cut to 4000 characters with an ellipsis.
    """
    fields: list[tuple[str, str]] = [("api_key", api_key)]
    if jurisdiction_id:
        fields.append(("jurisdiction_id", jurisdiction_id))
    fields.append(("service_code", req.service_code))
    if req.lat is not None and req.long is not None:
        fields.append(("lat", format_coordinate(req.lat)))
        fields.append(("long", format_coordinate(req.long)))
    optional: list[tuple[str, str | None]] = [
        ("address_string", req.address_string),
        (
            "description",
            truncate_description(req.description) if req.description is not None else None,
        ),
        ("first_name", req.first_name),
        ("last_name", req.last_name),
        ("email", req.email),
        ("phone", req.phone),
        ("media_url", req.media_url),
        ("attribute[kanal_id]", req.report_id),
        ("attribute[ticket]", req.ticket),
        ("attribute[channel]", req.channel),
        ("attribute[kelurahan]", req.kelurahan_code),
    ]
    optional.extend((f"attribute[{code}]", value) for code, value in req.extra_attributes.items())
    fields.extend((name, value) for name, value in optional if value)
    return fields


# ---------------------------------------------------------------------------- what comes back


@dataclass(frozen=True)
class Accepted:
    """The CRM created the service request."""

    service_request_id: str
    service_notice: str | None = None


@dataclass(frozen=True)
class Pending:
    """The CRM took the request and will create it later; resolve ``token`` to learn its id."""

    token: str


@dataclass(frozen=True)
class RetryLater:
    """Not delivered, for a reason that can pass: 5xx, 408/409/425/429, a timeout, a
    connection error, a redirect, or a 2xx whose body could not be understood."""

    error: str
    retry_after_s: float | None = None
    status: int | None = None


@dataclass(frozen=True)
class Rejected:
    """The CRM refused this request (a 4xx other than the retryable ones); ``error`` is the
    CRM's own text. Sending it again unchanged would fail again."""

    error: str
    status: int


PostOutcome = Accepted | Pending | RetryLater | Rejected


@dataclass(frozen=True)
class RemoteStatus:
    """A service request as the CRM reports it in ``GET /requests.json``."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    updated_datetime: datetime | None
    agency_responsible: str | None


class CrmError(Exception):
    """A status query or token resolution failed. ``retryable`` says whether asking again
    later can help (transport errors, 5xx, 408/409/425/429) or not (other 4xx)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None if absent
    or unreadable; a date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)


def _first_object(payload: Any) -> Mapping[str, Any] | None:
    """GeoReport answers an array of one object; some servers answer the bare object."""
    if isinstance(payload, list):
        payload = payload[0] if payload else None
    return payload if isinstance(payload, Mapping) else None


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def error_text(body: bytes) -> str:
    """The CRM's own words from an error body: the GeoReport error array's descriptions
    joined with "; ", else the body text cut to 500 characters."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        payload = payload.get("errors", payload.get("error", [payload]))
    if isinstance(payload, Mapping):
        payload = [payload]
    if isinstance(payload, list):
        parts = []
        for item in payload:
            if isinstance(item, Mapping):
                part = _text_of(item.get("description")) or _text_of(item.get("message"))
                part = part or _text_of(item.get("code"))
            else:
                part = _text_of(item)
            if part:
                parts.append(part)
        if parts:
            return "; ".join(parts)[:ERROR_TEXT_MAX_CHARS]
    return text.strip()[:ERROR_TEXT_MAX_CHARS]


def interpret_post_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None
) -> PostOutcome:
    """Turn one HTTP answer to ``POST /requests.json`` into an outcome. Pure."""
    if 200 <= status < 300:
        try:
            item = _first_object(json.loads(body.decode("utf-8")))
        except ValueError:
            item = None
        if item is not None:
            request_id = _text_of(item.get("service_request_id"))
            if request_id:
                return Accepted(request_id, _text_of(item.get("service_notice")))
            token = _text_of(item.get("token"))
            if token:
                return Pending(token)
        snippet = body.decode("utf-8", errors="replace").strip()[:200]
        return RetryLater(
            f"HTTP {status} without service_request_id or token: {snippet!r}", None, status
        )
    retry_after = parse_retry_after(headers.get("Retry-After"), now=now)
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Rejected(error_text(body) or f"HTTP {status}", status)
    detail = error_text(body)
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    return RetryLater(message, retry_after, status)


def _parse_datetime(value: Any, assume_tz: tzinfo) -> datetime | None:
    text = _text_of(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=assume_tz)


def parse_statuses(payload: Any, assume_tz: tzinfo = UTC) -> list[RemoteStatus]:
    """``GET /requests.json`` answer → statuses; items without an id are skipped. Any status
    other than ``closed`` is ``open`` (GeoReport knows only those two)."""
    items = payload if isinstance(payload, list) else [payload]
    statuses = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        request_id = _text_of(item.get("service_request_id"))
        if request_id is None:
            continue
        raw_status = (_text_of(item.get("status")) or "open").lower()
        statuses.append(
            RemoteStatus(
                service_request_id=request_id,
                status="closed" if raw_status == "closed" else "open",
                status_notes=_text_of(item.get("status_notes")),
                updated_datetime=_parse_datetime(item.get("updated_datetime"), assume_tz),
                agency_responsible=_text_of(item.get("agency_responsible")),
            )
        )
    return statuses


def _batches(ids: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# ---------------------------------------------------------------------------- the client


class Open311Client:
    """An Open311 GeoReport v2 endpoint, e.g. ``https://crm.example/open311/v2``.

    Pass ``session`` to share a connection pool (it is then not closed here); otherwise
    the client opens its own on first use and ``close()`` closes it. ``timeout_s`` bounds
    each whole HTTP exchange. Naive ``updated_datetime`` values are read in ``assume_tz``.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        jurisdiction_id: str = "",
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 15.0,
        assume_tz: tzinfo = UTC,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.assume_tz = assume_tz
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Open311Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _query_params(self) -> list[tuple[str, str]]:
        params = []
        if self.api_key:
            params.append(("api_key", self.api_key))
        if self.jurisdiction_id:
            params.append(("jurisdiction_id", self.jurisdiction_id))
        return params

    async def post_request(self, req: ServiceRequest) -> PostOutcome:
        """``POST {endpoint}/requests.json`` once. Never raises for CRM or network trouble."""
        body = urlencode(form_fields(req, self.api_key, self.jurisdiction_id)).encode("utf-8")
        headers = {
            "Content-Type": FORM_CONTENT_TYPE,
            "Idempotency-Key": req.report_id,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        try:
            async with self._session_or_new().post(
                f"{self.endpoint}/requests.json",
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,  # a redirected POST would be re-sent as a GET
            ) as response:
                answer = await response.read()
                if 300 <= response.status < 400:
                    location = response.headers.get("Location", "")
                    return RetryLater(
                        f"HTTP {response.status}: unexpected redirect to {location!r}"
                        " (check crm.endpoint)",
                        None,
                        response.status,
                    )
                return interpret_post_response(response.status, response.headers, answer)
        except TimeoutError:
            return RetryLater(
                f"timed out after {self.timeout.total:g} s (the CRM may have accepted it)"
            )
        except aiohttp.ClientError as exc:
            return RetryLater(f"{type(exc).__name__}: {exc}")

    async def _get_json(self, url: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
        """GET returning (status, JSON) for 2xx and 404; raises ``CrmError`` otherwise."""
        try:
            async with self._session_or_new().get(
                url,
                params=params,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=self.timeout,
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise CrmError(f"GET {url} timed out after {self.timeout.total:g} s") from exc
        except aiohttp.ClientError as exc:
            raise CrmError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if status == 404:
            return status, None
        if not 200 <= status < 300:
            retryable = status >= 500 or status in RETRYABLE_4XX or status < 400
            raise CrmError(
                f"GET {url}: HTTP {status}: {error_text(body)}",
                status=status,
                retryable=retryable,
                retry_after_s=retry_after,
            )
        try:
            return status, json.loads(body.decode("utf-8"))
        except ValueError as exc:
            raise CrmError(f"GET {url}: HTTP {status} with a body that is not JSON") from exc

    async def resolve_token(self, token: str) -> str | None:
        """``GET {endpoint}/tokens/{token}.json``: the service_request_id once the CRM knows
        it; None while it does not (no id yet, or 404). Raises ``CrmError`` on failure."""
        url = f"{self.endpoint}/tokens/{quote(token, safe='')}.json"
        _, payload = await self._get_json(url, self._query_params())
        item = _first_object(payload)
        return _text_of(item.get("service_request_id")) if item is not None else None

    async def fetch_statuses(self, ids: Sequence[str]) -> list[RemoteStatus]:
        """``GET {endpoint}/requests.json?service_request_id=a,b,c`` for ``ids``.

        Batching is done here: ``STATUS_BATCH_SIZE`` (50) ids per request, one request after
        the other. Ids the CRM does not return are simply absent from the answer. Raises
        ``CrmError`` when a batch fails (statuses of earlier batches are then discarded;
        polling is idempotent, the caller asks again next round).
        """
        unique = list(dict.fromkeys(i for i in ids if i))
        statuses: list[RemoteStatus] = []
        for batch in _batches(unique, STATUS_BATCH_SIZE):
            params = [*self._query_params(), ("service_request_id", ",".join(batch))]
            _, payload = await self._get_json(f"{self.endpoint}/requests.json", params)
            if payload is not None:
                statuses.extend(parse_statuses(payload, self.assume_tz))
        return statuses
