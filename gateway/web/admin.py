"""`/admin`: the enrichment queue as web pages for signed-in admins (Bahasa Indonesia).

The same rules as the admin API (`gateway.pipeline.enrich`: leases, PATCH, submit, reject), the
same scopes, the same sign-in as the desks (`gateway.web.sessions`). Every action is a
small form POST (CSRF-checked) answered by a redirect, outcomes told once on the next page,
so it works on any phone and a reload never posts again; the queue's one script only adds
keys. Viewers read; only admins change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import func, select, text

from connectors import CHANNEL_LABELS
from gateway.base.runtime import Runtime
from gateway.pipeline import enrich
from gateway.store import StaleVersion, scope_contains
from gateway.store.queue import OtherReport, other_open_reports, reports_by_id
from gateway.store.schema import reports
from gateway.web.admin_labels import CATEGORY_SOURCES, REJECT_LABELS, Labels, OwnerGroup
from gateway.web.keys import RUNTIME
from gateway.web.people import Person
from gateway.web.sessions import (
    JAKARTA,
    CsrfError,
    check_csrf,
    current_user,
    forget_flash,
    redirect,
    render,
    require_user,
    set_flash,
    take_flash,
)
from gateway.web.stats import active_model, owner_condition, report_counts, scoped_stats
from normalizers.geocode import Geocoder
from normalizers.report import HistoryEntry, Report

log = logging.getLogger("kanal.admin")

READ_ROLES = ("admin", "viewer")
STATUS_LABELS = {
    "received": "diterima",
    "pending_enrichment": "menunggu dilengkapi",
    "ready": "siap dikirim",
    "posting": "sedang dikirim",
    "posted": "terkirim",
    "in_progress": "ditindaklanjuti",
    "done": "selesai",
    "rejected": "ditolak",
    "failed": "gagal dikirim",
    # Statuses of history entries only.
    "follow_up": "susulan warga",
    "attachment": "lampiran",
    "follow_up_after_done": "warga menulis lagi setelah selesai",
}
GEOCODE_SOURCES = {"places": "nama tempat", "gazetteer": "daftar wilayah"}
# The reasons a person may choose (kanal's own `automated` and `empty` are not offered).
REJECT_REASONS = {code: REJECT_LABELS[code] for code in enrich.REJECT_REASONS}
OK_MESSAGES = {
    "claimed": "Laporan ini sekarang Anda kerjakan (15 menit, diperpanjang setiap perubahan).",
    "released": "Laporan dilepas; admin lain dapat mengerjakannya.",
    "saved": "Perubahan disimpan.",
    "rejected": "Laporan ditolak.",
    "reopened": "Laporan dikembalikan ke antrean.",
    "seen": "Tanda perhatian dihapus; laporan keluar dari antrean.",
}
FIELD_LABELS = {
    "location": "lokasi",
    "kelurahan_code": "kelurahan",
    "category": "kategori",
    "owner": "antrean",
    "address": "alamat",
    "description": "uraian untuk CRM",
    "reporter": "data pelapor",
    "confidential": "rahasiakan identitas",
    "reason": "alasan",
    "duplicate_of": "duplikat dari",
    "note": "catatan",
}
# The rules' refusals that carry the code "invalid", by their (English) message.
INVALID_TEXTS = {
    "a duplicate names the report it repeats": (
        "Alasan Duplikat perlu nomor tiket laporan aslinya."
    ),
    "duplicate_of goes with reason duplicate": (
        "Nomor tiket laporan asli hanya diisi bila alasannya Duplikat."
    ),
    "a report cannot repeat itself": "Laporan tidak dapat menjadi duplikat dirinya sendiri.",
    "give either location or kelurahan_code, not both": (
        "Pilih titik atau kelurahan, bukan keduanya."
    ),
}
# Colours of the charts, one per channel (colour-blind-safe-ish palette, cycled).
PALETTE = [
    "#0b4f8a",
    "#d9480f",
    "#2b8a3e",
    "#862e9c",
    "#e67700",
    "#1098ad",
    "#c2255c",
    "#5c940d",
    "#364fc7",
    "#a61e4d",
    "#495057",
    "#087f5b",
    "#f08c00",
    "#7048e8",
]


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def age_text(since: datetime, now: datetime) -> str:
    """How long a report has waited, the way people say it: "5 mnt", "3 jam", "2 hari"."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return f"{max(1, seconds // 60)} mnt"
    if seconds < 86400:
        return f"{seconds // 3600} jam"
    return f"{seconds // 86400} hari"


def _wib(when: datetime | None) -> str:
    return when.astimezone(JAKARTA).strftime("%d-%m-%Y %H:%M WIB") if when else "—"


def _error_text(exc: enrich.EnrichError) -> str:
    if exc.code == "claimed":
        until = datetime.fromisoformat(str(exc.extra["until"]).replace("Z", "+00:00"))
        return (
            f"Laporan ini sedang dikerjakan oleh {exc.extra['holder']} "
            f"sampai {until.astimezone(JAKARTA).strftime('%H:%M WIB')}."
        )
    if exc.code == "incomplete":
        missing = " dan ".join(FIELD_LABELS.get(m, m) for m in exc.extra.get("missing", []))
        return f"Belum lengkap: {missing} wajib diisi sebelum dikirim."
    if exc.code == "invalid":
        field = FIELD_LABELS.get(str(exc.extra.get("field") or ""), "")
        return INVALID_TEXTS.get(
            exc.message, f"Isian {field} tidak valid." if field else "Isian tidak valid."
        )
    texts = {
        "no_attention": "Laporan ini tidak bertanda perhatian.",
        "wrong_status": "Status laporan tidak memungkinkan tindakan ini.",
        "out_of_area": "Titik itu di luar DKI Jakarta.",
        "unknown_kelurahan": "Kelurahan tidak dikenal.",
        "unknown_category": "Kategori tidak dikenal.",
        "unknown_owner": "Tujuan pengalihan tidak dikenal.",
        "forbidden": "Identitas pelapor yang dirahasiakan hanya untuk admin Pemprov.",
        "invalid_phone": "Nomor telepon tidak valid.",
    }
    return texts.get(exc.code, exc.message)


def _filters(query: Mapping[str, str]) -> dict[str, str]:
    return {
        "channel": query.get("channel", "").strip()[:32],
        "owner": query.get("owner", "").strip()[:64],
        "q": query.get("q", "").strip()[:100],
    }


def _back(form: Any) -> str:
    """The queue's filters a form came from, as a query string to return to."""
    given = parse_qs(str(form.get("back") or "")[:400])
    filters = _filters({k: v[-1] for k, v in given.items()})
    return urlencode({k: v for k, v in filters.items() if v})


def duplicate_heads(items: Sequence[Report], elsewhere: Collection[str] = ()) -> dict[str, str]:
    """Each report's group on a queue page (oldest first): the first report it repeats
    (following chains) when kanal suggested it as a duplicate of one on the page or of one
    in `elsewhere` (seen by the admin but not on this page: on an earlier page, filtered
    out, already sent), else itself."""
    heads: dict[str, str] = {}
    for report in items:
        head = report.id
        for suggestion in report.suggestions.duplicate_of:
            if suggestion.id in heads:  # an older report of this page
                head = heads[suggestion.id]
                break
            if suggestion.id in elsewhere:
                head = suggestion.id
                break
        heads[report.id] = head
    return heads


def duplicates_elsewhere(items: Sequence[Report]) -> list[str]:
    """The reports this page's likely duplicates repeat that are not on the page."""
    here = {r.id for r in items}
    return list(
        dict.fromkeys(s.id for r in items for s in r.suggestions.duplicate_of if s.id not in here)
    )


class AdminPages:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store
        self.labels = Labels(runtime.areas, runtime.settings.office_names(), runtime.taxonomy)
        self.geocoder = Geocoder(runtime.areas)
        self.categories = sorted(runtime.taxonomy.categories, key=lambda c: c.name)
        self.kelurahan = sorted(
            runtime.areas.kelurahan_matches, key=lambda m: (m.kota.name, m.kelurahan.name)
        )
        # A report may be handed over to any queue, whoever's scope it is in.
        self.all_owners = self.labels.owner_groups("province")

    async def page(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.StreamResponse:
        """An admin page, with the message a redirect left for it (then forgotten)."""
        flash = take_flash(request)
        context.setdefault("ok", None)
        response = render(
            request,
            template,
            status=status,
            labels=self.labels,
            flash=await flash,
            **context,
        )
        forget_flash(request, response)
        return response

    async def person(self, request: web.Request) -> Person:
        person = await current_user(request)
        assert person is not None  # require_user ran first
        return person

    # --- the queue ------------------------------------------------------------------------

    async def queue(self, request: web.Request) -> web.StreamResponse:
        person = await self.person(request)
        q = request.query
        filters = _filters(q)
        try:
            items, cursor = await self.store.list_reports(
                person.scope,
                status=["pending_enrichment"],
                or_attention=True,
                channel=filters["channel"] or None,
                owner=filters["owner"] or None,
                q=filters["q"] or None,
                limit=50,
                cursor=q.get("cursor") or None,
                oldest_first=True,
            )
        except ValueError:
            items, cursor = [], None
        now = self.store.clock()
        others = await other_open_reports(self.store, person.scope, [r.id for r in items])
        # Originals of this page's duplicates that are elsewhere: one query by primary key.
        originals = await reports_by_id(self.store, person.scope, duplicates_elsewhere(items))
        cards = {r.id: self._card(r, now, others.get(r.id, [])) for r in items}
        heads = duplicate_heads(items, originals)
        shown: list[dict[str, Any]] = []
        groups: dict[str, dict[str, Any]] = {}
        for r in items:
            head = heads[r.id]
            if head == r.id:
                shown.append(cards[r.id])
            elif head in cards:
                cards[head]["duplicates"].append(cards[r.id])
            else:  # under a line naming the original, where its first duplicate would be
                if head not in groups:
                    groups[head] = {"original": originals[head], "duplicates": []}
                    shown.append(groups[head])
                groups[head]["duplicates"].append(cards[r.id])
        return await self.page(
            request,
            "admin_queue.html",
            title="Antrean pengaduan",
            cards=shown,
            total=len(items),
            filters=filters,
            back=urlencode({k: v for k, v in filters.items() if v}),
            channels=CHANNEL_LABELS,
            next_cursor=cursor,
            ok=q.get("ok"),
            ticket=q.get("ticket", ""),
            can_write=person.role == "admin",
            reject_labels=REJECT_REASONS,
            statuses=STATUS_LABELS,
            owners=self._owner_choices(person.scope, filters["owner"]),
        )

    def _owner_choices(self, scope: str, current: str) -> list[OwnerGroup]:
        """The owners the queue's filter offers, by name; a code given in a link that is
        not among them (another scope's, a typo) is still shown, by name when it has one."""
        groups = self.labels.owner_groups(scope)
        if current and all(current != code for _, owners in groups for code, _ in owners):
            groups.append(("Lainnya", [(current, self.labels.owner(current))]))
        return groups

    def _card(self, r: Report, now: datetime, others: list[OtherReport]) -> dict[str, Any]:
        """What one queue card shows: kanal's location and category with why, and what
        "Terima & kirim" would apply."""
        location: dict[str, Any] | None = None
        if r.location.kelurahan is not None and r.location.lat is not None:
            location = {
                "place": self.labels.place(
                    r.location.kelurahan, r.location.kecamatan, r.location.kota
                ),
                "chosen": True,
            }
        elif r.suggestions.locations:
            top = r.suggestions.locations[0]
            location = {
                "place": self.labels.place(top.kelurahan, top.kecamatan, top.kota),
                "chosen": False,
                "kelurahan_code": top.kelurahan.code,
                "lat": top.lat,
                "lon": top.lon,
                "confidence": round(top.confidence * 100),
                "evidence": top.evidence,
                "more": len(r.suggestions.locations) - 1,
            }
        category = None
        if r.category.code != "unknown":
            category = {
                "name": r.category.name,
                "agency": r.category.agency,
                "confidence": round(r.category.confidence * 100),
                "source": CATEGORY_SOURCES.get(r.category.source, r.category.source),
                "chosen": r.category.source == "admin",
            }
        missing = [
            word for word, known in (("lokasi", location), ("kategori", category)) if known is None
        ]
        lease = enrich.live_lease(r, now)
        return {
            "report": r,
            "age": age_text(r.received_at, now),
            "old": now - r.received_at > timedelta(days=3),
            "lease": lease,
            "channel": CHANNEL_LABELS.get(r.channel, r.channel),
            "owner": self.labels.owner(r.owner),
            "location": location,
            "category": category,
            "missing": missing,
            "pending": r.status == "pending_enrichment",
            # Nothing to accept: both already chosen; the one button only submits.
            "complete": not missing and location is not None and location["chosen"],
            "others": others,
            "duplicates": [],
            "original": None,  # only the line grouping the duplicates of a report elsewhere has one
        }

    async def take(self, request: web.Request) -> web.StreamResponse:
        """ "Terima & kirim": the card's location suggestion applied (when the report has
        none yet) and the report submitted, in one transaction at the card's version."""
        person = await self.person(request)
        form = await request.post()
        back = _back(form)
        refused = await self._refused(request, person, form, f"/admin?{back}")
        if refused is not None:
            return refused
        report_id = request.match_info["id"]
        before = await self.store.get_report(report_id)
        if before is None or not scope_contains(person.scope, before.owner):
            return await self._flash_redirect(
                request, f"/admin?{back}", "Laporan tidak ditemukan di wilayah Anda."
            )
        version_raw = str(form.get("version") or "")
        patch: enrich.EnrichmentPatch | None = None
        lat, lon = str(form.get("lat") or ""), str(form.get("lon") or "")
        try:
            if lat and lon:
                patch = enrich.EnrichmentPatch.model_validate(
                    {"location": {"lat": lat, "lon": lon}}
                )
            elif form.get("kelurahan_code"):
                patch = enrich.EnrichmentPatch.model_validate(
                    {"kelurahan_code": str(form["kelurahan_code"])}
                )
        except ValidationError:
            return await self._flash_redirect(
                request, f"/admin?{back}", f"Laporan {before.ticket}: lokasi saran tidak valid."
            )
        keep_owner = enrich.owner_set_by_admin(before.history)
        now = self.store.clock()

        def accept_and_submit(current: Report) -> Report:
            if not scope_contains(person.scope, current.owner):
                raise enrich.EnrichError(404, "not_found", "no such report")
            entries: list[HistoryEntry] = []
            if patch is not None and "location" in enrich.missing_for_submit(current):
                current = enrich.apply_patch_of(
                    self.runtime, current, patch, by=person.name, scope=person.scope, now=now
                )
                entries = list(current.history)
            submitted = enrich.submit(current, by=person.name, now=now, keep_owner=keep_owner)
            return submitted.model_copy(update={"history": entries + submitted.history})

        try:
            report = await self.store.update_report(
                report_id,
                accept_and_submit,
                expected_version=int(version_raw) if version_raw.isdigit() else None,
            )
        except StaleVersion:
            return await self._flash_redirect(
                request,
                f"/admin?{back}",
                f"Laporan {before.ticket} sudah diubah orang lain sejak antrean dimuat; "
                "periksa lalu ulangi.",
            )
        except enrich.EnrichError as exc:
            return await self._flash_redirect(
                request, f"/admin?{back}", f"Laporan {before.ticket}: {_error_text(exc)}"
            )
        if report is None:
            raise web.HTTPNotFound()
        log.info("admin take: %s on report %s", person.id, report.id)
        self.store.notify_new_work()  # wake the CRM dispatcher
        ok = urlencode({"ok": "submitted", "ticket": report.ticket})
        return redirect(f"/admin?{ok}&{back}" if back else f"/admin?{ok}")

    async def reject_many(self, request: web.Request) -> web.StreamResponse:
        """Reject the chosen cards with one reason, each at its own version and in the
        admin's scope; a summary of what was rejected and what was not."""
        person = await self.person(request)
        form = await request.post()
        target = f"/admin?{_back(form)}"
        refused = await self._refused(request, person, form, target)
        if refused is not None:
            return refused
        ids = list(dict.fromkeys(str(v) for v in form.getall("id", [])))[:200]
        reason = str(form.get("reason") or "")
        duplicate_of = str(form.get("duplicate_of") or "") or None
        if reason not in REJECT_REASONS:
            return await self._flash_redirect(
                request, target, "Pilih alasan penolakan terlebih dahulu; tidak ada yang ditolak."
            )
        if not ids:
            return await self._flash_redirect(
                request, target, "Pilih laporan yang akan ditolak; tidak ada yang ditolak."
            )
        if reason == "duplicate":
            original = (
                await self.store.get_report(duplicate_of, with_history=False)
                if duplicate_of
                else None
            )
            if original is None or not scope_contains(person.scope, original.owner):
                return await self._flash_redirect(
                    request, target, "Laporan asli tidak ditemukan di wilayah Anda."
                )
        try:
            body = enrich.RejectBody.model_validate(
                {"reason": reason, "duplicate_of": duplicate_of if reason == "duplicate" else None}
            )
        except ValidationError:
            return await self._flash_redirect(request, target, "Isian penolakan tidak valid.")
        now = self.store.clock()
        rejected: list[str] = []
        skipped: list[str] = []
        unknown = 0
        for report_id in ids:
            before = await self.store.get_report(report_id, with_history=False)
            if before is None or not scope_contains(person.scope, before.owner):
                unknown += 1
                continue
            version_raw = str(form.get(f"version:{report_id}") or "")

            def guarded(current: Report) -> Report:
                if not scope_contains(person.scope, current.owner):
                    raise enrich.EnrichError(404, "not_found", "no such report")
                return enrich.reject(current, body, by=person.name, now=now)

            try:
                await self.store.update_report(
                    report_id,
                    guarded,
                    expected_version=int(version_raw) if version_raw.isdigit() else None,
                )
            except StaleVersion:
                skipped.append(f"{before.ticket} (diubah orang lain sejak antrean dimuat)")
                continue
            except enrich.EnrichError as exc:
                if exc.status == 404:
                    unknown += 1
                else:
                    skipped.append(f"{before.ticket} ({_error_text(exc)})")
                continue
            rejected.append(before.ticket)
        log.info(
            "admin reject_many: %s rejected %d, skipped %d",
            person.id,
            len(rejected),
            len(skipped) + unknown,
        )
        summary = f"{len(rejected)} laporan ditolak ({REJECT_REASONS[reason]})"
        summary += ": " + ", ".join(rejected) + "." if rejected else "."
        if skipped:
            summary += f" {len(skipped)} tidak ditolak: " + "; ".join(skipped) + "."
        if unknown:
            summary += f" {unknown} tidak ditemukan di wilayah Anda."
        kind = "ok" if rejected and not skipped and not unknown else "error"
        return await self._flash_redirect(request, target, summary, kind=kind)

    # --- one report -------------------------------------------------------------------------

    async def _visible(self, request: web.Request, person: Person) -> Report | None:
        report = await self.store.get_report(request.match_info["id"])
        if report is None or not scope_contains(person.scope, report.owner):
            return None
        return report

    async def _raw_payload(self, report_id: str) -> tuple[str, str] | None:
        """The channel's original message (what came over the wire), for reading."""
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(reports.c.raw_message_id).where(reports.c.id == report_id)
                )
            ).first()
        raw = await self.store.raw_message(row[0]) if row else None
        if raw is None:
            return None
        body = bytes(raw["payload"][:20000]).decode("utf-8", errors="replace")
        try:
            body = json.dumps(json.loads(body), ensure_ascii=False, indent=2)
        except ValueError:
            pass  # e-mail, form bodies: shown as they are
        return raw["connector"], body

    async def report_page(self, request: web.Request) -> web.StreamResponse:
        person = await self.person(request)
        report = await self._visible(request, person)
        if report is None:
            return await self.page(
                request,
                "admin_error.html",
                status=404,
                title="Tidak ditemukan",
                message="Laporan tidak ditemukan atau di luar wilayah Anda.",
            )
        now = self.store.clock()
        lease = enrich.live_lease(report, now)
        province = person.scope == "province"
        duplicates = []
        for suggestion in report.suggestions.duplicate_of[:3]:
            other = await self.store.get_report(suggestion.id, with_history=False)
            if other is not None and scope_contains(person.scope, other.owner):
                duplicates.append({"report": other, "why": suggestion.why})
        geocode_q = request.query.get("cari", "").strip()[:200]
        found = self.geocoder.suggest(geocode_q, 5) if geocode_q else []
        show_identity = province or not report.confidential
        others = (await other_open_reports(self.store, person.scope, [report.id])).get(
            report.id, []
        )
        originals = [str((h.changes or {}).get("duplicate_of") or "") for h in report.history]
        tickets = {
            o.id: o.ticket
            for o in (
                await reports_by_id(
                    self.store, person.scope, [i for i in [report.duplicate_of, *originals] if i]
                )
            ).values()
        }
        return await self.page(
            request,
            "admin_report.html",
            title=f"Laporan {report.ticket}",
            r=report,
            show_identity=show_identity,
            can_write=person.role == "admin",
            is_pending=report.status == "pending_enrichment",
            lease=lease,
            mine=lease is not None and lease.holder == person.name,
            age=age_text(report.received_at, now),
            raw=await self._raw_payload(report.id),
            duplicates=duplicates,
            geocode_q=geocode_q,
            geocoded=[g for g in found if g.kelurahan is not None],
            category_source=CATEGORY_SOURCES.get(report.category.source, report.category.source),
            others=others,
            tickets=tickets,
            owners=self.all_owners,
            geocode_sources=GEOCODE_SOURCES,
            categories=self.categories,
            kelurahan=self.kelurahan,
            missing=enrich.missing_for_submit(report),
            channel=CHANNEL_LABELS.get(report.channel, report.channel),
            statuses=STATUS_LABELS,
            reject_labels=REJECT_REASONS,
            all_reject_labels=REJECT_LABELS,
            wib=_wib,
            ok=OK_MESSAGES.get(request.query.get("ok", "")),
        )

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """A report's stored photo or document, for people who may see the report."""
        person = await self.person(request)
        report = await self._visible(request, person)
        index = request.match_info["n"]
        if report is None or not index.isdigit() or int(index) >= len(report.attachments):
            raise web.HTTPNotFound()
        attachment = report.attachments[int(index)]
        blob = await self.store.get_blob(attachment.sha256) if attachment.sha256 else None
        if blob is None:
            raise web.HTTPNotFound()
        content_type, data = blob
        inline = content_type in ("image/jpeg", "image/png", "image/gif", "image/webp")
        return web.Response(
            body=data,
            content_type=content_type,
            headers={
                "Content-Disposition": "inline" if inline else "attachment",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=300",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    # --- actions ----------------------------------------------------------------------------

    async def _refused(
        self, request: web.Request, person: Person, form: Any, back_to: str
    ) -> web.StreamResponse | None:
        """A form that is not this session's, or a person who only reads: a browser is sent
        back to `back_to` with the reason told once (nothing was changed, so going back is
        safe, and a reload posts nothing); any other client gets a 403 it can act on."""
        try:
            check_csrf(request, form)
        except CsrfError:
            title = "Formulir kedaluwarsa"
            text = "Formulir kedaluwarsa; tidak ada yang diubah. Periksa lalu coba lagi."
        else:
            if person.role == "admin":
                return None
            title, text = "Hanya baca", "Peran Anda hanya dapat membaca; tidak ada yang diubah."
        if "text/html" in request.headers.get("Accept", ""):
            return await self._flash_redirect(request, back_to, text)
        return await self.page(request, "admin_error.html", status=403, title=title, message=text)

    async def _flash_redirect(
        self, request: web.Request, location: str, text: str, *, kind: str = "error"
    ) -> web.StreamResponse:
        """Post/redirect/get for an outcome worth telling: the message rides in a signed
        cookie to the next page, so reloading that page never posts again."""
        response = redirect(location)
        await set_flash(request, response, kind, text)
        return response

    async def action(self, request: web.Request) -> web.StreamResponse:
        person = await self.person(request)
        form = await request.post()
        here = f"/admin/reports/{request.match_info['id']}"
        refused = await self._refused(request, person, form, here)
        if refused is not None:
            return refused
        name = request.match_info["action"]
        version_raw = str(form.get("version") or "")
        version = int(version_raw) if version_raw.isdigit() else None
        if name == "reject" and not form.get("reason"):
            return await self._flash_redirect(
                request, here, "Pilih alasan penolakan terlebih dahulu; laporan tidak ditolak."
            )
        duplicate_of: str | None = None
        if name == "reject" and form.get("duplicate_of"):
            original = await self._original(str(form["duplicate_of"]))
            if original is None or not scope_contains(person.scope, original.owner):
                return await self._flash_redirect(
                    request, here, "Laporan asli tidak ditemukan di wilayah Anda."
                )
            duplicate_of = original.id
        try:
            change, expected, done = self._change_for(name, form, person, version, duplicate_of)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            field = FIELD_LABELS.get(str(problem["loc"][0]) if problem["loc"] else "", "")
            told = f"Isian {field} tidak valid" if field else "Isian tidak valid"
            return await self._flash_redirect(request, here, f"{told}; tidak ada yang diubah.")
        except enrich.EnrichError as exc:
            return await self._flash_redirect(request, here, _error_text(exc))
        if change is None:
            raise web.HTTPNotFound()
        if name == "submit":
            before = await self.store.get_report(request.match_info["id"])
            keep = enrich.owner_set_by_admin(before.history) if before else False
            change = _submit(keep)
        now = self.store.clock()

        def guarded(current: Report) -> Report | None:
            if not scope_contains(person.scope, current.owner):
                raise enrich.EnrichError(404, "not_found", "no such report")
            return change(current, person.name, now)

        try:
            report = await self.store.update_report(
                request.match_info["id"], guarded, expected_version=expected
            )
        except StaleVersion:
            return await self._flash_redirect(
                request,
                here,
                "Laporan sudah diubah orang lain sejak Anda membukanya. Periksa lalu ulangi.",
            )
        except enrich.EnrichError as exc:
            if exc.status == 404:
                raise web.HTTPNotFound() from None
            return await self._flash_redirect(request, here, _error_text(exc))
        if report is None:
            raise web.HTTPNotFound()
        log.info("admin %s: %s on report %s", name, person.id, report.id)
        if name == "submit":
            self.store.notify_new_work()  # wake the CRM dispatcher
            return redirect(f"/admin?ok=submitted&ticket={report.ticket}")
        if not scope_contains(person.scope, report.owner):  # handed over to another queue
            return redirect(f"/admin?ok=handed&ticket={report.ticket}")
        return redirect(f"{here}?ok={done}")

    async def _original(self, given: str) -> Report | None:
        """The report a rejected one repeats, named by its ticket (what people see) or, from
        the queue's forms, by its id."""
        given = given.strip()
        report_id = await self.store.report_id_by_ticket(given.upper()) if "-" in given else given
        return await self.store.get_report(report_id, with_history=False) if report_id else None

    def _change_for(
        self, name: str, form: Any, person: Person, version: int | None, duplicate_of: str | None
    ) -> tuple[Callable[[Report, str, datetime], Report | None] | None, int | None, str]:
        """The rule an action applies, the version it expects, and the message key after."""
        if name == "claim":
            return (lambda r, by, now: enrich.claim(r, by, now)), None, "claimed"
        if name == "release":
            return (lambda r, by, now: enrich.release(r, by, now)), None, "released"
        if name == "reopen":
            return (lambda r, by, now: enrich.reopen(r, by=by, now=now)), None, "reopened"
        if name == "seen":
            return (lambda r, by, now: enrich.clear_attention(r, by=by, now=now)), None, "seen"
        if name == "submit":
            return _submit(False), None, "submitted"
        if name == "reject":
            body = enrich.RejectBody.model_validate(
                {
                    "reason": form.get("reason") or "",
                    "duplicate_of": duplicate_of,
                    "note": (str(form.get("note") or "").strip() or None),
                }
            )
            return (lambda r, by, now: enrich.reject(r, body, by=by, now=now)), None, "rejected"
        if name in ("enrich", "accept"):
            patch = self._patch_from(form)

            def apply(report: Report, by: str, now: datetime) -> Report:
                return enrich.apply_patch_of(
                    self.runtime, report, patch, by=by, scope=person.scope, now=now
                )

            return apply, version, "saved"
        return None, None, ""

    def _patch_from(self, form: Any) -> enrich.EnrichmentPatch:
        """A form's filled fields as a PATCH body; empty selects and unchanged texts left out."""
        values: dict[str, Any] = {}
        lat, lon = str(form.get("lat") or ""), str(form.get("lon") or "")
        if lat and lon:
            values["location"] = {"lat": lat, "lon": lon}
        elif form.get("kelurahan_code"):
            values["kelurahan_code"] = str(form["kelurahan_code"])
        for key in ("category", "owner"):
            if form.get(key) and str(form[key]) != str(form.get(f"{key}_was") or ""):
                values[key] = str(form[key]).strip()
        for key in ("address", "description"):
            if key in form and str(form.get(f"{key}_was") or "") != str(form[key]):
                values[key] = str(form[key])
        if "confidential_shown" in form:
            wanted = form.get("confidential") == "1"
            if wanted != (form.get("confidential_was") == "1"):
                values["confidential"] = wanted
        reporter = {
            key: str(form[f"reporter_{key}"]).strip() or None
            for key in ("name", "phone", "email")
            if f"reporter_{key}" in form
            and str(form[f"reporter_{key}"]) != str(form.get(f"reporter_{key}_was") or "")
        }
        if reporter:
            values["reporter"] = reporter
        return enrich.EnrichmentPatch.model_validate(values)

    # --- stats ------------------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.StreamResponse:
        person = await self.person(request)
        scope = person.scope
        stats = await scoped_stats(self.store, scope)
        stats["model"] = await active_model(self.store)
        now = self.store.clock()
        days = 14
        since = now - timedelta(days=days)
        async with self.store.read() as conn:
            rows = await conn.execute(
                select(report_counts.c.owner, func.sum(report_counts.c.n))
                .where(
                    owner_condition(report_counts.c.owner, scope),
                    report_counts.c.status == "pending_enrichment",
                )
                .group_by(report_counts.c.owner)
            )
            queue = {owner: int(n) for owner, n in rows if n}
            # Per channel per Jakarta day, over the last two weeks.
            if self.store.dialect == "postgresql":
                day = func.to_char(
                    text("reports.received_at AT TIME ZONE 'Asia/Jakarta'"), "YYYY-MM-DD"
                )
            else:
                day = func.date(reports.c.received_at, "+7 hours")
            day_rows = await conn.execute(
                select(day.label("day"), reports.c.channel, func.count())
                .where(owner_condition(reports.c.owner, scope), reports.c.received_at >= since)
                .group_by(text("1"), reports.c.channel)
            )
            per_day: dict[str, dict[str, int]] = {}
            for d, channel, n in day_rows:
                per_day.setdefault(str(d), {})[channel] = int(n)
        day_labels = [
            (now.astimezone(JAKARTA) - timedelta(days=i)).strftime("%Y-%m-%d")
            for i in range(days - 1, -1, -1)
        ]
        channels = sorted({c for d in per_day.values() for c in d})
        colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(channels)}
        peak = max((sum(per_day.get(d, {}).values()) for d in day_labels), default=0) or 1
        columns = []
        for i, label in enumerate(day_labels):
            y = 160.0
            segments = []
            for channel in channels:
                n = per_day.get(label, {}).get(channel, 0)
                if n:
                    h = 150.0 * n / peak
                    y -= h
                    segments.append(
                        {
                            "y": round(y, 1),
                            "h": round(h, 1),
                            "fill": colours[channel],
                            "title": f"{label} {CHANNEL_LABELS.get(channel, channel)}: {n}",
                        }
                    )
            columns.append(
                {
                    "x": 30 + i * 23,
                    "label": label[8:],  # the day of the month; the title has the date
                    "segments": segments,
                    "total": sum(per_day.get(label, {}).values()),
                }
            )
        waiting = sorted(
            (
                {
                    "owner": owner,
                    "name": self.labels.owner(owner),
                    "n": n,
                    "oldest": stats["oldest_waiting"].get(owner),
                    "age": age_text(datetime.fromisoformat(stats["oldest_waiting"][owner]), now)
                    if owner in stats["oldest_waiting"]
                    else "—",
                }
                for owner, n in queue.items()
            ),
            key=lambda w: w["oldest"] or "",
        )
        queue_peak = max((w["n"] for w in waiting), default=0) or 1
        geo_total = sum(stats["by_geo"].values()) or 1
        return await self.page(
            request,
            "admin_stats.html",
            title="Statistik pengaduan",
            stats=stats,
            columns=columns,
            peak=peak,
            legend=[(CHANNEL_LABELS.get(c, c), colours[c]) for c in channels],
            waiting=waiting[:30],
            queue_peak=queue_peak,
            geo=[
                ("Bertitik (geo)", stats["by_geo"].get("geo", 0), "#2b8a3e"),
                ("Tanpa titik", stats["by_geo"].get("non_geo", 0), "#d9480f"),
            ],
            geo_total=geo_total,
            statuses=STATUS_LABELS,
            channel_labels=CHANNEL_LABELS,
            model_trained=_wib(datetime.fromisoformat(stats["model"]["trained_at"]))
            if stats["model"]
            else "—",
        )


def _submit(keep_owner: bool) -> Callable[[Report, str, datetime], Report]:
    return lambda r, by, now: enrich.submit(r, by=by, now=now, keep_owner=keep_owner)


def add_routes(app: web.Application, runtime: Runtime) -> None:
    pages = AdminPages(runtime)
    reader = require_user(READ_ROLES)
    app.router.add_get("/admin", reader(pages.queue))
    app.router.add_get("/admin/stats", reader(pages.stats))
    app.router.add_get("/admin/reports/{id}", reader(pages.report_page))
    app.router.add_get("/admin/reports/{id}/files/{n}", reader(pages.attachment))
    app.router.add_post("/admin/reports/{id}/take", reader(pages.take))
    app.router.add_post("/admin/reports/{id}/{action}", reader(pages.action))
    app.router.add_post("/admin/reject", reader(pages.reject_many))
    if not any(getattr(r, "canonical", "") == "/static" for r in app.router.resources()):
        from gateway.web.sessions import STATIC

        app.router.add_static("/static", STATIC, append_version=False)
