"""Shared fixtures: real peers (skipped on a laptop without them, failing under CI=true),
stores on SQLite and PostgreSQL, and kanal apps built from a config written for the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("KANAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def need_peer(available: bool, package: str, what: str) -> None:
    """Skip on a developer's laptop, fail in CI: CI never goes green by skipping."""
    if available:
        return
    message = f"{what} is missing: apt-get install {package}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def need_binary(binary: str, package: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    need_peer(path is not None, package, binary)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _psql(sql: str, url: str = PG_ADMIN_URL) -> None:
    subprocess.run(
        ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def pg_server() -> str:
    need_peer(_pg_reachable(), "postgresql", "PostgreSQL on 127.0.0.1:5432")
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[str]:
    """One database for the session on the shared server (DROP DATABASE forces a checkpoint,
    seconds each: tests reset the schema instead)."""
    name = f"kanal_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _psql(f"CREATE DATABASE {name}")
    yield f"{pg_server.rsplit('/', 1)[0]}/{name}"
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session database, emptied: stray sessions ended, schema dropped and recreated."""
    name = pg_database.rsplit("/", 1)[1]
    _psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    _psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on each store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kanal.db"
    return str(request.getfixturevalue("pg_url"))


SECRETS = {
    "sms_generic": "generic-secret",
    "jaki": "jaki-secret",
    "lapor": "lapor-secret",
    "sms_kannel": "kannel-secret",
    "sms_twilio": "twilio-auth-token",
    "sms_vonage": "vonage-signature-secret",
}


def write_config(
    directory: Path,
    db_url: str,
    extra: str = "",
    *,
    http_port: int | None = None,
    smtp_port: int | None = None,
) -> Path:
    http = f"127.0.0.1:{http_port or free_port()}"
    smtp = f"127.0.0.1:{smtp_port}" if smtp_port else ""
    text = f"""
[server]
http = "{http}"
smtp = "{smtp}"
public_url = "http://{http}"

[database]
url = "{db_url}"

[pipeline]
sms_parts_timeout_s = 2

[channels.sms_generic]
enabled = true
secret_file = "{directory}/generic.secret"

[channels.jaki]
enabled = true
secret_file = "{directory}/jaki.secret"

[channels.lapor]
enabled = true
secret_file = "{directory}/lapor.secret"

[channels.sms_kannel]
enabled = true
owner = "office:balai_kota"
secret_file = "{directory}/kannel.secret"

[channels.sms_twilio]
enabled = true
auth_token_file = "{directory}/twilio.secret"

[channels.sms_vonage]
enabled = true
signature_method = "sha256"
signature_secret_file = "{directory}/vonage.secret"
{extra}
"""
    for name, file in (
        ("sms_generic", "generic"),
        ("jaki", "jaki"),
        ("lapor", "lapor"),
        ("sms_kannel", "kannel"),
        ("sms_twilio", "twilio"),
        ("sms_vonage", "vonage"),
    ):
        (directory / f"{file}.secret").write_text(SECRETS[name])
    path = directory / "kanal.toml"
    path.write_text(text)
    return path


class Kanal:
    """An in-process kanal app on a real loopback port, with its runtime and pipeline."""

    def __init__(self, runtime: Any, client: Any, base_url: str):
        self.runtime = runtime
        self.client = client
        self.base_url = base_url
        self.store = runtime.store

    async def drain(self) -> int:
        from gateway.process.server import make_pipeline

        return await make_pipeline(self.runtime).drain()

    async def close(self) -> None:
        await self.client.close()
        await self.store.close()

    async def token(
        self, scope: str = "province", role: str = "admin", name: str | None = None
    ) -> str:
        from gateway.web.auth import hash_token, new_token

        token = new_token()
        await self.store.create_token(
            name or f"t-{uuid.uuid4().hex[:8]}", hash_token(token), role, scope
        )
        return token


async def start_kanal(directory: Path, db_url: str | None = None, extra: str = "") -> Kanal:
    """A kanal app on a loopback port, its config and SQLite store (unless given) in
    `directory`; close it with `close()`."""
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.base.config import load_config
    from gateway.base.runtime import build_runtime
    from gateway.web.app import create_app

    url = db_url or f"sqlite:///{directory}/kanal.db"
    config = write_config(directory, url, extra)
    runtime = build_runtime(load_config(str(config), environ={}))
    await runtime.store.migrate()
    server = TestServer(create_app(runtime), host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    return Kanal(runtime, client, str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def make_kanal(tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Kanal] = []

    async def make(db_url: str | None = None, extra: str = "") -> Kanal:
        made.append(await start_kanal(tmp_path, db_url, extra))
        return made[-1]

    yield make
    for k in made:
        await k.close()


def wait_until_ready(
    proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float = 30.0
) -> None:
    """Until `kanal serve` answers /readyz with 200; its log's tail if it exits or stalls."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kanal exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"kanal did not become ready: {log_path.read_text()[-2000:]}")


class ServerProcess:
    """`kanal serve` as a real process (crash tests, real peers)."""

    def __init__(self, config: Path, workdir: Path, env: dict[str, str] | None = None):
        self.config = config
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        import tomllib

        data = tomllib.loads(config.read_text())
        self.http = data["server"]["http"]
        self.base_url = f"http://{self.http}"
        self.log_path = workdir / f"serve-{int(time.time() * 1000)}.log"

    def start(self, timeout: float = 30.0) -> None:
        self.log_path = self.workdir / f"serve-{int(time.time() * 1000)}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(self.config)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        wait_until_ready(self.proc, self.base_url, self.log_path, timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def make(config: Path, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(config, tmp_path, env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
