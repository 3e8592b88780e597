"""Quality of `suggest_locations` on real geo-located reports kept beside the repository.

Run: .venv/bin/python bench/bench_places_samples.py [--errors NAME]
Reads every `*.geojson` under ../shared/data/samples (relative to the repository root) at
run time; the files are never copied into the repository. The truth for each point is the
kelurahan its coordinates fall in (`AreaIndex.locate`); a point outside DKI has none, so
a confident suggestion for it counts as wrong. Per file and together it prints: texts,
texts with words in them, points inside DKI, coverage and precision of the top suggestion
at confidence >= 0.8, and precision of the top suggestion at any confidence.
`--errors NAME` lists the wrong and missed texts of the files whose name contains NAME
(keep a held-out file out of it while tuning); `--only NAME` scores only the files whose
name contains NAME, so tuning on one file never prints another's figures.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normalizers.geo import AreaIndex, default_index  # noqa: E402
from normalizers.places import suggest_locations  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "samples"
THRESHOLD = 0.8


@dataclass(slots=True)
class Tally:
    texts: int = 0
    with_text: int = 0
    inside: int = 0
    inside_with_text: int = 0
    confident: int = 0
    confident_right: int = 0
    answered: int = 0
    answered_right: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def score_file(path: Path, index: AreaIndex, show_errors: bool) -> Tally:
    tally = Tally()
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    for feature in features:
        tally.texts += 1
        lon, lat = feature["geometry"]["coordinates"][:2]
        located = index.locate(lat, lon)
        truth = located.kelurahan.code if located else None
        tally.inside += truth is not None
        text = (feature["properties"].get("text") or "").strip()
        if not text:
            continue
        tally.with_text += 1
        tally.inside_with_text += truth is not None
        suggestions = suggest_locations(text, index)
        top = suggestions[0] if suggestions else None
        right = top is not None and top.kelurahan.code == truth
        if top is not None:
            tally.answered += 1
            tally.answered_right += right
            if top.confidence >= THRESHOLD:
                tally.confident += 1
                tally.confident_right += right
        if show_errors and not right:
            want = f"{truth} {located.kelurahan.name}" if located else "outside DKI"
            got = f"{top.confidence:.2f} {top.kelurahan.name!r}" if top else "-"
            print(f"  {got:28} want {want:34} <- {text!r}")
    return tally


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}%" if b else "  n/a"


def print_tally(name: str, tally: Tally) -> None:
    print(f"{name}")
    print(f"  texts                          {tally.texts:5d}")
    print(f"  with a non-empty text          {tally.with_text:5d}")
    print(
        f"  points inside DKI              {tally.inside:5d}  ({tally.inside_with_text} with text)"
    )
    print(
        f"  coverage at conf >= {THRESHOLD}        {pct(tally.confident, tally.inside_with_text)}"
        f"  ({tally.confident} confident of {tally.inside_with_text} texts inside DKI)"
    )
    print(
        f"  precision at conf >= {THRESHOLD}       {pct(tally.confident_right, tally.confident)}"
        f"  ({tally.confident_right}/{tally.confident})"
    )
    print(
        f"  precision of top (any conf)    {pct(tally.answered_right, tally.answered)}"
        f"  ({tally.answered_right}/{tally.answered})"
    )


def main(argv: list[str]) -> int:
    errors_for = argv[argv.index("--errors") + 1] if "--errors" in argv[:-1] else None
    only = argv[argv.index("--only") + 1] if "--only" in argv[:-1] else ""
    paths = sorted(p for p in SAMPLES.glob("*.geojson") if only in p.name)
    if not paths:
        print(f"no samples under {SAMPLES}")
        return 1
    index = default_index()
    total = Tally()
    for path in paths:
        show = errors_for is not None and errors_for in path.name
        tally = score_file(path, index, show)
        print_tally(path.name, tally)
        total.add(tally)
    print_tally("all files", total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
