"""`kanal import mbox FILE` and `kanal ingest --connector email FILE.eml`."""

from __future__ import annotations

import io
import mailbox
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.intake.mbox import Progress, import_mbox
from tests.conftest import ROOT, write_config
from tests.gateway.intake.email.conftest import all_reports, email_toml, message, raw_rows


def build_mbox(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(raw)
    box.flush()
    box.close()
    return path


def kanal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


async def test_an_mbox_backfill_imports_dedupes_threads_and_summarises(tmp_path, make_kanal):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", email_toml())
    reply = message(
        "reply", subject="Re: Jalan berlubang", headers="In-Reply-To: <m1@example.id>\r\n"
    )
    auto = message("auto", headers="Auto-Submitted: auto-replied\r\n")
    path = build_mbox(
        tmp_path / "arsip.mbox",
        [message("m1"), message("m2"), message("m1"), reply, auto, message("m3")],
    )
    done = kanal("import", "mbox", str(path), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "stored 5, duplicates 1: 3 new reports, 1 added to a report (follow-ups, "
        "conversations), 1 rejected as automated (bounces, auto-replies, mailing lists), "
        "0 kept in the inbox as failed"
    )  # the auto-reply is stored and rejected, counted once
    assert "imported 6/6 (100%)" in done.stderr  # not a terminal: plain progress lines
    again = kanal("import", "mbox", str(path), "--config", str(config), cwd=tmp_path)
    assert again.stdout.startswith("stored 0, duplicates 6: 0 new reports, 0 kept in the")

    k = await make_kanal(extra=email_toml())
    rows = await raw_rows(k.store)
    assert len(rows) == 5 and {r["intake"] for r in rows} == {"import"}
    reports = {r.external_id: r for r in await all_reports(k.store)}
    assert set(reports) == {"m1@example.id", "m2@example.id", "auto@example.id", "m3@example.id"}
    assert len(reports["m1@example.id"].follow_ups) == 1  # the reply, in the same backfill
    assert reports["auto@example.id"].status == "rejected"
    # Backfilled mail keeps the time it was written.
    assert reports["m2@example.id"].received_at == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


async def test_an_mbox_with_an_empty_message_keeps_it_in_the_inbox_as_failed(mail_kanal, tmp_path):
    k = await mail_kanal(smtp=False)
    path = tmp_path / "x.mbox"
    path.write_bytes(
        b"From a@b Fri Nov 27 08:00:00 2026\n"
        + message("ok").replace(b"\r\n", b"\n")
        + b"\nFrom c@d Fri Nov 27 08:00:00 2026\n"
    )
    out = io.StringIO()
    summary = await import_mbox(k.runtime, path, progress=Progress(0, stream=out))
    assert (len(summary["stored"]), summary["duplicates"]) == (2, 0)
    assert summary["failed"] == {"empty e-mail message": 1}
    states = sorted(r["state"] for r in await raw_rows(k.store))
    assert states == ["failed", "new"]  # the empty one stays on record, visible in the inbox


def test_a_bounce_and_an_unreadable_message_are_each_counted_once_as_what_they_became(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", email_toml())
    bounce = message(
        "bounce",
        subject="Undelivered Mail Returned to Sender",
        headers="Auto-Submitted: auto-replied\r\nContent-Type: multipart/report\r\n",
    )
    path = tmp_path / "arsip.mbox"
    path.write_bytes(
        b"From a@b Fri Nov 27 08:00:00 2026\n"
        + message("ok").replace(b"\r\n", b"\n")
        + b"\nFrom m@d Fri Nov 27 08:00:00 2026\n"
        + bounce.replace(b"\r\n", b"\n")
        + b"\nFrom c@d Fri Nov 27 08:00:00 2026\n"
    )
    done = kanal("import", "mbox", str(path), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first == (
        "stored 3, duplicates 0: 1 new reports, 1 rejected as automated (bounces, "
        "auto-replies, mailing lists), 1 kept in the inbox as failed"
    )
    assert rest == ["  kept as failed: 1 empty e-mail message"]
    assert "rejected as automated" not in first.partition("kept")[2]


def test_the_progress_bar_redraws_one_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = Progress(4, stream=out, width=8)
    for done in range(1, 5):
        progress.update(done)
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("[########] 4/4 100%\n")


async def test_kanal_ingest_replays_an_eml_file(tmp_path, make_kanal):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", email_toml())
    eml = tmp_path / "keluhan.eml"
    eml.write_bytes(message("eml-1"))
    first = kanal("ingest", "--connector", "email", str(eml), "--config", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("stored 1, duplicates 0: 1 new reports, 0 kept in the inbox")
    second = kanal(
        "ingest", "--connector", "email", str(eml), "--config", str(config), cwd=tmp_path
    )
    assert second.stdout.startswith("stored 0, duplicates 1: 0 new reports")
    k = await make_kanal(extra=email_toml())
    [report] = await all_reports(k.store)
    assert report.intake == "import" and report.channel == "email"
    [row] = await raw_rows(k.store)
    assert row["payload"] == message("eml-1")
