"""Build kanal's compact area data under `config/areas/` from the source data sets
credited in `config/areas/NOTICE.md` (a folder of them, given as SOURCE_DIR).

Run from the repository root: `.venv/bin/python scripts/build_areas.py SOURCE_DIR [--out DIR]`.
Writes `kelurahan.geojson` (polygons keyed by Kemendagri code), `wilayah.csv` (the
gazetteer), `streets.csv` and `rw.csv` (2012 OSM names matched to Kemendagri codes) and
prints every name it could not match. The outputs are committed; this script reproduces them.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import shapely
from shapely.geometry import mapping, shape

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "config" / "areas"

# ~1 m at Jakarta's latitude: small enough that no SOURCE.md spot check moves, large
# enough to drop the survey-grade vertex noise that makes up most of the source file.
SIMPLIFY_TOLERANCE = 0.00001
COORD_DECIMALS = 6

# Spot checks from SOURCE.md, re-verified against the simplified output.
SPOT_CHECKS: list[tuple[float, float, str | None]] = [
    (-6.1754, 106.8272, "31.71.01.1001"),
    (-6.1950, 106.8230, "31.71.06.1001"),
    (-6.2443, 106.8006, "31.74.07.1001"),
    (-6.1352, 106.8133, "31.73.03.1008"),
    (-6.3125, 106.8200, "31.74.04.1004"),
    (-5.7457, 106.6136, "31.01.01.1001"),
    (-6.2099, 106.8502, "31.74.01.1007"),
    (-6.1040, 106.8806, "31.72.02.1001"),
    (-6.0800, 106.8400, None),
    (-6.4025, 106.7942, None),
    (-6.2383, 106.9756, None),
]


def name_key(name: str) -> str:
    """Spelling-insensitive key: 2012 OSM writes "Setia Budi", Kemendagri "Setiabudi"."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"^(kota|kabupaten)( administrasi)? ", "", text)
    return re.sub(r"[^a-z0-9]", "", text)


KELURAHAN_ALIASES = {"kampungtengah": "tengah"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def build_polygons(source: Path, wilayah: dict[str, dict[str, str]]) -> list[dict]:
    crosswalk = {
        row["kode_bps"]: row["kode_kemendagri"]
        for row in read_csv(source / "jakarta_kelurahan_crosswalk_bps_kemendagri.csv")
    }
    raw = json.loads((source / "jakarta_kelurahan_hdx_bps2020.geojson").read_text("utf-8"))
    geoms = [shape(f["geometry"]) for f in raw["features"]]
    bps_codes = [f["properties"]["village_code"].removeprefix("id") for f in raw["features"]]
    # coverage_simplify keeps shared edges shared, so simplification opens no gaps
    # and creates no overlaps between neighbouring kelurahan.
    simplified = shapely.coverage_simplify(geoms, SIMPLIFY_TOLERANCE, simplify_boundary=True)
    simplified = shapely.set_precision(simplified, 10**-COORD_DECIMALS)
    features = []
    for bps, geom in zip(bps_codes, simplified, strict=True):
        code = crosswalk[bps]
        kel = wilayah[code]
        kec = wilayah[kel["kode_induk"]]
        kota = wilayah[kec["kode_induk"]]
        geom = shapely.make_valid(geom)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "kelurahan_code": code,
                    "kelurahan": kel["nama"],
                    "kecamatan_code": kec["kode"],
                    "kecamatan": kec["nama"],
                    "kota_code": kota["kode"],
                    "kota": kota["nama"],
                    "bps_code": bps,
                },
                "geometry": mapping(geom),
            }
        )
    return features


def check_spots(features: list[dict]) -> None:
    geoms = [shape(f["geometry"]) for f in features]
    for lat, lon, expected in SPOT_CHECKS:
        point = shapely.Point(lon, lat)
        hits = sorted(
            f["properties"]["kelurahan_code"]
            for f, g in zip(features, geoms, strict=True)
            if g.covers(point)
        )
        got = hits[0] if hits else None
        if got != expected:
            raise SystemExit(f"spot check failed at {lat},{lon}: {got} != {expected}")


class KelurahanMatcher:
    """Maps 2012 OSM (kelurahan, kecamatan, kota) names to Kemendagri kelurahan codes."""

    def __init__(self, wilayah: dict[str, dict[str, str]]) -> None:
        self.by_kec: dict[tuple[str, str], str] = {}
        self.by_kota: dict[tuple[str, str], list[str]] = {}
        for row in wilayah.values():
            if row["level"] != "kelurahan":
                continue
            kel, kec, kota = (
                name_key(row["nama"]),
                name_key(row["nama_kecamatan"]),
                name_key(row["nama_kota_kab"]),
            )
            self.by_kec[(kel, kec)] = row["kode"]
            self.by_kota.setdefault((kel, kota), []).append(row["kode"])
        self.unmatched: Counter[str] = Counter()
        self.fuzzy: Counter[str] = Counter()

    def match(self, kelurahan: str, kecamatan: str, kota: str) -> str | None:
        kel, kec = name_key(kelurahan), name_key(kecamatan)
        if code := self.by_kec.get((kel, kec)):
            return code
        # kecamatan borders moved since 2012; a kelurahan name unique within its kota
        # is still unambiguous.
        within_kota = self.by_kota.get((kel, name_key(kota)), [])
        if len(within_kota) == 1:
            return within_kota[0]
        # 2012 OSM misspellings ("Papango", "Pal Meriem") and the old "Kampung Tengah"
        # (Kemendagri "Tengah", as the crosswalk notes): close names in the same kecamatan.
        alias = KELURAHAN_ALIASES.get(kel, kel)
        names = [k for (k, c) in self.by_kec if c == kec]
        close = difflib.get_close_matches(alias, names, n=1, cutoff=0.8)
        if close:
            self.fuzzy[f"{kelurahan} / {kecamatan} -> {close[0]}"] += 1
            return self.by_kec[(close[0], kec)]
        self.unmatched[f"{kelurahan} / {kecamatan} / {kota}"] += 1
        return None


def write_wilayah(rows: list[dict[str, str]], out: Path) -> None:
    with (out / "wilayah.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["level", "code", "parent", "name", "postal_code", "lat", "lon"])
        for row in rows:
            lat = f"{float(row['centroid_lat']):.6f}" if row["centroid_lat"] else ""
            lon = f"{float(row['centroid_lng']):.6f}" if row["centroid_lng"] else ""
            writer.writerow(
                [
                    row["level"],
                    row["kode"],
                    row["kode_induk"],
                    row["nama"],
                    row["kodepos"],
                    lat,
                    lon,
                ]
            )


def write_streets(source: Path, matcher: KelurahanMatcher, out: Path) -> int:
    rows = read_csv(source / "osm2012_roads_by_kelurahan.csv")
    kept = 0
    with (out / "streets.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "kelurahan_code", "lat", "lon", "length_m"])
        for row in rows:
            code = matcher.match(row["kelurahan"], row["kecamatan"], row["kota"])
            if code is None or not row["name"].strip():
                continue
            writer.writerow(
                [row["name"].strip(), code, row["lat"], row["lon"], round(float(row["length_m"]))]
            )
            kept += 1
    return kept


def write_rw(source: Path, matcher: KelurahanMatcher, out: Path) -> int:
    kept = 0
    with (out / "rw.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["rw", "kelurahan_code", "lat", "lon"])
        seen: set[tuple[int, str]] = set()
        for row in read_csv(source / "osm2012_rw_centroids.csv"):
            found = re.fullmatch(r"RW\s*0*(\d{1,3})", row["rw"].strip(), re.IGNORECASE)
            if not found:
                continue  # unnamed areas and industrial estates are not RW
            code = matcher.match(row["kelurahan"], row["kecamatan"], row["kota"])
            number = int(found.group(1))
            if code is None or (number, code) in seen:
                continue
            seen.add((number, code))
            writer.writerow([number, code, row["lat"], row["lon"]])
            kept += 1
    return kept


def main(argv: list[str]) -> int:
    args = argv[1:]
    out = OUT
    if "--out" in args:
        at = args.index("--out")
        out = Path(args[at + 1])
        del args[at : at + 2]
    if len(args) != 1:
        print("usage: build_areas.py SOURCE_DIR [--out DIR]", file=sys.stderr)
        return 2
    source = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    wilayah_rows = read_csv(source / "jakarta_wilayah_kemendagri.csv")
    wilayah = {row["kode"]: row for row in wilayah_rows}
    write_wilayah(wilayah_rows, out)

    features = build_polygons(source, wilayah)
    check_spots(features)
    collection = {"type": "FeatureCollection", "features": features}
    target = out / "kelurahan.geojson"
    target.write_text(json.dumps(collection, separators=(",", ":")), encoding="utf-8")
    print(f"kelurahan.geojson: {len(features)} features, {target.stat().st_size:,} bytes")

    matcher = KelurahanMatcher(wilayah)
    print(f"streets.csv: {write_streets(source, matcher, out)} rows")
    print(f"rw.csv: {write_rw(source, matcher, out)} rows")
    if matcher.fuzzy:
        print("matched by close spelling within the kecamatan:")
        for name, count in sorted(matcher.fuzzy.items()):
            print(f"  {name}: {count} rows")
    if matcher.unmatched:
        print("not matched to a Kemendagri kelurahan (rows skipped):")
        for name, count in sorted(matcher.unmatched.items()):
            print(f"  {name}: {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
