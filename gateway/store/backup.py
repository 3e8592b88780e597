"""A consistent copy of a SQLite store while kanal runs (SQLite's online backup API).

The copy is made in one step under a read transaction: in WAL mode writers go on (webhooks
are still acknowledged) and the copy is the store as it was when the step began. It is
written beside the target as a private file (0600) and renamed into place only when whole.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.store.private_files import create_private_file


class BackupError(Exception):
    """The store cannot be copied (no such file, or the target is the store itself)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    raw_messages: int
    reports: int


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("the backup would overwrite the store itself")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private_file(partial)
    # mode=rw: a missing store is an error, not a new empty file.
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: all at once, one consistent snapshot
            # The copy stands alone: no -wal beside it to go missing when it is moved.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy fails its check: {check}")
            counts = [
                dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("raw_messages", "reports")
            ]
        finally:
            dst.close()
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return BackupResult(target, target.stat().st_size, counts[0], counts[1])
