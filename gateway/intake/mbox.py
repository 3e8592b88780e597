"""`kanal import mbox FILE` (backfill a mailbox file) and `kanal ingest --connector email`.

Both go through the same path as live mail (gateway.intake.mail, intake "import"), so a
message already taken by SMTP or IMAP is recognised by its Message-ID and not stored twice.
"""

from __future__ import annotations

import mailbox
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.base.runtime import Runtime
from gateway.intake.mail import MailEnvelope, PreparedMail, prepare_mail, store_mail
from gateway.store.inbox import StoredRaw

BATCH = 100  # messages per group commit


class Progress:
    """A `\\r` bar on a terminal, a line every 10 % (or 5 s) otherwise; always on stderr."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30):
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.last_line = 0.0
        self.last_tenth = -1

    def update(self, done: int) -> None:
        share = done / self.total if self.total else 1.0
        if self.tty:
            filled = int(share * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {share:4.0%}")
            self.stream.flush()
            return
        tenth = int(share * 10)
        now = time.monotonic()
        if tenth > self.last_tenth or now - self.last_line >= 5 or done == self.total:
            self.last_tenth, self.last_line = tenth, now
            self.stream.write(f"imported {done}/{self.total} ({share:.0%})\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def import_mbox(
    runtime: Runtime, path: Path, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Store every message of an mbox file; returns the ids stored anew, the number of
    duplicates, and why the messages kept as failed could not be read."""
    box = mailbox.mbox(path, create=False)
    try:
        keys = list(box.iterkeys())  # offsets only: messages are read one at a time
        progress = progress or Progress(len(keys))
        progress.total = len(keys)
        summary: dict[str, Any] = {"stored": [], "duplicates": 0, "failed": Counter()}
        batch: list[PreparedMail] = []
        done = 0
        for number, key in enumerate(keys, 1):
            raw = box.get_bytes(key)
            batch.append(
                prepare_mail(
                    raw,
                    MailEnvelope(
                        intake="import",
                        source=f"mbox:{path.name}:{number}",
                        received_at=datetime.now(UTC),
                        extra_headers=((":mbox", path.name), (":mbox_index", str(number))),
                        prefer_message_date=True,
                    ),
                )
            )
            if len(batch) >= BATCH:
                done += await _flush(runtime, batch, summary)
                progress.update(done)
        done += await _flush(runtime, batch, summary)
        progress.update(done)
        progress.close()
    finally:
        box.close()
    return summary


async def _flush(runtime: Runtime, batch: list[PreparedMail], summary: dict[str, Any]) -> int:
    if not batch:
        return 0
    stored = await store_mail(runtime, batch)
    for item, prepared in zip(stored, batch, strict=True):
        if not item.created:
            summary["duplicates"] += 1
            continue
        summary["stored"].append(item.id)
        if prepared.malformed:  # kept as a failed raw message (see /api/v1/inbox)
            summary["failed"][prepared.malformed] += 1
    count = len(batch)
    batch.clear()
    return count


async def ingest_eml(runtime: Runtime, body: bytes, filename: str) -> StoredRaw:
    """`kanal ingest --connector email FILE.eml`: one message, stored (or found stored)."""
    prepared = prepare_mail(
        body,
        MailEnvelope(
            intake="import",
            source=f"file:{Path(filename).name}",
            received_at=datetime.now(UTC),
            extra_headers=((":file", Path(filename).name),),
            prefer_message_date=True,
        ),
    )
    [stored] = await store_mail(runtime, [prepared])
    return stored
