"""The walk-in desk: scope decides channel and owner, CSRF, uploads."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from gateway.store.schema import raw_messages
from tests.gateway.web.desk.helpers import jpeg_bytes, sign_in, walk_in


async def raw_count(k) -> int:  # type: ignore[no-untyped-def]
    async with k.store.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(raw_messages))).scalar_one()
        )


async def report_by_ticket(k, ticket: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    await k.drain()
    token = await k.token()
    r = await k.client.get(
        "/api/v1/reports", params={"limit": "500"}, headers={"Authorization": f"Bearer {token}"}
    )
    items = (await r.json())["items"]
    [found] = [i for i in items if i["ticket"] == ticket]
    return found


def ticket_of(html: str) -> str:
    found = re.search(r'id="ticket">(KNL-[0-9A-Z]{4}-[0-9A-Z]{4})<', html)
    assert found, html[:500]
    return found.group(1)


async def test_the_desk_sends_people_who_are_not_signed_in_to_the_sign_in_page(make_kanal):
    k = await make_kanal()
    r = await k.client.get("/desk", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"].startswith("/signin?next=/desk")


async def test_a_lurah_desk_report_is_channel_kelurahan_owned_by_that_kelurahan(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k, scope="kelurahan:31.71.06.1001")
    form = walk_in(
        csrf,
        files=[("photos", "C:\\Users\\ani\\foto lampu.jpg", jpeg_bytes())],
        name="Ani",
        phone="0812-3456-7890",
        email="Ani@Example.id",
        address="Jl. Teuku Umar 5",
        kelurahan="31.71.06.1001",
        lat="-6.19",
        lon="106.83",
    )
    r = await k.client.post("/desk", data=form)
    assert r.status == 200, await r.text()
    ticket = ticket_of(await r.text())
    report = await report_by_ticket(k, ticket)
    assert report["channel"] == "kelurahan"
    assert report["connector"] == "desk"
    assert report["intake"] == "desk"
    assert report["owner"] == "kelurahan:31.71.06.1001"
    assert report["reporter"]["phone"] == "+6281234567890"
    assert report["reporter"]["email"] == "ani@example.id"
    # An officer-typed point is an admin location, not a geo-tag: the report waits in the queue.
    assert report["geo_tagged"] is False
    assert report["status"] == "pending_enrichment"
    [photo] = report["attachments"]
    assert photo["filename"] == "foto lampu.jpg"  # the base name only
    assert photo["content_type"] == "image/jpeg"
    async with k.store.read() as conn:
        row = (await conn.execute(select(raw_messages.c.message, raw_messages.c.payload))).one()
    extra = json.loads(row.message)["extra"]
    assert extra["officer_location"] == {"lat": -6.19, "lon": 106.83}
    assert extra["kelurahan_code"] == "31.71.06.1001"
    assert b"\xff\xd8" not in row.payload  # the payload describes files, it does not repeat them


async def test_a_pendopo_officer_picks_the_desk_and_it_is_kept(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k, scope="office:balai_kota")
    r = await k.client.post("/desk", data=walk_in(csrf))
    assert r.status == 422
    assert "Pilih meja pengaduan." in await r.text()
    assert await raw_count(k) == 0
    r = await k.client.post("/desk", data=walk_in(csrf, desk="kota:31.74"))
    assert r.status == 200
    report = await report_by_ticket(k, ticket_of(await r.text()))
    assert (report["channel"], report["owner"]) == ("balai_kota", "office:balai_kota")
    async with k.store.read() as conn:
        message = json.loads((await conn.execute(select(raw_messages.c.message))).scalar_one())
    assert message["extra"]["desk"] == "kota:31.74"


async def test_scopes_map_to_channels(make_kanal):
    k = await make_kanal()
    for scope, channel in (
        ("office:inspektorat", "inspektorat"),
        ("kota:31.72", "walikota"),
        ("kecamatan:31.71.06", "kecamatan"),
    ):
        k.client.session.cookie_jar.clear()
        csrf = await sign_in(k, name=scope.replace(":", "-"), scope=scope)
        r = await k.client.post("/desk", data=walk_in(csrf))
        assert r.status == 200, await r.text()
        report = await report_by_ticket(k, ticket_of(await r.text()))
        assert (report["channel"], report["owner"]) == (channel, scope)


async def test_whistle_blowing_to_the_inspektorat_keeps_the_identity_confidential(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k, scope="office:inspektorat")
    r = await k.client.post(
        "/desk",
        data=walk_in(
            csrf,
            name="Budi",
            phone="081234567890",
            confidential="1",
            text="Pungutan liar di kantor",
        ),
    )
    assert r.status == 200
    html = await r.text()
    assert "Budi" not in html and "Dirahasiakan" in html
    report = await report_by_ticket(k, ticket_of(html))
    assert report["confidential"] is True
    viewer = await k.token(scope="office:inspektorat", role="viewer")
    seen = await (
        await k.client.get(
            f"/api/v1/reports/{report['id']}", headers={"Authorization": f"Bearer {viewer}"}
        )
    ).json()
    assert seen["reporter"]["name"] is None and seen["reporter"]["phone"] is None


async def test_a_post_without_the_csrf_token_or_from_another_origin_stores_nothing(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post("/desk", data=walk_in("wrong-token"))
    assert r.status == 403
    r = await k.client.post("/desk", data=walk_in(csrf), headers={"Origin": "https://evil.example"})
    assert r.status == 403
    r = await k.client.post("/desk", data=walk_in(csrf), headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403
    assert await raw_count(k) == 0


async def test_a_failed_submit_keeps_what_was_typed_and_names_the_problem(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post(
        "/desk",
        data=walk_in(
            csrf, text="", name="Citra", phone="12ab", email="bukan-email", lat="abc", lon="1"
        ),
    )
    assert r.status == 422
    html = await r.text()
    assert 'value="Citra"' in html and 'value="12ab"' in html
    assert "Isi pengaduan wajib diisi." in html
    assert "Nomor telepon tidak valid" in html
    assert "Alamat e-mail tidak valid." in html
    assert "Koordinat berupa angka desimal" in html
    assert 'aria-invalid="true" aria-describedby="phone-error"' in html
    assert await raw_count(k) == 0


async def test_a_kelurahan_outside_the_officers_scope_is_refused(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k, scope="kecamatan:31.71.06")
    r = await k.client.post("/desk", data=walk_in(csrf, kelurahan="31.74.01.1001"))
    assert r.status == 422
    assert "Pilih kelurahan dari daftar" in await r.text()


async def test_the_area_search_answers_within_the_officers_scope(make_kanal):
    k = await make_kanal()
    await sign_in(k, scope="kecamatan:31.71.06")
    r = await k.client.get("/desk/areas", params={"q": "menteng"})
    items = (await r.json())["items"]
    assert items and all(i["code"].startswith("31.71.06.") for i in items)
    assert "Menteng" in [i["name"] for i in items]
