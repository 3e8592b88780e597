"""Where ready reports go, one class per destination (as FixMyStreet's senders): `Hold`
keeps them in kanal until a CRM is configured, `Open311` posts them to an Open311
GeoReport v2 endpoint. `crm.mode` names the one a deployment uses (DESTINATIONS)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from crm_client import (
    Open311Client,
    PostOutcome,
    ServiceRequest,
)
from gateway.base.config import read_secret
from gateway.base.runtime import Runtime
from gateway.crm.media_links import media_url
from normalizers.report import Report

LOCATION_PRECISION = "location_precision"


class Destination(Protocol):
    name: str
    # Whether ready reports leave kanal now; when not, why (what /readyz shows).
    sends: bool
    waiting: str | None

    async def post(self, report: Report, first_attempt_at: datetime) -> PostOutcome:
        """One attempt; ValueError for a report that cannot be sent as it is."""

    async def resolve(self, token: str) -> str | None:
        """The CRM's id for an accepted request it answered with a token; None: not yet."""

    async def close(self) -> None: ...


class Hold:
    """`crm.mode = "hold"`: nothing leaves; ready reports wait, in order of arrival, until
    the mode changes."""

    name: str = "hold"
    sends: bool = False
    waiting: str | None = "hold: ready reports wait for a CRM"

    async def post(self, report: Report, first_attempt_at: datetime) -> PostOutcome:
        raise RuntimeError("the hold destination sends nothing")

    async def resolve(self, token: str) -> str | None:
        raise RuntimeError("the hold destination sends nothing")

    async def close(self) -> None:
        return None


class Open311:
    """`crm.mode = "open311"`: GeoReport v2 `POST requests.json`, tokens resolved later."""

    name: str = "open311"
    sends: bool = True
    waiting: str | None = None

    def __init__(self, runtime: Runtime, client: Open311Client | None = None):
        self.runtime = runtime
        self.client = client or open311_client(runtime)

    async def post(self, report: Report, first_attempt_at: datetime) -> PostOutcome:
        request = await build_request(self.runtime, report, first_attempt_at)
        return await self.client.post_request(request)

    async def resolve(self, token: str) -> str | None:
        return await self.client.resolve_token(token)

    async def close(self) -> None:
        await self.client.close()


DESTINATIONS: dict[str, Callable[[Runtime], Destination]] = {
    "hold": lambda runtime: Hold(),
    "open311": Open311,
}


def destination_for(runtime: Runtime) -> Destination:
    return DESTINATIONS[runtime.settings.crm.mode](runtime)


def service_code_of(report: Report, default: str) -> str:
    category = report.category
    if category.code == "unknown" or not category.service_code:
        return default
    return category.service_code


def split_name(name: str | None) -> tuple[str | None, str | None]:
    parts = (name or "").split()
    if not parts:
        return None, None
    return parts[0], " ".join(parts[1:]) or None


async def build_request(
    runtime: Runtime, report: Report, first_attempt_at: datetime
) -> ServiceRequest:
    """The Open311 request for a report. Raises ValueError for a report that
    cannot be sent as it is."""
    crm = runtime.settings.crm
    location = report.location
    lat, lon = location.lat, location.lon
    attributes: dict[str, str] = {}
    kelurahan = location.kelurahan.code if location.kelurahan else None
    if (lat is None or lon is None) and kelurahan:
        centroid = runtime.areas.centroid(kelurahan)
        if centroid is not None:
            lat, lon = centroid
            attributes[LOCATION_PRECISION] = "kelurahan"
    elif location.precision == "kelurahan":
        attributes[LOCATION_PRECISION] = "kelurahan"
    if lat is None or lon is None:
        lat = lon = None
    first = last = email = phone = None
    if not report.confidential:  # a confidential identity never leaves kanal
        first, last = split_name(report.reporter.name)
        email, phone = report.reporter.email, report.reporter.phone
    return ServiceRequest(
        report_id=report.id,
        ticket=report.ticket,
        channel=report.channel,
        kelurahan_code=kelurahan,
        service_code=service_code_of(report, crm.default_service_code),
        lat=lat,
        long=lon,
        address_string=location.address,
        description=report.description or report.text or report.title or None,
        first_name=first,
        last_name=last,
        email=email,
        phone=phone,
        media_url=await media_url(runtime, report, first_attempt_at),
        extra_attributes=attributes,
    )


def open311_client(runtime: Runtime) -> Open311Client:
    crm = runtime.settings.crm
    return Open311Client(
        crm.endpoint,
        read_secret(crm, "api_key") or "",
        crm.jurisdiction_id,
        timeout_s=crm.timeout_s,
    )
