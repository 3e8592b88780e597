"""Content types come from the bytes; names and declared types only break ties."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from normalizers.sniff import ALLOWED_UPLOAD_TYPES, is_image, sniff_content_type


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, fmt)
    return out.getvalue()


def office(folder: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{folder}/main.xml", "<x/>")
    return out.getvalue()


def ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"isom" + b"\x00" * 32


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (image("JPEG"), "image/jpeg"),
        (image("PNG"), "image/png"),
        (image("GIF"), "image/gif"),
        (image("WEBP"), "image/webp"),
        (image("BMP"), "image/bmp"),
        (image("TIFF"), "image/tiff"),
        (ftyp(b"heic"), "image/heic"),
        (ftyp(b"mif1"), "image/heif"),
        (ftyp(b"isom"), "video/mp4"),
        (ftyp(b"mp42"), "video/mp4"),
        (ftyp(b"3gp5"), "video/3gpp"),
        (ftyp(b"qt  "), "video/quicktime"),
        (ftyp(b"M4A "), "audio/mp4"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"\r\n\r\n%PDF-1.4\n", "application/pdf"),
        (office("word"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (office("xl"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (
            office("ppt"),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        (office("other"), "application/zip"),
        (
            office("word")[: office("word").index(b"PK\x01\x02")],
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (OLE2 + "WordDocument".encode("utf-16-le"), "application/msword"),
        (OLE2 + "Workbook".encode("utf-16-le"), "application/vnd.ms-excel"),
        (OLE2 + "__substg1.0_0037001F".encode("utf-16-le"), "application/vnd.ms-outlook"),
        (OLE2, "application/x-ole-storage"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
        (b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead", "audio/ogg"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"#!AMR\n\x3c", "audio/amr"),
        (b"\x78\x9f\x3e\x22\x01\x00", "application/ms-tnef"),
        ("Laporan warga — RT 03".encode(), "text/plain"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "text/html"),
        (b"", "application/octet-stream"),
        (b"\x00\x01\x02\x03", "application/octet-stream"),
        ("caf\xe9".encode("latin-1"), "application/octet-stream"),
        (b"text with a \x00 NUL", "application/octet-stream"),
    ],
)
def test_bytes_decide_the_type(data: bytes, expected: str) -> None:
    assert sniff_content_type(data) == expected


def test_names_and_declared_types_never_override_the_bytes() -> None:
    assert sniff_content_type(image("JPEG"), "application/pdf", "surat.pdf") == "image/jpeg"
    assert (
        sniff_content_type(b"\x00garbage", "image/jpeg", "foto.jpg") == "application/octet-stream"
    )
    assert sniff_content_type(b"<p>hi</p>", "text/html", "a.html") == "text/plain"
    assert sniff_content_type(b"MZ\x90\x00", "image/png", "x.png") == "application/octet-stream"


def test_names_and_declared_types_break_ties_inside_a_family() -> None:
    assert sniff_content_type(b"a,b\n1,2\n", "text/csv") == "text/csv"
    assert sniff_content_type(b"a,b\n1,2\n", None, "data.CSV") == "text/csv"
    assert sniff_content_type(OLE2, "application/vnd.ms-excel") == "application/vnd.ms-excel"
    assert sniff_content_type(OLE2, None, "lama.doc") == "application/msword"


def test_image_types_and_desk_uploads() -> None:
    assert is_image("image/jpeg") and is_image("IMAGE/PNG; x=y")
    assert not is_image("application/pdf") and not is_image(None)
    assert {"image/jpeg", "application/pdf", "text/plain"} <= ALLOWED_UPLOAD_TYPES
    assert "text/html" not in ALLOWED_UPLOAD_TYPES
    assert "application/ms-tnef" not in ALLOWED_UPLOAD_TYPES


@given(st.binary(max_size=512), st.none() | st.text(max_size=30), st.none() | st.text(max_size=30))
def test_sniffing_never_raises(data: bytes, declared: str | None, filename: str | None) -> None:
    assert "/" in sniff_content_type(data, declared, filename)
