"""The real Kannel (bearerbox + smsbox) with its fake SMSC, for tests on loopback.

    with KannelPeer(tmp_path, get_url="http://127.0.0.1:PORT/webhooks/sms/kannel?key=S&…") as k:
        k.inject("+6281234567890", "1500123", "Lampu jalan mati")   # an SMS arrives (MO)
        line = k.wait_for_sent(timeout=10)                            # an SMS kanal sent (MT)
        k.sendsms_url, k.user, k.password                             # for channels.sms_kannel

Starts from tests/peers/kannel.conf (the peer's configuration as the project runs it),
copied with free ports, its log files under the test's directory and the `sms-service`
get-url replaced. The fake SMSC is
bearerbox listening on `smsc_port`; this helper connects to it the way Kannel's `fakesmsc`
does: MO lines `SENDER RECEIVER text MESSAGE` are written to it, MT messages (sendsms)
come back on the same socket as lines `SENDER RECEIVER text URL-ENCODED-MESSAGE`, read into
`sent` by a thread. Both boxes are stopped by their own PIDs.

`kannel_peer` is a pytest fixture factory over it: `k = kannel_peer(get_url)`.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from tests.conftest import free_port, need_binary

__all__ = ["KannelPeer", "SentSms", "kannel_peer"]

PEER_CONF = Path(__file__).resolve().parent.parent / "peers" / "kannel.conf"


@dataclass(frozen=True)
class SentSms:
    sender: str
    receiver: str
    kind: str  # text | ucs-2 | data | udh
    text: str  # decoded
    line: str  # as it came off the socket


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Kannel did not open port {port}")


class KannelPeer:
    def __init__(
        self, workdir: Path, get_url: str, *, user: str = "tester", password: str = "foobar"
    ) -> None:
        self.bearerbox = need_binary("bearerbox", "kannel")
        self.smsbox = need_binary("smsbox", "kannel")
        self.dir = workdir / f"kannel-{free_port()}"
        self.dir.mkdir(parents=True)
        self.get_url = get_url
        self.user, self.password = user, password
        self.admin_port, self.box_port = free_port(), free_port()
        self.smsc_port, self.sendsms_port = free_port(), free_port()
        self.sent: list[SentSms] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def config_text(self) -> str:
        text = PEER_CONF.read_text()
        for old, new in (
            ("13000", self.admin_port),
            ("13001", self.box_port),
            ("13010", self.smsc_port),
            ("13013", self.sendsms_port),
        ):
            text = re.sub(rf"\b{old}\b", str(new), text)
        text = text.replace("/tmp/kanal-kannel", str(self.dir))
        text = re.sub(r'get-url = "[^"]*"', f'get-url = "{self.get_url}"', text)
        # Only the GET service: every MO goes to get-url, whatever its first word.
        text = re.sub(r"# MO with keyword \"post\".*?catch-all = true\n", "", text, flags=re.S)
        text = text.replace("username = tester", f"username = {self.user}")
        text = text.replace("password = foobar", f"password = {self.password}")
        return text

    def start(self) -> KannelPeer:
        conf = self.dir / "kannel.conf"
        conf.write_text(self.config_text())
        for binary, port in ((self.bearerbox, self.smsc_port), (self.smsbox, self.sendsms_port)):
            log = (self.dir / f"{Path(binary).name}.out").open("wb")
            self._procs.append(
                subprocess.Popen(
                    [binary, "-v", "1", str(conf)],
                    cwd=self.dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            _wait_port(port, 10.0)
        self._sock = socket.create_connection(("127.0.0.1", self.smsc_port), timeout=5)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                parts = line.split(" ", 3)
                if len(parts) == 4:
                    data = unquote_to_bytes(parts[3].replace("+", " "))
                    encoding = "utf-16-be" if parts[2] == "ucs-2" else "utf-8"
                    text = data.decode(encoding, "replace")
                    sms = SentSms(parts[0], parts[1], parts[2], text, line)
                    with self._lock:
                        self.sent.append(sms)

    def inject(self, sender: str, receiver: str, text: str) -> None:
        """An SMS from `sender` to `receiver` arrives at Kannel (fake SMSC MO line)."""
        assert self._sock is not None, "start() first"
        self._sock.sendall(f"{sender} {receiver} text {text}\n".encode())

    def wait_for_sent(self, count: int = 1, timeout: float = 10.0) -> list[SentSms]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.sent) >= count:
                    return list(self.sent)
            time.sleep(0.05)
        with self._lock:
            return list(self.sent)

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def __enter__(self) -> KannelPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def kannel_peer(tmp_path: Path) -> Iterator[Callable[..., KannelPeer]]:
    started: list[KannelPeer] = []

    def make(get_url: str, **kwargs: str) -> KannelPeer:
        peer = KannelPeer(tmp_path, get_url, **kwargs).start()
        started.append(peer)
        return peer

    yield make
    for peer in started:
        peer.stop()
