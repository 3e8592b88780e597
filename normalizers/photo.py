"""Photo metadata: GPS coordinates out of EXIF, and EXIF-free copies to hand to the CRM.

All functions take untrusted bytes. `exif_gps` and `photo_coordinates` never raise;
`strip_exif` raises only `ValueError` (not an image it can re-encode).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable
from itertools import islice
from typing import Any

from PIL import Image, ImageOps

from connectors.base import Coordinates

log = logging.getLogger(__name__)

GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON = 1, 2, 3, 4

# Decoding pixels is where a decompression bomb hurts; reading EXIF only parses headers.
# 50 megapixels covers every phone camera in use; Pillow's own limit (about 89 MP, error at
# twice that) stays in place as a second guard for the rest of the process.
MAX_PIXELS = 50_000_000
MAX_GPS_PROBES = 20  # photos of one message opened to look for EXIF GPS

# Formats whose pixels we re-encode in the same format; others become PNG.
_SAME_FORMAT = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


def _number(value: Any) -> float | None:
    """One EXIF rational as a float: IFDRational, a (num, den) pair, or a plain number."""
    try:
        if isinstance(value, tuple | list):
            if len(value) != 2:
                return None
            numerator, denominator = value
            if not denominator:
                return None
            number = float(numerator) / float(denominator)
        else:
            number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _degrees(value: Any) -> float | None:
    """(degrees, minutes, seconds) — or fewer parts, or a single decimal value — as degrees."""
    raw_parts = list(value[:3]) if isinstance(value, tuple | list) else [value]
    parts = [_number(v) for v in raw_parts]
    if not parts:
        return None
    numbers = [abs(p) for p in parts if p is not None]
    if len(numbers) != len(parts):
        return None
    while len(numbers) < 3:
        numbers.append(0.0)
    degrees, minutes, seconds = numbers
    if minutes >= 60 or seconds >= 60:
        return None
    return degrees + minutes / 60 + seconds / 3600


def _ref(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return str(value or "").strip("\x00 ").upper()[:1]


def _gps_from_ifd(gps: Any) -> tuple[float, float] | None:
    lat_ref, lon_ref = _ref(gps.get(_LAT_REF)), _ref(gps.get(_LON_REF))
    # Without the hemisphere the sign is a guess; a guess puts Jakarta in the South China Sea.
    if lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None
    lat, lon = _degrees(gps.get(_LAT)), _degrees(gps.get(_LON))
    if lat is None or lon is None or lat > 90 or lon > 180:
        return None
    if lat == 0 and lon == 0:  # cameras write zeros when they had no fix
        return None
    return (-lat if lat_ref == "S" else lat, -lon if lon_ref == "W" else lon)


def exif_gps(data: bytes) -> tuple[float, float] | None:
    """(lat, lon) from a photo's EXIF GPS block; None when absent, invalid or not an image."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            gps = image.getexif().get_ifd(GPS_IFD)
            if not gps:
                return None
            return _gps_from_ifd(gps)
    except Image.DecompressionBombError:
        return None
    # Pillow's plugins raise nearly every built-in exception on hostile input (struct.error,
    # SyntaxError, IndexError, …); this function promises callers it never raises.
    except Exception as exc:
        log.debug("no EXIF GPS: %s: %s", type(exc).__name__, exc)
        return None


def photo_coordinates(photos: Iterable[bytes]) -> Coordinates | None:
    """Where the first of `photos` with an EXIF GPS position was taken (source "exif").

    At most MAX_GPS_PROBES photos are opened: a message of a thousand images costs no more.
    """
    for data in islice(photos, MAX_GPS_PROBES):
        found = exif_gps(data)
        if found:
            return Coordinates(lat=found[0], lon=found[1], source="exif")
    return None


def strip_exif(data: bytes) -> tuple[bytes, str]:
    """Re-encoded image without EXIF, GPS, XMP or comments, and its content type.

    The EXIF orientation is applied to the pixels first, so the photo still stands upright.
    Raises ValueError when the bytes are not an image Pillow can decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"image too large: {image.width}x{image.height}")
            source_format = image.format or ""
            frames = getattr(image, "n_frames", 1)
            icc_profile = image.info.get("icc_profile")
            if source_format == "GIF" and frames > 1:
                return _reencode_animated_gif(image), "image/gif"
            image.load()
            upright = ImageOps.exif_transpose(image)
    except ValueError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large: {exc}") from exc
    except Exception as exc:  # any decoder failure means: not an image we can re-encode
        raise ValueError(f"not a decodable image: {type(exc).__name__}: {exc}") from exc

    upright.info = {}  # drops exif, xmp, comments and text chunks carried over by Pillow
    content_type = _SAME_FORMAT.get(source_format, "image/png")
    target = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}[
        content_type
    ]
    options: dict[str, Any] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile  # colour, not identity
    if target == "JPEG":
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        options.update(quality=90, optimize=True)
    elif target == "WEBP":
        options.update(quality=90)
    elif target == "PNG" and upright.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        upright = upright.convert("RGBA")
    out = io.BytesIO()
    try:
        upright.save(out, format=target, **options)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot re-encode image: {exc}") from exc
    return out.getvalue(), content_type


def _reencode_animated_gif(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.info.pop("comment", None)
    image.info.pop("extension", None)
    image.save(out, format="GIF", save_all=True)
    return out.getvalue()
