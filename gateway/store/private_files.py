"""Files kanal creates hold citizens' data or secrets: readable by its own user only."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def create_private_file(path: Path) -> None:
    """Create `path` (and missing folders, 0700) as 0600 whatever the umask; an existing
    file is left as it is. SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
