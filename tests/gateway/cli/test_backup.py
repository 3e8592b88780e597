"""`kanal db backup FILE` (CONTRACT §2): a consistent copy of the SQLite store taken while
`kanal serve` takes a burst of webhooks holds every message acknowledged before the backup
began, and a fresh kanal started on the copy finds each of them; PostgreSQL says pg_dump."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import sys

import aiohttp
import pytest
from sqlalchemy import select

from gateway.store.schema import raw_messages
from tests.conftest import SECRETS, start_kanal, write_config
from tests.connectors.signing import kanal_sign

FIRST = 40  # messages acknowledged before the backup starts


def body(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"backup-{i}",
            "from": f"0812{i:08d}",
            "to": "1708",
            "text": f"Got mampet di gang {i}",
            "received_at": "2026-11-27T08:00:00+07:00",
        }
    ).encode()


async def kanal_cli(*args: str, cwd) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


@pytest.mark.slow
async def test_a_backup_taken_during_a_burst_keeps_every_acknowledged_message(
    tmp_path, serve_process
):
    live = tmp_path / "live"
    live.mkdir()
    config = write_config(live, f"sqlite:///{live}/kanal.db")
    server = serve_process(config)
    server.start()

    acked: dict[int, str] = {}  # message number → the external id kanal acknowledged
    numbers = iter(range(100_000))
    backup_done = asyncio.Event()
    backup_file = tmp_path / "copies" / "kanal-backup.db"

    async def worker(session: aiohttp.ClientSession) -> None:
        # Until the backup is over and a few more besides: traffic all through it.
        while not backup_done.is_set() or len(acked) < FIRST + 50:
            i = next(numbers)
            payload = body(i)
            async with session.post(
                f"{server.base_url}/webhooks/sms/generic",
                data=payload,
                headers=kanal_sign(SECRETS["sms_generic"], payload),
            ) as r:
                assert r.status == 200, await r.text()
                acked[i] = f"backup-{i}"

    async def backup_mid_burst() -> tuple[set[int], set[int]]:
        while len(acked) < FIRST:
            await asyncio.sleep(0.01)
        before = set(acked)  # acknowledged before the backup began: must be in the copy
        code, out, err = await kanal_cli(
            "db", "backup", str(backup_file), "--config", str(config), cwd=live
        )
        during = set(acked) - before
        backup_done.set()
        assert code == 0, err
        assert "backup written to" in out
        return before, during

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        workers = asyncio.gather(*(worker(session) for _ in range(8)))
        (before, during), _ = await asyncio.gather(backup_mid_burst(), workers)
    assert during, "the backup must run while webhooks are still acknowledged"

    assert stat.S_IMODE(backup_file.stat().st_mode) == 0o600
    assert not (backup_file.parent / "kanal-backup.db.partial").exists()

    # Restore: a fresh kanal elsewhere, on the copy alone.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copyfile(backup_file, fresh / "kanal.db")
    k = await start_kanal(fresh)
    try:
        while await k.drain():
            pass
        async with k.store.read() as conn:
            rows = await conn.execute(
                select(raw_messages.c.external_id).where(raw_messages.c.report_id.is_not(None))
            )
            found = {row[0] for row in rows}
    finally:
        await k.close()
    missing = {acked[i] for i in before} - found  # each became a report in the fresh kanal
    assert not missing, f"{len(missing)} acknowledged messages missing from the copy"


def test_a_backup_of_a_postgresql_store_says_to_use_pg_dump(tmp_path):
    config = write_config(tmp_path, "postgresql://kanal@127.0.0.1:1/kanal")
    code, _, err = asyncio.run(
        kanal_cli("db", "backup", str(tmp_path / "x.db"), "--config", str(config), cwd=tmp_path)
    )
    assert code == 2 and "pg_dump" in err
    assert not (tmp_path / "x.db").exists()


def test_a_backup_of_a_missing_store_fails_without_creating_one(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/absent.db")
    code, _, err = asyncio.run(
        kanal_cli("db", "backup", str(tmp_path / "x.db"), "--config", str(config), cwd=tmp_path)
    )
    assert code == 1 and "no database" in err
    assert not (tmp_path / "absent.db").exists() and not (tmp_path / "x.db").exists()


def test_the_copy_holds_what_is_still_only_in_the_write_ahead_log(tmp_path):
    import sqlite3

    from gateway.store.backup import backup_sqlite

    live = tmp_path / "live.db"
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # nothing reaches the main file
    writer.execute("CREATE TABLE raw_messages (id INTEGER)")
    writer.execute("CREATE TABLE reports (id INTEGER)")
    writer.executemany("INSERT INTO raw_messages VALUES (?)", [(i,) for i in range(500)])
    try:
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        result = backup_sqlite(live, tmp_path / "copy.db")
        assert (result.raw_messages, result.reports) == (500, 0)
        copy = sqlite3.connect(tmp_path / "copy.db")
        assert copy.execute("SELECT count(*) FROM raw_messages").fetchone()[0] == 500
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        copy.close()
    finally:
        writer.close()
