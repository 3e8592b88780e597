"""The whole way of a report, end to end: signed geo-tagged JAKI webhooks at a steady rate
into `kanal serve` with everything on, to a local Open311 CRM answering after 20 ms.

    .venv/bin/python bench/bench_e2e.py [--rate 200,500] [--seconds 15]
        [--backend sqlite|postgresql|all] [--replicas 1,2] [--profile]

Per store (SQLite; PostgreSQL on 127.0.0.1:5432 with one and two replicas, each run on a
throw-away database), it prints:

- steady runs, one per rate asked: webhooks sent open loop (each due at i/rate s on the
  clock, whatever the earlier ones did), the rates acknowledged and delivered, whether the
  backlog grew (sampled from the store), webhook→CRM-accepted latency measured from the
  time each webhook was due, acknowledgements recorded for the citizens, and the CPU
  seconds per report of the kanal process(es) (utime + stime of all threads, /proc);
- the cost per stage: the same webhooks on a fresh store with the pipeline, the CRM
  dispatcher and the notifier held (bench/e2e_serve.py), released one after the other, the
  process's CPU read during each phase (intake, pipeline, dispatch, notify);
- the backlog capacity: that backlog released all at once, reports/s to the CRM (the
  ratio two replicas / one on PostgreSQL);
- the normalization rate of a backlog of non-geo reports;
- the targets, each PASS or MISS.

JAKI answers the citizen in the webhook's response (the ticket): the notifier records that
acknowledgement ("sent" through "webhook_response") and calls no provider, so the notify
stage here is that recording; no fake provider is needed for it.

The CRM (bench/e2e_crm.py) runs in a process of its own so that its CPU is not counted
with kanal's. --profile samples the first steady run's kanal with py-spy (installed under
bench/out/tools when missing; cProfile through bench/e2e_serve.py if it cannot attach),
prints the top 25 functions by own time and keeps the full profile under bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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
from collections.abc import Sequence
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


def jaki_webhook(run: str, n: int, *, geo: bool = True) -> tuple[bytes, dict[str, str]]:
    """One signed JAKI webhook (body, headers), unique text and reporter per `n`."""
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
    return raw, {
        "X-Kanal-Signature": kanal_signature(SECRET, raw),
        "Content-Type": "application/json",
    }


@dataclass
class Sent:
    due: float  # Unix time the webhook was due to leave (i / rate after the start)
    answered: float
    status: int
    ticket: str | None


async def send_open_loop(
    urls: Sequence[str],
    webhooks: Sequence[tuple[bytes, dict[str, str]]],
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
            body, headers = webhooks[i]
            due = start_wall + i / rate
            status, ticket = -1, None
            try:
                async with session.post(
                    f"{urls[i % len(urls)]}/webhooks/jaki", data=body, headers=headers
                ) as response:
                    status = response.status
                    if status == 200:
                        ticket = (await response.json())["ticket"]
                    else:
                        await response.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            results.append(Sent(due, time.time(), status, ticket))

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


class FakeCrm:
    """bench/e2e_crm.py as a child process."""

    def __init__(self, latency_ms: float):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "e2e_crm.py"), "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        if not self.endpoint.startswith("http://"):
            raise RuntimeError("the fake CRM did not start")
        self.root = self.endpoint.split("/open311")[0]

    def created(self) -> int:
        return int(get_json(f"{self.root}/bench/count")["created"])

    def arrivals(self) -> list[tuple[str, str, float]]:
        return [(str(t), str(k), float(at)) for t, k, at in get_json(f"{self.root}/bench/arrivals")]

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

    async def counts(self) -> Counts:
        if self.backend == "sqlite":
            return await asyncio.to_thread(self._sqlite_counts)
        if self._pg is None:
            import asyncpg

            self._pg = await asyncpg.connect(self.url)
        row = await self._pg.fetchrow(COUNTS_SQL)
        return Counts(*row)

    async def server_cpu(self) -> dict[int, float]:
        """PostgreSQL: CPU seconds so far of each server process serving this database (its
        backends run on this machine too, and their work is part of a report's cost).
        SQLite does its work inside kanal's process: nothing to add."""
        if self.backend == "sqlite":
            return {}
        await self.counts()  # connects
        rows = await self._pg.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        found = {}
        for (pid,) in rows:
            try:
                found[pid] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
        return found

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


def server_cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """Backends that ended in between are left out (kanal keeps its pool connections)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class Scenario:
    """A fresh store, a fake CRM and `replicas` kanal processes, stopped and removed at the
    end."""

    def __init__(self, args: argparse.Namespace, backend: str, replicas: int):
        self.args = args
        self.backend = backend
        self.n_replicas = replicas
        self.tmp = Path(tempfile.mkdtemp(prefix="kanal-e2e-"))
        self.store = Store(backend, self.tmp)
        self.crm = FakeCrm(args.crm_latency_ms)
        self.replicas: list[Replica] = []
        self.run = uuid.uuid4().hex[:8]

    def start(self, held: Sequence[str] = (), cprofile: Path | None = None) -> None:
        for i in range(self.n_replicas):
            self.replicas.append(
                Replica(
                    self.tmp / f"replica{i}",
                    self.store.url,
                    self.crm,
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
    server_cpu_s: float  # PostgreSQL's backends for this database; 0 on SQLite
    drained: bool
    missing_at_crm: int
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu_ms_per_report(self) -> float:
        return self.cpu_s / self.delivered * 1000 if self.delivered else math.nan

    @property
    def server_cpu_ms_per_report(self) -> float:
        return self.server_cpu_s / self.delivered * 1000 if self.delivered else math.nan


def backlog_bound(rate: float) -> int:
    """What "not growing" allows at the end of the sending window: one second of work in
    flight (a report takes ~0.1 s through the stages when nothing waits)."""
    return max(50, int(rate))


async def steady_run(
    sc: Scenario, rate: float, seconds: float, connections: int, profile: Profiler | None
) -> SteadyResult:
    """Everything on; `rate` webhooks/s for `seconds`, then a bounded drain."""
    n = int(rate * seconds)
    webhooks = [jaki_webhook(sc.run + f"r{int(rate)}", i) for i in range(n)]
    samples: list[tuple[float, int]] = []
    sampling = True

    async def sample() -> None:
        t0 = time.monotonic()
        while sampling:
            counts = await sc.store.counts()
            samples.append((time.monotonic() - t0, counts.backlog))
            await asyncio.sleep(0.5)

    cpu0, server0 = sc.cpu(), await sc.store.server_cpu()
    sampler = asyncio.create_task(sample())
    if profile is not None:
        profile.start(sc.replicas[0].pid, seconds)
    window_start = time.time()
    sent = await send_open_loop(sc.urls, webhooks, rate, connections)
    window_end = window_start + seconds
    end_counts = await sc.store.counts()
    tickets = {s.ticket for s in sent if s.ticket}

    async def all_delivered() -> bool:
        return await asyncio.to_thread(sc.crm.created) >= len(tickets)

    drained = True
    try:
        await wait_until("drain", all_delivered, timeout=max(30.0, seconds * 2))

        async def all_acked() -> bool:
            return (await sc.store.counts()).acks_recorded >= len(tickets)

        await wait_until("acks", all_acked, timeout=30.0)
    except RuntimeError:
        drained = False
    cpu_s = sc.cpu() - cpu0
    server_cpu_s = server_cpu_since(server0, await sc.store.server_cpu())
    sampling = False
    await sampler
    if profile is not None:
        profile.finish()
    final = await sc.store.counts()
    arrivals = await asyncio.to_thread(sc.crm.arrivals)
    due_by_ticket = {s.ticket: s.due for s in sent if s.ticket}
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
        server_cpu_s=server_cpu_s,
        drained=drained,
        missing_at_crm=len(tickets - set(accepted_at)),
        samples=samples,
    )


@dataclass
class StageResult:
    name: str
    seconds: float
    cpu_s: float
    reports: int
    server_cpu_s: float = 0.0  # PostgreSQL's backends

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
    webhooks = [jaki_webhook(sc.run + ("g" if geo else "n"), i, geo=geo) for i in range(n)]
    sent = await send_open_loop(sc.urls, webhooks, rate, connections)
    ok = sum(1 for s in sent if s.status == 200)
    if ok != n:
        raise RuntimeError(f"intake: {n - ok} of {n} webhooks not acknowledged")
    return ok


async def idle_rate(sc: Scenario, seconds: float = 2.0) -> float:
    cpu0 = sc.cpu()
    await asyncio.sleep(seconds)
    return (sc.cpu() - cpu0) / seconds


async def stage_split(sc: Scenario, n: int, rate: float, connections: int) -> SplitResult:
    """Intake with every later stage held, then pipeline, dispatch and notify released one
    after the other, the process's CPU read around each phase."""
    sc.start(held=STAGES)
    idle = await idle_rate(sc)
    stages = []
    cpu0, t0, server0 = sc.cpu(), time.monotonic(), await sc.store.server_cpu()
    await intake(sc, n, rate, connections)
    intake_s = time.monotonic() - t0
    server_s = server_cpu_since(server0, await sc.store.server_cpu())
    stages.append(
        StageResult(
            "intake (webhook → stored, acknowledged)", intake_s, sc.cpu() - cpu0, n, server_s
        )
    )

    async def progress() -> tuple[int, int, int]:
        """Reports made, posted to the CRM, acknowledgements recorded."""
        c = await sc.store.counts()
        return c.reports, await asyncio.to_thread(sc.crm.created), c.acks_recorded

    async def normalized() -> bool:
        c = await sc.store.counts()
        return c.raw_waiting == 0 and c.reports >= n

    async def delivered() -> bool:
        return await asyncio.to_thread(sc.crm.created) >= n

    async def acked() -> bool:
        return (await sc.store.counts()).acks_recorded >= n

    # A stage that ran before its release would be measured in the wrong phase: each phase
    # checks that the stages still held did nothing.
    expected = (0, 0, 0)
    for index, (name, done) in enumerate(
        (
            ("pipeline (normalize, route)", normalized),
            ("dispatch (post to the CRM)", delivered),
            ("notify (record the acknowledgement)", acked),
        )
    ):
        if (seen := await progress()) != expected:
            raise RuntimeError(f"held stages ran: (reports, posted, acks) {seen} != {expected}")
        cpu0, server0 = sc.cpu(), await sc.store.server_cpu()
        for replica in sc.replicas:
            replica.release_next()
        seconds = await wait_until(name, done, timeout=max(60.0, n / 20), interval=0.05)
        server_s = server_cpu_since(server0, await sc.store.server_cpu())
        stages.append(StageResult(name, seconds, sc.cpu() - cpu0, n, server_s))
        expected = tuple(n if i <= index else 0 for i in range(3))  # type: ignore[assignment]
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


async def non_geo_rate(sc: Scenario, n: int, rate: float, connections: int) -> StageResult:
    """`n` JAKI webhooks without a location stored with the pipeline held, then the pipeline
    released: reports/s normalized by one process, and its CPU per report."""
    sc.start(held=STAGES)
    await intake(sc, n, rate, connections, geo=False)
    cpu0, t0 = sc.cpu(), time.monotonic()
    sc.replicas[0].release_next()

    async def normalized() -> bool:
        c = await sc.store.counts()
        return c.raw_waiting == 0 and c.reports >= n

    await wait_until("non-geo normalization", normalized, timeout=max(60.0, n / 20), interval=0.05)
    return StageResult("non-geo backlog normalized", time.monotonic() - t0, sc.cpu() - cpu0, n)


# --------------------------------------------------------------------------- profile


class Profiler:
    """py-spy sampling the first steady run's kanal process (own time per function)."""

    def __init__(self, out: Path):
        self.out = out
        self.py_spy = find_py_spy()
        self.proc: subprocess.Popen[bytes] | None = None
        self.raw = out / "e2e-profile.txt"

    def start(self, pid: int, seconds: float) -> None:
        if self.py_spy is None:
            return
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
                "--duration",
                str(math.ceil(seconds)),
                "--format",
                "raw",
                "--output",
                str(self.raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> None:
        if self.proc is not None:
            _, err = self.proc.communicate(timeout=120)
            if self.proc.returncode != 0:
                print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
                self.proc = None

    def report(self) -> list[str]:
        if not self.raw.exists():
            return ["(no profile: py-spy missing or could not attach)"]
        own: Counter[str] = Counter()
        total = 0
        for line in self.raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            own[stack.split(";")[-1]] += int(samples)
            total += int(samples)
        lines = [f"{'own %':>6}  function (file:line)   [{total} samples, {self.raw}]"]
        for frame, count in own.most_common(25):
            lines.append(f"{count / total:>6.1%}  {frame}")
        return lines


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


def seconds(value: float) -> str:
    """A latency for the tables; ">drain" when it is a report the CRM had not got when the
    bounded drain ended."""
    return ">drain" if math.isinf(value) else f"{value:.2f}"


def print_steady(results: Sequence[SteadyResult]) -> None:
    print(
        f"\n{'store, replicas':<22}{'asked/s':>8}{'acked/s':>8}{'to CRM/s':>9}"
        f"{'backlog':>9}{'steady':>7}{'p50 s':>7}{'p95 s':>7}{'p99 s':>7}"
        f"{'acks':>7}{'CPU ms/rep':>11}{'PG ms/rep':>10}{'non-2xx':>8}"
    )
    for r in results:
        errors = sum(r.errors.values())
        pg = f"{r.server_cpu_ms_per_report:.2f}" if r.label.startswith("postgresql") else "-"
        print(
            f"{r.label:<22}{r.rate:>8.0f}{r.acked_rate:>8.0f}{r.delivered_in_window_rate:>9.0f}"
            f"{r.backlog_end:>9}{'yes' if r.sustained else 'NO':>7}{seconds(r.p50):>7}"
            f"{seconds(r.p95):>7}{seconds(r.p99):>7}{r.acks_recorded:>7}"
            f"{r.cpu_ms_per_report:>11.2f}{pg:>10}{errors:>8}"
        )
        if not r.drained or r.missing_at_crm:
            print(f"  ! not drained: {r.missing_at_crm} acknowledged reports not at the CRM")
    print(
        "  to CRM/s: accepted by the CRM within the sending window; backlog: raw messages not "
        "normalized + reports ready/posting at the window's end (steady: ≤ max(50, 1 s of "
        "the rate) and every webhook acknowledged); latencies from each webhook's due time "
        "to the CRM's acceptance; acks: acknowledgements recorded (JAKI: ticket in the "
        "response); CPU: utime+stime of the kanal process(es) from the first webhook to the "
        "last report delivered, per report delivered; PG: the same for PostgreSQL's "
        "backends serving the database (not in kanal's figure)"
    )


def print_split(split: SplitResult, steady: SteadyResult | None) -> None:
    print(
        f"\nCPU per stage, {split.label} ({split.stages[0].reports} reports; idle "
        f"{split.idle_cpu_per_s * 1000:.0f} ms CPU/s, not subtracted)"
    )
    pg = split.label.startswith("postgresql")
    print(
        f"{'stage':<44}{'ms CPU/report':>14}{'reports/s':>11}{'seconds':>9}"
        + (f"{'PG ms/report':>14}" if pg else "")
    )
    for s in split.stages:
        print(
            f"{s.name:<44}{s.ms_per_report:>14.2f}{s.rate:>11.0f}{s.seconds:>9.1f}"
            + (f"{s.server_cpu_s / s.reports * 1000:>14.2f}" if pg else "")
        )
    reports = split.stages[0].reports
    total = sum(s.cpu_s for s in split.stages) / reports * 1000
    server_total = sum(s.server_cpu_s for s in split.stages) / reports * 1000
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
    profiler = Profiler(OUT) if args.profile else None
    steady: list[SteadyResult] = []
    splits: list[SplitResult] = []
    capacities: dict[tuple[str, int], float] = {}
    non_geo: dict[str, StageResult] = {}
    cprofile_path: Path | None = None

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
                profile = profiler if profiler is not None and not steady else None
                cprofile = None
                if profile is not None and profile.py_spy is None:
                    cprofile_path = cprofile = OUT / "e2e-profile.cprof"
                    profile = None
                job = functools.partial(
                    steady_job, rate=rate, args=args, profile=profile, cprofile=cprofile
                )
                steady.append(await run(backend, replicas, job))
                print_steady([steady[-1]])
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
            job = functools.partial(stage_split, n=n, rate=fastest, connections=args.connections)
            splits.append(await run(backend, 1, job))
            splits[-1].capacity = capacities[(backend, 1)]
            if args.non_geo_reports:
                job = functools.partial(
                    non_geo_rate, n=args.non_geo_reports, rate=fastest, connections=args.connections
                )
                non_geo[backend] = await run(backend, 1, job)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print("\n" + "=" * 100)
    print(
        f"machine: {os.cpu_count()} CPUs, load average now {load} (rates and latencies depend "
        "on what else runs; CPU per report much less)"
    )
    print(
        f"The whole way: signed geo-tagged JAKI webhooks → kanal serve → Open311 CRM answering "
        f"after {args.crm_latency_ms:g} ms (crm.concurrency = {args.crm_concurrency}), "
        f"{args.seconds:g} s per rate, {args.connections} connections per replica"
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
        f"(highest rate sustained here: {best:.0f}/s)"
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
    ng_rates = {b: r.rate for b, r in non_geo.items()}
    ng_ok = all(v >= TARGET_NON_GEO_RATE for v in ng_rates.values()) if ng_rates else None
    print(
        f"  {verdict(ng_ok)} non-geo backlog normalized ≥ {TARGET_NON_GEO_RATE:.0f}/s per process ("
        + ", ".join(f"{b}: {v:.0f}/s" for b, v in ng_rates.items())
        + ")"
    )
    if profiler is not None:
        print("\nprofile of the first steady run (py-spy --gil, own time)")
        print("\n".join(profiler.report()))
    if cprofile_path is not None and cprofile_path.exists():
        print(f"\nprofile of the first steady run (cProfile, by own time; {cprofile_path})")
        print("\n".join(cprofile_report(cprofile_path)))
    failed = [r for r in steady if not r.drained or r.missing_at_crm]
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", default="200,500", help="webhooks/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="sending window per rate")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--replicas", default="1,2", help="PostgreSQL replica counts")
    parser.add_argument("--connections", type=int, default=32, help="per replica")
    parser.add_argument("--crm-latency-ms", type=float, default=20.0)
    parser.add_argument("--crm-concurrency", type=int, default=16)
    parser.add_argument(
        "--split-reports", type=int, default=3000, help="reports in the stage split (0: skip)"
    )
    parser.add_argument("--non-geo-reports", type=int, default=3000, help="0: skip")
    parser.add_argument("--profile", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
