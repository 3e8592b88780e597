"""Cases for the golden test of `build_report`: every text of bench/data as one message,
non-geo and geo-tagged, with a title, a location hint, a channel's category hint, SMS parts
and a learned model; the reports as JSON, compared with those main's code made before the
build_report speed-up (tests/normalizers/data/build_report_golden.jsonl.gz).

Regenerate (only when a result is meant to change): .venv/bin/python -m
tests.normalizers.build_report_cases
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import Coordinates, RawMessage, Sender
from normalizers.canonical import build_report
from normalizers.category import default_taxonomy
from normalizers.geo import default_index
from normalizers.textmodel import Example, TextModels, train

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "build_report_golden.jsonl.gz"
NOW = datetime(2026, 11, 27, 8, tzinfo=UTC)
PHONES = ["081234567890", "+62 812-3456-7890", "(021) 5551234", "TELKOMSEL", "1708"]
HINTS = ["kel. cideng", "Jl. Kemang Raya", "dekat monas", "kecamatan cakung jaktim"]


def texts() -> list[str]:
    found = []
    for name in ("categories_labelled.jsonl", "locations_labelled.jsonl"):
        path = ROOT / "bench" / "data" / name
        found += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]
    return found


def small_model() -> TextModels:
    from bench.synthetic_decisions import decisions

    made = decisions(3_000, seed=7)
    return train([Example(d.text, d.category, d.noise) for d in made])


def message(i: int, text: str, **extra: object) -> RawMessage:
    fields: dict[str, object] = {
        "connector": "sms_generic",
        "channel": "sms",
        "external_id": f"m{i}",
        "received_at": NOW,
        "sender": Sender(user_id=PHONES[i % len(PHONES)]),
        "text": text,
    }
    fields.update(extra)
    return RawMessage(**fields)  # type: ignore[arg-type]


def cases() -> Iterator[tuple[str, list[RawMessage], bool]]:
    """(name, raws, with the model)."""
    for i, text in enumerate(texts()):
        yield f"plain/{i}", [message(i, text)], False
        geo = Coordinates(-6.19 + (i % 50) * 1e-3, 106.82)
        yield f"geo/{i}", [message(i, text, coordinates=geo)], False
        yield f"model/{i}", [message(i, text)], True
        if i % 3 == 0:
            yield f"model_geo/{i}", [message(i, text, coordinates=geo)], True
        if i % 5 == 0:
            hint = HINTS[i % len(HINTS)]
            yield f"hint/{i}", [message(i, text, location_hint=hint, title="Laporan")], False
        if i % 7 == 0:
            yield f"category_hint/{i}", [message(i, text, category_hint="Sampah")], True
        if i % 11 == 0:
            half = len(text) // 2
            parts = [
                message(i, text[:half], group_key="concat:1"),
                message(i, text[half:], group_key="concat:1"),
            ]
            yield f"concat/{i}", parts, False
    yield "empty", [message(0, "")], False
    yield "outside", [message(0, "banjir", coordinates=Coordinates(-7.0, 110.0))], False


def reports() -> Iterator[tuple[str, str]]:
    index, taxonomy, models = default_index(), default_taxonomy(), small_model()
    for name, raws, with_model in cases():
        report = build_report(
            raws,
            report_id="01JD4M0000000000000000000",
            ticket="KNL-AAAA-BBBB",
            intake="webhook",
            now=NOW,
            channel_owner="province",
            areas=index,
            taxonomy=taxonomy,
            models=models if with_model else None,
        ).report
        yield name, report.model_dump_json()


def main() -> None:
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as out:
        for name, dumped in reports():
            out.write(json.dumps({"case": name, "report": json.loads(dumped)}) + "\n")


if __name__ == "__main__":
    main()
