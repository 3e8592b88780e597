"""`build_report` gives, field for field, the reports main's code gave before it was made
cheaper: category, confidence, noise score, every location suggestion, status, history."""

from __future__ import annotations

import gzip
import json

from tests.normalizers.build_report_cases import GOLDEN, reports


def test_build_report_unchanged_over_bench_texts() -> None:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as found:
        expected = {row["case"]: row["report"] for row in map(json.loads, found)}
    got = {name: json.loads(dumped) for name, dumped in reports()}
    assert got.keys() == expected.keys()
    differ = [name for name in expected if got[name] != expected[name]]
    assert not differ, f"{len(differ)} reports differ, first {differ[:5]}"
