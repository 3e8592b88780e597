"""Possible duplicates of a report, for the admin to confirm: a pure decision, never a merge.

The caller (the pipeline) fetches candidates cheaply, e.g. same reporter or same
`text_fingerprint` in the last 7 days and open reports of the same category nearby, and
asks `duplicate_suggestions` which of them to show.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from normalizers.text import normalize_for_matching

SAME_REPORTER_WINDOW = timedelta(days=7)
SAME_REPORTER_MIN_SIMILARITY = 0.8
NEARBY_WINDOW = timedelta(hours=72)
NEARBY_METRES = 200.0
# Statuses after which a report is no longer "open" for the nearby rule.
CLOSED_STATUSES = frozenset({"done", "rejected", "failed"})

_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class DedupeSubject:
    id: str
    ticket: str
    reporter_key: str | None  # E.164 phone, e-mail or channel user id
    text: str
    category_code: str | None
    lat: float | None
    lon: float | None
    received_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class DuplicateSuggestion:
    id: str
    ticket: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "ticket": self.ticket, "why": self.why}


def _tokens(text: str) -> frozenset[str]:
    return frozenset(normalize_for_matching(text).split())


def text_similarity(a: str, b: str) -> float:
    """Token Jaccard over slang-normalized words (1.0 = same words)."""
    left, right = _tokens(a), _tokens(b)
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def text_fingerprint(text: str) -> str:
    """Stable short key of a text's words (order, case, slang and punctuation ignored)."""
    words = sorted(_tokens(text))
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:16]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine; plenty at city scale)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _has_point(subject: DedupeSubject) -> bool:
    return (
        subject.lat is not None
        and subject.lon is not None
        and math.isfinite(subject.lat)
        and math.isfinite(subject.lon)
    )


def duplicate_suggestions(
    report: DedupeSubject, candidates: list[DedupeSubject], now: datetime
) -> list[DuplicateSuggestion]:
    """Candidates that look like the same complaint, closest first; never `report` itself."""
    found: list[tuple[int, float, DuplicateSuggestion]] = []
    # A channel clock ahead of ours must not stretch the windows: anchor at `now` at most.
    anchor = min(report.received_at, now)
    for other in candidates:
        if other.id == report.id:
            continue
        gap = abs(anchor - other.received_at)
        if (
            report.reporter_key
            and report.reporter_key == other.reporter_key
            and gap <= SAME_REPORTER_WINDOW
        ):
            similarity = text_similarity(report.text, other.text)
            if similarity >= SAME_REPORTER_MIN_SIMILARITY:
                why = (
                    "same reporter, same text"
                    if similarity >= 0.999
                    else (f"same reporter, near-identical text ({similarity:.0%} same words)")
                )
                found.append((0, -similarity, DuplicateSuggestion(other.id, other.ticket, why)))
                continue
        if (
            report.category_code
            and report.category_code != "unknown"
            and report.category_code == other.category_code
            and other.status not in CLOSED_STATUSES
            and gap <= NEARBY_WINDOW
            and _has_point(report)
            and _has_point(other)
        ):
            metres = distance_m(report.lat, report.lon, other.lat, other.lon)  # type: ignore[arg-type]
            if metres <= NEARBY_METRES:
                hours = gap.total_seconds() / 3600
                why = f"same category within {metres:.0f} m and {hours:.0f} h"
                found.append((1, metres, DuplicateSuggestion(other.id, other.ticket, why)))
    found.sort(key=lambda item: (item[0], item[1], item[2].id))
    return [suggestion for _, _, suggestion in found]
