"""Jakarta's areas: point → kelurahan lookup, the Kemendagri gazetteer and owner scopes.

Owns the data under `config/areas/` (built by `scripts/build_areas.py`). Pure: the files
are read once when an `AreaIndex` is built; every method after that is CPU only.
"""

from __future__ import annotations

import csv
import difflib
import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely import STRtree
from shapely.geometry import shape

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "config" / "areas"

_OWNER_LEVELS = ("kota", "kecamatan", "kelurahan")


@dataclass(frozen=True, slots=True)
class Area:
    """One administrative area: Kemendagri code and official name."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class AreaMatch:
    """A kelurahan with the kecamatan and kota it belongs to."""

    kelurahan: Area
    kecamatan: Area
    kota: Area


@dataclass(frozen=True, slots=True)
class _GazetteerRow:
    level: str
    code: str
    parent: str
    name: str
    postal_code: str
    lat: float | None
    lon: float | None


def name_key(text: str) -> str:
    """Accent-, case- and space-insensitive key: "Setia Budi" and "setiabudi" meet."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", folded)


_SEARCH_PREFIX = re.compile(r"^\s*(kelurahan|kel|kecamatan|kec|desa|ds)\b\.?\s*", re.IGNORECASE)


class AreaIndex:
    """Kelurahan polygons in an STRtree plus the gazetteer of kota, kecamatan and kelurahan."""

    def __init__(
        self,
        rows: list[_GazetteerRow],
        geometries: list[shapely.Geometry],
        polygon_codes: list[str],
    ) -> None:
        self._rows = {row.code: row for row in rows}
        self._kota: dict[str, Area] = {}
        self._kecamatan: dict[str, Area] = {}
        self._matches: dict[str, AreaMatch] = {}
        for row in rows:
            if row.level == "kota_kab":
                self._kota[row.code] = Area(row.code, row.name)
            elif row.level == "kecamatan":
                self._kecamatan[row.code] = Area(row.code, row.name)
        for row in rows:
            if row.level != "kelurahan":
                continue
            kecamatan = self._kecamatan[row.parent]
            kota = self._kota[self._rows[row.parent].parent]
            self._matches[row.code] = AreaMatch(Area(row.code, row.name), kecamatan, kota)
        self.postal_codes: dict[str, list[str]] = {}
        for row in rows:
            if row.level == "kelurahan" and row.postal_code:
                self.postal_codes.setdefault(row.postal_code, []).append(row.code)

        self._polygon_matches = [self._matches[code] for code in polygon_codes]
        self._tree = STRtree(geometries)
        # `covered_by` (not `within`) so a point on a shared edge hits both neighbours;
        # the lowest code among them is then the one stable answer.
        shapely.prepare(geometries)
        xmin, ymin, xmax, ymax = shapely.total_bounds(geometries) if geometries else (0, 0, 0, 0)
        self._bounds = (float(xmin), float(ymin), float(xmax), float(ymax))

        self._search_keys: list[tuple[str, str, str]] = []  # (key, level, code)
        for code, match in self._matches.items():
            self._search_keys.append((name_key(match.kelurahan.name), "kelurahan", code))
        for code, kecamatan in self._kecamatan.items():
            self._search_keys.append((name_key(kecamatan.name), "kecamatan", code))

    # ---- construction -------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path | None = None) -> AreaIndex:
        directory = directory or DEFAULT_DIRECTORY
        rows: list[_GazetteerRow] = []
        with (directory / "wilayah.csv").open(encoding="utf-8", newline="") as handle:
            for raw in csv.DictReader(handle):
                rows.append(
                    _GazetteerRow(
                        level=raw["level"],
                        code=raw["code"],
                        parent=raw["parent"],
                        name=raw["name"],
                        postal_code=raw["postal_code"],
                        lat=float(raw["lat"]) if raw["lat"] else None,
                        lon=float(raw["lon"]) if raw["lon"] else None,
                    )
                )
        collection = json.loads((directory / "kelurahan.geojson").read_text(encoding="utf-8"))
        geometries = [shape(feature["geometry"]) for feature in collection["features"]]
        codes = [feature["properties"]["kelurahan_code"] for feature in collection["features"]]
        return cls(rows, geometries, codes)

    # ---- lookups ------------------------------------------------------------------

    def locate(self, lat: float, lon: float) -> AreaMatch | None:
        """The kelurahan containing the point, or None outside DKI Jakarta (or bad input)."""
        try:
            lat_f, lon_f = float(lat), float(lon)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
            return None
        xmin, ymin, xmax, ymax = self._bounds
        # Cheap reject before touching GEOS; also rejects out-of-range degrees.
        if not (xmin <= lon_f <= xmax and ymin <= lat_f <= ymax):
            return None
        hits = self._tree.query(shapely.Point(lon_f, lat_f), predicate="covered_by")
        if len(hits) == 0:
            return None
        if len(hits) == 1:
            return self._polygon_matches[int(hits[0])]
        return min((self._polygon_matches[int(i)] for i in hits), key=lambda m: m.kelurahan.code)

    def by_kelurahan_code(self, code: str) -> AreaMatch | None:
        return self._matches.get(code)

    def centroid(self, kelurahan_code: str) -> tuple[float, float] | None:
        """(lat, lon) of the kelurahan's gazetteer centroid."""
        row = self._rows.get(kelurahan_code)
        if row is None or row.level != "kelurahan" or row.lat is None or row.lon is None:
            return None
        return (row.lat, row.lon)

    def kecamatan(self, code: str) -> Area | None:
        return self._kecamatan.get(code)

    def kota(self, code: str) -> Area | None:
        return self._kota.get(code)

    @property
    def kelurahan_matches(self) -> list[AreaMatch]:
        return list(self._matches.values())

    @property
    def kecamatan_areas(self) -> list[Area]:
        return list(self._kecamatan.values())

    @property
    def kota_areas(self) -> list[Area]:
        return list(self._kota.values())

    def kelurahan_in_kecamatan(self, kecamatan_code: str) -> list[AreaMatch]:
        return [m for m in self._matches.values() if m.kecamatan.code == kecamatan_code]

    # ---- search -------------------------------------------------------------------

    def search(self, query: str, limit: int = 10) -> list[AreaMatch]:
        """Kelurahan whose name (or whose kecamatan's name) matches, best first.

        Exact key, then prefix, then substring, then close spelling (typos); a kecamatan
        match lists its kelurahan after direct kelurahan matches of the same strength.
        """
        key = name_key(_SEARCH_PREFIX.sub("", query or ""))
        if not key or limit <= 0:
            return []
        scored: dict[str, float] = {}
        for candidate, level, code in self._search_keys:
            if candidate == key:
                score = 4.0
            elif candidate.startswith(key):
                score = 3.0 - (len(candidate) - len(key)) / 100
            elif len(key) >= 3 and key in candidate:
                score = 2.0 - (len(candidate) - len(key)) / 100
            elif len(key) >= 4:
                ratio = difflib.SequenceMatcher(None, key, candidate).ratio()
                if ratio < 0.75:
                    continue
                score = 1.0 + ratio / 2
            else:
                continue
            codes = (
                [code]
                if level == "kelurahan"
                else [m.kelurahan.code for m in self.kelurahan_in_kecamatan(code)]
            )
            # A kecamatan hit ranks just below a kelurahan hit of the same strength.
            bonus = 0.0 if level == "kelurahan" else -0.05
            for kel_code in codes:
                scored[kel_code] = max(scored.get(kel_code, -1.0), score + bonus)
        ranked = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
        return [self._matches[code] for code, _ in ranked[:limit]]

    # ---- scopes -------------------------------------------------------------------

    def owner_contains(self, owner: str, other: str) -> bool:
        """Whether scope `owner` covers owner `other`.

        `province` covers everything; an area covers itself and every area inside it;
        `office:X` covers only `office:X`. Unknown area codes cover nothing but themselves.
        """
        if owner == "province":
            return True
        if owner == other:
            return True
        owner_level, _, owner_code = owner.partition(":")
        other_level, _, other_code = other.partition(":")
        if owner_level not in _OWNER_LEVELS or other_level not in _OWNER_LEVELS:
            return False
        # Walk up the gazetteer from `other` rather than comparing string prefixes.
        code = other_code
        row = self._rows.get(code)
        if row is None or _level_name(row.level) != other_level:
            return False
        while row is not None:
            if row.code == owner_code and _level_name(row.level) == owner_level:
                return True
            row = self._rows.get(row.parent)
        return False


def _level_name(gazetteer_level: str) -> str:
    return "kota" if gazetteer_level == "kota_kab" else gazetteer_level


@functools.cache
def default_index() -> AreaIndex:
    """The AreaIndex of `config/areas/`, loaded once per process."""
    return AreaIndex.load()
