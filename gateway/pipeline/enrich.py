"""The enrichment rules: leases, what a PATCH may change, what submit needs.

Pure: a Report and a request body in, a new Report (with only its NEW history entries)
out, or an `EnrichError` saying why not. The HTTP layer (`gateway/api.py`) does the I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.base.runtime import Runtime
from normalizers.category import Taxonomy
from normalizers.geo import AreaIndex, AreaMatch
from normalizers.phone import normalize_phone
from normalizers.report import (
    AreaRef,
    Category,
    HistoryEntry,
    Lease,
    Location,
    Report,
)

LEASE_TTL = timedelta(minutes=15)
# Statuses in which an admin still works on a report.
ENRICHABLE = ("pending_enrichment",)
# A report may be rejected while it has not reached the CRM yet (hold mode keeps `ready`).
REJECTABLE = ("pending_enrichment", "ready")
REJECT_REASONS = ("spam", "duplicate", "not_a_complaint", "out_of_scope")


class EnrichError(Exception):
    """A request the rules refuse; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


# --- request bodies (also the OpenAPI document's) -------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointIn(Body):
    """Coordinates an admin picked (WGS84 degrees)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class ReporterPatch(Body):
    """Reporter fields to set; fields left out stay as they are, null clears one."""

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    handle: str | None = Field(default=None, max_length=200)


class EnrichmentPatch(Body):
    """`PATCH /api/v1/reports/{id}`: only the fields present change."""

    location: PointIn | None = None
    kelurahan_code: str | None = Field(default=None, pattern=r"^31\.\d{2}\.\d{2}\.\d{4}$")
    address: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    reporter: ReporterPatch | None = None
    owner: str | None = Field(default=None, max_length=64)
    confidential: bool | None = None
    # Only null is accepted: the owner has seen what flagged the report (any status).
    attention: None = None


class RejectBody(Body):
    """`POST /api/v1/reports/{id}/reject`."""

    reason: Literal["spam", "duplicate", "not_a_complaint", "out_of_scope"]
    duplicate_of: str | None = Field(default=None, max_length=26)
    note: str | None = Field(default=None, max_length=1000)


# Fields of a PATCH that cannot be cleared with null (they have no "empty" meaning).
_NOT_NULLABLE = ("location", "kelurahan_code", "category", "owner", "confidential", "reporter")


# --- owners ------------------------------------------------------------------------------------


def valid_owner(owner: str, areas: AreaIndex, offices: Collection[str]) -> bool:
    """An owner (province, kota:…, kecamatan:…, kelurahan:…, office:…) that names an
    existing area or office."""
    if owner == "province":
        return True
    kind, _, code = owner.partition(":")
    if kind == "kota":
        return areas.kota(code) is not None
    if kind == "kecamatan":
        return areas.kecamatan(code) is not None
    if kind == "kelurahan":
        return areas.by_kelurahan_code(code) is not None
    if kind == "office":
        return code in offices
    return False


# --- leases ------------------------------------------------------------------------------------


def live_lease(report: Report, now: datetime) -> Lease | None:
    return report.lease if report.lease is not None and report.lease.until > now else None


def check_lease(report: Report, holder: str, now: datetime) -> None:
    """409 when someone else holds a live lease on the report."""
    lease = live_lease(report, now)
    if lease is not None and lease.holder != holder:
        raise EnrichError(
            409,
            "claimed",
            f"{lease.holder} is working on this report",
            holder=lease.holder,
            until=lease.model_dump(mode="json")["until"],
        )


def _entry(
    report: Report, by: str, now: datetime, note: str, changes: dict[str, Any]
) -> HistoryEntry:
    return HistoryEntry(at=now, status=report.status, by=by, note=note, changes=changes or None)


def claim(report: Report, holder: str, now: datetime) -> Report:
    """Take (or renew) the 15-minute lease; refused while another holds it."""
    _require_status(report, ENRICHABLE, "claimed")
    check_lease(report, holder, now)
    lease = Lease(holder=holder, until=now + LEASE_TTL)
    return report.model_copy(
        update={
            "lease": lease,
            "history": [_entry(report, holder, now, "claimed", {"lease": {"holder": holder}})],
        }
    )


def release(report: Report, holder: str, now: datetime) -> Report | None:
    """Give the lease back; None when there is nothing to release."""
    lease = live_lease(report, now)
    if lease is None:
        return None
    check_lease(report, holder, now)
    return report.model_copy(
        update={
            "lease": None,
            "history": [_entry(report, holder, now, "released", {"lease": None})],
        }
    )


def _require_status(report: Report, allowed: Sequence[str], action: str) -> None:
    if report.status not in allowed:
        raise EnrichError(
            409,
            "wrong_status",
            f"a report in status {report.status} cannot be {action}",
            current=report.status,
        )


# --- PATCH ---------------------------------------------------------------------------------------


def _located(
    match: AreaMatch, lat: float, lon: float, precision: str, address: str | None
) -> Location:
    """An admin's location: the point (or centroid) with its kelurahan, kecamatan and kota."""
    return Location(
        lat=lat,
        lon=lon,
        source="admin",
        address=address,
        precision=precision,  # type: ignore[arg-type]
        kelurahan=AreaRef(code=match.kelurahan.code, name=match.kelurahan.name),
        kecamatan=AreaRef(code=match.kecamatan.code, name=match.kecamatan.name),
        kota=AreaRef(code=match.kota.code, name=match.kota.name),
    )


def clear_attention(report: Report, *, by: str, now: datetime) -> Report:
    """`PATCH {"attention": null}`: the owner has seen why the report came back to the
    queue (a done report stays done). Works on any status; needs no lease."""
    if report.attention is None:
        raise EnrichError(409, "no_attention", "the report is not flagged for attention")
    note = f"seen: {report.attention}"
    changed = report.model_copy(update={"attention": None, "history": []})
    changed.history.append(
        HistoryEntry(at=now, status=report.status, by=by, note=note, changes={"attention": None})
    )
    return changed


def apply_patch(
    report: Report,
    patch: EnrichmentPatch,
    *,
    by: str,
    scope: str,
    now: datetime,
    areas: AreaIndex,
    taxonomy: Taxonomy,
    offices: Collection[str],
) -> Report:
    """The report with the PATCH applied, the caller's lease taken or renewed, and one
    history entry listing what changed. Raises EnrichError (403/409/422)."""
    if patch.model_fields_set == {"attention"}:
        return clear_attention(report, by=by, now=now)
    _require_status(report, ENRICHABLE, "enriched")
    check_lease(report, by, now)
    given = patch.model_fields_set
    nulls = [f for f in _NOT_NULLABLE if f in given and getattr(patch, f) is None]
    if nulls:
        raise EnrichError(422, "invalid", f"{nulls[0]} cannot be null", field=nulls[0])
    if "location" in given and "kelurahan_code" in given:
        raise EnrichError(
            422, "invalid", "give either location or kelurahan_code, not both", field="location"
        )
    province = scope == "province"
    # A confidential identity is the province's alone: others neither see nor set it, and
    # may not lift the confidentiality (which would show it to everyone).
    if report.confidential and not province:
        if "reporter" in given:
            raise EnrichError(
                403, "forbidden", "the reporter of a confidential report is for province scope"
            )
        if patch.confidential is False:
            raise EnrichError(403, "forbidden", "only province scope may lift confidentiality")

    changes: dict[str, Any] = {}
    location = report.location.model_copy(deep=True)
    if patch.location is not None:
        match = areas.locate(patch.location.lat, patch.location.lon)
        if match is None:
            raise EnrichError(
                422, "out_of_area", "the point is outside DKI Jakarta", field="location"
            )
        location = _located(
            match, patch.location.lat, patch.location.lon, "point", location.address
        )
        changes["location"] = {
            "lat": patch.location.lat,
            "lon": patch.location.lon,
            "kelurahan": match.kelurahan.code,
        }
    if patch.kelurahan_code is not None:
        match = areas.by_kelurahan_code(patch.kelurahan_code)
        centroid = areas.centroid(patch.kelurahan_code) if match else None
        if match is None or centroid is None:
            raise EnrichError(422, "unknown_kelurahan", "no such kelurahan", field="kelurahan_code")
        location = _located(match, centroid[0], centroid[1], "kelurahan", location.address)
        changes["location"] = {"kelurahan": match.kelurahan.code, "precision": "kelurahan"}
    if "address" in given:
        location.address = (patch.address or "").strip() or None
        changes["address"] = location.address

    update: dict[str, Any] = {"location": location}
    if patch.category is not None:
        found = taxonomy.get(patch.category)
        if found is None:
            raise EnrichError(422, "unknown_category", "no such category", field="category")
        update["category"] = Category(
            code=found.code,
            name=found.name,
            agency=found.agency,
            service_code=found.service_code,
            confidence=1.0,
            source="admin",
        )
        changes["category"] = found.code
    if "description" in given:
        update["description"] = (patch.description or "").strip() or None
        changes["description"] = update["description"]
    if patch.reporter is not None:
        fields = patch.reporter.model_fields_set
        values = patch.reporter.model_dump(include=fields)
        if values.get("phone"):
            parsed = normalize_phone(values["phone"])
            if parsed.e164 is None:
                raise EnrichError(
                    422, "invalid_phone", "not a phone number", field="reporter.phone"
                )
            values["phone"] = parsed.e164
        update["reporter"] = report.reporter.model_copy(update=values)
        # Names of the fields only: history is shown to every reader in scope, and the
        # report may become confidential later.
        changes["reporter"] = sorted(fields)
    if patch.confidential is not None:
        update["confidential"] = patch.confidential
        changes["confidential"] = patch.confidential
    lease: Lease | None = Lease(holder=by, until=now + LEASE_TTL)
    if patch.owner is not None and patch.owner != report.owner:
        if not valid_owner(patch.owner, areas, offices):
            raise EnrichError(422, "unknown_owner", "no such owner", field="owner")
        update["owner"] = patch.owner
        changes["owner"] = patch.owner
        lease = None  # handed over: the new queue's admins claim it themselves
    if "attention" in given and report.attention is not None:
        update["attention"] = None
        changes["attention"] = None
    update["lease"] = lease
    update["history"] = [_entry(report, by, now, "enriched", changes)]
    return report.model_copy(update=update)


# --- submit, reject, reopen ------------------------------------------------------------------


def apply_patch_of(
    runtime: Runtime, report: Report, patch: EnrichmentPatch, *, by: str, scope: str, now: datetime
) -> Report:
    """`apply_patch` with this deployment's areas, taxonomy and offices."""
    return apply_patch(
        report,
        patch,
        by=by,
        scope=scope,
        now=now,
        areas=runtime.areas,
        taxonomy=runtime.taxonomy,
        offices=runtime.settings.office_names(),
    )


def missing_for_submit(report: Report) -> list[str]:
    """What the CRM still needs, in the contract's order."""
    missing = []
    location = report.location
    if location.kelurahan is None or location.lat is None or location.lon is None:
        missing.append("location")
    if report.category.code == "unknown":
        missing.append("category")
    return missing


def owner_set_by_admin(history: Sequence[HistoryEntry]) -> bool:
    """Whether a person handed the report to a queue of their choice (kept at submit)."""
    return any(e.by != "system" and e.changes is not None and "owner" in e.changes for e in history)


def submit(report: Report, *, by: str, now: datetime, keep_owner: bool) -> Report:
    """Ready for the CRM. The owner becomes the location's kelurahan unless a person chose
    another; `geo_tagged` keeps describing what arrived."""
    _require_status(report, ENRICHABLE, "submitted")
    check_lease(report, by, now)
    missing = missing_for_submit(report)
    if missing:
        raise EnrichError(
            422, "incomplete", "the report needs " + " and ".join(missing), missing=missing
        )
    location = report.location.model_copy(update={"source": "admin"})
    assert location.kelurahan is not None  # checked by missing_for_submit
    owner = report.owner if keep_owner else f"kelurahan:{location.kelurahan.code}"
    changes: dict[str, Any] = {"status": "ready"}
    if owner != report.owner:
        changes["owner"] = owner
    entry = HistoryEntry(at=now, status="ready", by=by, note="submitted", changes=changes)
    return report.model_copy(
        update={
            "status": "ready",
            "owner": owner,
            "location": location,
            "lease": None,
            "history": [entry],
        }
    )


def reject(report: Report, body: RejectBody, *, by: str, now: datetime) -> Report:
    """Rejected with a reason; a duplicate names (and links) the report it repeats."""
    _require_status(report, REJECTABLE, "rejected")
    check_lease(report, by, now)
    if body.reason == "duplicate" and not body.duplicate_of:
        raise EnrichError(
            422, "invalid", "a duplicate names the report it repeats", field="duplicate_of"
        )
    if body.reason != "duplicate" and body.duplicate_of:
        raise EnrichError(
            422, "invalid", "duplicate_of goes with reason duplicate", field="duplicate_of"
        )
    if body.duplicate_of == report.id:
        raise EnrichError(422, "invalid", "a report cannot repeat itself", field="duplicate_of")
    note = (body.note or "").strip() or None
    rejection = {"reason": body.reason, "note": note}
    changes: dict[str, Any] = {"status": "rejected", "reason": body.reason}
    if body.duplicate_of:
        rejection["duplicate_of"] = body.duplicate_of
        changes["duplicate_of"] = body.duplicate_of
    entry = HistoryEntry(
        at=now, status="rejected", by=by, note=note or body.reason, changes=changes
    )
    return report.model_copy(
        update={
            "status": "rejected",
            "rejection": rejection,
            "duplicate_of": body.duplicate_of,
            "lease": None,
            "history": [entry],
        }
    )


def reopen(report: Report, *, by: str, now: datetime) -> Report:
    """A rejected report goes back to the queue (its rejection stays in the history)."""
    _require_status(report, ("rejected",), "reopened")
    entry = HistoryEntry(
        at=now,
        status="pending_enrichment",
        by=by,
        note="reopened",
        changes={"status": "pending_enrichment"},
    )
    return report.model_copy(
        update={
            "status": "pending_enrichment",
            "rejection": None,
            "duplicate_of": None,
            "lease": None,
            "history": [entry],
        }
    )
