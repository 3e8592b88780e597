"""Durable-ack webhook throughput: kanal's POST /webhooks/sms/generic against a bare aiohttp
handler that only parses the JSON, both measured in this run on this machine.

    .venv/bin/python bench/bench_webhooks.py [--seconds 8] [--connections 32]

kanal runs as `kanal serve` on SQLite (WAL, synchronous=FULL: every 2xx is fsynced, with
group commit) with its pipeline on. Load comes from wrk (Debian package `wrk`) with a pool
of pre-signed unique bodies. Prints throughput, the ratio, and p50/p99 latency at half of
kanal's peak rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import kanal_signature  # noqa: E402

SECRET = "bench-secret"

BARE_SERVER = textwrap.dedent(
    """
    import json, sys
    from aiohttp import web

    async def handle(request):
        data = json.loads(await request.read())
        return web.json_response({"stored": 1 if data else 0})

    app = web.Application()
    app.router.add_post("/webhooks/sms/generic", handle)
    app.router.add_get("/readyz", lambda r: web.json_response({"ok": True}))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def lua_script(path: Path, count: int, offset: int, pace_ms: float | None) -> None:
    """wrk cannot compute HMACs cheaply: a pool of unique pre-signed bodies, read from a
    data file at start (a Lua chunk of that many constants would not load)."""
    data = path.with_suffix(".tsv")
    with data.open("w") as out:
        for i in range(count):
            body = json.dumps(
                {
                    "id": f"bench-{offset + i}",
                    "from": "0812" + f"{(offset + i) % 10**8:08d}",
                    "to": "1708",
                    "text": f"Lampu PJU mati di Jl. Kebon Sirih no {i % 200}, mohon diperbaiki",
                    "received_at": "2026-11-27T08:00:00+07:00",
                }
            )
            out.write(f"{kanal_signature(SECRET, body.encode())}\t{body}\n")
    script = f"""
local bodies, sigs, n = {{}}, {{}}, 0
for line in io.lines("{data}") do
  local tab = line:find("\t", 1, true)
  n = n + 1
  sigs[n] = line:sub(1, tab - 1)
  bodies[n] = line:sub(tab + 1)
end
local counter = 0
function request()
  counter = counter + 1
  local i = ((counter - 1) % n) + 1
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Kanal-Signature"] = sigs[i]
  return wrk.format("POST", "/webhooks/sms/generic", nil, bodies[i])
end
"""
    if pace_ms is not None:
        script += f"function delay() return {pace_ms:.3f} end\n"
    path.write_text(script)


def waiting(db: Path) -> int:
    """Raw messages not yet turned into reports."""
    connection = sqlite3.connect(db, timeout=30)
    try:
        row = connection.execute(
            "SELECT count(*) FROM raw_messages WHERE state IN ('new', 'processing')"
        ).fetchone()
    finally:
        connection.close()
    return int(row[0])


def run_wrk(
    url: str, script: Path, seconds: int, connections: int, threads: int = 1
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            lat[pct] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return {
        "rps": rps,
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def paced_run(
    url: str, script: Path, rate: float, offset: int, conns: int, seconds: int
) -> dict[str, float]:
    """wrk at about `rate` requests/s: two short runs calibrate each connection's think time
    against the latency seen, then the measured run."""
    pace_ms = max(conns / rate * 1000 - 1.0, 0.1)
    for round_ in range(2):
        lua_script(script, 20_000, offset + 1_000_000 * (round_ + 1), pace_ms)
        probe = run_wrk(url, script, 3, conns)
        # Per connection: one request every conns/rate s = think time + mean latency.
        mean_latency_ms = conns / probe["rps"] * 1000 - pace_ms
        pace_ms = max(conns / rate * 1000 - mean_latency_ms, 0.1)
    lua_script(script, 200_000, offset, pace_ms)
    result = run_wrk(url, script, seconds, conns)
    result["target"] = rate
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench_webhooks: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kanal-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bare_port = free_port()
        (work / "bare.py").write_text(BARE_SERVER)
        procs.append(subprocess.Popen([sys.executable, str(work / "bare.py"), str(bare_port)]))
        wait_ready(f"http://127.0.0.1:{bare_port}/readyz")

        port = free_port()
        (work / "secret").write_text(SECRET)
        (work / "kanal.toml").write_text(
            f"""
[server]
http = "127.0.0.1:{port}"
smtp = ""
public_url = "http://127.0.0.1:{port}"
[database]
url = "sqlite:///{work}/kanal.db"
[channels.sms_generic]
enabled = true
secret_file = "{work}/secret"
"""
        )
        log = (work / "kanal.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "--log-level",
                    "WARNING",
                    "serve",
                    "--config",
                    str(work / "kanal.toml"),
                ],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        except RuntimeError:
            log.flush()
            print((work / "kanal.log").read_text()[-3000:], file=sys.stderr)
            raise

        pool = 200_000
        peak_script = work / "peak.lua"
        lua_script(peak_script, pool, 0, None)
        # Warm both servers up, then measure each at full speed.
        run_wrk(f"http://127.0.0.1:{bare_port}", peak_script, 2, args.connections)
        bare = run_wrk(f"http://127.0.0.1:{bare_port}", peak_script, args.seconds, args.connections)
        warm_script = work / "warm.lua"
        lua_script(warm_script, 5000, 10_000_000, None)
        run_wrk(f"http://127.0.0.1:{port}", warm_script, 2, args.connections)
        kanal = run_wrk(f"http://127.0.0.1:{port}", peak_script, args.seconds, args.connections)

        # The burst left a backlog for the pipeline (acknowledging comes first): measure how
        # long it takes to normalize it, then measure latency in a steady state.
        drain_started = time.monotonic()
        backlog = waiting(work / "kanal.db")
        while waiting(work / "kanal.db") and time.monotonic() - drain_started < 120:
            time.sleep(0.5)
        drained_s = time.monotonic() - drain_started

        # Latency at half of kanal's peak rate: paced connections (think time per request),
        # the think time calibrated so that the rate reached is the rate asked for (wrk is a
        # closed loop: each connection waits for its answer before its think time).
        half_rate = kanal["rps"] / 2
        paced = paced_run(
            f"http://127.0.0.1:{port}", work / "paced.lua", half_rate, 20_000_000, 32, args.seconds
        )
        # And at a steady 200/s, which the whole process (normalization, notifier…) keeps up
        # with: latency with no backlog building.
        while waiting(work / "kanal.db") and time.monotonic() - drain_started < 240:
            time.sleep(0.5)
        steady = paced_run(
            f"http://127.0.0.1:{port}", work / "steady.lua", 200, 30_000_000, 8, args.seconds
        )

        time.sleep(1.0)
        db = sqlite3.connect(work / "kanal.db")
        stored = db.execute("SELECT count(*) FROM raw_messages").fetchone()[0]
        modes = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.close()

        ratio = kanal["rps"] / bare["rps"]
        print(f"{'':32}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
        for label, r in (
            ("bare aiohttp (JSON parse only)", bare),
            ("kanal durable ack (peak)", kanal),
            (f"kanal paced, asked {half_rate:.0f} req/s", paced),
            ("kanal paced, asked 200 req/s", steady),
        ):
            print(
                f"{label:32}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>10.0f}"
            )
        print(f"\nthroughput ratio kanal/bare: {ratio:.0%} (target >= 60%)")
        print(
            f"p99 at half peak ({paced['rps']:.0f} of {half_rate:.0f} req/s reached): "
            f"{paced['p99_ms']:.1f} ms (target < 25 ms)"
        )
        print(f"raw messages stored: {stored} (journal_mode={modes}, synchronous=FULL)")
        print(f"backlog after the burst: {backlog} messages, normalized in {drained_s:.1f} s")
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
