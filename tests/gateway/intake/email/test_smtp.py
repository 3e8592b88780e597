"""The SMTP listener against real SMTP clients (smtplib, swaks)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from connectors.email.wire import parse_email
from gateway.store import StoreUnavailable
from normalizers.photo import exif_gps
from tests.conftest import need_binary
from tests.connectors.cases import fixture_dir
from tests.gateway.intake.email.conftest import RECIPIENT, all_reports, message, raw_rows, send

FIXTURES = fixture_dir("email")


def counter(k, outcome: str) -> float:
    value = k.runtime.metrics.registry.get_sample_value(
        "kanal_smtp_messages_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_mail_is_stored_exactly_before_250_and_becomes_a_report(mail_kanal, db_url):
    k = await mail_kanal(db_url=db_url)
    raw = message(1)
    result = await send(k.smtp_port, raw)
    assert result.data is not None and result.data[0] == 250, result
    # Acknowledged means stored: the row is there before the pipeline ever runs.
    [row] = await raw_rows(k.store)
    assert row["payload"] == raw
    assert (row["connector"], row["channel"], row["intake"]) == ("email", "email", "smtp")
    assert row["external_id"] == "1@example.id"
    assert row["id"] in result.data[1].decode()
    assert await k.drain() == 1
    [report] = await all_reports(k.store)
    assert report.channel == "email" and report.intake == "smtp"
    assert report.reporter.email == "warga@example.id"
    assert report.status == "pending_enrichment" and not report.geo_tagged
    assert report.owner == "province"  # the e-mail channel's owner
    assert counter(k, "stored") == 1


async def test_the_same_message_delivered_twice_is_stored_once(mail_kanal):
    k = await mail_kanal()
    for _ in range(2):
        result = await send(k.smtp_port, message(2))
        assert result.data and result.data[0] == 250
    assert len(await raw_rows(k.store)) == 1
    assert counter(k, "duplicate") == 1


async def test_only_the_configured_recipients_are_accepted_case_insensitively(mail_kanal):
    k = await mail_kanal()
    result = await send(
        k.smtp_port,
        message(3),
        rcpts=["someone@else.example", "LAPOR@example.id", RECIPIENT.upper()],
    )
    codes = [code for code, _ in result.rcpt]
    assert codes == [550, 250, 250]
    assert result.rcpt[0][1].startswith(b"5.1.1")
    assert result.data and result.data[0] == 250
    assert len(await raw_rows(k.store)) == 1
    assert counter(k, "rejected_recipient") == 1


async def test_mail_only_for_unknown_recipients_is_refused_and_nothing_is_stored(mail_kanal):
    k = await mail_kanal()
    result = await send(k.smtp_port, message(4), rcpts=["nobody@jakarta.go.id"])
    assert [code for code, _ in result.rcpt] == [550]
    assert result.data is None
    assert await raw_rows(k.store) == []


async def test_size_is_advertised_and_oversize_mail_gets_552(mail_kanal):
    k = await mail_kanal(max_bytes=2000)
    result = await send(k.smtp_port, message(5, body="x" * 60 + ("\r\n" + "y" * 70) * 40))
    assert b"SIZE 2000" in result.ehlo[1]
    assert result.data is not None and result.data[0] == 552
    # A client that declares the size is refused at MAIL FROM already.
    declared = await send(k.smtp_port, message(6), mail_options=["SIZE=5000"])
    assert declared.mail[0] == 552
    assert await raw_rows(k.store) == []
    assert counter(k, "too_large") == 2
    small = await send(k.smtp_port, message(7))
    assert small.data and small.data[0] == 250


async def test_a_store_failure_answers_451_so_the_sender_retries(mail_kanal):
    k = await mail_kanal()
    writer = k.store.writer()
    real_submit = writer.submit

    async def failing(rows):  # type: ignore[no-untyped-def]
        raise StoreUnavailable("database is down")

    writer.submit = failing
    try:
        result = await send(k.smtp_port, message(8))
    finally:
        writer.submit = real_submit
    assert result.data is not None and result.data[0] == 451
    assert result.data[1].startswith(b"4.3.0")
    assert counter(k, "store_failed") == 1
    assert await raw_rows(k.store) == []
    retried = await send(k.smtp_port, message(8))  # the MTA's next attempt
    assert retried.data and retried.data[0] == 250
    assert len(await raw_rows(k.store)) == 1


async def test_smtputf8_addresses_and_headers_are_taken(mail_kanal):
    k = await mail_kanal()
    raw = (FIXTURES / "smtputf8_address.eml").read_bytes()
    result = await send(
        k.smtp_port, raw, mail_from="josé@correo.例え.jp", mail_options=["SMTPUTF8"]
    )
    assert b"SMTPUTF8" in result.ehlo[1]
    assert result.data and result.data[0] == 250
    [row] = await raw_rows(k.store)
    headers = json.loads(row["headers"])
    assert headers[":smtputf8"] == "yes" and headers[":mail_from"] == "josé@correo.例え.jp"
    assert row["external_id"] == "smtputf8@correo.例え.jp"
    await k.drain()
    [report] = await all_reports(k.store)
    assert report.reporter.email == "josé@correo.例え.jp"


async def test_an_empty_message_is_still_stored_as_failed_and_acknowledged(mail_kanal):
    k = await mail_kanal()

    def empty_data() -> bytes:
        with socket.create_connection(("127.0.0.1", k.smtp_port), timeout=10) as s:
            f = s.makefile("rwb")
            f.readline()
            for line in (
                b"HELO x\r\n",
                b"MAIL FROM:<a@example.id>\r\n",
                f"RCPT TO:<{RECIPIENT}>\r\n".encode(),
                b"DATA\r\n",
            ):
                f.write(line)
                f.flush()
                f.readline()
            f.write(b".\r\n")
            f.flush()
            return f.readline()

    reply = await asyncio.to_thread(empty_data)
    assert reply.startswith(b"250")
    [row] = await raw_rows(k.store)
    assert row["state"] == "failed" and "empty" in row["error"]
    assert counter(k, "malformed") == 1
    await k.drain()
    assert await all_reports(k.store) == []


async def test_no_address_is_logged_at_info_level(mail_kanal, caplog):
    k = await mail_kanal()
    with caplog.at_level(logging.INFO):
        await send(k.smtp_port, message(9), rcpts=["stranger@else.example", RECIPIENT])
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("@" in line for line in shown), shown


async def test_a_jakarta_photo_sent_with_swaks_geotags_the_report(mail_kanal, tmp_path):
    swaks = need_binary("swaks", "swaks")
    k = await mail_kanal()
    source = parse_email(
        (FIXTURES / "jpeg_gps_jakarta.eml").read_bytes(), received_at=datetime.now(UTC)
    )
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(source.attachments[0].data or b"")
    outside = parse_email(
        (FIXTURES / "jpeg_gps_outside.eml").read_bytes(), received_at=datetime.now(UTC)
    )
    far_photo = tmp_path / "bandung.jpg"
    far_photo.write_bytes(next(a.data for a in outside.attachments if a.data and exif_gps(a.data)))

    def run(attach: Path, subject: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                swaks,
                "--server",
                "127.0.0.1",
                "--port",
                str(k.smtp_port),
                "--from",
                "budi@example.id",
                "--to",
                RECIPIENT,
                "--header",
                f"Subject: {subject}",
                "--body",
                "Lampu PJU mati, foto terlampir.",
                "--attach",
                f"@{attach}",
                "--attach-type",
                "image/jpeg",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    for attach, subject in ((photo, "PJU mati"), (far_photo, "Foto dari luar")):
        done = await asyncio.to_thread(run, attach, subject)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "<-  250 2.0.0 OK queued as" in done.stdout
    await k.drain()
    reports = {r.title: r for r in await all_reports(k.store)}
    geo = reports["PJU mati"]
    assert geo.geo_tagged and geo.location.source == "exif"
    assert geo.status == "ready" and geo.owner.startswith("kelurahan:31.71")
    assert geo.attachments[0].content_type == "image/jpeg" and geo.attachments[0].state == "stored"
    assert await k.store.get_blob(geo.attachments[0].sha256) is not None
    far = reports["Foto dari luar"]
    assert not far.geo_tagged and far.non_geo_reason == "out_of_area"
    assert far.owner == "province" and far.status == "pending_enrichment"


async def test_two_different_headerless_messages_are_both_kept(mail_kanal):
    k = await mail_kanal()
    for raw in (b"\x00\r\n", b"\x01\r\n"):
        result = await send(k.smtp_port, raw)
        assert result.data and result.data[0] == 250
    assert sorted(r["payload"] for r in await raw_rows(k.store)) == [b"\x00\r\n", b"\x01\r\n"]


async def test_kanal_serve_runs_the_listener_on_its_loop(tmp_path, serve_process):
    import urllib.request

    from tests.conftest import free_port, write_config
    from tests.gateway.intake.email.conftest import email_toml

    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", email_toml(), smtp_port=port)
    server = serve_process(config)
    await asyncio.to_thread(server.start)
    result = await send(port, message("served"))
    assert result.data and result.data[0] == 250

    def ready() -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"{server.base_url}/readyz", timeout=5) as r:
            return json.loads(r.read())

    body = await asyncio.to_thread(ready)
    assert body["components"]["listener:smtp"]["state"] == "ok"
