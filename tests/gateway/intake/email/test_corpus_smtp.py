"""Every message of the e-mail corpus (tests/connectors/email) sent by SMTP, end to end:
stored exactly as transmitted, then one report each, with what expected.toml says."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.connectors.cases import fixture_dir
from tests.gateway.intake.email.conftest import all_reports, raw_rows, send

FIXTURES = fixture_dir("email")
EXPECTED = tomllib.loads((FIXTURES / "expected.toml").read_text(encoding="utf-8"))
CORPUS = sorted(FIXTURES.glob("*.eml"))


def as_transmitted(raw: bytes) -> bytes:
    """What smtplib carries for bytes: the message as it is, ending with CRLF."""
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    assert len(CORPUS) >= 40, "the e-mail corpus is missing"
    return CORPUS


async def test_the_whole_corpus_through_smtp_becomes_reports(mail_kanal, corpus):
    k = await mail_kanal(max_bytes=5_000_000)
    for path in corpus:
        raw = path.read_bytes()
        options = [] if raw.isascii() else ["SMTPUTF8"]
        result = await send(k.smtp_port, raw, mail_options=options)
        assert result.data is not None and result.data[0] == 250, (path.name, result)
    rows = await raw_rows(k.store)
    assert len(rows) == len(corpus)
    by_payload = {row["payload"]: row for row in rows}
    for path in corpus:
        assert as_transmitted(path.read_bytes()) in by_payload, f"{path.name} not stored exactly"
    await k.drain()
    reports = {r.external_id: r for r in await all_reports(k.store)}
    assert len(reports) == len(corpus)  # the corpus' replies answer mail kanal never saw
    queue, _ = await k.store.list_reports("province", status=["pending_enrichment"], limit=500)
    queued = {r.id for r in queue}
    for path in corpus:
        case = EXPECTED.get(path.stem, {})
        row = by_payload[as_transmitted(path.read_bytes())]
        report = reports[row["external_id"]]
        assert report.channel == "email" and report.intake == "smtp", path.name
        assert report.ticket == row["ticket"]
        if case.get("automated"):
            assert report.status == "rejected", path.name
            assert report.rejection and report.rejection["reason"] == "automated"
            assert report.id not in queued, f"{path.name}: machine mail reached a queue"
            continue
        if "coordinates" in case:
            lat, lon = case["coordinates"]
            assert round(report.location.lat, 4) == lat and round(report.location.lon, 4) == lon
            assert report.location.source == "exif"
            inside = -6.4 < lat < -5.1 and 106.3 < lon < 107.0
            assert report.geo_tagged is inside, path.name
            assert report.status == ("ready" if inside else "pending_enrichment"), path.name
        else:
            assert not report.geo_tagged and report.status == "pending_enrichment", path.name
            assert report.owner == "province" and report.id in queued
        for expected_type in case.get("attachment_types", []):
            assert expected_type in [a.content_type for a in report.attachments], path.name
        if "title" in case:
            assert (report.title or "") == case["title"], path.name
