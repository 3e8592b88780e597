"""Who this process is to the other replicas: the holder name of its leases and claims.

The name outlives the process, so that a replica restarted (cleanly or after kill -9)
recognises the leases and claims it held before, while two live processes never share
one: each holds an exclusive lock (flock) on its identity file for as long as it runs,
and a second process on the same folder takes the next free file. The kernel drops the
lock when a process dies, however it dies. An operator may name the replica instead
(`server.replica_id`), and must then keep the names of live replicas apart.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.base.config import Settings
from gateway.store import sqlite_path

MAX_SLOTS = 64


@dataclass
class ReplicaIdentity:
    name: str
    # The open, locked identity file: the lock lasts as long as this descriptor.
    locked_fd: int | None = None

    def close(self) -> None:
        if self.locked_fd is not None:
            os.close(self.locked_fd)
            self.locked_fd = None


def identity_folder(settings: Settings) -> Path:
    """Beside the SQLite file, or var/ in the working directory for PostgreSQL."""
    path = sqlite_path(settings.database.url)
    return (path.parent if path is not None else Path("var")) / "replicas"


def claim_identity(settings: Settings) -> ReplicaIdentity:
    if settings.server.replica_id:
        return ReplicaIdentity(settings.server.replica_id)
    folder = identity_folder(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(folder / f"{slot}.id", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        name = os.read(fd, 256).decode("ascii", "replace").strip()
        if not name:
            # Short enough for every claimed_by column (64) with a ":media" suffix.
            name = f"{socket.gethostname()[:32]}:{uuid.uuid4().hex[:16]}"
            os.write(fd, name.encode("ascii", "replace") + b"\n")
            os.fsync(fd)
        return ReplicaIdentity(name, fd)
    raise RuntimeError(f"{folder}: all {MAX_SLOTS} replica identities are in use")
