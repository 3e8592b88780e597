"""A private, throw-away PostgreSQL cluster for tests that stop and restart the database.

Never the shared server on 5432: the cluster lives in a temporary directory, listens on
127.0.0.1 on a free port, runs with fsync off, and is removed with the test. Needs the
Debian `postgresql` binaries and root (initdb runs as the `postgres` user via runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PgCluster", "pg_bin_dir"]


def pg_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def usable() -> tuple[bool, str]:
    if pg_bin_dir() is None:
        return False, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin)"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return False, "root with runuser (initdb runs as the postgres user)"
    return True, ""


class PgCluster:
    """``init()`` once, then ``start()`` / ``stop()`` as often as the test likes."""

    def __init__(self, directory: Path, port: int):
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries")
        self.bin = bin_dir

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace')[-1000:]}"
            )

    @classmethod
    def temporary(cls, port: int) -> PgCluster:
        """A cluster in a fresh directory directly under the system temp directory: pytest's
        own tmp_path sits below a root-only directory that pytest resets to 0700 at every
        session start (another session starting would lock postgres out mid-test)."""
        return cls(Path(tempfile.mkdtemp(prefix="kanal-pg-")), port)

    def init(self) -> PgCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.directory, "postgres", "postgres")
        self.directory.chmod(0o700)
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        return self

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
            "-c fsync=off -c max_connections=100"
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "pg.log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash (no checkpoint); ``fast`` ends sessions cleanly."""
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop"
        )

    def running(self) -> bool:
        result = subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "status",
            ],
            capture_output=True,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
