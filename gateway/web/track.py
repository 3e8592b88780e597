"""`GET /track/{ticket}`: a citizen's view of one report, in Bahasa Indonesia; `GET /`
and `GET /track`: the form that leads there, and to staff sign-in.

Shows the status and dates only: no name, no phone, no text, no location, no notes (a
ticket can be shared or guessed at; what it reveals must be harmless). `done` is green,
`rejected` grey, the others amber. A ticket whose message is stored but not yet
normalized shows as received. Plain HTML, no script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from gateway.base.runtime import Runtime
from gateway.store import StoreUnavailable
from gateway.store.schema import raw_messages, report_history
from gateway.web.rate_limit import limited
from normalizers.report import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"
WIB = timezone(timedelta(hours=7), "WIB")
TICKET = re.compile(r"^[A-Z0-9-]{4,16}$")
MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)

# status → (label, colour, explanation)
STATUS_VIEW: dict[str, tuple[str, str, str]] = {
    "received": ("Diterima", "amber", "Laporan Anda sudah kami terima dan sedang diproses."),
    "pending_enrichment": (
        "Sedang dilengkapi petugas",
        "amber",
        "Petugas sedang melengkapi lokasi dan kategori laporan Anda.",
    ),
    "ready": (
        "Menunggu diteruskan",
        "amber",
        "Laporan Anda akan segera diteruskan ke instansi terkait.",
    ),
    "posting": (
        "Sedang diteruskan",
        "amber",
        "Laporan Anda sedang diteruskan ke instansi terkait.",
    ),
    # A delivery problem is ours to solve; to the citizen the report is still on its way.
    "failed": ("Sedang diteruskan", "amber", "Laporan Anda sedang diteruskan ke instansi terkait."),
    "posted": ("Diteruskan", "amber", "Laporan Anda sudah diteruskan ke instansi terkait."),
    "in_progress": (
        "Sedang ditindaklanjuti",
        "amber",
        "Instansi terkait sedang menindaklanjuti laporan Anda.",
    ),
    "done": ("Selesai", "green", "Laporan Anda sudah selesai ditindaklanjuti."),
    "rejected": ("Tidak ditindaklanjuti", "grey", "Laporan ini tidak ditindaklanjuti."),
}

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def format_date(when: datetime | None) -> str:
    """`27 November 2026, 08.00 WIB` (Jakarta time, Indonesian month names)."""
    if when is None:
        return "-"
    local = when.astimezone(WIB)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H.%M} WIB"


@dataclass(frozen=True)
class Step:
    when: str
    label: str


def render_report(ticket: str, report: Report, changes: list[tuple[datetime, str]]) -> str:
    label, colour, explanation = STATUS_VIEW.get(report.status, STATUS_VIEW["received"])
    steps: list[Step] = []
    last_label = None
    for at, status in changes:
        if status not in STATUS_VIEW:
            continue  # internal events (joined, follow_up, unsent, attachment…) are not statuses
        if status == "received":
            # One "received" time on the page: when the citizen sent it (received_at), not
            # also the moment kanal recorded it, which may be minutes or days apart.
            at = report.received_at
        step_label = STATUS_VIEW[status][0]
        if step_label != last_label:  # retries and internal steps collapse into one line
            steps.append(Step(format_date(at), step_label))
            last_label = step_label
    updated = changes[-1][0] if changes else report.received_at
    return _env.get_template("track.html").render(
        ticket=ticket,
        status=report.status,
        label=label,
        colour=colour,
        explanation=explanation,
        received=format_date(report.received_at),
        sent=format_date(report.crm.posted_at) if report.crm.posted_at else None,
        updated=format_date(updated),
        steps=steps,
    )


def render_received(ticket: str, received_at: datetime) -> str:
    label, colour, explanation = STATUS_VIEW["received"]
    return _env.get_template("track.html").render(
        ticket=ticket,
        status="received",
        label=label,
        colour=colour,
        explanation=explanation,
        received=format_date(received_at),
        sent=None,
        updated=format_date(received_at),
        steps=[Step(format_date(received_at), label)],
    )


def render_not_found(ticket: str) -> str:
    return _env.get_template("track_404.html").render(ticket=ticket)


async def _history(runtime: Runtime, report_id: str) -> list[tuple[datetime, str]]:
    async with runtime.store.read() as conn:
        rows = await conn.execute(
            select(report_history.c.at, report_history.c.status)
            .where(report_history.c.report_id == report_id)
            .order_by(report_history.c.id)
        )
        return [(r.at, r.status) for r in rows]


async def _raw_by_ticket(runtime: Runtime, ticket: str) -> tuple[datetime, str | None] | None:
    async with runtime.store.read() as conn:
        row = (
            await conn.execute(
                select(raw_messages.c.received_at, raw_messages.c.report_id).where(
                    raw_messages.c.ticket == ticket
                )
            )
        ).first()
    return (row.received_at, row.report_id) if row else None


def add_routes(app: web.Application, runtime: Runtime) -> None:
    def page(body: str, status: int = 200) -> web.Response:
        return web.Response(
            text=body,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    async def track(request: web.Request) -> web.Response:
        ticket = request.match_info["ticket"].strip().upper()
        if not TICKET.match(ticket):
            return page(render_not_found(ticket[:32]), 404)
        store = runtime.store
        try:
            report_id = await store.report_id_by_ticket(ticket)
            raw = None
            if report_id is None:
                # Stored but not normalized yet, or a follow-up merged into another report.
                raw = await _raw_by_ticket(runtime, ticket)
                if raw is None:
                    return page(render_not_found(ticket), 404)
                report_id = raw[1]
            report = await store.get_report(report_id, with_history=False) if report_id else None
            if report is None:
                assert raw is not None
                return page(render_received(ticket, raw[0]))
            changes = await _history(runtime, report.id)
        except StoreUnavailable:
            return page("<!doctype html><p>Layanan sedang sibuk. Silakan coba lagi nanti.</p>", 503)
        return page(render_report(ticket, report, changes))

    def too_many(_request: web.Request, retry_after: int) -> web.Response:
        return page(
            "<!doctype html><p>Terlalu banyak permintaan. Silakan coba lagi dalam "
            f"{retry_after} detik.</p>",
            429,
        )

    async def home(request: web.Request) -> web.Response:
        """`/`: where a citizen tracks a ticket and where staff sign in."""
        return page(_env.get_template("home.html").render(ticket="", error=None))

    async def track_form(request: web.Request) -> web.Response:
        """`/track?ticket=…` (the form of `/`): on to the ticket's page, or the form again."""
        given = request.query.get("ticket", "")
        ticket = given.strip().upper()
        if TICKET.match(ticket):
            raise web.HTTPSeeOther(f"/track/{ticket}")
        error = "Isi nomor tiket seperti tertulis di pesan kami (mis. KNL-7Q4M-2K9D)."
        body = _env.get_template("home.html").render(ticket=given[:32], error=error)
        return page(body, 400)

    app.router.add_get("/", home)
    app.router.add_get("/track", track_form)
    app.router.add_get("/track/{ticket}", limited(runtime, "track", too_many)(track))
