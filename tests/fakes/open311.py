"""A fake Open311 GeoReport v2 CRM (JSON format) on 127.0.0.1, with fault injection.

Used by the CRM client's tests, the end-to-end fault tests and the benchmarks::

    async with FakeOpen311() as crm:
        client = Open311Client(crm.endpoint, crm.api_key)
        crm.fail_next(2, status=503)
        ...
        assert not crm.duplicates()

It behaves like a strict real server: form-encoded POSTs only (415), ``api_key`` checked
(403), ``service_code`` required and, when ``services`` are given, known (400), one location
form required (``lat`` + ``long``, ``address_string`` or ``address_id``; 400), description
at most 4000 characters (400). Errors are GeoReport error arrays ``[{code, description}]``.

Faults are queued in the order they are injected and each applies to the next matching
request(s); ``on`` picks which requests they hit: ``"post"`` (``POST /requests.json``,
the default, so a status poll running alongside cannot eat a fault meant for a post),
``"get"`` or ``"any"``.

"Down" comes in two strengths: ``down()`` answers every request 503 at once (quick and
deterministic); ``await stop_listening()`` closes the socket so clients get a real
connection refused, and ``await start_listening()`` opens the same port again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeOpen311", "ServiceRecord"]

WIB = timezone(timedelta(hours=7), "WIB")
FaultScope = Literal["post", "get", "any"]


def _now() -> datetime:
    return datetime.now(WIB)


@dataclass
class ServiceRecord:
    """One service request the fake CRM created."""

    service_request_id: str
    kanal_id: str | None
    idempotency_key: str | None
    form: MultiDictProxy[str]
    token: str | None = None
    status: Literal["open", "closed"] = "open"
    status_notes: str | None = None
    agency_responsible: str | None = None
    requested_datetime: datetime = field(default_factory=_now)
    updated_datetime: datetime = field(default_factory=_now)
    token_polls: int = 0

    def as_open311(self) -> dict[str, Any]:
        form = self.form

        def number(name: str) -> float | None:
            value = form.get(name)
            return float(value) if value is not None else None

        return {
            "service_request_id": self.service_request_id,
            "status": self.status,
            "status_notes": self.status_notes,
            "service_name": form.get("service_code"),
            "service_code": form.get("service_code"),
            "description": form.get("description"),
            "agency_responsible": self.agency_responsible,
            "service_notice": None,
            "requested_datetime": self.requested_datetime.isoformat(),
            "updated_datetime": self.updated_datetime.isoformat(),
            "expected_datetime": None,
            "address": form.get("address_string"),
            "address_id": form.get("address_id"),
            "zipcode": None,
            "lat": number("lat"),
            "long": number("long"),
            "media_url": form.get("media_url"),
        }


@dataclass
class _Fault:
    kind: Literal["fail", "timeout", "rate_limit"]
    remaining: int
    on: FaultScope
    status: int = 500
    seconds: float = 0.0
    retry_after: str | None = None
    accept_after_timeout: bool = True

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and (
            self.on == "any" or (self.on == "post") == (method == "POST")
        )


def _errors(status: int, *descriptions: str) -> web.Response:
    body = [{"code": status, "description": d} for d in descriptions]
    return web.json_response(body, status=status)


def _is_coordinate(value: str | None, low: float, high: float) -> bool:
    if value is None:
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return low <= number <= high


class FakeOpen311(LoopbackServer):
    """A GeoReport v2 server in-process. See the module docstring for the behaviour."""

    base_path = "/open311/v2"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        latency_s: float = 0.0,
        honour_idempotency: bool = True,
        token_mode: bool = False,
        token_polls: int = 1,
        services: list[str] | None = None,
        agency_responsible: str = "Dinas Bina Marga",
        service_notice: str | None = "Ditindaklanjuti 3x24 jam",
        idempotency_conflicts: bool = False,
    ) -> None:
        """``token_polls``: how many ``GET /tokens/{t}.json`` answer "no id yet" before the
        id is given. ``idempotency_conflicts``: answer 422 when an ``Idempotency-Key`` comes
        back with a different form (as the IETF Idempotency-Key draft prescribes)."""
        self.api_key = api_key
        self.latency_s = latency_s
        self.honour_idempotency = honour_idempotency
        self.token_mode = token_mode
        self.token_polls = token_polls
        self.services = list(services) if services is not None else None
        self.agency_responsible = agency_responsible
        self.service_notice = service_notice
        self.idempotency_conflicts = idempotency_conflicts

        #: every POST /requests.json that arrived, as (headers, form), faults included
        self.requests: list[tuple[CIMultiDictProxy[str], MultiDictProxy[str]]] = []
        #: every GET that arrived, as (path, query)
        self.gets: list[tuple[str, MultiDictProxy[str]]] = []
        #: created service requests, in order of creation
        self.created: list[ServiceRecord] = []
        self.service_requests: dict[str, ServiceRecord] = {}

        self._by_key: dict[str, ServiceRecord] = {}
        self._by_token: dict[str, ServiceRecord] = {}
        self._rejections: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._down = False
        self._ids = itertools.count(1)
        self._background: set[asyncio.Task[web.StreamResponse]] = set()
        super().__init__()

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        return f"{self.root}{self.base_path}"

    def routes(self, app: web.Application) -> None:
        p = self.base_path
        app.router.add_post(f"{p}/requests.json", self._post_request)
        app.router.add_get(f"{p}/requests.json", self._get_requests)
        app.router.add_get(f"{p}/requests/{{id}}.json", self._get_request)
        app.router.add_get(f"{p}/tokens/{{token}}.json", self._get_token)
        app.router.add_get(f"{p}/services.json", self._get_services)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await super().stop()

    async def settle(self) -> None:
        """Wait until requests held by ``timeout_next`` have finished (and been processed
        when ``accept_after_timeout``)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # ------------------------------------------------------------------ fault injection

    def fail_next(self, n: int = 1, status: int = 500, *, on: FaultScope = "post") -> None:
        """The next ``n`` matching requests get ``status`` with an error array, unprocessed."""
        self._faults.append(_Fault("fail", n, on, status=status))

    def timeout_next(
        self,
        n: int = 1,
        seconds: float = 1.0,
        *,
        accept_after_timeout: bool = True,
        on: FaultScope = "post",
    ) -> None:
        """The next ``n`` matching requests are held ``seconds`` (make it longer than the
        client's timeout). With ``accept_after_timeout`` a held POST is then processed as
        usual, which models "the CRM accepted it but the client had given up"; without, it
        is dropped. Use ``settle()`` before counting."""
        self._faults.append(
            _Fault("timeout", n, on, seconds=seconds, accept_after_timeout=accept_after_timeout)
        )

    def rate_limit_next(
        self, n: int = 1, retry_after: float | str | None = 2, *, on: FaultScope = "post"
    ) -> None:
        """The next ``n`` matching requests get 429 with ``Retry-After`` (seconds, or an
        HTTP-date string; None leaves the header out)."""
        header = None
        if retry_after is not None:
            header = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self._faults.append(_Fault("rate_limit", n, on, status=429, retry_after=header))

    def reject_field(self, name: str, message: str) -> None:
        """Every POST carrying form field ``name`` gets 400 ``[{"code":400,"description":
        message}]`` until ``accept_field(name)``."""
        self._rejections[name] = message

    def accept_field(self, name: str) -> None:
        self._rejections.pop(name, None)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._rejections.clear()
        self._down = False

    def down(self) -> None:
        """Answer every request 503 at once until ``up()``."""
        self._down = True

    def up(self) -> None:
        self._down = False

    async def stop_listening(self) -> None:
        """Close the listening socket: clients get connection refused."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def start_listening(self) -> None:
        """Listen again on the same port after ``stop_listening()``."""
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, self.host, self.port)
            await self._site.start()

    # ------------------------------------------------------------------ the CRM's side

    def close_request(self, service_request_id: str, notes: str | None = None) -> None:
        self._change(service_request_id, "closed", notes)

    def update_request(self, service_request_id: str, notes: str | None = None) -> None:
        self._change(service_request_id, None, notes)

    def _change(self, request_id: str, status: Literal["closed"] | None, notes: str | None) -> None:
        record = self.service_requests[request_id]
        if status is not None:
            record.status = status
        if notes is not None:
            record.status_notes = notes
        record.updated_datetime = max(_now(), record.updated_datetime + timedelta(microseconds=1))

    # ------------------------------------------------------------------ counters

    def unique_reports(self) -> set[str]:
        """``attribute[kanal_id]`` of every created service request."""
        return {r.kanal_id for r in self.created if r.kanal_id is not None}

    def duplicates(self) -> set[str]:
        """kanal ids for which more than one service request was created."""
        counts = Counter(r.kanal_id for r in self.created if r.kanal_id is not None)
        return {kanal_id for kanal_id, n in counts.items() if n > 1}

    def record_for(self, kanal_id: str) -> ServiceRecord:
        """The (first) service request created for a kanal report id."""
        for record in self.created:
            if record.kanal_id == kanal_id:
                return record
        raise KeyError(kanal_id)

    # ------------------------------------------------------------------ handlers

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                return fault
        self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    async def _before(self, request: web.Request) -> tuple[web.Response | None, _Fault | None]:
        """Latency, "down", and the fail/rate-limit faults. Returns an early answer or the
        timeout fault the handler must apply."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self._down:
            return _errors(503, "Service temporarily unavailable"), None
        fault = self._take_fault(request.method)
        if fault is None:
            return None, None
        if fault.kind == "fail":
            return _errors(fault.status, f"Injected failure (HTTP {fault.status})"), None
        if fault.kind == "rate_limit":
            response = _errors(429, "Too many requests")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            return response, None
        return None, fault

    async def _held(self, fault: _Fault, then: Any) -> web.StreamResponse:
        """Hold a request ``fault.seconds`` in a task that survives the client going away."""

        async def hold() -> web.StreamResponse:
            await asyncio.sleep(fault.seconds)
            if fault.accept_after_timeout:
                return await then()
            return _errors(504, "Injected timeout")

        task = asyncio.ensure_future(hold())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _post_request(self, request: web.Request) -> web.StreamResponse:
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        is_form = request.content_type == "application/x-www-form-urlencoded"
        fields = MultiDict[str]()
        if is_form:  # a form-encoded body holds strings only (no file parts)
            fields.extend((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
        form = MultiDictProxy(fields)
        self.requests.append((headers, form))
        early, held = await self._before(request)
        if early is not None:
            return early
        if not is_form:
            return _errors(415, "POST /requests must be application/x-www-form-urlencoded")
        if held is not None:
            return await self._held(held, lambda: self._create(headers, form))
        return await self._create(headers, form)

    async def _create(
        self, headers: CIMultiDictProxy[str], form: MultiDictProxy[str]
    ) -> web.Response:
        if form.get("api_key") != self.api_key:
            return _errors(403, "Invalid or missing api_key")
        key = headers.get("Idempotency-Key")
        if self.honour_idempotency and key and key in self._by_key:
            existing = self._by_key[key]
            if self.idempotency_conflicts and _fingerprint(existing.form) != _fingerprint(form):
                return _errors(422, "Idempotency-Key reused with a different request")
            return self._created_answer(existing)
        problems = [msg for name, msg in self._rejections.items() if name in form]
        if problems:
            return _errors(400, *problems)
        service_code = form.get("service_code")
        if not service_code:
            return _errors(400, "service_code is required")
        if self.services is not None and service_code not in self.services:
            return _errors(400, f"service_code {service_code!r} is not a known service")
        has_lat, has_long = "lat" in form, "long" in form
        if has_lat != has_long:
            return _errors(400, "lat and long must be given together")
        if has_lat and not (
            _is_coordinate(form.get("lat"), -90, 90) and _is_coordinate(form.get("long"), -180, 180)
        ):
            return _errors(400, "lat/long are not WGS84 coordinates")
        if not (has_lat or form.get("address_string") or form.get("address_id")):
            return _errors(
                400, "A location is required: lat and long, address_string or address_id"
            )
        if len(form.get("description", "")) > 4000:
            return _errors(400, "description is longer than 4000 characters")

        number = next(self._ids)
        record = ServiceRecord(
            service_request_id=f"SR-{number:06d}",
            kanal_id=form.get("attribute[kanal_id]"),
            idempotency_key=key,
            form=form,
            token=f"TK-{number:06d}" if self.token_mode else None,
            agency_responsible=self.agency_responsible,
        )
        self.created.append(record)
        self.service_requests[record.service_request_id] = record
        if key and self.honour_idempotency:
            self._by_key[key] = record
        if record.token:
            self._by_token[record.token] = record
        return self._created_answer(record)

    def _created_answer(self, record: ServiceRecord) -> web.Response:
        if record.token is not None:
            return web.json_response([{"token": record.token}])
        answer: dict[str, Any] = {"service_request_id": record.service_request_id}
        if self.service_notice:
            answer["service_notice"] = self.service_notice
        return web.json_response([answer])

    async def _get(self, request: web.Request, answer: Any) -> web.StreamResponse:
        self.gets.append((request.path, MultiDictProxy(MultiDict(request.query))))
        early, held = await self._before(request)
        if early is not None:
            return early
        if held is not None:

            async def later() -> web.StreamResponse:
                return answer()

            return await self._held(held, later)
        return answer()

    async def _get_requests(self, request: web.Request) -> web.StreamResponse:
        def answer() -> web.Response:
            wanted = request.query.get("service_request_id")
            if wanted is not None:
                ids = [i.strip() for i in wanted.split(",") if i.strip()]
                records = [self.service_requests[i] for i in ids if i in self.service_requests]
            else:
                records = list(self.created)
                if status := request.query.get("status"):
                    records = [r for r in records if r.status == status]
                if code := request.query.get("service_code"):
                    records = [r for r in records if r.form.get("service_code") == code]
            return web.json_response([r.as_open311() for r in records[:1000]])

        return await self._get(request, answer)

    async def _get_request(self, request: web.Request) -> web.StreamResponse:
        def answer() -> web.Response:
            record = self.service_requests.get(request.match_info["id"])
            if record is None:
                return _errors(404, "No such service request")
            return web.json_response([record.as_open311()])

        return await self._get(request, answer)

    async def _get_token(self, request: web.Request) -> web.StreamResponse:
        def answer() -> web.Response:
            token = request.match_info["token"]
            record = self._by_token.get(token)
            if record is None:
                return _errors(404, "No such token")
            record.token_polls += 1
            if record.token_polls <= self.token_polls:
                return web.json_response([{"token": token}])
            return web.json_response(
                [{"token": token, "service_request_id": record.service_request_id}]
            )

        return await self._get(request, answer)

    async def _get_services(self, request: web.Request) -> web.StreamResponse:
        def answer() -> web.Response:
            services = [
                {
                    "service_code": code,
                    "service_name": code,
                    "description": "",
                    "metadata": False,
                    "type": "realtime",
                    "keywords": "",
                    "group": "",
                }
                for code in self.services or []
            ]
            return web.json_response(services)

        return await self._get(request, answer)


def _fingerprint(form: MultiDictProxy[str]) -> str:
    return json.dumps(sorted((k, v) for k, v in form.items() if k != "api_key"))
