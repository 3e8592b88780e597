"""Photo EXIF as a geo-tag: read from every image whose bytes came with the
message, whatever the channel, when the report is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from connectors.base import AttachmentRef, Coordinates, RawMessage
from normalizers.canonical import build_report, photo_placement
from normalizers.category import default_taxonomy
from normalizers.geo import default_index
from normalizers.photo import MAX_GPS_PROBES
from normalizers.report import Report
from tests.normalizers_photo.test_photo import gps_block, photo

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
AREAS = default_index()
TAXONOMY = default_taxonomy()
MONAS = (-6.1754, 106.8272)  # kelurahan Gambir
KOTA_TUA = (-6.1350, 106.8133)  # kelurahan Pinangsia
BANDUNG = (-6.9175, 107.6191)  # outside DKI Jakarta
GAMBIR, PINANGSIA = "31.71.01.1001", "31.73.03.1008"


def gps_photo(where: tuple[float, float]) -> bytes:
    return photo(gps_block(*where))


@dataclass(frozen=True)
class Case:
    name: str
    images: list[bytes]
    device: tuple[float, float] | None = None
    channel: str = "email"
    declared: list[str | None] = field(default_factory=list)
    # expected
    geo_tagged: bool = False
    point: tuple[float, float] | None = None
    source: str | None = None
    kelurahan: str | None = None
    non_geo_reason: str | None = "no_location"


CASES = [
    Case(
        "a photo taken in Jakarta geo-tags the report",
        [gps_photo(MONAS)],
        geo_tagged=True,
        point=MONAS,
        source="exif",
        kelurahan=GAMBIR,
        non_geo_reason=None,
    ),
    Case(
        "a photo taken outside Jakarta keeps its point and the report non-geo",
        [gps_photo(BANDUNG)],
        point=BANDUNG,
        source="exif",
        non_geo_reason="out_of_area",
    ),
    Case("a photo without EXIF GPS leaves the report without location", [photo()]),
    Case(
        "a corrupt photo is no location and no failure",
        [gps_photo(MONAS)[:40], b"\xff\xd8\xff\xe1garbage" * 10],
        declared=["image/jpeg", "image/jpeg"],
    ),
    Case(
        "of several photos the first with GPS wins",
        [photo(), gps_photo(KOTA_TUA), gps_photo(MONAS)],
        geo_tagged=True,
        point=KOTA_TUA,
        source="exif",
        kelurahan=PINANGSIA,
        non_geo_reason=None,
    ),
    Case(
        "coordinates the device sent win over the photo's",
        [gps_photo(MONAS)],
        device=KOTA_TUA,
        geo_tagged=True,
        point=KOTA_TUA,
        source="device",
        kelurahan=PINANGSIA,
        non_geo_reason=None,
    ),
    Case(
        "device coordinates outside Jakarta are not replaced by a photo's inside",
        [gps_photo(MONAS)],
        device=BANDUNG,
        point=BANDUNG,
        source="device",
        non_geo_reason="out_of_area",
    ),
    Case(
        "a desk upload with GPS geo-tags like any other channel's photo",
        [gps_photo(MONAS)],
        channel="kelurahan",
        geo_tagged=True,
        point=MONAS,
        source="exif",
        kelurahan=GAMBIR,
        non_geo_reason=None,
    ),
    Case(
        "a photo past the probe limit is not opened",
        [photo()] * MAX_GPS_PROBES + [gps_photo(MONAS)],
    ),
]


def message(case: Case) -> RawMessage:
    declared = case.declared or [None] * len(case.images)
    return RawMessage(
        connector="desk" if case.channel == "kelurahan" else case.channel,
        channel=case.channel,
        external_id="m1",
        received_at=NOW,
        text="Lampu jalan mati",
        coordinates=Coordinates(lat=case.device[0], lon=case.device[1]) if case.device else None,
        attachments=[
            AttachmentRef(data=data, content_type=content_type, filename=f"{n}.jpg")
            for n, (data, content_type) in enumerate(zip(case.images, declared, strict=True))
        ],
    )


def built(raw: RawMessage) -> Report:
    return build_report(
        [raw],
        report_id="r1",
        ticket="KNL-AAAA-BBBB",
        intake="webhook",
        now=NOW,
        channel_owner="province",
        areas=AREAS,
        taxonomy=TAXONOMY,
    ).report


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_build_report_reads_the_gps_of_photos_that_came_with_the_message(case: Case) -> None:
    report = built(message(case))
    location = report.location
    assert report.geo_tagged is case.geo_tagged
    assert report.non_geo_reason == case.non_geo_reason
    assert location.source == case.source
    if case.point is None:
        assert (location.lat, location.lon) == (None, None)
    else:
        assert (location.lat, location.lon) == pytest.approx(case.point, abs=1e-5)
    if case.geo_tagged:
        assert location.kelurahan is not None and location.kelurahan.code == case.kelurahan
        assert report.owner == f"kelurahan:{case.kelurahan}"
        assert report.status == "ready"
        assert report.suggestions.locations == []
    else:
        assert location.kelurahan is None
        assert report.owner == "province"
        assert report.status == "pending_enrichment"
    assert all(a.state == "stored" for a in report.attachments)


def test_photos_only_linked_are_not_read_when_the_report_is_built() -> None:
    linked = RawMessage(
        connector="jaki",
        channel="jaki",
        external_id="j1",
        received_at=NOW,
        attachments=[AttachmentRef(url="https://jaki.example.id/p/1.jpg")],
    )
    report = built(linked)
    assert not report.geo_tagged and report.attachments[0].state == "pending"


def test_a_placement_from_a_photo_can_be_offered_as_a_suggestion_inside_jakarta_only() -> None:
    inside = photo_placement([gps_photo(MONAS)], AREAS)
    assert inside is not None and inside.geo_tagged and inside.owner == f"kelurahan:{GAMBIR}"
    suggestion = inside.as_suggestion("EXIF")
    assert suggestion is not None and suggestion.kelurahan.code == GAMBIR
    assert (suggestion.lat, suggestion.lon) == pytest.approx(MONAS, abs=1e-5)
    outside = photo_placement([gps_photo(BANDUNG)], AREAS)
    assert outside is not None and not outside.geo_tagged
    assert outside.non_geo_reason == "out_of_area" and outside.as_suggestion("EXIF") is None
    assert photo_placement([photo(), b"not an image"], AREAS) is None
