"""E-mail intake throughput: messages per second into durably stored raw messages and on into
canonical reports, through the SMTP listener and through the IMAP poller (real Dovecot).

    .venv/bin/python bench/bench_email.py [--messages 500] [--connections 4] [--db URL]

SMTP: smtplib clients in threads, each on its own connection, send their share of the
messages; every 250 means the message was fsynced (SQLite WAL synchronous=FULL by default,
group commit). IMAP: the messages are appended to a Dovecot INBOX first (not timed), then
one poller tick (no IDLE) fetches and stores them all. In both, the pipeline then turns the
stored messages into reports (timed separately). Bounded: N messages each, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import smtplib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.base.config import load_config  # noqa: E402
from gateway.base.runtime import build_runtime  # noqa: E402
from gateway.intake.imap import close_session, poll_imap  # noqa: E402
from gateway.intake.smtp import start_smtp  # noqa: E402
from gateway.process.server import make_pipeline  # noqa: E402
from tests.fakes.dovecot import PASSWORD, USER, Dovecot  # noqa: E402

RECIPIENT = "pengaduan@jakarta.go.id"


def mail(n: int, run: str) -> bytes:
    return (
        f"From: Warga {n} <warga{n}@example.id>\r\nTo: {RECIPIENT}\r\n"
        f"Subject: Keluhan {n}\r\nDate: Fri, 27 Nov 2026 08:00:00 +0700\r\n"
        f"Message-ID: <bench-{run}-{n}@example.id>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Lampu PJU mati di Jl. Kenari nomor {n}, Kelurahan Kenari, Senen. Mohon diperbaiki.\r\n"
    ).encode()


def config_text(db_url: str, extra: str = "") -> str:
    return f"""
[server]
http = "127.0.0.1:1"
smtp = ""
[database]
url = "{db_url}"
[channels.email]
enabled = true
recipients = ["{RECIPIENT}"]
{extra}
"""


async def make_runtime(directory: Path, db_url: str, extra: str = "") -> Any:
    path = directory / f"kanal-{time.monotonic_ns()}.toml"
    path.write_text(config_text(db_url, extra))
    runtime = build_runtime(load_config(str(path), environ={}))
    await runtime.store.migrate()
    return runtime


def send_share(port: int, messages: list[bytes]) -> int:
    sent = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for raw in messages:
            client.sendmail("warga@example.id", [RECIPIENT], raw)
            sent += 1
    return sent


async def bench_smtp(
    directory: Path, db_url: str, count: int, connections: int
) -> dict[str, float]:
    runtime = await make_runtime(directory, db_url)
    port = _free_port()
    server = await start_smtp(runtime, "127.0.0.1", port)
    run = f"smtp{time.time_ns()}"
    messages = [mail(n, run) for n in range(count)]
    shares = [messages[i::connections] for i in range(connections)]
    try:
        started = time.perf_counter()
        sent = await asyncio.gather(*(asyncio.to_thread(send_share, port, s) for s in shares))
        stored_s = time.perf_counter() - started
        assert sum(sent) == count
        started = time.perf_counter()
        reports = await make_pipeline(runtime).drain()
        report_s = time.perf_counter() - started
    finally:
        server.close()
        await server.wait_closed()
        await runtime.store.close()
    return {
        "stored_per_s": count / stored_s,
        "reports_per_s": reports / report_s,
        "stored_s": stored_s,
        "report_s": report_s,
        "reports": reports,
    }


async def bench_imap(directory: Path, db_url: str, count: int) -> dict[str, float]:
    dovecot = Dovecot(shutil.which("dovecot") or "/usr/sbin/dovecot").start()
    try:
        run = f"imap{time.time_ns()}"
        dovecot.append_many([mail(n, run) for n in range(count)])
        runtime = await make_runtime(
            directory,
            db_url,
            f"""
imap_host = "127.0.0.1"
imap_port = {dovecot.port}
imap_ssl = false
imap_username = "{USER}"
imap_password = "{PASSWORD}"
imap_idle = false
""",
        )
        try:
            started = time.perf_counter()
            await poll_imap(runtime)
            stored_s = time.perf_counter() - started
            started = time.perf_counter()
            reports = await make_pipeline(runtime).drain()
            report_s = time.perf_counter() - started
            await close_session(runtime)
        finally:
            await runtime.store.close()
    finally:
        dovecot.cleanup()
    return {
        "stored_per_s": count / stored_s,
        "reports_per_s": reports / report_s,
        "stored_s": stored_s,
        "report_s": report_s,
        "reports": reports,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    count = max(1, min(args.messages, 5000))  # bounded
    with tempfile.TemporaryDirectory(prefix="kanal-bench-email-") as tmp:
        directory = Path(tmp)
        smtp_db = args.db or f"sqlite:///{directory}/smtp.db"
        imap_db = args.db or f"sqlite:///{directory}/imap.db"
        smtp = await bench_smtp(directory, smtp_db, count, args.connections)
        imap = await bench_imap(directory, imap_db, count)
    store = "PostgreSQL" if (args.db or "").startswith("postgres") else "SQLite (synchronous=FULL)"
    print(f"e-mail intake, {count} messages, store {store}")
    print(
        f"  SMTP ({args.connections} connections): {smtp['stored_per_s']:7.0f} msg/s stored "
        f"(250 after fsync; {smtp['stored_s']:.2f}s), pipeline {smtp['reports_per_s']:7.0f} "
        f"reports/s ({int(smtp['reports'])} in {smtp['report_s']:.2f}s)"
    )
    print(
        f"  IMAP (Dovecot, one tick):  {imap['stored_per_s']:7.0f} msg/s stored "
        f"({imap['stored_s']:.2f}s), pipeline {imap['reports_per_s']:7.0f} reports/s "
        f"({int(imap['reports'])} in {imap['report_s']:.2f}s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
