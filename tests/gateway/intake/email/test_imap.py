"""The IMAP poller against a real Dovecot: incremental by UID, UIDVALIDITY resync without
duplicates, IDLE, lookback after an outage, flag/move after storing, failures shown."""

from __future__ import annotations

import asyncio
import time

from gateway.base.polling import PollerRunner
from gateway.intake.imap import IMAP_POLLER, close_session, poll_imap, state_key
from tests.conftest import free_port, wait_for
from tests.gateway.intake.email.conftest import all_reports, imap_toml, message, raw_rows


async def imap_kanal(mail_kanal, dovecot, more: str = "", idle: bool = False):  # type: ignore[no-untyped-def]
    settings = imap_toml(dovecot, f"imap_idle = {'true' if idle else 'false'}\n{more}")
    return await mail_kanal(smtp=False, more=settings)


async def test_mail_in_the_inbox_is_stored_once_and_flagged_after(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot)
    dovecot.append_many([message(1), message(2)])
    await poll_imap(k.runtime)
    rows = await raw_rows(k.store)
    assert [r["external_id"] for r in rows] == ["1@example.id", "2@example.id"]
    assert {r["intake"] for r in rows} == {"poll"}
    assert rows[0]["payload"] == message(1)
    for data in dovecot.folder().values():
        flags = set(data[b"FLAGS"])
        assert b"$KanalStored" in flags and b"\\Seen" not in flags  # BODY.PEEK[] marks nothing read
    dovecot.append(message(3))
    await poll_imap(k.runtime)  # incremental: only UID 3 is fetched
    assert len(await raw_rows(k.store)) == 3
    state = await k.store.get_state(state_key(k.runtime.settings.channels.email, "INBOX"))
    assert state == {"uidvalidity": dovecot.uidvalidity(), "last_uid": 3}
    await k.drain()
    reports = await all_reports(k.store)
    assert {r.intake for r in reports} == {"poll"} and len(reports) == 3


async def test_mail_over_the_size_limit_keeps_its_headers_in_the_inbox_and_stays_on_the_server(
    mail_kanal, dovecot
):
    settings = imap_toml(dovecot, "imap_idle = false\nimap_lookback_days = 1")
    k = await mail_kanal(smtp=False, max_bytes=4_000, more=settings)
    big = message(2, body="Foto terlampir. " + "A" * 20_000)
    dovecot.append_many([message(1), big])
    await poll_imap(k.runtime)
    rows = {r["external_id"]: r for r in await raw_rows(k.store)}
    uidvalidity = dovecot.uidvalidity()
    assert set(rows) == {"1@example.id", f"too_large:imap:INBOX:{uidvalidity}:2"}
    kept = rows[f"too_large:imap:INBOX:{uidvalidity}:2"]
    assert kept["state"] == "failed"
    assert kept["error"].startswith(f"too_large: the message is {len(big)} bytes")
    assert "UID 2" in kept["error"]
    assert b"Message-ID: <2@example.id>" in kept["payload"]
    assert b"AAAA" not in kept["payload"]  # the body was never fetched
    # Stored, so flagged like any other; the message itself is still on the server.
    stored = {bytes(d[b"BODY[]"]): set(d[b"FLAGS"]) for d in dovecot.folder().values()}
    assert b"$KanalStored" in stored[big]
    # Shown where an admin looks for what could not become a report.
    inbox = await k.store.inbox()
    assert any(item["external_id"].startswith("too_large:") for item in inbox)
    # Polling again (with lookback) adds nothing.
    await close_session(k.runtime)
    await poll_imap(k.runtime)
    assert len(await raw_rows(k.store)) == 2
    counted = k.runtime.metrics.registry.get_sample_value(
        "kanal_imap_messages_total", {"outcome": "too_large"}
    )
    assert counted == 1  # the second poll saw it as stored before (a duplicate)
    await k.drain()
    assert len(await all_reports(k.store)) == 1


async def test_keep_mode_leaves_mail_unread_and_unflagged(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, 'imap_after = "keep"')
    dovecot.append(message(1))
    await poll_imap(k.runtime)
    [data] = dovecot.folder().values()
    assert not set(data[b"FLAGS"]) & {b"\\Seen", b"$KanalStored"}
    assert len(await raw_rows(k.store)) == 1


async def test_seen_flag_mode_marks_mail_read(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, 'imap_flag = "\\\\Seen"')
    dovecot.append(message(1))
    await poll_imap(k.runtime)
    [data] = dovecot.folder().values()
    assert b"\\Seen" in data[b"FLAGS"]


async def test_move_mode_moves_stored_mail_to_a_folder_it_creates(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, 'imap_after = "move"\nimap_move_to = "Diproses"')
    dovecot.append_many([message(1), message(2)])
    await poll_imap(k.runtime)
    assert dovecot.folder("INBOX") == {}
    moved = dovecot.folder("Diproses")
    assert sorted(d[b"BODY[]"] for d in moved.values()) == [message(1), message(2)]
    assert len(await raw_rows(k.store)) == 2


async def test_a_uidvalidity_change_rereads_the_folder_without_duplicates(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, 'imap_folders = ["Pengaduan"]\nimap_after = "keep"')
    dovecot.append_many([message(1), message(2)], folder="Pengaduan")
    await poll_imap(k.runtime)
    key = state_key(k.runtime.settings.channels.email, "Pengaduan")
    before = await k.store.get_state(key)
    assert before["last_uid"] == 2
    # The folder is recreated (a restore, a migration): same mail, new numbers, plus one more.
    dovecot.recreate("Pengaduan")
    dovecot.append_many([message(1), message(2), message(3)], folder="Pengaduan")
    await poll_imap(k.runtime)
    after = await k.store.get_state(key)
    assert after["uidvalidity"] != before["uidvalidity"] and after["last_uid"] == 3
    rows = await raw_rows(k.store)
    assert [r["external_id"] for r in rows] == ["1@example.id", "2@example.id", "3@example.id"]
    resyncs = k.runtime.metrics.registry.get_sample_value("kanal_imap_uidvalidity_resyncs_total")
    assert resyncs == 1
    duplicates = k.runtime.metrics.registry.get_sample_value(
        "kanal_imap_messages_total", {"outcome": "duplicate"}
    )
    assert duplicates == 2


async def test_lookback_rereads_recent_days_after_an_outage_without_duplicates(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, "imap_lookback_days = 2")
    dovecot.append(message(1))
    await poll_imap(k.runtime)
    # The saved position ran ahead of the mailbox (restored backup, a bug): UID 2 would be
    # skipped by the incremental search. A fresh connection looks back two days.
    key = state_key(k.runtime.settings.channels.email, "INBOX")
    await k.store.set_state(key, {"uidvalidity": dovecot.uidvalidity(), "last_uid": 1000})
    dovecot.append(message(2))
    await close_session(k.runtime)
    await poll_imap(k.runtime)
    rows = await raw_rows(k.store)
    assert [r["external_id"] for r in rows] == ["1@example.id", "2@example.id"]


async def test_idle_brings_new_mail_in_before_the_next_poll(mail_kanal, dovecot):
    k = await imap_kanal(mail_kanal, dovecot, idle=True, more="imap_poll_interval_s = 20")
    dovecot.append(message(1))
    tick = asyncio.create_task(poll_imap(k.runtime))
    try:
        await wait_for(lambda: _count(k, 1), timeout=5)
        await wait_for(_idling(k), timeout=5)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await asyncio.to_thread(dovecot.append, message(2))
        await wait_for(lambda: _count(k, 2), timeout=5)
        assert time.monotonic() - started < 3  # well before the 18 s IDLE window ends
        assert not tick.done()  # the same tick, still waiting in IDLE
        await asyncio.to_thread(dovecot.append, message(3))
        await wait_for(lambda: _count(k, 3), timeout=5)
    finally:
        tick.cancel()
        await asyncio.gather(tick, return_exceptions=True)


def _idling(k):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        state = k.runtime.components.get("poller:imap")
        return bool(state and state.detail and state.detail.startswith("IDLE"))

    return check


async def _count(k, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await raw_rows(k.store)) >= n


async def test_an_unreachable_server_backs_off_and_shows_in_readyz_and_metrics(mail_kanal):
    k = await mail_kanal(
        smtp=False,
        more=f"""
imap_host = "127.0.0.1"
imap_port = {free_port()}
imap_ssl = false
imap_username = "alice"
imap_password = "secret"
""",
    )
    runner = PollerRunner(k.runtime, IMAP_POLLER)
    await runner.tick()
    assert runner.backoff_until is not None
    r = await k.client.get("/readyz")
    assert r.status == 200  # the rest of kanal is ready
    body = await r.json()
    assert body["components"]["poller:imap"]["state"] == "failing"
    assert "ConnectionRefusedError" in body["components"]["poller:imap"]["detail"]
    metrics = await (await k.client.get("/metrics")).text()
    assert 'kanal_poller_errors_total{poller="imap"} 1.0' in metrics
    assert 'kanal_poller_up{poller="imap"} 0.0' in metrics
