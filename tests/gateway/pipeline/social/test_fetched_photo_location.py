"""A photo that arrives as a link is fetched later by the media worker; its EXIF GPS
geo-tags the report if it still waits untouched in the enrichment queue, and is only
offered as a suggestion once a person works on it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.conftest import SECRETS
from tests.connectors.signing import kanal_sign
from tests.fakes.loopback import LoopbackServer
from tests.gateway.pipeline.social.helpers import BANDUNG, MONAS, all_reports, loopback_media
from tests.normalizers_photo.test_photo import gps_block, photo

GAMBIR = "31.71.01.1001"  # where MONAS is
MENTENG = "31.71.06.1001"


class PhotoHost(LoopbackServer):
    """JAKI's photo store: files under /p/<name>."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/p/{name}", self._photo)

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.root}/p/{name}"

    async def _photo(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/jpeg")


async def jaki_report_with(
    k: Any, photo_url: str, location: tuple[float, float] | None = None
) -> Any:
    body: dict[str, Any] = {
        "id": "JAKI-77",
        "reporter": {"name": "Siti"},
        "text": "Pohon tumbang menutup trotoar",
        "photos": [photo_url],
        "created_at": "2026-11-27T09:00:00+07:00",
    }
    if location is not None:
        body["location"] = {"lat": location[0], "lon": location[1]}
    raw = json.dumps(body).encode()
    r = await k.client.post("/webhooks/jaki", data=raw, headers=kanal_sign(SECRETS["jaki"], raw))
    assert r.status == 200, await r.text()
    assert await k.drain() == 1
    k.runtime.settings.channels.jaki.media_hosts = ["127.0.0.1"]
    [report] = await all_reports(k)
    return report


async def fetch_media(k: Any) -> Any:
    async with loopback_media(k) as worker:
        assert await worker.drain() == 1
    [report] = await all_reports(k)
    assert report.attachments[0].state == "stored"
    return report


async def test_a_linked_photo_taken_in_jakarta_geo_tags_a_report_waiting_in_the_queue(
    make_kanal, db_url
):
    k = await make_kanal(db_url)
    async with PhotoHost() as host:
        report = await jaki_report_with(k, host.add("pohon.jpg", photo(gps_block(*MONAS))))
        assert not report.geo_tagged and report.status == "pending_enrichment"
        owner_before = report.owner
        assert owner_before != f"kelurahan:{GAMBIR}"
        report = await fetch_media(k)

    assert report.geo_tagged and report.non_geo_reason is None
    assert report.location.source == "exif" and report.location.precision == "point"
    assert (round(report.location.lat, 4), round(report.location.lon, 4)) == MONAS
    assert report.location.kelurahan is not None and report.location.kelurahan.code == GAMBIR
    assert report.owner == f"kelurahan:{GAMBIR}"
    assert report.status == "ready"
    assert report.suggestions.locations == []
    [why] = [h for h in report.history if h.status == "ready"]
    assert why.by == "media" and "EXIF" in (why.note or "") and GAMBIR in (why.note or "")
    token = await k.token()
    r = await k.client.get("/api/v1/queue", headers={"Authorization": f"Bearer {token}"})
    assert report.id not in [item["id"] for item in (await r.json())["items"]]


async def test_a_claimed_report_keeps_its_place_and_is_only_offered_the_photos_kelurahan(
    make_kanal,
):
    k = await make_kanal()
    async with PhotoHost() as host:
        report = await jaki_report_with(k, host.add("pohon.jpg", photo(gps_block(*MONAS))))
        token = await k.token(name="ana")
        r = await k.client.post(
            f"/api/v1/reports/{report.id}/claim", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status == 200
        claimed = await k.store.get_report(report.id)
        report = await fetch_media(k)

    assert not report.geo_tagged and report.status == "pending_enrichment"
    assert report.location == claimed.location and report.owner == claimed.owner
    assert report.lease is not None and report.lease.holder == "ana"
    suggestion = report.suggestions.locations[0]
    assert suggestion.kelurahan.code == GAMBIR and "EXIF" in suggestion.evidence
    assert [h.by for h in report.history if h.status == "ready"] == []


async def test_a_report_placed_by_its_device_keeps_that_place_whatever_the_photo_says(
    make_kanal,
):
    k = await make_kanal()
    async with PhotoHost() as host:
        device = (-6.1950, 106.8230)  # Menteng
        report = await jaki_report_with(
            k, host.add("pohon.jpg", photo(gps_block(*MONAS))), location=device
        )
        assert report.geo_tagged and report.status == "ready"
        report = await fetch_media(k)

    assert report.location.source == "device" and report.location.kelurahan.code == MENTENG
    assert report.owner == f"kelurahan:{MENTENG}" and report.suggestions.locations == []


async def test_a_linked_photo_taken_outside_jakarta_changes_nothing(make_kanal):
    k = await make_kanal()
    async with PhotoHost() as host:
        before = await jaki_report_with(k, host.add("jauh.jpg", photo(gps_block(*BANDUNG))))
        report = await fetch_media(k)

    assert not report.geo_tagged and report.status == "pending_enrichment"
    assert report.location == before.location and report.owner == before.owner
    assert report.suggestions == before.suggestions
