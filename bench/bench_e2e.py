"""The whole way of a report, end to end: signed geo-tagged webhooks at a steady rate into
`kanal serve` with everything on — JAKI reports and, a share of them (--chat-share),
WhatsApp citizens of their own each writing a complaint and sharing its location — to a
local Open311 CRM answering after 20 ms, the WhatsApp citizens acknowledged through a local
fake Graph API.

    .venv/bin/python bench/bench_e2e.py [--rate 200,500] [--seconds 10] [--chat-share 0.25]
        [--backend sqlite|postgresql|all] [--replicas 1,2] [--profile]

Per store (SQLite; PostgreSQL on 127.0.0.1:5432 with one and two replicas, each run on a
throw-away database), it prints:

- steady runs, one per rate asked: webhooks sent open loop (each due at i/rate s on the
  clock, whatever the earlier ones did), the rates acknowledged and delivered, whether the
  backlog grew (sampled from the store), webhook→CRM-accepted latency measured from the
  time each webhook was due, acknowledgements recorded for the citizens, the WhatsApp
  citizens' acknowledgements accepted by the provider (each exactly once, carrying the
  citizen's ticket) and webhook→ack latency, and the CPU seconds per report of the kanal
  process(es) (utime + stime of all threads, /proc);
- the cost per stage: the same webhooks on a fresh store with the pipeline, the CRM
  dispatcher and the notifier held (bench/e2e_serve.py), released one after the other, the
  process's CPU read during each phase (intake, pipeline, dispatch, notify: the WhatsApp
  acknowledgements sent to the provider, the JAKI ones recorded);
- the backlog capacity: that backlog released all at once, reports/s to the CRM (the
  ratio two replicas / one on PostgreSQL);
- the normalization rate of a backlog of non-geo reports;
- the targets, each PASS or MISS.

JAKI answers the citizen in the webhook's response (the ticket): the notifier records that
acknowledgement ("sent" through "webhook_response") and calls no provider. A WhatsApp
citizen sends two signed deliveries (Meta's webhook, X-Hub-Signature-256): the complaint's
text, then, once that is answered, the location, which joins the text's report in the
conversation window and geo-tags it (a bare location is a geo-tagged report too, but with
no words kanal scores it noise and acknowledges nothing). The acknowledgement goes out as
`POST /{version}/{phone_number_id}/messages` with the bearer token to the fake Graph API of
the tests (bench/e2e_graph.py: token, API version, number, payload and 24-hour window
checked), which kanal's WhatsApp connector reaches through `channels.whatsapp.graph_url`.

The CRM (bench/e2e_crm.py) and the Graph API run in processes of their own so that their
CPU is not counted with kanal's. --profile samples kanal with py-spy (installed under
bench/out/tools when missing; cProfile through bench/e2e_serve.py without it) during the
first steady run of each store and during each phase of the stage split, prints the
functions by own time and kanal's functions by time inside them, and keeps the raw
profiles under bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import hmac
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import kanal_signature  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PG_ADMIN_URL = os.environ.get("KANAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-jaki-secret"
CRM_API_KEY = "bench-key"  # bench/e2e_crm.py's
WA_SECRET = "bench-whatsapp-app-secret"
WA_TOKEN = "bench-whatsapp-token"
WA_NUMBER = "106540352242922"  # the business phone number id the citizens write to
CLK_TCK = os.sysconf("SC_CLK_TCK")
STAGES = ("pipeline", "crm_dispatcher", "notify")  # held, then released in this order

# Targets of the work this benchmark measures.
TARGET_RATE = 500.0  # reports/s end to end, one process on SQLite
TARGET_P99_S = 2.0  # webhook → CRM accepted
TARGET_CPU_MS = 1.0  # CPU per report, all stages
TARGET_REPLICA_RATIO = 1.7  # two replicas on PostgreSQL / one
TARGET_NON_GEO_RATE = 3000.0  # non-geo backlog normalized, reports/s per process

# Inside Jakarta Pusat (Menteng); each report a few hundred metres around it.
LAT, LON = -6.1958, 106.8340
COMPLAINTS = (
    ("Jalan", "Jalan berlubang besar di depan SDN 01, sudah {n} hari belum diperbaiki"),
    ("Penerangan Jalan", "Lampu PJU mati di Jl. Besuki dekat taman, gelap sekali ({n})"),
    ("Sampah", "Sampah menumpuk di pinggir kali dan bau, mohon diangkut, laporan {n}"),
    ("Saluran Air", "Saluran air tersumbat, air meluap ke jalan tiap hujan, rumah {n}"),
    ("Trotoar", "Trotoar rusak dan dipakai parkir liar di depan toko nomor {n}"),
)


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class Webhook:
    path: str
    body: bytes
    headers: dict[str, str]
    citizen: str | None = None  # WhatsApp: the citizen's wa_id (acknowledged through Graph)
    external_id: str | None = None  # WhatsApp: the wamid of the message the report starts with
    first: Webhook | None = None  # sent, and answered, before this one (the same citizen's)


def jaki_webhook(run: str, n: int, *, geo: bool = True) -> Webhook:
    """One signed JAKI webhook, unique text and reporter per `n`."""
    rng = random.Random(n)
    category, text = COMPLAINTS[n % len(COMPLAINTS)]
    body: dict[str, Any] = {
        "id": f"{run}-{n:07d}",
        "reporter": {"name": "Warga Uji", "phone": f"0812{n % 10**8:08d}"},
        "text": text.format(n=n),
        "category": category,
        "photos": [],
        "created_at": datetime.now(UTC).isoformat(),
    }
    if geo:
        body["location"] = {
            "lat": round(LAT + rng.uniform(-0.002, 0.002), 6),
            "lon": round(LON + rng.uniform(-0.002, 0.002), 6),
            "accuracy_m": 10.0,
            "address": "Jl. Besuki, Menteng",
        }
    raw = json.dumps(body).encode()
    return Webhook(
        "/webhooks/jaki",
        raw,
        {"X-Kanal-Signature": kanal_signature(SECRET, raw), "Content-Type": "application/json"},
    )


def whatsapp_webhook(run: str, n: int) -> Webhook:
    """A WhatsApp citizen of its own per `n` writes the complaint, then shares the location:
    two signed deliveries (Meta's envelope), the location sent once the text is answered. The
    location joins the text's report in the conversation window and geo-tags it. (A bare
    location makes a geo-tagged report too, but with no words kanal scores it noise and
    acknowledges nothing.)"""
    rng = random.Random(n)
    wa_id = f"62857{n % 10**8:08d}"
    text_id = f"wamid.BENCH{run}{n:07d}t"
    text = whatsapp_delivery(
        wa_id, text_id, "text", {"body": COMPLAINTS[n % len(COMPLAINTS)][1].format(n=n)}
    )
    location = {
        "latitude": round(LAT + rng.uniform(-0.002, 0.002), 6),
        "longitude": round(LON + rng.uniform(-0.002, 0.002), 6),
        "name": "Taman Suropati",
        "address": "Jl. Besuki, Menteng",
    }
    shared = whatsapp_delivery(wa_id, f"wamid.BENCH{run}{n:07d}l", "location", location)
    return Webhook(
        shared.path, shared.body, shared.headers, citizen=wa_id, external_id=text_id, first=text
    )


def whatsapp_delivery(wa_id: str, wamid: str, kind: str, content: dict[str, Any]) -> Webhook:
    """One signed delivery of one message (X-Hub-Signature-256 with the app secret)."""
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": kind,
        kind: content,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100001500", "phone_number_id": WA_NUMBER},
        "contacts": [{"profile": {"name": "Warga Uji"}, "wa_id": wa_id}],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    raw = json.dumps(payload).encode()
    signature = hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return Webhook(
        "/webhooks/whatsapp",
        raw,
        {"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"},
    )


def is_chat(i: int, share: float) -> bool:
    """Whether webhook i is a WhatsApp one: `share` of them, spread evenly over the run."""
    return math.floor((i + 1) * share) > math.floor(i * share)


def webhooks_for(run: str, n: int, chat_share: float, *, geo: bool = True) -> list[Webhook]:
    """`n` webhooks, `chat_share` of them WhatsApp locations (geo-tagged only), the rest JAKI."""
    return [
        whatsapp_webhook(run, i)
        if geo and is_chat(i, chat_share)
        else jaki_webhook(run, i, geo=geo)
        for i in range(n)
    ]


@dataclass
class Sent:
    due: float  # Unix time the webhook was due to leave (i / rate after the start)
    answered: float
    status: int
    ticket: str | None  # JAKI's, from the response
    citizen: str | None = None  # WhatsApp's wa_id
    external_id: str | None = None  # WhatsApp's wamid


async def send_open_loop(
    urls: Sequence[str],
    webhooks: Sequence[Webhook],
    rate: float,
    connections: int,
) -> list[Sent]:
    """Webhook i leaves at start + i/rate on the clock, to urls[i % len(urls)], on at most
    `connections` connections per URL. A webhook that waits for a free connection keeps its
    due time: a sender falling behind shows in the latencies, it does not slow the clock."""
    results: list[Sent] = []
    connector = aiohttp.TCPConnector(limit=connections * len(urls), limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        start_mono = loop.time() + 0.05
        start_wall = time.time() + 0.05

        async def one(i: int) -> None:
            webhook = webhooks[i]
            due = start_wall + i / rate
            status, ticket = -1, None
            try:
                for part in (webhook.first, webhook):
                    if part is None:
                        continue
                    async with session.post(
                        f"{urls[i % len(urls)]}{part.path}", data=part.body, headers=part.headers
                    ) as response:
                        status = response.status
                        if status == 200 and part.path == "/webhooks/jaki":
                            ticket = (await response.json())["ticket"]
                        else:
                            await response.read()  # WhatsApp: "EVENT_RECEIVED"
                    if status != 200:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            results.append(
                Sent(due, time.time(), status, ticket, webhook.citizen, webhook.external_id)
            )

        tasks = []
        i = 0
        while i < len(webhooks):
            delay = start_mono + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # Everything due by now leaves now (sleeps are coarser than 1/rate).
            while i < len(webhooks) and start_mono + i / rate <= loop.time():
                tasks.append(asyncio.create_task(one(i)))
                i += 1
        await asyncio.gather(*tasks)
    return results


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def start_fake(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A fake of bench/ as a child process, and the URL it prints on its first line."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        raise RuntimeError(f"{script} did not start")
    return proc, url


class FakeCrm:
    """bench/e2e_crm.py as a child process."""

    def __init__(self, latency_ms: float):
        self.proc, self.endpoint = start_fake("e2e_crm.py", "--latency-ms", str(latency_ms))
        self.root = self.endpoint.split("/open311")[0]

    def created(self) -> int:
        return int(get_json(f"{self.root}/bench/count")["created"])

    def arrivals(self) -> list[tuple[str, str, float]]:
        return [(str(t), str(k), float(at)) for t, k, at in get_json(f"{self.root}/bench/arrivals")]

    def stop(self) -> None:
        stop(self.proc)


class FakeGraph:
    """bench/e2e_graph.py (the WhatsApp Graph API) as a child process."""

    def __init__(self) -> None:
        self.proc, self.graph_url = start_fake(
            "e2e_graph.py", "--token", WA_TOKEN, "--number", WA_NUMBER
        )

    def wrote(self, citizens: Sequence[str]) -> None:
        """These citizens wrote just now: the provider lets text answers through to them."""
        request = urllib.request.Request(
            f"{self.graph_url}/bench/wrote",
            data=json.dumps(list(citizens)).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def sent(self) -> int:
        return int(get_json(f"{self.graph_url}/bench/count")["sent"])

    def refused(self) -> int:
        count = get_json(f"{self.graph_url}/bench/count")
        return int(count["requests"]) - int(count["sent"])

    def acks(self) -> list[tuple[str, str, str, float]]:
        return [
            (str(to), str(k), str(t), float(at))
            for to, k, t, at in get_json(f"{self.graph_url}/bench/acks")
        ]

    def stop(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Replica:
    """One `kanal serve` (through bench/e2e_serve.py, which can hold stages)."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        crm: FakeCrm,
        graph: FakeGraph,
        crm_concurrency: int,
        held: Sequence[str] = (),
        cprofile: Path | None = None,
    ):
        workdir.mkdir(parents=True)
        self.workdir = workdir
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        (workdir / "jaki.secret").write_text(SECRET)
        (workdir / "crm.key").write_text(CRM_API_KEY)
        (workdir / "whatsapp.secret").write_text(WA_SECRET)
        (workdir / "whatsapp.token").write_text(WA_TOKEN)
        (workdir / "whatsapp.verify").write_text("bench-verify")
        config = workdir / "kanal.toml"
        config.write_text(
            f"""
[server]
http = "127.0.0.1:{port}"
smtp = ""
public_url = "{self.base_url}"

[database]
url = "{db_url}"

[crm]
mode = "open311"
endpoint = "{crm.endpoint}"
api_key_file = "{workdir}/crm.key"
concurrency = {crm_concurrency}
timeout_s = 5.0
claim_ttl_s = 30.0

[notify]
ack_enabled = true

[channels.jaki]
enabled = true
secret_file = "{workdir}/jaki.secret"

[channels.whatsapp]
enabled = true
app_secret_file = "{workdir}/whatsapp.secret"
verify_token_file = "{workdir}/whatsapp.verify"
access_token_file = "{workdir}/whatsapp.token"
graph_url = "{graph.graph_url}"

[channels.whatsapp.numbers."{WA_NUMBER}"]
owner = "province"
"""
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_E2E_HOLD": ",".join(held)}
        if cprofile is not None:
            env["BENCH_E2E_CPROFILE"] = str(cprofile)
        self.log_path = workdir / "kanal.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "e2e_serve.py"),
                    "--log-level",
                    "WARNING",
                    "serve",
                    "--config",
                    str(config),
                ],
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kanal exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"kanal did not become ready: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def release_next(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def release_all(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self) -> None:
        stop(self.proc)


# --------------------------------------------------------------------------- the store


@dataclass
class Counts:
    raw_waiting: int  # raw messages not yet normalized
    crm_waiting: int  # reports ready for the CRM or being posted
    reports: int
    acks_recorded: int  # outbound rows of kind "ack", whatever their state
    acks_sent: int

    @property
    def backlog(self) -> int:
        return self.raw_waiting + self.crm_waiting


COUNTS_SQL = """
SELECT
  (SELECT count(*) FROM raw_messages WHERE state IN ('new', 'processing')),
  (SELECT count(*) FROM reports WHERE status IN ('ready', 'posting')),
  (SELECT count(*) FROM reports),
  (SELECT count(*) FROM outbound WHERE kind = 'ack'),
  (SELECT count(*) FROM outbound WHERE kind = 'ack' AND state = 'sent')
"""


CHAT_TICKETS_SQL = """
SELECT raw_messages.external_id, reports.ticket
FROM reports JOIN raw_messages ON raw_messages.id = reports.raw_message_id
WHERE reports.channel = 'whatsapp'
"""


class Store:
    """A fresh store for one scenario: a SQLite file in a temp dir, or a throw-away
    PostgreSQL database (created here, dropped at close)."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.pg_name: str | None = None
        if backend == "sqlite":
            self.path = workdir / "kanal.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.pg_name = f"kanal_bench_{uuid.uuid4().hex[:10]}"
            psql(f"CREATE DATABASE {self.pg_name}")
            self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.pg_name
        self._pg: Any = None
        self._pg_lock = asyncio.Lock()  # one asyncpg connection: the sampler and the checks

    async def counts(self) -> Counts:
        if self.backend == "sqlite":
            return await asyncio.to_thread(self._sqlite_counts)
        return Counts(*await self._pg_query(COUNTS_SQL, one=True))

    async def _pg_query(self, sql: str, *, one: bool = False) -> Any:
        async with self._pg_lock:
            if self._pg is None:
                import asyncpg

                self._pg = await asyncpg.connect(self.url)
            return await (self._pg.fetchrow(sql) if one else self._pg.fetch(sql))

    async def server_use(self) -> ServerUse:
        """PostgreSQL's own account of this database (pg_stat_database): time its backends
        spent executing statements, and sessions opened. A backend's figures reach the view
        when it ends or up to PGSTAT_IDLE_INTERVAL (10 s) after it goes idle. SQLite works
        inside kanal's process: nothing to add."""
        if self.backend == "sqlite":
            return ServerUse(0.0, 0)
        row = await self._pg_query(
            "SELECT active_time, sessions FROM pg_stat_database WHERE datname = current_database()",
            one=True,
        )
        return ServerUse(float(row[0] or 0.0) / 1000, int(row[1] or 0))

    async def chat_tickets(self) -> dict[str, str]:
        """The WhatsApp reports' tickets by their message's wamid."""
        if self.backend == "sqlite":
            rows = await asyncio.to_thread(self._sqlite_rows, CHAT_TICKETS_SQL)
        else:
            rows = await self._pg_query(CHAT_TICKETS_SQL)
        return {str(external_id): str(ticket) for external_id, ticket in rows}

    def _sqlite_rows(self, sql: str) -> list[Any]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    def _sqlite_counts(self) -> Counts:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return Counts(*connection.execute(COUNTS_SQL).fetchone())
        finally:
            connection.close()

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self.pg_name:
            psql(f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)")


def psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN_URL, "-q", "-c", sql], check=True, capture_output=True)


def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class ServerUse:
    active_s: float  # PostgreSQL backends executing statements for this database
    sessions: int  # connections opened to it

    def __sub__(self, before: ServerUse) -> ServerUse:
        return ServerUse(self.active_s - before.active_s, self.sessions - before.sessions)


PG_STATS_FLUSH_S = 11.0  # PGSTAT_IDLE_INTERVAL (10 s) and a margin


class Scenario:
    """A fresh store, a fake CRM, a fake Graph API and `replicas` kanal processes, stopped
    and removed at the end."""

    def __init__(self, args: argparse.Namespace, backend: str, replicas: int):
        self.args = args
        self.backend = backend
        self.n_replicas = replicas
        self.tmp = Path(tempfile.mkdtemp(prefix="kanal-e2e-"))
        self.store = Store(backend, self.tmp)
        self.crm = FakeCrm(args.crm_latency_ms)
        self.graph = FakeGraph()
        self.replicas: list[Replica] = []
        self.run = uuid.uuid4().hex[:8]

    def start(self, held: Sequence[str] = (), cprofile: Path | None = None) -> None:
        for i in range(self.n_replicas):
            self.replicas.append(
                Replica(
                    self.tmp / f"replica{i}",
                    self.store.url,
                    self.crm,
                    self.graph,
                    self.args.crm_concurrency,
                    held,
                    cprofile if i == 0 else None,
                )
            )
            # One at a time: the first applies the migrations.
            self.replicas[-1].wait_ready()

    @property
    def urls(self) -> list[str]:
        return [r.base_url for r in self.replicas]

    def cpu(self) -> float:
        return sum(r.cpu() for r in self.replicas)

    async def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.crm.stop()
        self.graph.stop()
        await self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


async def wait_until(what: str, predicate: Any, timeout: float, interval: float = 0.1) -> float:
    """Seconds until `await predicate()` is true; RuntimeError after `timeout`."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass(frozen=True)
class ChatAcks:
    """The WhatsApp citizens' acknowledgements, as the provider accepted them."""

    citizens: int  # WhatsApp webhooks acknowledged (2xx), each from a citizen of its own
    once: int  # citizens acknowledged exactly once, with their report's ticket
    missing: int  # citizens the provider got no acknowledgement for
    twice: int  # citizens acknowledged more than once
    wrong: int  # acknowledgements without the citizen's ticket, or to no citizen of the run
    refused: int  # sends the provider refused (token, version, number, payload, window)
    p50: float  # webhook due → first acknowledgement accepted (inf: none)
    p99: float


def chat_acks(
    sent: Sequence[Sent],
    acks: Sequence[tuple[str, str, str, float]],
    tickets: Mapping[str, str],
    refused: int,
) -> ChatAcks:
    """`acks` as the provider accepted them ((to, type, text, at)); `tickets` the WhatsApp
    reports' tickets by wamid."""
    citizens = {s.citizen: s for s in sent if s.citizen and s.status == 200}
    got: dict[str, list[tuple[str, float]]] = {}
    wrong = 0
    for to, _, text, at in acks:
        if to in citizens:
            got.setdefault(to, []).append((text, at))
        else:
            wrong += 1
    once, lags = 0, []
    for citizen, s in citizens.items():
        answers = got.get(citizen, [])
        ticket = tickets.get(s.external_id or "")
        right = [text for text, _ in answers if ticket and ticket in text]
        wrong += len(answers) - len(right)
        once += len(answers) == len(right) == 1
        lags.append(min(at for _, at in answers) - s.due if answers else math.inf)
    return ChatAcks(
        citizens=len(citizens),
        once=once,
        missing=sum(1 for c in citizens if c not in got),
        twice=sum(1 for answers in got.values() if len(answers) > 1),
        wrong=wrong,
        refused=refused,
        p50=percentile(lags, 50),
        p99=percentile(lags, 99),
    )


@dataclass
class SteadyResult:
    label: str
    rate: float
    seconds: float
    sent: int
    acknowledged: int
    errors: Counter[int]
    acked_rate: float
    delivered_in_window_rate: float
    delivered: int
    backlog_end: int
    backlog_max: int
    sustained: bool
    p50: float
    p95: float
    p99: float
    ack_p99: float
    acks_recorded: int
    acks_sent: int
    cpu_s: float
    server: ServerUse  # PostgreSQL's, for this database; nothing on SQLite
    drained: bool
    missing_at_crm: int
    duplicates: int  # service requests beyond one per report
    chat: ChatAcks
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu_ms_per_report(self) -> float:
        return self.cpu_s / self.delivered * 1000 if self.delivered else math.nan

    @property
    def server_ms_per_report(self) -> float:
        return self.server.active_s / self.delivered * 1000 if self.delivered else math.nan


def backlog_bound(rate: float) -> int:
    """What "not growing" allows at the end of the sending window: one second of work in
    flight (a report takes ~0.1 s through the stages when nothing waits)."""
    return max(50, int(rate))


async def steady_run(
    sc: Scenario, rate: float, seconds: float, connections: int, profile: Profiler | None
) -> SteadyResult:
    """Everything on; `rate` webhooks/s for `seconds`, then a bounded drain."""
    n = int(rate * seconds)
    webhooks = webhooks_for(sc.run + f"r{int(rate)}", n, sc.args.chat_share)
    await asyncio.to_thread(sc.graph.wrote, [w.citizen for w in webhooks if w.citizen])
    samples: list[tuple[float, int]] = []
    sampling = True

    async def sample() -> None:
        t0 = time.monotonic()
        while sampling:
            counts = await sc.store.counts()
            samples.append((time.monotonic() - t0, counts.backlog))
            await asyncio.sleep(0.5)

    cpu0, server0 = sc.cpu(), await sc.store.server_use()
    sampler = asyncio.create_task(sample())
    if profile is not None:
        profile.start(sc.replicas[0].pid, f"{sc.backend}-steady-{rate:.0f}")
    window_start = time.time()
    sent = await send_open_loop(sc.urls, webhooks, rate, connections)
    window_end = window_start + seconds
    end_counts = await sc.store.counts()
    tickets = {s.ticket for s in sent if s.ticket}
    chatted = [s for s in sent if s.citizen and s.status == 200]
    expected = len(tickets) + len(chatted)

    async def all_delivered() -> bool:
        return await asyncio.to_thread(sc.crm.created) >= expected

    drained = True
    try:
        await wait_until("drain", all_delivered, timeout=max(30.0, seconds * 2))

        async def all_acked() -> bool:
            recorded = (await sc.store.counts()).acks_recorded >= expected
            return recorded and await asyncio.to_thread(sc.graph.sent) >= len(chatted)

        await wait_until("acks", all_acked, timeout=max(30.0, seconds * 2))
    except RuntimeError:
        drained = False
    cpu_s = sc.cpu() - cpu0
    sampling = False
    await sampler
    if profile is not None:
        profile.finish()
    final = await sc.store.counts()
    arrivals = await asyncio.to_thread(sc.crm.arrivals)
    chat_tickets = await sc.store.chat_tickets()
    chat = chat_acks(
        sent,
        await asyncio.to_thread(sc.graph.acks),
        chat_tickets,
        await asyncio.to_thread(sc.graph.refused),
    )
    # Stopped, kanal's backends end and PostgreSQL has their figures at once.
    for replica in sc.replicas:
        replica.stop()
    server = await sc.store.server_use() - server0
    due_by_ticket = {s.ticket: s.due for s in sent if s.ticket}
    # A WhatsApp report's ticket is kanal's, found in the store by its message; one not made
    # yet keeps a key of its own, so that it counts as missing.
    due_by_ticket |= {
        chat_tickets.get(s.external_id or "", f"none:{s.external_id}"): s.due for s in chatted
    }
    accepted_at = {ticket: at for ticket, _, at in arrivals}
    # A report still not at the CRM when the drain gave up counts as infinitely late: the
    # percentiles then say "more than the run lasted" instead of leaving it out.
    lags = [
        accepted_at[t] - due if t in accepted_at else math.inf for t, due in due_by_ticket.items()
    ]
    acked = [s for s in sent if s.status == 200]
    last_ack = max((s.answered for s in acked), default=window_end)
    in_window = sum(1 for at in accepted_at.values() if at <= window_end)
    backlog_max = max((b for _, b in samples), default=0)
    return SteadyResult(
        label=f"{sc.backend}, {sc.n_replicas} replica{'s' if sc.n_replicas > 1 else ''}",
        rate=rate,
        seconds=seconds,
        sent=n,
        acknowledged=len(acked),
        errors=Counter(s.status for s in sent if s.status != 200),
        acked_rate=len(acked) / max(last_ack - window_start, seconds),
        delivered_in_window_rate=in_window / seconds,
        delivered=len(accepted_at),
        backlog_end=end_counts.backlog,
        backlog_max=backlog_max,
        sustained=end_counts.backlog <= backlog_bound(rate) and len(acked) == n,
        p50=percentile(lags, 50),
        p95=percentile(lags, 95),
        p99=percentile(lags, 99),
        ack_p99=percentile([s.answered - s.due for s in acked], 99),
        acks_recorded=final.acks_recorded,
        acks_sent=final.acks_sent,
        cpu_s=cpu_s,
        server=server,
        drained=drained,
        missing_at_crm=len(set(due_by_ticket) - set(accepted_at)),
        duplicates=len(arrivals) - len(accepted_at),
        chat=chat,
        samples=samples,
    )


@dataclass
class StageResult:
    name: str
    seconds: float
    cpu_s: float
    reports: int
    server: ServerUse = ServerUse(0.0, 0)  # PostgreSQL's

    @property
    def ms_per_report(self) -> float:
        return self.cpu_s / self.reports * 1000 if self.reports else math.nan

    @property
    def rate(self) -> float:
        return self.reports / self.seconds if self.seconds else math.nan


@dataclass
class SplitResult:
    label: str
    idle_cpu_per_s: float
    stages: list[StageResult]
    capacity: float | None = None  # backlog → CRM, all stages released at once, reports/s


async def intake(sc: Scenario, n: int, rate: float, connections: int, geo: bool = True) -> int:
    """`n` webhooks (the chat share of them WhatsApp locations when `geo`), each answered
    2xx; returns how many WhatsApp citizens are to be acknowledged through the provider."""
    webhooks = webhooks_for(sc.run + ("g" if geo else "n"), n, sc.args.chat_share, geo=geo)
    citizens = [w.citizen for w in webhooks if w.citizen]
    await asyncio.to_thread(sc.graph.wrote, citizens)
    sent = await send_open_loop(sc.urls, webhooks, rate, connections)
    ok = sum(1 for s in sent if s.status == 200)
    if ok != n:
        raise RuntimeError(f"intake: {n - ok} of {n} webhooks not acknowledged")
    return len(citizens)


async def idle_rate(sc: Scenario, seconds: float = 2.0) -> float:
    cpu0 = sc.cpu()
    await asyncio.sleep(seconds)
    return (sc.cpu() - cpu0) / seconds


async def server_use_since(sc: Scenario, before: ServerUse) -> ServerUse:
    """On PostgreSQL, after the backends' idle flush (kanal keeps running between phases)."""
    if sc.backend == "sqlite":
        return ServerUse(0.0, 0)
    await asyncio.sleep(PG_STATS_FLUSH_S)
    return await sc.store.server_use() - before


async def stage_split(
    sc: Scenario, n: int, rate: float, connections: int, profile: Profiler | None = None
) -> SplitResult:
    """Intake with every later stage held, then pipeline, dispatch and notify released one
    after the other, the process's CPU read around each phase."""
    sc.start(held=STAGES)
    idle = await idle_rate(sc)
    stages = []
    cpu0, t0, server0 = sc.cpu(), time.monotonic(), await sc.store.server_use()
    if profile is not None:
        profile.start(sc.replicas[0].pid, f"{sc.backend}-intake")
    chats = await intake(sc, n, rate, connections)
    intake_s = time.monotonic() - t0
    if profile is not None:
        profile.finish()
    cpu_s = sc.cpu() - cpu0
    server = await server_use_since(sc, server0)
    stages.append(
        StageResult("intake (webhook → stored, acknowledged)", intake_s, cpu_s, n, server)
    )

    async def progress() -> tuple[int, int, int, int]:
        """Reports made, posted to the CRM, acknowledgements recorded, sent through the
        provider."""
        c = await sc.store.counts()
        posted = await asyncio.to_thread(sc.crm.created)
        return c.reports, posted, c.acks_recorded, await asyncio.to_thread(sc.graph.sent)

    async def normalized() -> bool:
        c = await sc.store.counts()
        return c.raw_waiting == 0 and c.reports >= n

    async def delivered() -> bool:
        return await asyncio.to_thread(sc.crm.created) >= n

    async def acked() -> bool:
        if (await sc.store.counts()).acks_recorded < n:
            return False
        return await asyncio.to_thread(sc.graph.sent) >= chats

    # A stage that ran before its release would be measured in the wrong phase: each phase
    # checks that the stages still held did nothing.
    expected: tuple[int, ...] = (0, 0, 0, 0)
    for index, (name, done) in enumerate(
        (
            ("pipeline (normalize, route)", normalized),
            ("dispatch (post to the CRM)", delivered),
            ("notify (WhatsApp acks sent, JAKI's recorded)", acked),
        )
    ):
        if (seen := await progress()) != expected:
            raise RuntimeError(
                f"held stages ran: (reports, posted, acks, sent) {seen} != {expected}"
            )
        cpu0, server0 = sc.cpu(), await sc.store.server_use()
        if profile is not None:
            profile.start(sc.replicas[0].pid, f"{sc.backend}-{name.split()[0]}")
        for replica in sc.replicas:
            replica.release_next()
        seconds = await wait_until(name, done, timeout=max(60.0, n / 10), interval=0.05)
        if profile is not None:
            profile.finish()
        cpu_s = sc.cpu() - cpu0
        stages.append(StageResult(name, seconds, cpu_s, n, await server_use_since(sc, server0)))
        expected = tuple(n if i <= index else 0 for i in range(3))
        expected += (chats if index == 2 else 0,)
    return SplitResult(f"{sc.backend}, {sc.n_replicas} replica", idle, stages)


async def backlog_capacity(sc: Scenario, n: int, rate: float, connections: int) -> float:
    """`n` reports acknowledged with every later stage held, then all released at once:
    reports/s from the release to the last one accepted by the CRM."""
    sc.start(held=STAGES)
    await intake(sc, n, rate, connections)
    released = time.time()
    for replica in sc.replicas:
        replica.release_all()

    async def delivered() -> bool:
        return await asyncio.to_thread(sc.crm.created) >= n

    await wait_until("capacity", delivered, timeout=max(60.0, n / 20), interval=0.05)
    last = max(at for _, _, at in await asyncio.to_thread(sc.crm.arrivals))
    return n / (last - released)


async def non_geo_rate(
    sc: Scenario, n: int, rate: float, connections: int, profile: Profiler | None = None
) -> StageResult:
    """`n` JAKI webhooks without a location stored with the pipeline held, then the pipeline
    released: reports/s normalized by one process, and its CPU per report."""
    sc.start(held=STAGES)
    await intake(sc, n, rate, connections, geo=False)
    if profile is not None:
        profile.start(sc.replicas[0].pid, f"{sc.backend}-non-geo")
    cpu0, t0 = sc.cpu(), time.monotonic()
    sc.replicas[0].release_next()

    async def normalized() -> bool:
        c = await sc.store.counts()
        return c.raw_waiting == 0 and c.reports >= n

    await wait_until("non-geo normalization", normalized, timeout=max(60.0, n / 20), interval=0.05)
    result = StageResult("non-geo backlog normalized", time.monotonic() - t0, sc.cpu() - cpu0, n)
    if profile is not None:
        profile.finish()
    return result


# --------------------------------------------------------------------------- profile


class Profiler:
    """py-spy sampling one kanal process while a phase runs, one raw profile per name under
    bench/out (e2e-profile-<name>.txt)."""

    def __init__(self, out: Path, py_spy: str | None):
        self.out = out
        self.py_spy = py_spy
        self.proc: subprocess.Popen[bytes] | None = None
        self.raw = out / "e2e-profile.txt"
        self.recorded: list[str] = []

    def start(self, pid: int, name: str) -> None:
        if self.py_spy is None:
            return
        self.raw = self.out / f"e2e-profile-{name}.txt"
        self.raw.unlink(missing_ok=True)
        self.recorded.append(name)
        self.proc = subprocess.Popen(
            [
                self.py_spy,
                "record",
                "--pid",
                str(pid),
                "--nonblocking",
                # Only samples holding the GIL: the Python CPU of the process. Waits (epoll,
                # fsync in a commit) would otherwise look like work; SQLite's own C work,
                # done with the GIL released, is then left out too.
                "--gil",
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(self.raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> None:
        """Stops sampling (py-spy writes its file on SIGINT)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=120)
        if self.proc.returncode != 0:
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        self.proc = None

    def report_of(self, name: str, top: int = 25) -> list[str]:
        self.raw = self.out / f"e2e-profile-{name}.txt"
        return self.report(top)

    def report(self, top: int = 25) -> list[str]:
        """The functions by own time (innermost in a sample), then kanal's own functions by
        time inside them (callees included): where in kanal the CPU goes. Lines of one
        function are counted together."""
        if not self.raw.exists():
            return ["(no profile: py-spy missing or could not attach)"]
        own: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        total = 0
        for line in self.raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            frames = [function_of(frame) for frame in stack.split(";")]
            own[frames[-1]] += int(samples)
            for frame in set(frames):
                if frame.split("(", 1)[-1].startswith(KANAL_PACKAGES) and "cli/" not in frame:
                    inside[frame] += int(samples)
            total += int(samples)
        lines = [f"{'own %':>6}  function (file)   [{total} samples, {self.raw}]"]
        lines += [f"{n / total:>6.1%}  {frame}" for frame, n in own.most_common(top)]
        lines.append(f"{'in %':>6}  kanal's functions, callees included")
        lines += [f"{n / total:>6.1%}  {frame}" for frame, n in inside.most_common(top)]
        return lines


# Where kanal's code is (its entry points, gateway/cli, hold every sample: left out).
KANAL_PACKAGES = ("gateway/", "connectors/", "normalizers/", "crm_client/")


def function_of(frame: str) -> str:
    """`step (gateway/crm/dispatcher.py:217)` → `step (gateway/crm/dispatcher.py)`."""
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if name else frame


def find_py_spy() -> str | None:
    found = shutil.which("py-spy")
    local = OUT / "tools" / "bin" / "py-spy"
    if found or local.exists():
        return found or str(local)
    print("installing py-spy under bench/out/tools for the profile…", file=sys.stderr)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(OUT / "tools"), "py-spy"],
        capture_output=True,
    )
    return str(local) if installed.returncode == 0 and local.exists() else None


def cprofile_report(path: Path) -> list[str]:
    import io
    import pstats

    buffer = io.StringIO()
    pstats.Stats(str(path), stream=buffer).sort_stats("tottime").print_stats(25)
    return buffer.getvalue().splitlines()


# --------------------------------------------------------------------------- the run


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else "PASS" if ok else "MISS"


LEGEND = """\
  to CRM/s   accepted by the CRM within the sending window
  backlog    raw messages not normalized + reports ready or posting, at the window's end;
             steady: at most max(50, 1 s of the rate), and every webhook acknowledged
  ack p99    from each webhook's due time to its 2xx (a sender or intake falling behind;
             WhatsApp: the 2xx of the location, sent once the text had its 2xx)
  p50…p99    from each webhook's due time to the CRM's acceptance (">drain": some never
             got there before the bounded drain ended)
  acks       acknowledgements recorded for the citizens (JAKI: the ticket in the response)
  WA         WhatsApp citizens (a text, then its location) whose deliveries were
             acknowledged, one report each
  WA acks    of them, acknowledged exactly once through the provider, with their ticket
  ack→ p50   from each WhatsApp citizen's due time (the text) to the acknowledgement the
  ack→ p99   provider accepted (">drain": some never got one)
  CPU        utime+stime of the kanal process(es), all threads (/proc), from the first
             webhook to the last report delivered, per report delivered
  PG         PostgreSQL's time executing statements for the database (pg_stat_database
             active_time, wall time: not in CPU), per report; sessions: connections opened"""


def seconds(value: float) -> str:
    """A latency for the tables; ">drain" when it is a report the CRM (or a citizen's
    acknowledgement the provider) had not got when the bounded drain ended."""
    if math.isnan(value):  # nothing to measure (no WhatsApp reports with --chat-share 0)
        return "-"
    return ">drain" if math.isinf(value) else f"{value:.2f}"


def print_steady(results: Sequence[SteadyResult], legend: bool = True) -> None:
    print(
        f"\n{'store, replicas':<22}{'asked/s':>8}{'acked/s':>8}{'to CRM/s':>9}"
        f"{'backlog':>9}{'steady':>7}{'ack p99':>8}{'p50 s':>7}{'p95 s':>7}{'p99 s':>7}"
        f"{'acks':>7}{'WA':>6}{'WA acks':>8}{'ack→ p50':>9}{'ack→ p99':>9}"
        f"{'CPU ms/rep':>11}{'PG ms/rep':>10}{'sessions':>9}{'non-2xx':>8}"
    )
    for r in results:
        errors = sum(r.errors.values())
        on_pg = r.label.startswith("postgresql")
        pg = f"{r.server_ms_per_report:.2f}" if on_pg else "-"
        sessions = str(r.server.sessions) if on_pg else "-"
        print(
            f"{r.label:<22}{r.rate:>8.0f}{r.acked_rate:>8.0f}{r.delivered_in_window_rate:>9.0f}"
            f"{r.backlog_end:>9}{'yes' if r.sustained else 'NO':>7}{seconds(r.ack_p99):>8}"
            f"{seconds(r.p50):>7}"
            f"{seconds(r.p95):>7}{seconds(r.p99):>7}{r.acks_recorded:>7}"
            f"{r.chat.citizens:>6}{r.chat.once:>8}{seconds(r.chat.p50):>9}{seconds(r.chat.p99):>9}"
            f"{r.cpu_ms_per_report:>11.2f}{pg:>10}{sessions:>9}{errors:>8}"
        )
        if not r.drained or r.missing_at_crm:
            print(f"  ! not drained: {r.missing_at_crm} acknowledged reports not at the CRM")
        c = r.chat
        if c.missing or c.twice or c.wrong or c.refused:
            print(
                f"  ! WhatsApp acks: {c.missing} citizens got none, {c.twice} more than one, "
                f"{c.wrong} without the citizen's ticket, {c.refused} sends refused"
            )
    if legend:
        print(LEGEND)


def print_split(split: SplitResult, steady: SteadyResult | None) -> None:
    print(
        f"\nCPU per stage, {split.label} ({split.stages[0].reports} reports; idle "
        f"{split.idle_cpu_per_s * 1000:.0f} ms CPU/s, not subtracted)"
    )
    pg = split.label.startswith("postgresql")
    print(
        f"{'stage':<44}{'ms CPU/report':>14}{'reports/s':>11}{'seconds':>9}"
        + (f"{'PG ms/report':>14}{'sessions':>9}" if pg else "")
    )
    for s in split.stages:
        print(
            f"{s.name:<44}{s.ms_per_report:>14.2f}{s.rate:>11.0f}{s.seconds:>9.1f}"
            + (f"{s.server.active_s / s.reports * 1000:>14.2f}{s.server.sessions:>9}" if pg else "")
        )
    reports = split.stages[0].reports
    total = sum(s.cpu_s for s in split.stages) / reports * 1000
    server_total = sum(s.server.active_s for s in split.stages) / reports * 1000
    print(
        f"{'all stages (sum)':<44}{total:>14.2f}"
        + (f"{'':>11}{'':>9}{server_total:>14.2f}" if pg else "")
    )
    if steady is not None:
        label = f"steady run at {steady.rate:.0f}/s, for comparison"
        print(f"{label:<44}{steady.cpu_ms_per_report:>14.2f}")
    if split.capacity is not None:
        label = "backlog capacity, all stages released at once"
        print(f"{label:<44}{'':>14}{split.capacity:>11.0f}")


async def steady_job(
    sc: Scenario,
    *,
    rate: float,
    args: argparse.Namespace,
    profile: Profiler | None,
    cprofile: Path | None,
) -> SteadyResult:
    sc.start(cprofile=cprofile)
    return await steady_run(sc, rate, args.seconds, args.connections, profile)


async def main_async(args: argparse.Namespace) -> int:
    rates = [float(r) for r in str(args.rate).split(",")]
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    replica_counts = [int(r) for r in str(args.replicas).split(",")]
    if "postgresql" in backends and not pg_reachable():
        print("bench_e2e: PostgreSQL on 127.0.0.1:5432 is not reachable", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    profiler = Profiler(OUT, find_py_spy()) if args.profile else None
    steady: list[SteadyResult] = []
    splits: list[SplitResult] = []
    capacities: dict[tuple[str, int], float] = {}
    non_geo: dict[str, StageResult] = {}
    cprofiles: list[Path] = []

    async def run(backend: str, replicas: int, job: Any) -> Any:
        sc = Scenario(args, backend, replicas)
        try:
            return await job(sc)
        finally:
            await sc.close()

    fastest = max(rates)
    job: Any
    for backend in backends:
        for replicas in replica_counts if backend == "postgresql" else [1]:
            for rate in rates:
                # The first rate of each store, one process: profiled when asked.
                first = replicas == 1 and rate == rates[0]
                profile = profiler if profiler is not None and first else None
                cprofile = None
                if profile is not None and profile.py_spy is None:
                    cprofile = OUT / f"e2e-profile-{backend}.cprof"
                    cprofiles.append(cprofile)
                    profile = None
                job = functools.partial(
                    steady_job, rate=rate, args=args, profile=profile, cprofile=cprofile
                )
                steady.append(await run(backend, replicas, job))
                print_steady([steady[-1]], legend=False)
            n = args.split_reports
            if not n:
                continue
            job = functools.partial(
                backlog_capacity, n=n, rate=fastest, connections=args.connections
            )
            capacities[(backend, replicas)] = await run(backend, replicas, job)
            print(
                f"backlog capacity, {backend} × {replicas}: {capacities[(backend, replicas)]:.0f}/s"
            )
            if replicas != 1:
                continue
            job = functools.partial(
                stage_split,
                n=n,
                rate=fastest,
                connections=args.connections,
                profile=profiler if profiler is not None and profiler.py_spy else None,
            )
            splits.append(await run(backend, 1, job))
            splits[-1].capacity = capacities[(backend, 1)]
            if args.non_geo_reports:
                job = functools.partial(
                    non_geo_rate,
                    n=args.non_geo_reports,
                    rate=fastest,
                    connections=args.connections,
                    profile=profiler if profiler is not None and profiler.py_spy else None,
                )
                non_geo[backend] = await run(backend, 1, job)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print("\n" + "=" * 100)
    print(
        f"machine: {os.cpu_count()} CPUs, load average now {load} (rates and latencies depend "
        "on what else runs; CPU per report much less)"
    )
    print(
        f"The whole way: signed geo-tagged webhooks, {args.chat_share:.0%} of them WhatsApp "
        f"locations (acknowledged through a fake Graph API), the rest JAKI → kanal serve → "
        f"Open311 CRM answering after {args.crm_latency_ms:g} ms "
        f"(crm.concurrency = {args.crm_concurrency}), {args.seconds:g} s per rate, "
        f"{args.connections} connections per replica"
    )
    print_steady(steady)
    for split in splits:
        same = [r for r in steady if r.label == split.label]
        print_split(split, same[-1] if same else None)
    for backend, r in non_geo.items():
        print(
            f"\nnon-geo backlog normalization, {backend}, 1 process: {r.rate:.0f} reports/s "
            f"({r.reports} reports, {r.ms_per_report:.2f} ms CPU/report)"
        )

    # Targets.
    print("\ntargets")
    sqlite_runs = [r for r in steady if r.label.startswith("sqlite")]
    at_target = [r for r in sqlite_runs if r.rate >= TARGET_RATE]
    best = max((r.rate for r in sqlite_runs if r.sustained), default=0.0)
    rate_ok = bool(at_target) and all(r.sustained for r in at_target) if at_target else None
    print(
        f"  {verdict(rate_ok)} SQLite, 1 process sustains {TARGET_RATE:.0f}/s end to end "
        + (
            f"(highest rate sustained here: {best:.0f}/s)"
            if best
            else "(none of the rates asked was)"
        )
    )
    p99_ok = all(r.p99 < TARGET_P99_S for r in at_target) if at_target else None
    p99s = ", ".join(f"{seconds(r.p99)} s at {r.rate:.0f}/s" for r in sqlite_runs)
    print(
        f"  {verdict(p99_ok)} webhook → CRM p99 < {TARGET_P99_S:g} s at {TARGET_RATE:.0f}/s "
        f"({p99s})"
    )
    cpu = [r.cpu_ms_per_report for r in sqlite_runs]
    cpu_ok = all(c <= TARGET_CPU_MS for c in cpu) if cpu else None
    cpus = ", ".join(f"{r.cpu_ms_per_report:.2f} ms at {r.rate:.0f}/s" for r in sqlite_runs)
    print(f"  {verdict(cpu_ok)} ≤ {TARGET_CPU_MS:g} ms CPU per report, all stages ({cpus})")
    one, two = capacities.get(("postgresql", 1)), capacities.get(("postgresql", 2))
    ratio = two / one if one and two else None
    print(
        f"  {verdict(None if ratio is None else ratio >= TARGET_REPLICA_RATIO)} PostgreSQL two "
        f"replicas ≥ {TARGET_REPLICA_RATIO:g}× one (backlog capacity: "
        + (f"{one:.0f}/s and {two:.0f}/s, {ratio:.2f}×)" if ratio else "not measured)")
    )
    chat_runs = [r for r in steady if r.chat.citizens]
    chat_ok = (
        all(r.chat.once == r.chat.citizens and not r.chat.wrong for r in chat_runs)
        if chat_runs
        else None
    )
    chat_figures = ", ".join(
        f"{r.chat.once}/{r.chat.citizens}, p99 {seconds(r.chat.p99)} s at {r.rate:.0f}/s "
        f"({r.label})"
        for r in chat_runs
    )
    print(
        f"  {verdict(chat_ok)} each WhatsApp citizen acknowledged exactly once through the "
        f"provider, with the ticket ({chat_figures or 'no WhatsApp reports'})"
    )
    ng_rates = {b: r.rate for b, r in non_geo.items()}
    ng_ok = all(v >= TARGET_NON_GEO_RATE for v in ng_rates.values()) if ng_rates else None
    print(
        f"  {verdict(ng_ok)} non-geo backlog normalized ≥ {TARGET_NON_GEO_RATE:.0f}/s per process ("
        + ", ".join(f"{b}: {v:.0f}/s" for b, v in ng_rates.items())
        + ")"
    )
    for name in profiler.recorded if profiler is not None else []:
        steady_profile = "-steady-" in name
        what = "steady run" if steady_profile else "stage alone (split)"
        print(f"\nprofile {name}: {what}, py-spy --gil")
        print("\n".join(profiler.report_of(name, top=25 if steady_profile else 12)))  # type: ignore[union-attr]
    for path in cprofiles:
        if path.exists():
            print(f"\nprofile of a steady run (cProfile, main thread, by own time; {path})")
            print("\n".join(cprofile_report(path)))
    # Slow is a figure (MISS); a report the CRM got twice, or a citizen acknowledged twice
    # or with another's ticket, is kanal broken.
    twice = sum(r.duplicates for r in steady)
    if twice:
        print(f"\nERROR: {twice} reports reached the CRM more than once", file=sys.stderr)
    acked_twice = sum(r.chat.twice + r.chat.wrong for r in steady)
    if acked_twice:
        print(
            f"\nERROR: {acked_twice} WhatsApp acknowledgements twice or with a wrong ticket",
            file=sys.stderr,
        )
    return 1 if twice or acked_twice else 0


def share(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value}: not between 0 and 1")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", default="200,500", help="webhooks/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="sending window per rate")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--replicas", default="1,2", help="PostgreSQL replica counts")
    parser.add_argument("--connections", type=int, default=32, help="per replica")
    parser.add_argument(
        "--chat-share",
        type=share,
        default=0.25,
        help="share of the reports sent as WhatsApp locations (0 to 1), the rest as JAKI",
    )
    parser.add_argument("--crm-latency-ms", type=float, default=20.0)
    parser.add_argument("--crm-concurrency", type=int, default=16)
    parser.add_argument(
        "--split-reports", type=int, default=2000, help="reports in the stage split (0: skip)"
    )
    parser.add_argument("--non-geo-reports", type=int, default=2000, help="0: skip")
    parser.add_argument("--profile", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
