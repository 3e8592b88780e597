"""The clipping form: complaints seen in mass media become `media` reports for its owner."""

from __future__ import annotations

import re

from tests.gateway.web.desk.helpers import sign_in
from tests.gateway.web.desk.test_walk_in import raw_count, report_by_ticket, ticket_of


async def test_a_clipping_becomes_a_media_report_owned_by_the_media_channels_owner(make_kanal):
    k = await make_kanal(extra='[channels.media]\nowner = "office:biro_pemerintahan"\n')
    csrf = await sign_in(k, scope="office:balai_kota")
    r = await k.client.post(
        "/desk/media",
        data={
            "csrf": csrf,
            "outlet": "Kompas",
            "url": "https://kompas.example/berita/1",
            "published": "2026-11-20",
            "headline": "Warga keluhkan banjir",
            "text": "Banjir setinggi 50 cm merendam permukiman warga",
            "place": "Kel. Kampung Melayu",
        },
    )
    assert r.status == 200, await r.text()
    report = await report_by_ticket(k, ticket_of(await r.text()))
    assert report["channel"] == "media"
    assert report["connector"] == "media_clipping"
    assert report["owner"] == "office:biro_pemerintahan"
    assert report["title"] == "Warga keluhkan banjir"
    assert report["reporter"]["name"] == "Kompas"


async def test_a_clipping_without_outlet_or_with_a_bad_link_is_sent_back(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post(
        "/desk/media",
        data={"csrf": csrf, "url": "javascript:alert(1)", "published": "kemarin", "text": "Sampah"},
    )
    assert r.status == 422
    html = await r.text()
    assert "Nama media wajib diisi." in html
    assert "Tautan harus diawali http:// atau https://." in html
    assert "Tanggal tidak valid" in html
    assert await raw_count(k) == 0


async def test_the_desk_page_weighs_under_100_kb_with_its_css_and_js(make_kanal):
    k = await make_kanal()
    await sign_in(k, scope="office:balai_kota")  # the largest picker: every kelurahan
    r = await k.client.get("/desk")
    html = await r.read()
    total = len(html)
    for asset in re.findall(rb'(?:href|src)="(/static/[^"]+)"', html):
        a = await k.client.get(asset.decode())
        assert a.status == 200
        total += len(await a.read())
    assert total < 100_000, total
    text = html.decode()
    # Every field has a label.
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', text))
    labelled = set(re.findall(r'<label for="([^"]+)"', text))
    assert ids and ids <= labelled, ids - labelled


async def test_pages_refuse_framing_and_foreign_scripts(make_kanal):
    k = await make_kanal()
    r = await k.client.get("/signin")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
