"""Quality of `suggest_locations` on bench/data/locations_labelled.jsonl.

Run: .venv/bin/python bench/bench_places.py [--errors]
Prints precision of the top suggestion at confidence ≥ 0.8 (the contract: ≥ 90%), how many
texts get such a suggestion (coverage), and precision of the top suggestion overall.
Lines 264-293 were written after a first tuning; before being added they scored 18/18
right at confidence >= 0.8. Lines 294-317 (20 with a kelurahan, 4 without) were written
for lone names, linking words after "lurah" and "ri 04/07" before those rules existed:
3 of them were confident before the rules, 17 after, all right. Lines 318-325 (7 with a
kelurahan, 1 without) were written for a street named with the kelurahan it lies in
before that rule existed: none confident before, the 7 after. A null label means "no
single kelurahan": any top suggestion for it counts as wrong in "precision of top (any
conf)".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalizers.geo import default_index  # noqa: E402
from normalizers.places import suggest_locations  # noqa: E402

DATA = ROOT / "bench" / "data" / "locations_labelled.jsonl"
THRESHOLD = 0.8


def main(argv: list[str]) -> int:
    show_errors = "--errors" in argv
    index = default_index()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    labelled = sum(1 for r in rows if r["kelurahan"])
    confident = confident_right = answered = answered_right = 0
    for row in rows:
        suggestions = suggest_locations(row["text"], index)
        top = suggestions[0] if suggestions else None
        truth = row["kelurahan"]
        if top is None:
            continue
        right = top.kelurahan.code == truth
        answered += 1
        answered_right += right
        if top.confidence >= THRESHOLD:
            confident += 1
            confident_right += right
        if show_errors and not right:
            print(
                f"  {top.confidence:.2f} {top.kelurahan.code} {top.kelurahan.name!r:24}"
                f" want {truth}  <- {row['text']!r}"
            )

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:5.1f}%" if b else "  n/a"

    print(f"labelled texts                 {len(rows):5d}  ({labelled} with a kelurahan)")
    print(
        f"precision at conf >= {THRESHOLD}       {pct(confident_right, confident)}"
        f"  ({confident_right}/{confident})"
    )
    print(
        f"coverage at conf >= {THRESHOLD}        {pct(confident, labelled)}"
        f"  ({confident} of {labelled} texts with a kelurahan)"
    )
    print(
        f"precision of top (any conf)    {pct(answered_right, answered)}"
        f"  ({answered_right}/{answered})"
    )
    print(f"recall of top (any conf)       {pct(answered_right, labelled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
