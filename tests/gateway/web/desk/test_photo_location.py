"""A photo uploaded at the desk geo-tags the report through its EXIF, as a
photo from any other channel does; a point the officer types still does not."""

from __future__ import annotations

from tests.gateway.web.desk.helpers import sign_in, walk_in
from tests.gateway.web.desk.test_walk_in import report_by_ticket, ticket_of
from tests.normalizers_photo.test_photo import gps_block, photo

MONAS = (-6.1754, 106.8272)  # kelurahan Gambir
BANDUNG = (-6.9175, 107.6191)


async def test_a_desk_photo_with_gps_in_jakarta_geo_tags_the_report_for_its_kelurahan(
    make_kanal, db_url
):
    k = await make_kanal(db_url)
    csrf = await sign_in(k, scope="kelurahan:31.71.06.1001")
    form = walk_in(
        csrf,
        files=[("photos", "IMG_0001.jpg", photo(gps_block(*MONAS)))],
        name="Ani",
        address="Jl. Teuku Umar 5",
        lat="-6.19",  # typed by the officer: an admin location, never a geo-tag
        lon="106.83",
    )
    r = await k.client.post("/desk", data=form)
    assert r.status == 200, await r.text()
    report = await report_by_ticket(k, ticket_of(await r.text()))
    assert report["geo_tagged"] is True and report["non_geo_reason"] is None
    location = report["location"]
    assert location["source"] == "exif"
    assert (round(location["lat"], 4), round(location["lon"], 4)) == MONAS
    assert location["kelurahan"]["code"] == "31.71.01.1001"
    assert location["address"] == "Jl. Teuku Umar 5"
    assert report["owner"] == "kelurahan:31.71.01.1001"
    assert report["status"] == "ready"
    assert report["attachments"][0]["content_type"] == "image/jpeg"


async def test_a_desk_photo_taken_outside_jakarta_leaves_the_report_in_the_officers_queue(
    make_kanal,
):
    k = await make_kanal()
    csrf = await sign_in(k, scope="kelurahan:31.71.06.1001")
    form = walk_in(csrf, files=[("photos", "bandung.jpg", photo(gps_block(*BANDUNG)))])
    r = await k.client.post("/desk", data=form)
    assert r.status == 200, await r.text()
    report = await report_by_ticket(k, ticket_of(await r.text()))
    assert report["geo_tagged"] is False and report["non_geo_reason"] == "out_of_area"
    assert report["location"]["source"] == "exif"
    assert report["owner"] == "kelurahan:31.71.06.1001"
    assert report["status"] == "pending_enrichment"
