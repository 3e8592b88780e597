"""Throughput of the pure normalization of one report on one core.

Run: .venv/bin/python bench/bench_normalize.py [--split [--model]]
Per labelled text: phone (E.164) + clean_text + classify + noise_score +
suggest_locations + a dedupe decision against 20 candidates; then `build_report`, the
pipeline's whole pure step (phone, geo-tag by area lookup, category, noise, place
suggestions, the canonical Report model). Target ≥ 2,000/s.
`--split`: instead, CPU µs per `build_report` (best of 5) over the same texts all non-geo,
then all geo-tagged; `--model` adds a text model fitted on 3,000 made-up decisions
(bench/synthetic_decisions.py) beside the keyword rules.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import Coordinates, RawMessage, Sender  # noqa: E402
from normalizers.canonical import build_report  # noqa: E402
from normalizers.category import classify, default_taxonomy, noise_score  # noqa: E402
from normalizers.dedupe import DedupeSubject, duplicate_suggestions  # noqa: E402
from normalizers.geo import default_index  # noqa: E402
from normalizers.phone import normalize_phone  # noqa: E402
from normalizers.places import suggest_locations  # noqa: E402
from normalizers.text import clean_text  # noqa: E402

ROUNDS = 5


def load_texts() -> list[str]:
    texts = []
    for name in ("categories_labelled.jsonl", "locations_labelled.jsonl"):
        path = ROOT / "bench" / "data" / name
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]
    return texts


def sample_messages(texts: list[str], phones: list[str]) -> list[RawMessage]:
    """One SMS per text, a third of them geo-tagged inside Jakarta."""
    now = datetime.now(UTC)
    return [
        RawMessage(
            connector="sms_generic",
            channel="sms",
            external_id=f"m{i}",
            received_at=now,
            sender=Sender(user_id=phones[i % len(phones)]),
            text=text,
            coordinates=Coordinates(-6.19 + (i % 50) * 1e-3, 106.82) if i % 3 == 0 else None,
        )
        for i, text in enumerate(texts)
    ]


def time_build_report(messages: list[RawMessage], rounds: int, models: object = None) -> float:
    """Seconds `build_report` takes over `messages`, `rounds` times (one core)."""
    index, taxonomy = default_index(), default_taxonomy()
    now = datetime.now(UTC)
    started = time.perf_counter()
    for _ in range(rounds):
        for message in messages:
            build_report(
                [message],
                report_id="01JD4M0000000000000000000",
                ticket="KNL-AAAA-BBBB",
                intake="webhook",
                now=now,
                channel_owner="province",
                areas=index,
                taxonomy=taxonomy,
                models=models,  # type: ignore[arg-type]
            )
    return time.perf_counter() - started


def cpu_per_report(messages: list[RawMessage], models: object = None) -> float:
    """CPU µs per `build_report` over `messages`, best of 5 runs of 3 rounds."""
    time_build_report(messages, 1, models)
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        time_build_report(messages, 3, models)
        best = min(best, (time.process_time() - started) / (3 * len(messages)))
    return best * 1e6


def split(with_model: bool) -> int:
    texts = load_texts()
    phones = ["081234567890", "+62 812-3456-7890", "(021) 5551234", "TELKOMSEL", "1708"]
    messages = sample_messages(texts, phones)
    here = [Coordinates(-6.19 + (i % 50) * 1e-3, 106.82) for i in range(len(messages))]
    samples = {
        "non-geo": [dataclasses.replace(m, coordinates=None) for m in messages],
        "geo": [dataclasses.replace(m, coordinates=c) for m, c in zip(messages, here, strict=True)],
    }
    models: dict[str, object] = {"rules": None}
    if with_model:
        from bench.synthetic_decisions import decisions
        from normalizers.textmodel import Example, train

        made = decisions(3_000, seed=7)
        models["model"] = train([Example(d.text, d.category, d.noise) for d in made])
    for name, sample in samples.items():
        for kind, model in models.items():
            print(f"build_report {name:8} {kind:6} {cpu_per_report(sample, model):7.1f} µs CPU")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", action="store_true")
    parser.add_argument("--model", action="store_true")
    args = parser.parse_args()
    if args.split:
        return split(args.model)
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
    phones = ["081234567890", "+62 812-3456-7890", "(021) 5551234", "TELKOMSEL", "1708"]
    stages = {
        "phone": 0.0,
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
            tp = time.perf_counter()
            normalize_phone(phones[i % len(phones)])
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
                stages, (t0 - tp, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                stages[key] += value
            total_reports += 1
    elapsed = time.perf_counter() - started_all
    print(f"{'stage':20} {'µs/report':>10}")
    for key, value in stages.items():
        print(f"{key:20} {value / total_reports * 1e6:10.1f}")
    print(f"{'total':20} {elapsed / total_reports * 1e6:10.1f}")
    print(f"reports/s (one core) {total_reports / elapsed:10,.0f}   ({total_reports} reports)")

    messages = sample_messages(texts, phones)
    elapsed = time_build_report(messages, ROUNDS)
    built = ROUNDS * len(messages)
    print(f"{'build_report':20} {elapsed / built * 1e6:10.1f}")
    print(f"reports/s (one core) {built / elapsed:10,.0f}   (build_report, a third geo-tagged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
