"""Quality of `classify` and `noise_score` on bench/data/categories_labelled.jsonl.

Run: .venv/bin/python bench/bench_category.py [--errors]
The keyword lists were written alongside this set, so the figures are optimistic for
unseen messages; read them as a regression check, not as a field accuracy. The last 40
lines of the file were written after tuning and, before being added, scored: 29 of 35
complaints answered, 26 of those right (90% where it answers, 74% overall), 5/5 noise found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalizers.category import classify, default_taxonomy, noise_score  # noqa: E402

DATA = ROOT / "bench" / "data" / "categories_labelled.jsonl"
CONFIDENT = 0.7
NOISE_THRESHOLD = 0.5


def main(argv: list[str]) -> int:
    show_errors = "--errors" in argv
    taxonomy = default_taxonomy()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    complaints = [r for r in rows if not r["noise"]]
    labelled = [r for r in complaints if r["category"] != "unknown"]
    right = answered = answered_right = confident = confident_right = 0
    unknown_said = wrong_on_unknown = 0
    for row in complaints:
        result = classify(row["text"], taxonomy)
        truth = row["category"]
        if result.code == "unknown":
            unknown_said += 1
        elif truth == "unknown":
            wrong_on_unknown += 1
        if truth == "unknown":
            continue
        ok = result.code == truth
        right += ok
        if result.code != "unknown":
            answered += 1
            answered_right += ok
            if result.confidence >= CONFIDENT:
                confident += 1
                confident_right += ok
        if show_errors and not ok:
            print(f"  {result.confidence:.2f} {result.code:40} want {truth:40} <- {row['text']!r}")

    tp = fp = fn = 0
    for row in rows:
        flagged = noise_score(row["text"], taxonomy) >= NOISE_THRESHOLD
        tp += flagged and row["noise"]
        fp += flagged and not row["noise"]
        fn += (not flagged) and row["noise"]
        if show_errors and flagged != row["noise"]:
            print(
                f"  noise {noise_score(row['text'], taxonomy):.2f} want {row['noise']} <- "
                f"{row['text']!r}"
            )

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:5.1f}%" if b else "  n/a"

    print(
        f"messages                         {len(rows):4d}  ({len(labelled)} with a category,"
        f" {len(complaints) - len(labelled)} unknown, {len(rows) - len(complaints)} noise)"
    )
    print(f"accuracy (all labelled)          {pct(right, len(labelled))}")
    print(
        f"accuracy where it answers        {pct(answered_right, answered)}"
        f"  ({answered_right}/{answered})"
    )
    print(
        f"accuracy at confidence >= {CONFIDENT}    {pct(confident_right, confident)}"
        f"  ({confident_right}/{confident})"
    )
    print(f"unknown rate (complaints)        {pct(unknown_said, len(complaints))}")
    print(f"guessed on 'unknown' texts       {wrong_on_unknown}")
    print(f"noise precision at >= {NOISE_THRESHOLD}        {pct(tp, tp + fp)}  ({tp}/{tp + fp})")
    print(f"noise recall at >= {NOISE_THRESHOLD}           {pct(tp, tp + fn)}  ({tp}/{tp + fn})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
