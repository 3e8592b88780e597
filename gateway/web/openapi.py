"""The admin API's response models and its OpenAPI 3 document (`GET /api/v1/openapi.json`).

The document is generated from the same pydantic models the handlers parse requests with
and build responses from, so the two cannot drift apart; `ROUTES` is the one table of
what each route takes and answers (tests check the app's router against it).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel
from pydantic.json_schema import models_json_schema

from gateway.base.errors import ApiError
from gateway.pipeline.enrich import EnrichmentPatch, RejectBody
from normalizers.report import STATUSES, AreaRef, Report

REF = "#/components/schemas/{model}"


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """Every error: a code to act on, a message for people, and details per code."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class ErrorBody(Out):
    error: ErrorDetail


class ClaimedDetail(Out):
    code: Literal["claimed"]
    message: str
    holder: str
    until: datetime


class ClaimedError(Out):
    """409 when another admin holds the report's lease."""

    error: ClaimedDetail


class WrongStatusDetail(Out):
    code: Literal["wrong_status"]
    message: str
    current: str


class WrongStatusError(Out):
    """409 when the report's status does not allow the action (e.g. reopening an open one)."""

    error: WrongStatusDetail


class NoAttentionDetail(Out):
    code: Literal["no_attention"]
    message: str


class NoAttentionError(Out):
    """409 from `PATCH {"attention": null}` on a report that is not flagged."""

    error: NoAttentionDetail


class NotFailedDetail(Out):
    code: Literal["not_failed"]
    message: str
    current_status: str


class NotFailedError(Out):
    """409 from retry: only a failed report can be sent again."""

    error: NotFailedDetail


class Conflict(RootModel[ClaimedError | WrongStatusError | NoAttentionError]):
    """409 from the enrichment writes: `claimed` (another holds the lease: `holder`,
    `until`), `wrong_status` (the report's `current` status does not allow it) or
    `no_attention` (clearing a flag that is not set)."""


class IncompleteDetail(Out):
    code: Literal["incomplete"]
    message: str
    missing: list[Literal["location", "category"]]


class IncompleteError(Out):
    """422 from submit: exactly what the report still needs."""

    error: IncompleteDetail


class ReportPage(Out):
    items: list[Report]
    next_cursor: str | None


class ActiveModel(Out):
    """The text model learned from admins' decisions that categorizes new reports."""

    id: int
    trained_at: datetime
    trained_on: int  # labelled reports it learned from
    evaluated_on: int  # the most recent labelled reports it was measured on
    category_accuracy: float | None
    noise_accuracy: float | None
    activated_at: datetime | None


class Stats(Out):
    by_channel: dict[str, int]
    by_status: dict[str, int]
    by_owner: dict[str, int]
    oldest_waiting: dict[str, datetime]
    by_geo: dict[str, int]
    model: ActiveModel | None = None  # null: the keyword rules alone categorize


class InboxItem(Out):
    id: str
    connector: str
    channel: str
    external_id: str
    received_at: datetime
    stored_at: datetime
    error: str | None
    attempts: int
    payload_base64: str
    payload_size: int


class InboxPage(Out):
    items: list[InboxItem]
    next_cursor: str | None


class GeocodeSuggestion(Out):
    lat: float
    lon: float
    kelurahan: AreaRef | None
    kecamatan: AreaRef | None
    kota: AreaRef | None
    display_name: str
    source: str
    confidence: float


class GeocodePage(Out):
    items: list[GeocodeSuggestion]


# Free text in a parameter: anything but control characters (PostgreSQL refuses NUL).
TEXT = "^[^\\u0000-\\u001f\\u007f]*$"
RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _text(max_length: int, **more: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": TEXT, **more}


@dataclass(frozen=True)
class Param:
    """One parameter as documented; `parse` reads it by that very schema, so what the
    document promises and what the handlers accept are one thing."""

    name: str
    where: Literal["query", "path", "header"]
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: _text(200))

    def parse(self, raw: str | None) -> Any:
        """The value of `raw` (None when absent: the default); ApiError 400 naming the
        parameter when it is not what the document says."""
        if raw is None:
            if self.required:
                raise self.bad("is required")
            return self.schema.get("default")
        schema = self.schema
        kind = schema.get("type", "string")
        if kind == "integer":
            if not re.fullmatch(r"[0-9]{1,9}", raw):
                raise self.bad("must be a whole number")
            value: Any = int(raw)
            low, high = schema.get("minimum"), schema.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise self.bad(f"must be {low}..{high}")
            return value
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise self.bad("must be true or false")
            return raw == "true"
        if len(raw) < schema.get("minLength", 0) or len(raw) > schema.get("maxLength", 10**6):
            raise self.bad(
                f"must be {schema.get('minLength', 0)} to {schema.get('maxLength')} characters"
            )
        if "pattern" in schema and not re.search(schema["pattern"], raw):
            raise self.bad("is not in the documented form")
        if schema.get("format") == "date-time":
            return _date_time(raw, self)
        return raw

    def bad(self, problem: str) -> ApiError:
        return ApiError(400, "bad_parameter", f"{self.name} {problem}", parameter=self.name)


def _date_time(raw: str, param: Param) -> datetime:
    """RFC 3339 (what JSON Schema's date-time is), as an aware UTC datetime; a leap second
    reads as :59, and a time whose offset carries it past year 1 or 9999 is clamped."""
    found = RFC3339.match(raw)
    if not found:
        raise param.bad("must be an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    fraction, offset = found.group(7) or "", found.group(8).upper()
    text = (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{min(second, 59):02d}"
        f"{fraction[:7]}{'+00:00' if offset == 'Z' else offset}"
    )
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise param.bad("must be an RFC 3339 date-time") from None
    try:
        return when.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if year < 5000 else datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    public: bool = False


ID = Param(
    "id",
    "path",
    "The report's id (ULID) or its ticket (KNL-…)",
    required=True,
    schema={"type": "string", "pattern": "^[0-9A-Za-z-]{1,64}$"},
)
IF_MATCH = Param(
    "If-Match",
    "header",
    "The report's version as last read: the integer (7) or the ETag kanal sent with it "
    '("7"); 428 without it, 412 when stale',
    required=True,
    schema={"type": "string", "pattern": '^(W/)?("[0-9]{1,9}"|[0-9]{1,9})$'},
)
LIMIT = Param(
    "limit",
    "query",
    "Page size",
    schema={"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
)
CURSOR = Param(
    "cursor",
    "query",
    "next_cursor of the previous page (400 for anything else)",
    schema={"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[A-Za-z0-9_-]+$"},
)
LIST_PARAMS = (LIMIT, CURSOR)
_STATUS = "(" + "|".join(STATUSES) + ")"
_OWNER = (
    "^(province|kota:[0-9]{2}\\.[0-9]{2}|kecamatan:[0-9]{2}\\.[0-9]{2}\\.[0-9]{2}|"
    "kelurahan:[0-9]{2}\\.[0-9]{2}\\.[0-9]{2}\\.[0-9]{4}|office:[a-z0-9_]{1,64})$"
)
CHANNEL = Param("channel", "query", "A channel code", schema=_text(64))
OWNER = Param(
    "owner",
    "query",
    "An owner such as kelurahan:31.71.06.1001",
    schema={"type": "string", "pattern": _OWNER},
)
SEARCH_PARAMS = (
    Param(
        "status",
        "query",
        "One status, or several separated by commas",
        schema={"type": "string", "pattern": f"^{_STATUS}(,{_STATUS})*$"},
    ),
    CHANNEL,
    OWNER,
    Param("geo", "query", "true or false", schema={"type": "boolean"}),
    Param(
        "attention",
        "query",
        "true: only reports flagged for their owner's attention (e.g. the citizen wrote "
        "again after done); false: only the others",
        schema={"type": "boolean"},
    ),
    Param(
        "kelurahan",
        "query",
        "Code of the kelurahan of the report's location",
        schema={"type": "string", "pattern": "^[0-9]{2}\\.[0-9]{2}\\.[0-9]{2}\\.[0-9]{4}$"},
    ),
    Param("q", "query", "Text (ticket, title, text, description), 1 to 200 characters"),
    Param(
        "since",
        "query",
        "RFC 3339 date-time; on received_at (an empty value is refused)",
        schema={"type": "string", "format": "date-time"},
    ),
    *LIST_PARAMS,
)
QUEUE_PARAMS = (CHANNEL, OWNER, *LIST_PARAMS)
GEOCODE_PARAMS = (
    Param("q", "query", "Address text, 1 to 200 characters", required=True),
    Param(
        "limit",
        "query",
        "How many suggestions",
        schema={"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
    ),
)
E = ErrorBody  # the common error body, for brevity in the table
ROUTES: tuple[Route, ...] = (
    Route(
        "get",
        "/api/v1/queue",
        "The enrichment queue in the caller's scope, oldest first",
        {200: ReportPage, 400: E, 401: E, 403: E},
        params=QUEUE_PARAMS,
    ),
    Route(
        "get",
        "/api/v1/reports",
        "Search reports in scope, newest first",
        {200: ReportPage, 400: E, 401: E, 403: E},
        params=SEARCH_PARAMS,
    ),
    Route(
        "get",
        "/api/v1/reports/{id}",
        "One report with its history",
        {200: Report, 401: E, 403: E, 404: E},
        params=(ID,),
    ),
    Route(
        "patch",
        "/api/v1/reports/{id}",
        "Enrich a report (takes or renews the lease)",
        {200: Report, 400: E, 401: E, 403: E, 404: E, 409: Conflict, 412: E, 422: E, 428: E},
        body=EnrichmentPatch,
        params=(ID, IF_MATCH),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/claim",
        "Take a 15-minute lease on the report",
        {200: Report, 401: E, 403: E, 404: E, 409: Conflict},
        params=(ID,),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/release",
        "Give the lease back",
        {200: Report, 401: E, 403: E, 404: E, 409: Conflict},
        params=(ID,),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/submit",
        "Queue the enriched report for the CRM",
        {202: Report, 401: E, 403: E, 404: E, 409: Conflict, 422: IncompleteError},
        params=(ID,),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/reject",
        "Reject with a reason",
        {200: Report, 400: E, 401: E, 403: E, 404: E, 409: Conflict, 422: E},
        body=RejectBody,
        params=(ID,),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/reopen",
        "Put a rejected report back in the queue",
        {200: Report, 401: E, 403: E, 404: E, 409: Conflict},
        params=(ID,),
    ),
    Route(
        "post",
        "/api/v1/reports/{id}/retry",
        "Send a failed report to the CRM again",
        {202: Report, 401: E, 403: E, 404: E, 409: NotFailedError},
        params=(ID,),
    ),
    Route("get", "/api/v1/stats", "Counts in the caller's scope", {200: Stats, 401: E, 403: E}),
    Route(
        "get",
        "/api/v1/inbox",
        "Raw messages that failed normalization (province)",
        {200: InboxPage, 400: E, 401: E, 403: E},
        params=LIST_PARAMS,
    ),
    Route(
        "get",
        "/api/v1/geocode",
        "Location suggestions for an address text",
        {200: GeocodePage, 400: E, 401: E, 403: E},
        params=GEOCODE_PARAMS,
    ),
    Route("get", "/api/v1/openapi.json", "This document", {}, public=True),
)
# `retry` is served by gateway/dispatcher.py (CRM delivery) and documented here with the rest.

_STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    400: "Bad request",
    401: "No or bad token",
    403: "Wrong role or scope",
    404: "Not found (or outside the caller's scope)",
    409: "Conflict",
    412: "Stale version",
    422: "Refused by the rules",
    428: "If-Match required",
}


def _models() -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for route in ROUTES:
        for model in (*route.responses.values(), *([route.body] if route.body else [])):
            seen[model.__name__] = model
    return list(seen.values())


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (JSON Schema 2020-12 dialect, which pydantic emits)."""
    models = _models()
    # One schema per model for both directions: responses are what the handlers dump,
    # bodies what they validate; pydantic names them apart only if they differ.
    keyed, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas = defs.get("$defs", {})
    ref_of = {m: keyed[(m, "serialization")] for m in models}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if route.path == "/api/v1/openapi.json":
            responses: dict[str, Any] = {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            }
        else:
            responses = {
                str(status): {
                    "description": _STATUS_TEXT.get(status, "Answer"),
                    "content": {"application/json": {"schema": ref_of[model]}},
                }
                for status, model in sorted(route.responses.items())
            }
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method}_{route.path.removeprefix('/api/v1/')}".replace("/", "_")
            .replace("{", "")
            .replace("}", "")
            .replace(".", "_"),
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required,
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in route.params
            ],
            "responses": responses,
        }
        if route.public:
            operation["security"] = []
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[route.body]}},
            }
        paths.setdefault(route.path, {})[route.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kanal admin API",
            "version": "1",
            "description": "The enrichment queue and reports of kanal. "
            'Errors are {"error": {"code", "message", …}}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    }


def query_names(method: str, path: str) -> frozenset[str] | None:
    """The documented query parameters of a route (None when the route is not documented)."""
    for route in ROUTES:
        if route.method == method.lower() and route.path == path:
            return frozenset(p.name for p in route.params if p.where == "query")
    return None


def response_model(method: str, path: str, status: int) -> type[BaseModel] | None:
    """The documented model of a route's answer (tests validate live answers with it)."""
    for route in ROUTES:
        if route.method == method.lower() and route.path == path:
            return route.responses.get(status)
    return None
