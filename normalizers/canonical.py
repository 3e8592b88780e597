"""Raw message(s) in, canonical report out: the pure heart of the pipeline.

The gateway supplies ids, the clock and the owner of the channel's queue; everything
decided here (phone, geo-tag, category, suggestions, status) is a function of the input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from connectors.base import RawMessage
from connectors.sniff import sniff_content_type
from normalizers.category import Taxonomy, classify, noise_score
from normalizers.geo import AreaIndex, AreaMatch
from normalizers.phone import normalize_phone
from normalizers.places import suggest_locations
from normalizers.report import (
    AreaRef,
    Attachment,
    Category,
    HistoryEntry,
    Location,
    LocationSuggestion,
    Report,
    Reporter,
    Suggestions,
)
from normalizers.text import clean_text

# The parts of one SMS are split mid-word by the network: join them with nothing between.
_JOIN_BY_GROUP = {"concat": ""}


@dataclass(frozen=True, slots=True)
class Blob:
    """Attachment bytes that arrived inline, to be stored beside the report."""

    sha256: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Normalized:
    report: Report
    blobs: list[Blob]


def area_refs(match: AreaMatch) -> dict[str, AreaRef]:
    return {
        "kelurahan": AreaRef(code=match.kelurahan.code, name=match.kelurahan.name),
        "kecamatan": AreaRef(code=match.kecamatan.code, name=match.kecamatan.name),
        "kota": AreaRef(code=match.kota.code, name=match.kota.name),
    }


def reporter_of(raw: RawMessage) -> Reporter:
    if raw.anonymous:
        return Reporter()
    sender = raw.sender
    phone_raw = sender.phone or (sender.user_id if raw.channel == "sms" else None)
    phone = normalize_phone(phone_raw).e164 if phone_raw else None
    return Reporter(
        name=sender.name or None,
        phone=phone,
        email=sender.email.strip().lower() if sender.email else None,
        handle=sender.handle or None,
        channel_user_id=sender.user_id or None,
        phone_raw=phone_raw,
    )


def reporter_key(reporter: Reporter, channel: str) -> str | None:
    """Who sent it, across messages: phone first, then e-mail, then the channel's user id."""
    if reporter.phone:
        return f"phone:{reporter.phone}"
    if reporter.email:
        return f"email:{reporter.email}"
    if reporter.channel_user_id:
        return f"{channel}:{reporter.channel_user_id}"
    return None


def attachments_of(raws: list[RawMessage]) -> tuple[list[Attachment], list[Blob]]:
    found: list[Attachment] = []
    blobs: list[Blob] = []
    for raw in raws:
        for ref in raw.attachments:
            if ref.data is not None:
                digest = hashlib.sha256(ref.data).hexdigest()
                content_type = sniff_content_type(ref.data, ref.content_type, ref.filename)
                blobs.append(Blob(digest, content_type, ref.data))
                found.append(
                    Attachment(
                        sha256=digest,
                        content_type=content_type,
                        size=len(ref.data),
                        filename=ref.filename,
                        state="stored",
                    )
                )
            else:
                found.append(
                    Attachment(
                        content_type=ref.content_type,
                        filename=ref.filename,
                        source_url=ref.url,
                        file_id=ref.file_id,
                        state="pending",
                    )
                )
    return found, blobs


def joined_text(raws: list[RawMessage]) -> str:
    kind = (raws[0].group_key or "").split(":", 1)[0]
    separator = _JOIN_BY_GROUP.get(kind, "\n")
    return separator.join(raw.text for raw in raws if raw.text)


def build_report(
    raws: list[RawMessage],
    *,
    report_id: str,
    ticket: str,
    intake: str,
    now: datetime,
    channel_owner: str,
    areas: AreaIndex,
    taxonomy: Taxonomy,
    incomplete: bool = False,
) -> Normalized:
    """One report from one raw message, or from the ordered parts of one (SMS parts, albums)."""
    first = raws[0]
    text = joined_text(raws)
    hint = next((r.location_hint for r in raws if r.location_hint), None)
    coords = next((r.coordinates for r in raws if r.coordinates), None)
    attachments, blobs = attachments_of(raws)

    location = Location(address=(coords.address if coords and coords.address else hint))
    geo_tagged = False
    non_geo_reason: str | None = "no_location"
    owner = channel_owner
    if coords is not None:
        location.lat, location.lon = coords.lat, coords.lon
        location.source = "exif" if coords.source == "exif" else "device"
        location.accuracy_m = coords.accuracy_m
        match = areas.locate(coords.lat, coords.lon)
        if match is None:
            non_geo_reason = "out_of_area"
        else:
            geo_tagged, non_geo_reason = True, None
            for key, ref in area_refs(match).items():
                setattr(location, key, ref)
            location.precision = "point"
            owner = f"kelurahan:{match.kelurahan.code}"

    matching_text = clean_text(" ".join(p for p in (first.title, text) if p))
    result = classify(matching_text, taxonomy, hint=first.category_hint)
    category = Category(
        code=result.code,
        name=result.name,
        agency=result.agency,
        service_code=result.service_code,
        confidence=round(result.confidence, 3),
    )
    suggestions = Suggestions()
    if not geo_tagged:
        where = " ".join(p for p in (matching_text, hint) if p)
        suggestions.locations = [
            LocationSuggestion(
                kelurahan=AreaRef(code=s.kelurahan.code, name=s.kelurahan.name),
                kecamatan=AreaRef(code=s.kecamatan.code, name=s.kecamatan.name),
                kota=AreaRef(code=s.kota.code, name=s.kota.name),
                lat=s.lat,
                lon=s.lon,
                confidence=round(s.confidence, 3),
                evidence=s.evidence,
            )
            for s in suggest_locations(where, areas)
        ]

    history = [HistoryEntry(at=now, status="received", by="system")]
    if first.automated:
        status = "rejected"
        history.append(HistoryEntry(at=now, status=status, by="system", note=first.automated))
        rejection: dict[str, str | None] | None = {"reason": "automated", "note": first.automated}
    else:
        status = "ready" if geo_tagged else "pending_enrichment"
        note = f"owner {owner}" if geo_tagged else non_geo_reason
        history.append(HistoryEntry(at=now, status=status, by="system", note=note))
        rejection = None

    report = Report(
        id=report_id,
        ticket=ticket,
        channel=first.channel,
        connector=first.connector,
        intake=intake,  # type: ignore[arg-type]
        external_id=first.external_id,
        received_at=min(r.received_at for r in raws),
        reporter=reporter_of(first),
        confidential=any(r.confidential for r in raws),
        text=text,
        title=first.title,
        attachments=attachments,
        location=location,
        geo_tagged=geo_tagged,
        non_geo_reason=non_geo_reason,  # type: ignore[arg-type]
        category=category,
        noise_score=round(noise_score(matching_text), 3),
        suggestions=suggestions,
        owner=owner,
        status=status,  # type: ignore[arg-type]
        incomplete=incomplete,
        rejection=rejection,
        history=history,
    )
    return Normalized(report, blobs)
