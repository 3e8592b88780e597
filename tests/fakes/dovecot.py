"""A real Dovecot IMAP server on loopback for tests and benchmarks.

Built from tests/peers/dovecot.conf (the peer's configuration as the project runs it) with its
paths moved to a private directory and its port to a free one. The mail user is `nobody` (Dovecot
refuses root), so the directory is world-traversable and the mail home is nobody's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED_CONFIG = Path(__file__).resolve().parent.parent / "peers" / "dovecot.conf"
USER = "alice"
PASSWORD = "secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    def __init__(self, binary: str = "dovecot", port: int | None = None):
        self.binary = binary
        self.port = port or _free_port()
        # Not under pytest's tmp_path: that is 0700 root, and the mail user is nobody.
        self.root = Path(tempfile.mkdtemp(prefix="kanal-dovecot-"))
        self.root.chmod(0o755)
        self.config = self.root / "dovecot.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Dovecot:
        text = SHARED_CONFIG.read_text().replace("/tmp/kanal-dovecot", str(self.root))
        text = text.replace("port = 10143", f"port = {self.port}")
        self.config.write_text(text)
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        home = self.root / "mail" / USER
        home.mkdir(parents=True, exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        for path in (self.root / "mail", home):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- the mailbox, as a mail client sees it ---------------------------------------------

    def client(self) -> Any:
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> None:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=flags)
        finally:
            client.logout()

    def append_many(self, raws: list[bytes], folder: str = "INBOX") -> None:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in raws:
                client.append(folder, raw)
        finally:
            client.logout()

    def folder(self, folder: str = "INBOX") -> dict[int, dict[bytes, Any]]:
        """uid → {FLAGS, BODY[]} of every message in a folder (without marking anything)."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        finally:
            client.logout()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        client = self.client()
        try:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
        finally:
            client.logout()

    def recreate(self, folder: str) -> None:
        """Delete and create a folder: the server gives it a new UIDVALIDITY."""
        client = self.client()
        try:
            if client.folder_exists(folder):
                client.delete_folder(folder)
            client.create_folder(folder)
        finally:
            client.logout()
