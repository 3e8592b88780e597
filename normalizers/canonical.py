"""Raw message(s) in, canonical report out: the pure heart of the pipeline.

The gateway supplies ids, the clock and the owner of the channel's queue; everything
decided here (phone, geo-tag, category, suggestions, status) is a function of the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Coordinates, RawMessage
from normalizers.category import (
    HINT_CONFIDENCE,
    UNKNOWN_CODE,
    CategoryResult,
    Taxonomy,
    category_result,
    category_scores,
    classify_scores,
    noise_score_normalized,
)
from normalizers.geo import AreaIndex, AreaMatch
from normalizers.phone import normalize_phone
from normalizers.photo import photo_coordinates
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
from normalizers.sniff import is_image, sniff_content_type
from normalizers.text import clean_text, normalize_for_matching
from normalizers.textmodel import (
    MIN_MODEL_CONFIDENCE,
    MIN_MODEL_CONFIDENCE_AGAINST_RULES,
    TextModels,
)

# The parts of one SMS are split mid-word by the network: join them with nothing between.
_JOIN_BY_GROUP = {"concat": ""}
# A photo's position is where the citizen stood, a few steps from what they reported.
EXIF_CONFIDENCE = 0.9


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


@dataclass(frozen=True, slots=True)
class Placement:
    """Where coordinates put a report: inside DKI Jakarta they geo-tag it and
    its kelurahan owns it; outside they are kept, and the report stays non-geo."""

    location: Location
    owner: str | None  # "kelurahan:<code>" when geo-tagged
    non_geo_reason: str | None  # "out_of_area" when not

    @property
    def geo_tagged(self) -> bool:
        return self.owner is not None

    def as_suggestion(self, evidence: str) -> LocationSuggestion | None:
        """The place offered to the admin instead of applied; None outside DKI Jakarta."""
        where = self.location
        if where.kelurahan is None:
            return None
        return LocationSuggestion(
            kelurahan=where.kelurahan,
            kecamatan=where.kecamatan,
            kota=where.kota,
            lat=where.lat,
            lon=where.lon,
            confidence=EXIF_CONFIDENCE,
            evidence=evidence,
        )


def place(coords: Coordinates, areas: AreaIndex, address: str | None = None) -> Placement:
    location = Location(
        lat=coords.lat,
        lon=coords.lon,
        source="exif" if coords.source == "exif" else "device",
        accuracy_m=coords.accuracy_m,
        address=address,
    )
    match = areas.locate(coords.lat, coords.lon)
    if match is None:
        return Placement(location, owner=None, non_geo_reason="out_of_area")
    for key, ref in area_refs(match).items():
        setattr(location, key, ref)
    location.precision = "point"
    return Placement(location, owner=f"kelurahan:{match.kelurahan.code}", non_geo_reason=None)


def photo_placement(
    photos: Iterable[bytes], areas: AreaIndex, address: str | None = None
) -> Placement | None:
    """Where the EXIF GPS of the first photo that has one puts the report; None without.
    The one rule for photos, whether their bytes came with the message or were fetched."""
    coords = photo_coordinates(photos)
    return place(coords, areas, address) if coords is not None else None


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


class _Rules:
    """The keyword rules' reading of one text, normalized and matched once for both its
    category and its noise score."""

    __slots__ = ("_scores", "normalized", "taxonomy")

    def __init__(self, text: str, taxonomy: Taxonomy) -> None:
        self.normalized = normalize_for_matching(text or "")
        self.taxonomy = taxonomy
        self._scores: dict[str, float] | None = None

    @property
    def scores(self) -> dict[str, float]:
        if self._scores is None:
            self._scores = category_scores(self.normalized, self.taxonomy)
        return self._scores

    def classify(self, hint: str | None) -> CategoryResult:
        """`classify(text, taxonomy, hint)`."""
        if hint:
            hinted = self.taxonomy.resolve_hint(hint)
            if hinted is not None:
                return category_result(hinted, HINT_CONFIDENCE)
        return classify_scores(self.scores, self.taxonomy)

    def noise(self) -> float:
        """`noise_score(text, taxonomy)`."""
        return noise_score_normalized(self.normalized, self.taxonomy, self.scores)


def categorize(
    text: str,
    taxonomy: Taxonomy,
    hint: str | None,
    models: TextModels | None,
    rules: _Rules | None = None,
) -> Category:
    """The channel's own label when it names a category; else the model learned from
    admins when it is confident (surer still to overrule a keyword rule that found one);
    else the keyword rules (which may say "unknown")."""
    rules = rules or _Rules(text, taxonomy)
    result, source = rules.classify(hint), "rules"
    hinted = bool(hint) and taxonomy.resolve_hint(hint or "") is not None
    if models is not None and not hinted:
        guess = models.category(text)
        found = taxonomy.get(guess.code) if guess is not None else None
        if guess is not None and found is not None:
            agrees = result.code in (UNKNOWN_CODE, found.code)
            needed = MIN_MODEL_CONFIDENCE if agrees else MIN_MODEL_CONFIDENCE_AGAINST_RULES
            if guess.confidence >= needed:
                result, source = category_result(found, guess.confidence), "model"
    return Category(
        code=result.code,
        name=result.name,
        agency=result.agency,
        service_code=result.service_code,
        confidence=round(result.confidence, 3),
        source=source,  # type: ignore[arg-type]
    )


def not_a_complaint_score(
    text: str, taxonomy: Taxonomy, models: TextModels | None, rules: _Rules | None = None
) -> float:
    learned = models.noise(text) if models is not None else None
    if learned is not None:
        return round(learned, 3)
    return round((rules or _Rules(text, taxonomy)).noise(), 3)


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
    models: TextModels | None = None,
) -> Normalized:
    """One report from one raw message, or from the ordered parts of one (SMS parts, albums)."""
    first = raws[0]
    text = joined_text(raws)
    hint = next((r.location_hint for r in raws if r.location_hint), None)
    coords = next((r.coordinates for r in raws if r.coordinates), None)
    attachments, blobs = attachments_of(raws)

    # Coordinates the device sent with the message win over those in a photo's EXIF.
    address = coords.address if coords and coords.address else hint
    if coords is not None:
        placement: Placement | None = place(coords, areas, address)
    else:
        photos = (blob.data for blob in blobs if is_image(blob.content_type))
        placement = photo_placement(photos, areas, address)
    non_geo_reason: str | None = "no_location"
    if placement is None:
        location = Location(address=address)
        geo_tagged, owner = False, channel_owner
    else:
        location, non_geo_reason = placement.location, placement.non_geo_reason
        geo_tagged, owner = placement.geo_tagged, placement.owner or channel_owner

    matching_text = clean_text(" ".join(p for p in (first.title, text) if p))
    rules = _Rules(matching_text, taxonomy)
    category = categorize(matching_text, taxonomy, first.category_hint, models, rules)
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
    elif not text.strip() and not first.title and not attachments and coords is None:
        # Nothing to act on (a bare sticker, an unsupported message): kept, in no queue.
        status = "rejected"
        empty = "no text, no attachment, no location"
        history.append(HistoryEntry(at=now, status=status, by="system", note=empty))
        rejection = {"reason": "empty", "note": empty}
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
        noise_score=not_a_complaint_score(matching_text, taxonomy, models, rules),
        suggestions=suggestions,
        owner=owner,
        status=status,  # type: ignore[arg-type]
        incomplete=incomplete,
        rejection=rejection,
        history=history,
    )
    return Normalized(report, blobs)
