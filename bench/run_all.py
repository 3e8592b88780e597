"""Every benchmark, one after the other: `make bench` (or `.venv/bin/python bench/run_all.py`).

Each script prints its own table with ratios measured in the same run; this only runs
them in turn with a time limit each, and lists which ones failed. Pass names to run a few:
`bench/run_all.py webhooks geo`. The admin benchmark needs a filled store first
(`bench/gen_reports.py`, see its docstring) and is left out unless named; so is the
end-to-end one (`bench/run_all.py e2e`), which takes longer than the others together while
a backlog drains at today's speeds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ["webhooks", "geo", "normalize", "places", "category", "email", "crm", "learning_curve"]
LIMIT_S = 600
LIMITS_S = {"e2e": 1500}  # three stores, several rates, each run draining its backlog


def main(names: list[str]) -> int:
    failed = []
    for name in names or DEFAULT:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            print(f"== {name}: no such benchmark ({script.name})")
            failed.append(name)
            continue
        print(f"\n== {name}: {sys.executable} bench/{script.name}", flush=True)
        started = time.monotonic()
        limit = LIMITS_S.get(name, LIMIT_S)
        try:
            result = subprocess.run([sys.executable, str(script)], timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            print(f"== {name}: stopped after {limit} s")
            failed.append(name)
            continue
        print(f"== {name}: exit {result.returncode} in {time.monotonic() - started:.0f} s")
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
