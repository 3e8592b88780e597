"""Content types from the bytes themselves (magic numbers), never from names or headers.

The declared type and the filename only break ties inside a family the bytes already
proved (an OLE2 file that is a .doc or a .xls, a text file that is CSV).
"""

from __future__ import annotations

import io
import re
import zipfile

OCTET_STREAM = "application/octet-stream"

JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
HEIC = "image/heic"
HEIF = "image/heif"
AVIF = "image/avif"
BMP = "image/bmp"
TIFF = "image/tiff"
PDF = "application/pdf"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OLE2 = "application/x-ole-storage"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
MSG = "application/vnd.ms-outlook"
TNEF = "application/ms-tnef"
MP4 = "video/mp4"
MOV = "video/quicktime"
THREE_GP = "video/3gpp"
THREE_G2 = "video/3gpp2"
M4A = "audio/mp4"
MP3 = "audio/mpeg"
OGG = "audio/ogg"
OGG_VIDEO = "video/ogg"
WAV = "audio/wav"
AMR = "audio/amr"
AMR_WB = "audio/amr-wb"
TEXT = "text/plain"
HTML = "text/html"

# What an officer may upload at a desk.
ALLOWED_UPLOAD_TYPES: frozenset[str] = frozenset(
    {JPEG, PNG, GIF, WEBP, HEIC, HEIF, BMP, TIFF, PDF, DOCX, XLSX, PPTX, DOC, XLS, PPT, TEXT}
    | {"text/csv"}
)

# Text subtypes a sender may choose once the bytes proved to be plain text. HTML is not
# among them: it is only ever reported when the bytes look like HTML.
_TEXT_TIE_BREAKS = {
    "text/csv": "text/csv",
    "text/tab-separated-values": "text/tab-separated-values",
    "text/calendar": "text/calendar",
    "text/vcard": "text/vcard",
    "text/x-vcard": "text/vcard",
    "text/markdown": "text/markdown",
}
_TEXT_EXTENSIONS = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".ics": "text/calendar",
    ".vcf": "text/vcard",
    ".md": "text/markdown",
}
_OLE2_BY_EXTENSION = {".doc": DOC, ".dot": DOC, ".xls": XLS, ".xlt": XLS, ".ppt": PPT, ".msg": MSG}
_OLE2_BY_DECLARED = {DOC: DOC, XLS: XLS, PPT: PPT, MSG: MSG, "application/x-msg": MSG}
# OLE2 directory entries are UTF-16LE stream names; these identify the application.
_OLE2_STREAMS = (
    ("WordDocument".encode("utf-16-le"), DOC),
    ("Workbook".encode("utf-16-le"), XLS),
    ("Book".encode("utf-16-le"), XLS),
    ("PowerPoint Document".encode("utf-16-le"), PPT),
    ("__substg1.0_".encode("utf-16-le"), MSG),
)
_FTYP_BRANDS = {
    b"heic": HEIC,
    b"heix": HEIC,
    b"hevc": HEIC,
    b"hevx": HEIC,
    b"heim": HEIC,
    b"heis": HEIC,
    b"mif1": HEIF,
    b"msf1": HEIF,
    b"avif": AVIF,
    b"avis": AVIF,
    b"qt  ": MOV,
    b"M4A ": M4A,
    b"M4B ": M4A,
    b"F4A ": M4A,
    b"3g2a": THREE_G2,
    b"3g2b": THREE_G2,
    b"3g2c": THREE_G2,
}
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I | re.S
)


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return "." + filename.rsplit(".", 1)[1].strip().lower()


def _base_type(declared: str | None) -> str:
    return (declared or "").split(";", 1)[0].strip().lower()


def _sniff_ftyp(data: bytes) -> str | None:
    if data[4:8] != b"ftyp":
        if data[4:8] in _QUICKTIME_ATOMS:
            return MOV
        return None
    major = data[8:12]
    if major in _FTYP_BRANDS:
        return _FTYP_BRANDS[major]
    if major.startswith(b"3gp") or major.startswith(b"3gg") or major.startswith(b"3gs"):
        return THREE_GP
    # A generic major brand (isom, mp42, …): the compatible brands may still say HEIF.
    box_size = int.from_bytes(data[0:4], "big")
    compatible = data[16 : min(max(box_size, 16), 64)]
    for offset in range(0, len(compatible) - 3, 4):
        brand = compatible[offset : offset + 4]
        if brand in (b"heic", b"heix"):
            return HEIC
        if brand in (b"avif",):
            return AVIF
    return MP4


def _local_header_names(data: bytes) -> list[str]:
    names: list[str] = []
    position = data.find(b"PK\x03\x04")
    while 0 <= position and len(data) >= position + 30 and len(names) < 1000:
        name_length = int.from_bytes(data[position + 26 : position + 28], "little")
        names.append(data[position + 30 : position + 30 + name_length].decode("latin-1"))
        position = data.find(b"PK\x03\x04", position + 30 + name_length)
    return names


def _sniff_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        # Truncated archive without a central directory: the local headers still name the parts.
        names = _local_header_names(data[:1_048_576])
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return DOCX
        if any(n.startswith("xl/") for n in names):
            return XLSX
        if any(n.startswith("ppt/") for n in names):
            return PPTX
    return ZIP


def _sniff_ole2(data: bytes, declared: str, extension: str) -> str:
    for marker, content_type in _OLE2_STREAMS:
        if marker in data:
            return content_type
    return _OLE2_BY_DECLARED.get(declared) or _OLE2_BY_EXTENSION.get(extension) or OLE2


def _is_mp3(data: bytes) -> bool:
    if data.startswith(b"ID3"):
        return True
    # MPEG audio frame sync: 11 set bits, then a layer that is not "reserved"; ADTS AAC
    # (layer bits 00) is excluded.
    return len(data) >= 4 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06) != 0


def _sniff_text(data: bytes, declared: str, extension: str) -> str | None:
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if b"\x00" in body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _HTML_START.match(body[:2048]):
        return HTML
    return _TEXT_TIE_BREAKS.get(declared) or _TEXT_EXTENSIONS.get(extension) or TEXT


def sniff_content_type(
    data: bytes, declared: str | None = None, filename: str | None = None
) -> str:
    """The content type the bytes prove; `application/octet-stream` when they prove nothing."""
    if not data:
        return OCTET_STREAM
    head = data[:64]
    declared_type = _base_type(declared)
    extension = _extension(filename)
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"BM") and len(data) >= 26 and data[6:10] == b"\x00\x00\x00\x00":
        return BMP
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    # PDF readers accept the header anywhere in the first kilobyte.
    if b"%PDF-" in data[:1024]:
        return PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(data)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _sniff_ole2(data, declared_type, extension)
    if head.startswith(b"\x78\x9f\x3e\x22"):
        return TNEF
    if len(head) >= 12:
        boxed = _sniff_ftyp(head)
        if boxed:
            return boxed
    if head.startswith(b"OggS"):
        return OGG_VIDEO if b"theora" in data[:512] else OGG
    if head.startswith(b"#!AMR-WB\n"):
        return AMR_WB
    if head.startswith(b"#!AMR\n"):
        return AMR
    if _is_mp3(head):
        return MP3
    text = _sniff_text(data, declared_type, extension)
    if text:
        return text
    return OCTET_STREAM


def is_image(content_type: str | None) -> bool:
    return _base_type(content_type).startswith("image/")
