"""Throughput of the pure normalization of one report on one core.

Run: .venv/bin/python bench/bench_normalize.py
Per labelled text: clean_text + classify + noise_score + suggest_locations + a dedupe
decision against 20 candidates. Phone parsing is benchmarked elsewhere. Target ≥ 2,000/s.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalizers.category import classify, default_taxonomy, noise_score  # noqa: E402
from normalizers.dedupe import DedupeSubject, duplicate_suggestions  # noqa: E402
from normalizers.geo import default_index  # noqa: E402
from normalizers.places import suggest_locations  # noqa: E402
from normalizers.text import clean_text  # noqa: E402

ROUNDS = 5


def load_texts() -> list[str]:
    texts = []
    for name in ("categories_labelled.jsonl", "locations_labelled.jsonl"):
        path = ROOT / "bench" / "data" / name
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]
    return texts


def main() -> int:
    texts = load_texts()
    taxonomy, index = default_taxonomy(), default_index()
    suggest_locations("warm up", index)
    now = datetime(2026, 11, 27, 8, tzinfo=UTC)
    candidates = [
        DedupeSubject(
            f"c{i}",
            f"KNL-{i}",
            f"+62812000{i:04d}",
            texts[i % len(texts)],
            "sampah",
            -6.2 + i * 1e-4,
            106.8,
            now - timedelta(hours=i),
            "ready",
        )
        for i in range(20)
    ]
    stages = {
        "clean_text": 0.0,
        "classify": 0.0,
        "noise_score": 0.0,
        "suggest_locations": 0.0,
        "dedupe": 0.0,
    }
    total_reports = 0
    started_all = time.perf_counter()
    for _ in range(ROUNDS):
        for i, raw in enumerate(texts):
            t0 = time.perf_counter()
            text = clean_text(raw)
            t1 = time.perf_counter()
            category = classify(text, taxonomy)
            t2 = time.perf_counter()
            noise_score(text, taxonomy)
            t3 = time.perf_counter()
            places = suggest_locations(text, index)
            t4 = time.perf_counter()
            subject = DedupeSubject(
                f"r{i}",
                "KNL-X",
                "+6281200000001",
                text,
                category.code,
                places[0].lat if places else None,
                places[0].lon if places else None,
                now,
                "received",
            )
            duplicate_suggestions(subject, candidates, now)
            t5 = time.perf_counter()
            for key, value in zip(
                stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                stages[key] += value
            total_reports += 1
    elapsed = time.perf_counter() - started_all
    print(f"{'stage':20} {'µs/report':>10}")
    for key, value in stages.items():
        print(f"{key:20} {value / total_reports * 1e6:10.1f}")
    print(f"{'total':20} {elapsed / total_reports * 1e6:10.1f}")
    print(f"reports/s (one core) {total_reports / elapsed:10,.0f}   ({total_reports} reports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
