"""Throughput of `AreaIndex.locate` on one core.

Run: .venv/bin/python bench/bench_geo.py
Points are drawn (seeded) over DKI's mainland bounding box, so about a third fall outside
a kelurahan, plus the SOURCE.md spot checks; the target is ≥ 20,000 lookups per second.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalizers.geo import AreaIndex  # noqa: E402

N = 100_000


def main() -> int:
    started = time.perf_counter()
    index = AreaIndex.load()
    load_s = time.perf_counter() - started
    rng = random.Random(20261127)
    inside_box = [(rng.uniform(-6.37, -6.08), rng.uniform(106.68, 106.98)) for _ in range(N)]
    jakarta_only = [p for p in inside_box if index.locate(*p) is not None][: N // 2]
    rows = []
    for label, points in (("mainland bbox (mixed)", inside_box), ("inside DKI only", jakarta_only)):
        started = time.perf_counter()
        found = sum(1 for lat, lon in points if index.locate(lat, lon) is not None)
        elapsed = time.perf_counter() - started
        rows.append((label, len(points), found, len(points) / elapsed))
    print(f"index load                  {load_s * 1000:8.1f} ms")
    print(f"{'points':26} {'n':>8} {'in DKI':>8} {'locate/s':>12}")
    for label, n, found, rate in rows:
        print(f"{label:26} {n:8d} {found:8d} {rate:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
