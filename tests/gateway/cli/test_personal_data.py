"""Personal data under UU PDP 27/2022: `kanal purge` erases the personal
data of reports closed longer ago than `[retention] personal_data_days` from the database
files, statistics unchanged; `kanal person export|erase` answer a citizen's request."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

from sqlalchemy import func, select

from gateway import cli
from gateway.store.personal import purge
from gateway.store.schema import attachments, decisions, outbound
from normalizers.report import Attachment, HistoryEntry
from tests.conftest import SECRETS
from tests.connectors.signing import kanal_sign

OLD_PHONE, OLD_TEXT = "081299887766", "Rumah Bu Sumiati di gang Kelinci kebanjiran"
NEW_PHONE, NEW_TEXT = "085711223344", "Pak Wiryawan melapor got mampet di Jalan Cempaka"
PHOTO = b"\xff\xd8\xff\xe0" + b"foto-rumah-bu-sumiati" * 40


async def send_sms(k, ident: str, phone: str, text: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(
        {
            "id": ident,
            "from": phone,
            "to": "1708",
            "text": text,
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()
    r = await k.client.post(
        "/webhooks/sms/generic", data=body, headers=kanal_sign(SECRETS["sms_generic"], body)
    )
    assert r.status == 200, await r.text()
    await k.drain()


def files_hold(tmp_path, *needles: str) -> list[str]:  # type: ignore[no-untyped-def]
    found = []
    for name in ("kanal.db", "kanal.db-wal"):
        path = tmp_path / name
        data = path.read_bytes() if path.exists() else b""
        found += [f"{name}: {n}" for n in needles if n.encode() in data]
    return found


async def report_of(k, phone_digits: str):  # type: ignore[no-untyped-def]
    from gateway.store.schema import reports

    async with k.store.read() as conn:
        return (
            await conn.execute(
                select(reports.c.id).where(reports.c.reporter_key.like(f"%{phone_digits}"))
            )
        ).scalar_one()


async def test_nothing_personal_survives_a_purge_and_an_erase_in_the_database_files(
    make_kanal, tmp_path, capsys
):
    k = await make_kanal()
    token = await k.token()
    await send_sms(k, "pdp-old", OLD_PHONE, OLD_TEXT)
    await send_sms(k, "pdp-new", NEW_PHONE, NEW_TEXT)
    old_id = await report_of(k, OLD_PHONE[1:])
    new_id = await report_of(k, NEW_PHONE[1:])
    digest = hashlib.sha256(PHOTO).hexdigest()
    await k.store.put_blob(digest, "image/jpeg", PHOTO)

    def close_with_photo(report):  # type: ignore[no-untyped-def]
        report.attachments.append(
            Attachment(sha256=digest, content_type="image/jpeg", size=len(PHOTO), state="stored")
        )
        report.status = "done"
        report.history = [
            HistoryEntry(at=k.store.clock(), status="done", by="admin", note=OLD_TEXT)
        ]
        return report

    await k.store.update_report(old_id, close_with_photo)
    async with k.store.write() as conn:
        for report_id, phone, text in (
            (old_id, OLD_PHONE, OLD_TEXT),
            (new_id, NEW_PHONE, NEW_TEXT),
        ):
            await conn.execute(
                outbound.insert().values(
                    id=f"01OUT{report_id[5:]}",
                    report_id=report_id,
                    kind="done",
                    channel="sms",
                    connector="sms_generic",
                    recipient="+62" + phone[1:],
                    body=f"Laporan selesai: {text}",
                    state="sent",
                    attempts=1,
                    created_at=k.store.clock(),
                )
            )
            # An admin's decision, kept with the text it was made on (what `kanal learn`
            # trains on): personal too.
            await conn.execute(
                decisions.insert().values(
                    report_id=report_id,
                    kind="category",
                    label="banjir",
                    detail="set",
                    text=f"{text} ({phone})",
                    channel="sms",
                    by="admin:ana",
                    decided_at=k.store.clock(),
                )
            )
    stats_before = await (
        await k.client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"})
    ).json()

    # Not yet closed long enough: nothing erased.
    assert (await purge(k.store, 730))[0].reports == 0
    now = k.store.clock()
    k.store.clock = lambda: now + timedelta(days=731)
    dry, _ = await purge(k.store, 730, dry_run=True)
    assert dry.report_ids == [old_id]
    erased, log_emptied = await purge(k.store, 730)
    assert erased.reports == 1 and erased.attachments == 1 and erased.outbound == 1
    assert erased.raw_messages >= 1 and log_emptied is True
    assert (await purge(k.store, 730))[0].reports == 0  # once

    # The store is still open (kanal running): the files hold nothing of the old report.
    old_needles = (OLD_PHONE[1:], "Sumiati", "foto-rumah-bu-sumiati")
    assert files_hold(tmp_path, *old_needles) == []
    assert files_hold(tmp_path, NEW_PHONE[1:], "Wiryawan")  # the open one is kept
    report = await k.store.get_report(old_id)
    assert report is not None and report.status == "done" and report.text == ""
    assert report.reporter.phone is None and report.category.code != ""
    assert [a.sha256 for a in report.attachments] == [None]  # one attachment, no content
    assert report.history[-1].by == "kanal:retention"
    stats_after = await (
        await k.client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert stats_after == stats_before
    async with k.store.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(attachments))).scalar() == 0

    # A request to erase the other citizen, by the phone in national form.
    config = str(tmp_path / "kanal.toml")
    assert (
        await asyncio.to_thread(
            cli.main, ["person", "export", "--phone", NEW_PHONE, "--config", config]
        )
        == 0
    )
    exported = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in exported["reports"]] == [NEW_TEXT]
    assert exported["raw_messages"][0]["payload"]["text"].count(NEW_PHONE) == 1
    assert exported["outbound"][0]["recipient"] == "+62" + NEW_PHONE[1:]
    assert (
        await asyncio.to_thread(
            cli.main, ["person", "erase", "--phone", NEW_PHONE, "--config", config]
        )
        == 0
    )
    assert "1 reports made anonymous" in capsys.readouterr().out
    assert files_hold(tmp_path, *old_needles, NEW_PHONE[1:], "Wiryawan", "Cempaka") == []
    assert (
        await asyncio.to_thread(
            cli.main, ["person", "export", "--phone", NEW_PHONE, "--config", config]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["reports"] == []


def test_purge_with_retention_zero_keeps_everything_and_dry_run_erases_nothing(tmp_path, capsys):
    from tests.conftest import write_config

    config = write_config(
        tmp_path, f"sqlite:///{tmp_path}/kanal.db", "[retention]\npersonal_data_days = 0\n"
    )
    assert cli.main(["purge", "--config", str(config)]) == 0
    assert "kept for ever" in capsys.readouterr().out
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db")
    assert cli.main(["purge", "--dry-run", "--config", str(config)]) == 0
    assert "would erase the personal data of 0 reports" in capsys.readouterr().out
    assert cli.main(["person", "erase", "--phone", "1708", "--config", str(config)]) == 2
