"""The desks: walk-in form `/desk`, clipping form `/desk/media`, their
receipts, and `/desk/areas` for the kelurahan picker.

What an officer enters becomes a RawMessage stored through the same inbox writer as every
webhook; the pipeline makes the report. The officer's scope decides channel and owner.

Decision on officer-typed coordinates: they are NOT a geo-tag. A geo-tag is only
coordinates that came with the message (device GPS, EXIF); a point an officer types from a
citizen's description is an admin location. It is kept in the raw message's
`extra.officer_location` (and the picked kelurahan in `extra.kelurahan_code`, also added to
the address hint so the location suggestions find it); the report stays non-geo in the
owner's queue, where an admin confirms the location. A photo uploaded here is evidence
that came with the message: its EXIF GPS geo-tags the report as any channel's photo does.

Long (~750 lines): two forms share every step (sign-in, CSRF, scope rules, streaming
multipart with its budget, upload checks by content, the receipt), and apart they would
be two copies of most of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import ntpath
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy

from connectors import CHANNEL_LABELS
from connectors.base import AttachmentRef, RawMessage, Sender, WireRequest
from gateway.base.runtime import Runtime
from gateway.intake.webhooks import to_new_raw
from gateway.store import StoreUnavailable, is_unavailable, scope_contains
from gateway.store.ids import new_id
from gateway.web.keys import RUNTIME
from gateway.web.people import Person
from gateway.web.sessions import (
    STATIC,
    CsrfError,
    add_signin_routes,
    check_csrf,
    current_user,
    redirect,
    render,
    require_user,
)
from normalizers.geo import AreaMatch
from normalizers.phone import normalize_phone
from normalizers.sniff import ALLOWED_UPLOAD_TYPES, PDF, is_image, sniff_content_type

log = logging.getLogger("kanal.desk")

DESK_ROLES = ("officer", "admin")
MAX_FILES = 10  # photos and documents together, per report
MAX_PARTS = 64  # form fields plus files; more is not a browser filling our form
MAX_FIELD_BYTES = 20_000
MAX_TEXT_CHARS = 10_000
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
# Markup that makes a "photo" or "document" something a browser would run (polyglots).
_ACTIVE_MARKUP = re.compile(
    rb"<\s*(?:script|html|svg|iframe|object|embed|body|meta|!doctype\s+html)\b|<\?php", re.I
)


# --- scope rules ---------------------------------------------------------------------------


def desk_channel(scope: str) -> str | None:
    """The channel of walk-in reports entered under `scope`; None when
    the scope has no walk-in desk. Province and Biro Pemerintahan staff sit in the pendopo."""
    if scope in ("office:balai_kota", "office:biro_pemerintahan", "province"):
        return "balai_kota"
    if scope == "office:inspektorat":
        return "inspektorat"
    return {"kota": "walikota", "kecamatan": "kecamatan", "kelurahan": "kelurahan"}.get(
        scope.partition(":")[0]
    )


def desk_choices(runtime: Runtime, scope: str) -> list[tuple[str, str]]:
    """The desks of the pendopo an officer picks from: one per kota, plus Biro Pemerintahan."""
    if scope == "office:biro_pemerintahan":
        return [("office:biro_pemerintahan", "Biro Pemerintahan")]
    if desk_channel(scope) != "balai_kota":
        return []
    kota = sorted(runtime.areas.kota_areas, key=lambda area: area.code)
    return [(f"kota:{a.code}", a.name) for a in kota] + [
        ("office:biro_pemerintahan", "Biro Pemerintahan")
    ]


def office_label(runtime: Runtime, scope: str) -> str:
    kind, _, code = scope.partition(":")
    if kind == "office":
        return str(runtime.settings.office_names().get(code, code))
    if kind == "kota":
        area = runtime.areas.kota(code)
        return f"Kantor Walikota {area.name if area else code}"
    if kind == "kecamatan":
        area = runtime.areas.kecamatan(code)
        return f"Kantor Camat {area.name if area else code}"
    if kind == "kelurahan":
        match = runtime.areas.by_kelurahan_code(code)
        return f"Kantor Lurah {match.kelurahan.name if match else code}"
    return "Pemprov DKI Jakarta"


def _in_scope(match: AreaMatch, scope: str) -> bool:
    kind, _, code = scope.partition(":")
    if kind == "kota":
        return match.kota.code == code
    if kind == "kecamatan":
        return match.kecamatan.code == code
    if kind == "kelurahan":
        return match.kelurahan.code == code
    return True  # province and offices take complaints about anywhere in Jakarta


def kelurahan_options(runtime: Runtime, scope: str) -> list[AreaMatch]:
    matches = [m for m in runtime.areas.kelurahan_matches if _in_scope(m, scope)]
    return sorted(matches, key=lambda m: (m.kota.code, m.kecamatan.name, m.kelurahan.name))


def _area_json(match: AreaMatch) -> dict[str, str]:
    return {
        "code": match.kelurahan.code,
        "name": match.kelurahan.name,
        "kecamatan": match.kecamatan.name,
        "kota": match.kota.name,
    }


# --- reading a form with files --------------------------------------------------------------


class FormTooLarge(Exception):
    """The whole request is over what any honest form sends."""


@dataclass
class Upload:
    field: str
    filename: str
    data: bytes
    content_type: str = ""


@dataclass
class FormInput:
    fields: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def safe_filename(raw: str) -> str:
    """The base name only (browsers and attackers send paths), printable, at most 120 chars.
    Percent-escapes are decoded first: browsers write `"` as %22, aiohttp clients quote all."""
    name = unquote(raw).replace("\x00", "")
    name = posixpath.basename(ntpath.basename(name))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:120]
    return name or "berkas"


async def _read_limited(part: BodyPartReader, limit: int, budget: list[int]) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a part; the rest is drained. Returns (data, over_limit).
    `budget` is the bytes the whole request may still use (FormTooLarge past it)."""
    chunks: list[bytes] = []
    size = 0
    over = False
    while True:
        chunk = await part.read_chunk(65536)
        if not chunk:
            break
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise FormTooLarge
        size += len(chunk)
        if size > limit:
            over = True
            chunks = []  # keep draining the part, but never hold it
            continue
        chunks.append(chunk)
    return b"".join(chunks), over


async def read_form(
    request: web.Request, *, max_file_bytes: int, file_fields: tuple[str, ...]
) -> FormInput:
    """Text fields and uploads of a multipart (or url-encoded) POST, with per-field errors."""
    result = FormInput()
    if not request.content_type.startswith("multipart/"):
        posted: MultiDictProxy[Any] = await request.post()
        for key, value in posted.items():
            if isinstance(value, str) and key not in result.fields:
                result.fields[key] = value[:MAX_FIELD_BYTES]
        return result
    # The whole request stays within the app's client_max_size (aiohttp enforces it only on
    # bodies it reads itself, not on a multipart read part by part): one file at the cap
    # and the text fields, never MAX_FILES of them.
    budget = [min(request.client_max_size, max_file_bytes * MAX_FILES + 1_048_576)]
    reader = await request.multipart()
    parts = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        parts += 1
        if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
            result.errors["_form"] = "Formulir berisi terlalu banyak bagian."
            break
        name = part.name or ""
        if part.filename is None:
            data, over = await _read_limited(part, MAX_FIELD_BYTES, budget)
            if name and name not in result.fields:
                result.fields[name] = data.decode("utf-8", "replace")
                if over:
                    result.errors[name] = "Isian terlalu panjang."
            continue
        data, over = await _read_limited(part, max_file_bytes, budget)
        if name not in file_fields:
            continue
        if not part.filename and not data:
            continue  # the empty part a browser sends when nothing was chosen
        if len(result.uploads) >= MAX_FILES:
            result.errors[name] = f"Paling banyak {MAX_FILES} berkas per laporan."
            continue
        filename = safe_filename(part.filename)
        if over:
            limit_mb = max_file_bytes / 1_048_576
            result.errors[name] = f"{filename}: lebih besar dari {limit_mb:.0f} MB."
            continue
        result.uploads.append(Upload(name, filename, data))
    return result


def upload_problem(upload: Upload) -> str | None:
    """Why an uploaded file is refused (checked from its bytes, never its name); None if fine.
    Sets `upload.content_type` to the sniffed type."""
    data = upload.data
    if not data:
        return f"{upload.filename}: berkas kosong."
    content_type = sniff_content_type(data, None, upload.filename)
    upload.content_type = content_type
    if content_type not in ALLOWED_UPLOAD_TYPES:
        return (
            f"{upload.filename}: jenis berkas tidak diterima (foto, PDF, dokumen Office atau teks)."
        )
    if upload.field == "photos" and not is_image(content_type):
        return f"{upload.filename}: bukan foto. Lampirkan dokumen di kolom Dokumen."
    if _ACTIVE_MARKUP.search(data):
        return f"{upload.filename}: berisi kode halaman web; berkas ditolak."
    if content_type == PDF and not data.lstrip(b"\xef\xbb\xbf \t\r\n")[:5] == b"%PDF-":
        return f"{upload.filename}: PDF tidak sah."
    if not content_type.endswith(("zip", "document", "sheet", "presentation")) and (
        b"PK\x05\x06" in data[-65_557:]
    ):
        return f"{upload.filename}: berkas ganda (berisi arsip ZIP tersembunyi); ditolak."
    if is_image(content_type) and content_type not in ("image/heic", "image/heif"):
        if not _image_decodes(data):
            return f"{upload.filename}: foto rusak atau tidak dapat dibaca."
    return None


def _image_decodes(data: bytes) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


# --- the walk-in form -----------------------------------------------------------------------

WALK_IN_FIELDS = ("name", "phone", "email", "text", "address", "kelurahan", "lat", "lon", "desk")


@dataclass
class WalkIn:
    """A validated walk-in form."""

    name: str
    phone: str | None
    email: str | None
    text: str
    address: str
    kelurahan: AreaMatch | None
    point: tuple[float, float] | None
    desk: str | None
    confidential: bool
    uploads: list[Upload]


def _clean(value: str | None, limit: int = 500) -> str:
    return " ".join((value or "").split())[:limit]


def validate_walk_in(runtime: Runtime, person: Person, form: FormInput) -> WalkIn | None:
    """The checked form, or None with `form.errors` filled in (Bahasa Indonesia)."""
    f, errors = form.fields, form.errors
    text = (f.get("text") or "").strip()
    if not text:
        errors.setdefault("text", "Isi pengaduan wajib diisi.")
    elif len(text) > MAX_TEXT_CHARS:
        errors.setdefault("text", f"Isi pengaduan paling panjang {MAX_TEXT_CHARS} karakter.")
    phone: str | None = None
    raw_phone = _clean(f.get("phone"), 40)
    if raw_phone:
        parsed = normalize_phone(raw_phone)
        if parsed.e164 is None:
            errors.setdefault("phone", "Nomor telepon tidak valid. Contoh: 0812 3456 7890.")
        phone = parsed.e164
    email = _clean(f.get("email"), 254).lower() or None
    if email and not _EMAIL.match(email):
        errors.setdefault("email", "Alamat e-mail tidak valid.")
    kelurahan: AreaMatch | None = None
    code = _clean(f.get("kelurahan"), 20)
    if code:
        kelurahan = runtime.areas.by_kelurahan_code(code)
        if kelurahan is None or not _in_scope(kelurahan, person.scope):
            errors.setdefault("kelurahan", "Pilih kelurahan dari daftar (di wilayah kantor Anda).")
            kelurahan = None
    point: tuple[float, float] | None = None
    lat_raw, lon_raw = _clean(f.get("lat"), 30), _clean(f.get("lon"), 30)
    if lat_raw or lon_raw:
        try:
            lat, lon = float(lat_raw.replace(",", ".")), float(lon_raw.replace(",", "."))
        except ValueError:
            errors.setdefault(
                "lat", "Koordinat berupa angka desimal, misalnya -6.1754 dan 106.8272."
            )
        else:
            if not (
                math.isfinite(lat)
                and math.isfinite(lon)
                and -90 <= lat <= 90
                and -180 <= lon <= 180
            ):
                errors.setdefault("lat", "Koordinat di luar jangkauan.")
            else:
                point = (lat, lon)
    desk: str | None = None
    choices = dict(desk_choices(runtime, person.scope))
    if choices:
        desk = _clean(f.get("desk"), 40)
        if len(choices) == 1:
            desk = next(iter(choices))
        elif desk not in choices:
            errors.setdefault("desk", "Pilih meja pengaduan.")
    for upload in form.uploads:
        problem = upload_problem(upload)
        if problem:
            errors.setdefault(upload.field, problem)
    if errors:
        return None
    return WalkIn(
        name=_clean(f.get("name"), 200),
        phone=phone,
        email=email,
        text=text,
        address=_clean(f.get("address"), 500),
        kelurahan=kelurahan,
        point=point,
        desk=desk,
        confidential=bool(f.get("confidential")),
        uploads=form.uploads,
    )


def walk_in_message(runtime: Runtime, person: Person, walk_in: WalkIn, channel: str) -> RawMessage:
    hint_parts = [walk_in.address]
    extra: dict[str, Any] = {"owner": person.scope, "entered_by": person.name, "form": "walk_in"}
    if walk_in.kelurahan is not None:
        k = walk_in.kelurahan
        hint_parts.append(f"Kel. {k.kelurahan.name}, Kec. {k.kecamatan.name}")
        extra["kelurahan_code"] = k.kelurahan.code
    if walk_in.point is not None:
        extra["officer_location"] = {"lat": walk_in.point[0], "lon": walk_in.point[1]}
    if walk_in.desk:
        extra["desk"] = walk_in.desk
    hint = ", ".join(p for p in hint_parts if p) or None
    return RawMessage(
        connector="desk",
        channel=channel,
        external_id=new_id(),
        received_at=runtime.store.clock(),
        sender=Sender(name=walk_in.name or None, phone=walk_in.phone, email=walk_in.email),
        text=walk_in.text,
        location_hint=hint,
        attachments=[
            AttachmentRef(data=u.data, filename=u.filename, content_type=u.content_type)
            for u in walk_in.uploads
        ],
        confidential=walk_in.confidential,
        extra=extra,
    )


def _payload(message: RawMessage, person: Person) -> bytes:
    """What the officer submitted, as JSON, files described but not repeated (their bytes are
    in the stored message)."""
    data = message.to_json()
    data["attachments"] = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": len(a.data or b""),
            "sha256": hashlib.sha256(a.data or b"").hexdigest(),
        }
        for a in message.attachments
    ]
    data["officer"] = {"name": person.name, "scope": person.scope}
    return json.dumps(data, ensure_ascii=False).encode()


async def store_message(
    request: web.Request, person: Person, message: RawMessage, path: str
) -> Any:
    runtime: Runtime = request.app[RUNTIME]
    body = _payload(message, person)
    wire = WireRequest(
        method="POST",
        url=runtime.settings.server.public_url + path,
        path=path,
        query=(),
        headers={
            "content-type": "application/json",
            "user-agent": request.headers.get("User-Agent", "")[:200],
        },
        body=body,
        remote=request.remote or "",
    )
    [stored] = await runtime.store.writer().submit(
        [to_new_raw(message, wire, "desk", payload=body)]
    )
    runtime.metrics.raw_messages_stored.labels(message.connector, "desk").inc()
    log.info(
        "desk %s stored raw %s (%s, %d files)",
        message.connector,
        stored.id,
        message.channel,
        len(message.attachments),
    )
    return stored


def _walk_in_page(
    request: web.Request,
    person: Person,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    runtime: Runtime = request.app[RUNTIME]
    channel = desk_channel(person.scope)
    return render(
        request,
        "desk.html",
        status=status,
        title="Pengaduan langsung",
        office=office_label(runtime, person.scope),
        channel_label=CHANNEL_LABELS.get(channel or "", ""),
        desks=desk_choices(runtime, person.scope),
        kelurahan=kelurahan_options(runtime, person.scope),
        values=values or {},
        errors=errors or {},
        max_mb=runtime.settings.server.max_upload_bytes / 1_048_576,
        max_files=MAX_FILES,
    )


@require_user(DESK_ROLES)
async def walk_in_form(request: web.Request) -> web.StreamResponse:
    person = await current_user(request)
    assert person is not None
    if desk_channel(person.scope) is None:
        return _no_desk(request)
    return _walk_in_page(request, person)


def _no_desk(request: web.Request) -> web.Response:
    return render(
        request,
        "error.html",
        status=403,
        title="Tidak ada meja pengaduan",
        message="Kantor Anda tidak memiliki meja pengaduan langsung. "
        "Gunakan formulir kliping media atau hubungi admin.",
    )


def _csrf_refused(request: web.Request) -> web.Response:
    return render(
        request,
        "error.html",
        status=403,
        title="Formulir ditolak",
        message="Formulir kedaluwarsa atau tidak berasal dari halaman ini. "
        "Muat ulang halaman lalu isi lagi.",
    )


def _too_large(request: web.Request) -> web.Response:
    return render(
        request,
        "error.html",
        status=413,
        title="Terlalu besar",
        message="Kiriman terlalu besar. Kurangi jumlah atau ukuran berkas.",
    )


@require_user(DESK_ROLES)
async def walk_in_submit(request: web.Request) -> web.StreamResponse:
    runtime: Runtime = request.app[RUNTIME]
    person = await current_user(request)
    assert person is not None
    channel = desk_channel(person.scope)
    if channel is None:
        return _no_desk(request)
    try:
        form = await read_form(
            request,
            max_file_bytes=runtime.settings.server.max_upload_bytes,
            file_fields=("photos", "documents"),
        )
    except FormTooLarge:
        return _too_large(request)
    try:
        check_csrf(request, form.fields)
    except CsrfError:
        return _csrf_refused(request)
    values = {k: form.fields.get(k, "") for k in (*WALK_IN_FIELDS, "confidential")}
    walk_in = None if "_form" in form.errors else validate_walk_in(runtime, person, form)
    if walk_in is None:
        return _walk_in_page(request, person, values=values, errors=form.errors, status=422)
    message = walk_in_message(runtime, person, walk_in, channel)
    try:
        stored = await store_message(request, person, message, "/desk")
    except Exception as exc:
        if isinstance(exc, StoreUnavailable) or is_unavailable(exc):
            return _walk_in_page(
                request,
                person,
                values=values,
                status=503,
                errors={
                    "_form": "Penyimpanan sedang tidak dapat dijangkau. Data belum tersimpan; "
                    "kirim ulang sebentar lagi (pilih ulang berkasnya)."
                },
            )
        raise
    return redirect(f"/desk/receipt/{stored.id}")


# --- the clipping form ----------------------------------------------------------------------

MEDIA_FIELDS = ("outlet", "url", "published", "headline", "text", "place")


def validate_clipping(form: FormInput) -> dict[str, Any] | None:
    f, errors = form.fields, form.errors
    outlet = _clean(f.get("outlet"), 200)
    if not outlet:
        errors.setdefault("outlet", "Nama media wajib diisi.")
    url = _clean(f.get("url"), 2000)
    if url and not re.match(r"^https?://[^\s/]+", url):
        errors.setdefault("url", "Tautan harus diawali http:// atau https://.")
    published: str | None = None
    raw_date = _clean(f.get("published"), 20)
    if raw_date:
        try:
            published = date.fromisoformat(raw_date).isoformat()
        except ValueError:
            errors.setdefault("published", "Tanggal tidak valid (TTTT-BB-HH).")
    text = (f.get("text") or "").strip()
    if not text:
        errors.setdefault("text", "Isi pengaduan wajib diisi.")
    elif len(text) > MAX_TEXT_CHARS:
        errors.setdefault("text", f"Isi pengaduan paling panjang {MAX_TEXT_CHARS} karakter.")
    if errors:
        return None
    return {
        "outlet": outlet,
        "url": url or None,
        "published": published,
        "headline": _clean(f.get("headline"), 500) or None,
        "text": text,
        "place": _clean(f.get("place"), 500) or None,
    }


def clipping_message(runtime: Runtime, person: Person, clip: dict[str, Any]) -> RawMessage:
    return RawMessage(
        connector="media_clipping",
        channel="media",
        external_id=new_id(),
        received_at=runtime.store.clock(),
        sender=Sender(name=clip["outlet"]),
        text=clip["text"],
        title=clip["headline"],
        location_hint=clip["place"],
        extra={
            "owner": runtime.settings.channels.media.owner,
            "entered_by": person.name,
            "form": "clipping",
            "outlet": clip["outlet"],
            "url": clip["url"],
            "published": clip["published"],
        },
    )


def _media_page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "desk_media.html",
        status=status,
        title="Kliping media",
        values=values or {},
        errors=errors or {},
    )


@require_user(DESK_ROLES)
async def media_form(request: web.Request) -> web.StreamResponse:
    return _media_page(request)


@require_user(DESK_ROLES)
async def media_submit(request: web.Request) -> web.StreamResponse:
    runtime: Runtime = request.app[RUNTIME]
    person = await current_user(request)
    assert person is not None
    try:
        form = await read_form(request, max_file_bytes=1, file_fields=())
    except FormTooLarge:
        return _too_large(request)
    try:
        check_csrf(request, form.fields)
    except CsrfError:
        return _csrf_refused(request)
    values = {k: form.fields.get(k, "") for k in MEDIA_FIELDS}
    clip = validate_clipping(form)
    if clip is None:
        return _media_page(request, values=values, errors=form.errors, status=422)
    message = clipping_message(runtime, person, clip)
    try:
        stored = await store_message(request, person, message, "/desk/media")
    except Exception as exc:
        if isinstance(exc, StoreUnavailable) or is_unavailable(exc):
            return _media_page(
                request,
                values=values,
                status=503,
                errors={
                    "_form": "Penyimpanan sedang tidak dapat dijangkau; kirim ulang sebentar lagi."
                },
            )
        raise
    return redirect(f"/desk/receipt/{stored.id}")


# --- receipt and area search ----------------------------------------------------------------


@require_user(DESK_ROLES)
async def receipt(request: web.Request) -> web.StreamResponse:
    runtime: Runtime = request.app[RUNTIME]
    person = await current_user(request)
    assert person is not None
    raw_id = request.match_info["id"]
    row = await runtime.store.raw_message(raw_id) if re.fullmatch(r"[0-9A-Z]{26}", raw_id) else None
    message = json.loads(row["message"]) if row and row["message"] else None
    extra = (message or {}).get("extra") or {}
    if (
        row is None
        or message is None
        or row["connector"] not in ("desk", "media_clipping")
        or not (
            extra.get("entered_by") == person.name
            or scope_contains(person.scope, str(extra.get("owner")))
        )
    ):
        return render(
            request,
            "error.html",
            status=404,
            title="Tidak ditemukan",
            message="Tanda terima ini tidak ditemukan.",
        )
    desk_labels = dict(desk_choices(runtime, "office:balai_kota"))
    text = message.get("text") or ""
    return render(
        request,
        "desk_receipt.html",
        title=f"Tanda terima {row['ticket']}",
        ticket=row["ticket"],
        received_at=row["received_at"],
        channel_label=CHANNEL_LABELS.get(row["channel"], row["channel"]),
        office=office_label(runtime, str(extra.get("owner") or person.scope)),
        desk=desk_labels.get(str(extra.get("desk") or "")),
        reporter=None if message.get("confidential") else (message.get("sender") or {}).get("name"),
        confidential=bool(message.get("confidential")),
        excerpt=text[:300] + ("…" if len(text) > 300 else ""),
        files=len(message.get("attachments") or []),
        track_url=f"{runtime.settings.server.public_url}/track/{row['ticket']}",
        clipping=row["connector"] == "media_clipping",
    )


@require_user(DESK_ROLES)
async def areas_search(request: web.Request) -> web.StreamResponse:
    runtime: Runtime = request.app[RUNTIME]
    person = await current_user(request)
    assert person is not None
    query = request.query.get("q", "")[:100]
    found = [m for m in runtime.areas.search(query, limit=50) if _in_scope(m, person.scope)][:15]
    return web.json_response(
        {"items": [_area_json(m) for m in found]}, headers={"Cache-Control": "no-store"}
    )


def add_routes(app: web.Application, runtime: Runtime) -> None:
    """Sign-in, desks and their static files on the app (called by create_app)."""
    add_signin_routes(app)
    app.router.add_get("/desk", walk_in_form)
    app.router.add_post("/desk", walk_in_submit)
    app.router.add_get("/desk/media", media_form)
    app.router.add_post("/desk/media", media_submit)
    app.router.add_get("/desk/receipt/{id}", receipt)
    app.router.add_get("/desk/areas", areas_search)
    app.router.add_static("/static", STATIC, append_version=False)
