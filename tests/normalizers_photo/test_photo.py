"""EXIF GPS out of photos, and EXIF-free copies of them."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from normalizers.photo import GPS_IFD, MAX_PIXELS, _gps_from_ifd, exif_gps, strip_exif


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def photo(
    gps: dict[int, object] | None = None,
    *,
    fmt: str = "JPEG",
    size: tuple[int, int] = (40, 20),
    orientation: int | None = None,
) -> bytes:
    image = Image.new("RGB", size, "red")
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if gps is not None:
        ifd = exif.get_ifd(GPS_IFD)
        ifd.update(gps)
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


def gps_block(lat: float, lon: float) -> dict[int, object]:
    return {1: "S" if lat < 0 else "N", 2: dms(lat), 3: "W" if lon < 0 else "E", 4: dms(lon)}


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(-6.1754, 106.8272), (-6.9175, 107.6191), (40.7128, -74.006), (51.5, -0.1)],
)
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_gps_round_trips_through_exif(lat: float, lon: float, fmt: str) -> None:
    found = exif_gps(photo(gps_block(lat, lon), fmt=fmt))
    assert found is not None
    assert found == pytest.approx((lat, lon), abs=1e-5)


def test_old_style_rational_pairs_are_read() -> None:
    block = {
        1: b"S\x00",
        2: ((6, 1), (10, 1), (3150, 100)),
        3: "E",
        4: ((106, 1), (49, 1), (3792, 100)),
    }
    found = _gps_from_ifd(block)
    assert found == pytest.approx((-6.17542, 106.82720), abs=1e-4)


@pytest.mark.parametrize(
    "block",
    [
        {},
        {1: "S", 2: dms(0), 3: "E", 4: dms(0)},  # no fix
        {2: dms(6.2), 4: dms(106.8)},  # no hemisphere
        {1: "X", 2: dms(6.2), 3: "E", 4: dms(106.8)},
        {1: "S", 2: (IFDRational(6, 0), IFDRational(0), IFDRational(0)), 3: "E", 4: dms(106.8)},
        {1: "S", 2: (IFDRational(95), IFDRational(0), IFDRational(0)), 3: "E", 4: dms(106.8)},
        {1: "S", 2: (IFDRational(6), IFDRational(75), IFDRational(0)), 3: "E", 4: dms(106.8)},
        {1: "S", 2: dms(6.2), 3: "E"},
    ],
)
def test_missing_zero_or_garbage_gps_gives_none(block: dict[int, object]) -> None:
    assert exif_gps(photo(block)) is None


def test_non_images_and_truncated_images_give_none() -> None:
    good = photo(gps_block(-6.2, 106.8))
    assert exif_gps(b"") is None
    assert exif_gps(b"%PDF-1.4 not an image") is None
    assert exif_gps(good[:30]) is None
    assert exif_gps(good[:200]) in (None, pytest.approx((-6.2, 106.8), abs=1e-5))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 400))
def test_exif_gps_never_raises(noise: bytes, cut: int) -> None:
    base = photo(gps_block(-6.2, 106.8))
    result = exif_gps(base[:cut] + noise + base[cut + len(noise) :])
    assert result is None or len(result) == 2


def test_decompression_bombs_are_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")  # 400 MP of nothing, a few kB
    bomb = out.getvalue()
    assert exif_gps(bomb) is None
    assert 20000 * 20000 > MAX_PIXELS
    with pytest.raises(ValueError, match="too large"):
        strip_exif(bomb)


def test_stripped_jpeg_has_no_gps_and_stands_upright() -> None:
    original = photo(gps_block(-6.1754, 106.8272), orientation=6, size=(40, 20))
    stripped, content_type = strip_exif(original)
    assert content_type == "image/jpeg"
    assert exif_gps(stripped) is None
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.format == "JPEG"
        assert image.size == (20, 40)  # orientation 6 applied to the pixels
        assert dict(image.getexif()) == {}
    assert b"Exif\x00\x00" not in stripped


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("PNG", "image/png"), ("WEBP", "image/webp"), ("TIFF", "image/png")]
)
def test_other_formats_are_stripped_too(fmt: str, content_type: str) -> None:
    stripped, got = strip_exif(photo(gps_block(-6.2, 106.8), fmt=fmt))
    assert got == content_type
    assert exif_gps(stripped) is None


def test_jpeg_comments_do_not_survive() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", comment=b"Budi, Jl. Kenari 12")
    stripped, _ = strip_exif(out.getvalue())
    assert b"Kenari" not in stripped


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.4", photo(gps_block(-6.2, 106.8))[:100]])
def test_non_images_cannot_be_stripped(data: bytes) -> None:
    with pytest.raises(ValueError):
        strip_exif(data)
