"""Desk uploads are checked by their bytes, not their names; hostile files are refused cleanly."""

from __future__ import annotations

import pytest
from aiohttp import MultipartWriter

from tests.gateway.web.desk.helpers import jpeg_bytes, sign_in, walk_in
from tests.gateway.web.desk.test_walk_in import raw_count

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.mark.parametrize(
    ("field", "filename", "data", "message"),
    [
        ("photos", "kosong.jpg", b"", "berkas kosong"),
        (
            "photos",
            "skrip.jpg",
            b"\xff\xd8\xff\xe0" + b"<script>alert(1)</script>",
            "kode halaman web",
        ),
        ("documents", "halaman.pdf", b"<html><body>%PDF-1.4</body></html>", "kode halaman web"),
        ("photos", "program.jpg", b"MZ\x90\x00\x03" + bytes(200), "jenis berkas tidak diterima"),
        ("photos", "dokumen.jpg", PDF, "bukan foto"),
        ("photos", "rusak.jpg", b"\xff\xd8\xff\xe0" + bytes(100), "foto rusak"),
        ("photos", "gifar.jpg", None, "ZIP tersembunyi"),
    ],
)
async def test_a_hostile_upload_is_refused_next_to_its_field_and_nothing_is_stored(
    make_kanal, field, filename, data, message
):
    if data is None:  # a real photo with a ZIP archive appended (a "GIFAR"-style polyglot)
        data = jpeg_bytes() + b"PK\x03\x04" + bytes(30) + b"PK\x05\x06" + bytes(18)
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post(
        "/desk", data=walk_in(csrf, files=[(field, filename, data)], name="Dewi")
    )
    assert r.status == 422
    html = await r.text()
    assert message in html
    assert f'id="{field}-error"' in html
    assert 'value="Dewi"' in html
    assert await raw_count(k) == 0


async def test_a_pdf_a_png_and_a_path_in_the_name_are_accepted(make_kanal):
    from io import BytesIO

    from PIL import Image

    png = BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    k = await make_kanal()
    csrf = await sign_in(k)
    files = [
        ("documents", "../../etc/surat.pdf", PDF),
        ("photos", "a.png", png.getvalue()),
        ("photos", "b.jpg", jpeg_bytes()),
    ]
    r = await k.client.post("/desk", data=walk_in(csrf, files=files))
    assert r.status == 200, await r.text()
    await k.drain()
    [report] = (await k.store.list_reports("province", limit=5))[0]
    assert sorted((a.filename, a.content_type) for a in report.attachments) == [
        ("a.png", "image/png"),
        ("b.jpg", "image/jpeg"),
        ("surat.pdf", "application/pdf"),
    ]


async def test_a_file_over_max_upload_bytes_gets_a_clear_error(make_kanal):
    k = await make_kanal()
    k.runtime.settings.server.max_upload_bytes = 2 * 1_048_576
    csrf = await sign_in(k)
    big = jpeg_bytes() + bytes(3 * 1_048_576)
    r = await k.client.post("/desk", data=walk_in(csrf, files=[("photos", "besar.jpg", big)]))
    assert r.status == 422
    assert "besar.jpg: lebih besar dari 2 MB." in await r.text()
    assert await raw_count(k) == 0


async def test_eleven_files_are_too_many(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    photo = jpeg_bytes()
    r = await k.client.post(
        "/desk", data=walk_in(csrf, files=[("photos", f"{i}.jpg", photo) for i in range(11)])
    )
    assert r.status == 422
    assert "Paling banyak 10 berkas" in await r.text()
    assert await raw_count(k) == 0


async def test_ten_thousand_files_are_refused_without_reading_them_all(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    with MultipartWriter("form-data") as body:
        part = body.append(csrf)
        part.set_content_disposition("form-data", name="csrf")
        part = body.append("Jalan rusak")
        part.set_content_disposition("form-data", name="text")
        for i in range(10_000):
            part = body.append(b"x")
            part.set_content_disposition("form-data", name="photos", filename=f"{i}.jpg")
    r = await k.client.post("/desk", data=body)
    assert r.status == 422
    assert "terlalu banyak bagian" in await r.text()
    assert await raw_count(k) == 0


async def test_a_request_larger_than_any_honest_form_gets_413(make_kanal):
    k = await make_kanal()
    k.runtime.settings.server.max_upload_bytes = 100_000
    csrf = await sign_in(k)
    files = [("photos", f"{i}.jpg", bytes(150_000)) for i in range(20)]
    r = await k.client.post("/desk", data=walk_in(csrf, files=files))
    assert r.status == 413
    assert await raw_count(k) == 0
