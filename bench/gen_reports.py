"""Fill a store with N realistic reports fast, for the admin API benchmark.

Run: .venv/bin/python bench/gen_reports.py --db sqlite:///var/bench.db -n 1000000 --fresh
     .venv/bin/python bench/gen_reports.py --db postgresql://postgres@127.0.0.1:5432/kanal_bench

Reports spread over the 267 kelurahan, every channel and status, received over one year,
each with 2–3 history rows; owners follow the routing rules (geo-tagged → the location's
kelurahan; waiting non-geo → the channel's owner; enriched → a kelurahan). Bulk loads go
around the ORM (COPY on PostgreSQL, executemany on SQLite with the counting triggers
lifted during the load), then the stats counters are rebuilt and the tables analyzed.
Seeded: the same N and seed give the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.store import Store, sqlite_path  # noqa: E402
from gateway.web.stats import rebuild_counts  # noqa: E402
from normalizers.category import default_taxonomy  # noqa: E402
from normalizers.geo import default_index  # noqa: E402

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TICKET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# (channel, connector, intake, weight, owner of its non-geo reports, share geo-tagged)
CHANNELS = [
    ("jaki", "jaki", "webhook", 30, "province", 0.97),
    ("sms", "sms_generic", "webhook", 12, "province", 0.0),
    ("twitter", "twitter", "webhook", 10, "province", 0.05),
    ("email", "email", "smtp", 8, "province", 0.08),
    ("facebook", "meta", "webhook", 6, "province", 0.03),
    ("instagram", "meta", "webhook", 5, "province", 0.03),
    ("lapor", "lapor", "webhook", 10, "province", 0.4),
    ("telegram", "telegram", "webhook", 3, "province", 0.1),
    ("media", "media", "desk", 2, "province", 0.0),
    ("balai_kota", "desk", "desk", 3, "office:balai_kota", 0.0),
    ("inspektorat", "desk", "desk", 1, "office:inspektorat", 0.0),
    ("walikota", "desk", "desk", 3, "kota", 0.0),
    ("kecamatan", "desk", "desk", 3, "kecamatan", 0.0),
    ("kelurahan", "desk", "desk", 4, "kelurahan", 0.0),
]
TEXTS = [
    "Jalan berlubang di depan {place}, sudah sebulan belum diperbaiki",
    "Lampu PJU mati di sekitar {place} sejak minggu lalu",
    "Sampah menumpuk di pinggir kali dekat {place}, bau sekali",
    "Parkir liar di trotoar {place} bikin macet tiap sore",
    "Saluran air tersumbat, banjir setiap hujan di {place}",
    "Pohon tumbang menutup jalan di {place}",
    "Pedagang kaki lima memakai trotoar di {place}",
    "Mohon pengerasan jalan gang di {place}, becek kalau hujan",
    "Air PAM tidak mengalir tiga hari di {place}",
    "Kebisingan bengkel malam hari di {place}",
]


def ulid(ms: int, rng: random.Random) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def ticket(i: int) -> str:
    # A bijection of i over 40 bits (odd multiplier): unique without a lookup.
    value = (i * 0x9E3779B97F + 0x5BD1E995) & ((1 << 40) - 1)
    chars = "".join(TICKET_ALPHABET[(value >> shift) & 31] for shift in range(35, -1, -5))
    return f"KNL-{chars[:4]}-{chars[4:]}"


def generate(n: int, seed: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yields (reports row, history rows) with datetimes as aware UTC datetimes."""
    rng = random.Random(seed)
    areas = default_index()
    kelurahan = areas.kelurahan_matches
    kecamatan = areas.kecamatan_areas
    kota = [k for k in areas.kota_areas]
    categories = [c for c in default_taxonomy().categories]
    weights = [c[3] for c in CHANNELS]
    year_s = 365 * 24 * 3600
    for i in range(n):
        channel, connector, intake, _, channel_owner, geo_share = rng.choices(CHANNELS, weights)[0]
        age_s = int(year_s * rng.random() ** 1.3)  # more recent than old
        received = NOW - timedelta(seconds=age_s)
        geo = rng.random() < geo_share
        place = rng.choice(kelurahan)
        age_days = age_s / 86400
        if geo:
            status = rng.choices(
                ["ready", "posted", "in_progress", "done", "failed"],
                [1, 10, 14, 74, 1] if age_days > 7 else [10, 40, 30, 19, 1],
            )[0]
        else:
            waiting = 0.65 if age_days < 3 else 0.2 if age_days < 30 else 0.02
            r = rng.random()
            if r < waiting:
                status = "pending_enrichment"
            elif r < waiting + 0.08:
                status = "rejected"
            else:
                status = rng.choices(
                    ["ready", "posted", "in_progress", "done", "failed"], [1, 8, 12, 78, 1]
                )[0]
        enriched = not geo and status not in ("pending_enrichment", "rejected")
        if geo or enriched:
            owner = f"kelurahan:{place.kelurahan.code}"
        elif channel_owner == "kota":
            owner = f"kota:{rng.choice(kota).code}"
        elif channel_owner == "kecamatan":
            owner = f"kecamatan:{rng.choice(kecamatan).code}"
        elif channel_owner == "kelurahan":
            owner = f"kelurahan:{rng.choice(kelurahan).kelurahan.code}"
        else:
            owner = channel_owner
        located = geo or enriched
        category = rng.choice(categories) if located or rng.random() < 0.5 else None
        report_id = ulid(int(received.timestamp() * 1000), rng)
        the_ticket = ticket(i)
        text = rng.choice(TEXTS).format(place=f"Kel. {place.kelurahan.name}")
        location: dict[str, Any] = {
            "lat": None,
            "lon": None,
            "source": None,
            "accuracy_m": None,
            "address": None,
            "kelurahan": None,
            "kecamatan": None,
            "kota": None,
            "precision": None,
        }
        if located:
            location.update(
                lat=round(-6.2 + rng.uniform(-0.1, 0.1), 6),
                lon=round(106.83 + rng.uniform(-0.1, 0.1), 6),
                source="device" if geo else "admin",
                precision="point",
                kelurahan={"code": place.kelurahan.code, "name": place.kelurahan.name},
                kecamatan={"code": place.kecamatan.code, "name": place.kecamatan.name},
                kota={"code": place.kota.code, "name": place.kota.name},
            )
        phone = f"+62812{rng.randrange(10_000_000, 99_999_999)}"
        doc = {
            "id": report_id,
            "ticket": the_ticket,
            "channel": channel,
            "connector": connector,
            "intake": intake,
            "external_id": f"bench-{i}",
            "received_at": received.isoformat(),
            "reporter": {
                "name": None,
                "phone": phone,
                "email": None,
                "handle": None,
                "channel_user_id": phone,
                "phone_raw": None,
            },
            "confidential": False,
            "text": text,
            "title": None,
            "description": None,
            "language": "id",
            "attachments": [],
            "location": location,
            "geo_tagged": geo,
            "non_geo_reason": None if geo else "no_location",
            "category": (
                {
                    "code": category.code,
                    "name": category.name,
                    "agency": category.agency,
                    "service_code": category.service_code,
                    "confidence": 0.8,
                }
                if category
                else {
                    "code": "unknown",
                    "name": "Belum diketahui",
                    "agency": None,
                    "service_code": None,
                    "confidence": 0.0,
                }
            ),
            "noise_score": 0.05,
            "suggestions": {"locations": [], "duplicate_of": []},
            "owner": owner,
            "status": status,
            "version": 3,
            "lease": None,
            "duplicate_of": None,
            "incomplete": False,
            "follow_ups": [],
            "delivery": {
                "attempts": 1 if status in ("posted", "in_progress", "done") else 0,
                "last_error": None,
                "next_attempt_at": None,
            },
            "notifications": [],
            "crm": {
                "system": None,
                "request_id": None,
                "token": None,
                "status": None,
                "status_notes": None,
                "posted_at": None,
                "updated_at": None,
            },
            "rejection": {"reason": "spam", "note": None} if status == "rejected" else None,
        }
        row = {
            "id": report_id,
            "ticket": the_ticket,
            "raw_message_id": report_id,
            "channel": channel,
            "connector": connector,
            "received_at": received,
            "updated_at": received + timedelta(hours=2),
            "status": status,
            "owner": owner,
            "kelurahan_code": place.kelurahan.code if located else None,
            "geo_tagged": geo,
            "category_code": doc["category"]["code"],
            "reporter_key": f"phone:{phone}",
            "search_text": f"{the_ticket} {text}".lower(),
            "version": 3,
            "attempts": doc["delivery"]["attempts"],
            "doc": json.dumps(doc, ensure_ascii=False),
        }
        first = "ready" if geo else "pending_enrichment"
        history = [
            {"report_id": report_id, "at": received, "status": "received", "by": "system"},
            {"report_id": report_id, "at": received, "status": first, "by": "system"},
        ]
        if status != first:
            history.append(
                {
                    "report_id": report_id,
                    "at": received + timedelta(hours=2),
                    "status": status,
                    "by": "admin-bench" if not geo else "system",
                }
            )
        yield row, history


REPORT_COLUMNS = [
    "id",
    "ticket",
    "raw_message_id",
    "channel",
    "connector",
    "received_at",
    "updated_at",
    "status",
    "owner",
    "kelurahan_code",
    "geo_tagged",
    "category_code",
    "reporter_key",
    "search_text",
    "version",
    "attempts",
    "doc",
]
HISTORY_COLUMNS = ["report_id", "at", "status", "by"]


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC), so queries compare alike.
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(path: Path, n: int, seed: int, batch: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # a bench load, not a webhook: no fsync per batch
    triggers = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name='reports'"
    ).fetchall()
    for name, _ in triggers:
        db.execute(f"DROP TRIGGER {name}")
    report_sql = (
        f"INSERT INTO reports ({', '.join(REPORT_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in REPORT_COLUMNS)})"
    )
    history_sql = 'INSERT INTO report_history (report_id, at, status, "by") VALUES (?, ?, ?, ?)'
    try:
        rows: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        for i, (row, entries) in enumerate(generate(n, seed), 1):
            values = [row[c] for c in REPORT_COLUMNS]
            values[5], values[6] = _sqlite_time(values[5]), _sqlite_time(values[6])
            values[10] = int(values[10])
            rows.append(tuple(values))
            history.extend(
                (e["report_id"], _sqlite_time(e["at"]), e["status"], e["by"]) for e in entries
            )
            if len(rows) >= batch or i == n:
                db.execute("BEGIN")
                db.executemany(report_sql, rows)
                db.executemany(history_sql, history)
                db.execute("COMMIT")
                rows.clear()
                history.clear()
                progress(i, n)
    finally:
        for _, sql in triggers:
            db.execute(sql)
        db.execute("ANALYZE")
        db.close()


async def load_postgres(url: str, n: int, seed: int, batch: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER TABLE reports DISABLE TRIGGER reports_count")
        rows: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        for i, (row, entries) in enumerate(generate(n, seed), 1):
            rows.append(tuple(row[c] for c in REPORT_COLUMNS))
            history.extend(tuple(e[c] for c in HISTORY_COLUMNS) for e in entries)
            if len(rows) >= batch or i == n:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "reports", records=rows, columns=REPORT_COLUMNS
                    )
                    await conn.copy_records_to_table(
                        "report_history", records=history, columns=HISTORY_COLUMNS
                    )
                rows.clear()
                history.clear()
                progress(i, n)
    finally:
        await conn.execute("ALTER TABLE reports ENABLE TRIGGER reports_count")
        await conn.execute("ANALYZE reports")
        await conn.execute("ANALYZE report_history")
        await conn.close()


def progress(done: int, total: int) -> None:
    print(f"\r{done:>10,} / {total:,}", end="", file=sys.stderr, flush=True)


async def fresh(url: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> int:
    if args.fresh:
        await fresh(args.db)
    store = Store(args.db)
    await store.migrate()
    started = time.perf_counter()
    path = sqlite_path(args.db)
    if store.dialect == "sqlite":
        if path is None:
            print("an in-memory SQLite is not a benchmark store", file=sys.stderr)
            return 2
        await store.close()
        await asyncio.to_thread(load_sqlite, path, args.n, args.seed, args.batch)
        store = Store(args.db)
    else:
        await load_postgres(args.db, args.n, args.seed, args.batch)
    loaded = time.perf_counter() - started
    await rebuild_counts(store)
    await store.close()
    total = time.perf_counter() - started
    print(
        f"\n{args.n:,} reports in {loaded:.1f} s ({args.n / loaded:,.0f}/s); "
        f"with counters {total:.1f} s",
        file=sys.stderr,
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("KANAL_BENCH_DB", "sqlite:///var/bench.db"))
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--fresh", action="store_true", help="start from an empty store")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
