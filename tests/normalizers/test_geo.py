"""Point → kelurahan lookup, gazetteer search and owner scopes (normalizers.geo)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from normalizers.geo import DEFAULT_DIRECTORY, AreaIndex, default_index


@pytest.fixture(scope="module")
def index() -> AreaIndex:
    return default_index()


SPOT_CHECKS = [
    ("Monas", -6.1754, 106.8272, "31.71.01.1001", "Gambir"),
    ("Bundaran HI", -6.1950, 106.8230, "31.71.06.1001", "Menteng"),
    ("Blok M", -6.2443, 106.8006, "31.74.07.1001", "Melawai"),
    ("Kota Tua", -6.1352, 106.8133, "31.73.03.1008", "Pinangsia"),
    ("Ragunan", -6.3125, 106.8200, "31.74.04.1004", "Ragunan"),
    ("Pulau Pramuka", -5.7457, 106.6136, "31.01.01.1001", "Pulau Panggang"),
    ("Stasiun Manggarai", -6.2099, 106.8502, "31.74.01.1007", "Manggarai"),
    ("Tanjung Priok port", -6.1040, 106.8806, "31.72.02.1001", "Tanjung Priok"),
]


@pytest.mark.parametrize(("place", "lat", "lon", "code", "name"), SPOT_CHECKS)
def test_spot_checks_from_source_md_land_in_their_kelurahan(index, place, lat, lon, code, name):
    match = index.locate(lat, lon)
    assert match is not None, place
    assert match.kelurahan.code == code
    assert match.kelurahan.name == name


@pytest.mark.parametrize(
    ("place", "lat", "lon"),
    [
        ("sea north of Ancol", -6.08, 106.84),
        ("Depok", -6.4025, 106.7942),
        ("Bekasi", -6.2383, 106.9756),
    ],
)
def test_points_outside_dki_are_none(index, place, lat, lon):
    assert index.locate(lat, lon) is None, place


def test_a_match_carries_kecamatan_and_the_gazetteers_kota_name(index):
    match = index.locate(-6.1950, 106.8230)
    assert match.kecamatan.code == "31.71.06"
    assert match.kecamatan.name == "Menteng"
    assert match.kota.code == "31.71"
    assert match.kota.name == "Kota Administrasi Jakarta Pusat"


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (math.nan, 106.8),
        (-6.2, math.nan),
        (math.inf, 106.8),
        (-6.2, -math.inf),
        (91.0, 106.8),
        (-6.2, 181.0),
        (1e308, -1e308),
        (0.0, 0.0),
    ],
)
def test_nan_infinite_and_out_of_range_input_is_none(index, lat, lon):
    assert index.locate(lat, lon) is None


def test_non_numeric_input_is_none_not_an_error(index):
    assert index.locate("abc", None) is None  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True)
)
def test_locate_never_raises_for_any_floats(lat, lon):
    result = default_index().locate(lat, lon)
    assert result is None or result.kelurahan.code.startswith("31.")


def _shared_vertex():
    """A vertex that two different kelurahan polygons both cover: a point on their edge."""
    collection = json.loads((DEFAULT_DIRECTORY / "kelurahan.geojson").read_text("utf-8"))
    features = collection["features"]
    geoms = [shape(f["geometry"]) for f in features]
    menteng = next(
        i for i, f in enumerate(features) if f["properties"]["kelurahan_code"] == "31.71.06.1001"
    )
    for x, y in shapely.get_coordinates(geoms[menteng].boundary):
        point = shapely.Point(x, y)
        covering = {
            features[i]["properties"]["kelurahan_code"]
            for i, g in enumerate(geoms)
            if g.covers(point)
        }
        if len(covering) >= 2:
            return float(y), float(x), covering
    raise AssertionError("Menteng shares no vertex with a neighbour")


def test_a_point_on_a_shared_boundary_gets_one_stable_answer(index):
    lat, lon, covering = _shared_vertex()
    answers = {index.locate(lat, lon).kelurahan.code for _ in range(20)}
    assert answers == {min(covering)}
    # A fresh index (other tree build) gives the same answer: no dependence on order.
    assert AreaIndex.load().locate(lat, lon).kelurahan.code == min(covering)


def test_pseudo_areas_888_answer_with_the_kelurahan_they_lie_in(index):
    collection = json.loads((DEFAULT_DIRECTORY / "kelurahan.geojson").read_text("utf-8"))
    pseudo = [f for f in collection["features"] if f["properties"]["bps_code"].endswith("888")]
    assert len(pseudo) == 3
    for feature in pseudo:
        inside = shape(feature["geometry"]).representative_point()
        match = index.locate(inside.y, inside.x)
        assert match.kelurahan.code == feature["properties"]["kelurahan_code"]


def test_the_data_has_267_kelurahan_44_kecamatan_6_kota(index):
    assert len(index.kelurahan_matches) == 267
    assert len(index.kecamatan_areas) == 44
    assert len(index.kota_areas) == 6


def test_lookup_by_code_centroid_kecamatan_and_kota(index):
    assert index.by_kelurahan_code("31.71.06.1001").kelurahan.name == "Menteng"
    assert index.by_kelurahan_code("31.71.06") is None
    lat, lon = index.centroid("31.71.06.1001")
    assert index.locate(lat, lon).kelurahan.code == "31.71.06.1001"
    assert index.centroid("nope") is None
    assert index.kecamatan("31.75.03").name == "Jatinegara"
    assert index.kota("31.01").name == "Kabupaten Administrasi Kepulauan Seribu"
    assert index.kota("31.99") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Setia Budi", "31.74.02.1001"),
        ("setiabudi", "31.74.02.1001"),
        ("KEBON jeruk", "31.73.05.1001"),
        ("kel. kampung melayu", "31.75.03.1001"),
        ("jatinegra", "31.75.06.1001"),
        ("kebon jer", "31.73.05.1001"),
        ("Pulau Panggang", "31.01.01.1001"),
    ],
)
def test_search_is_case_space_prefix_and_typo_tolerant(index, query, expected):
    assert expected in [m.kelurahan.code for m in index.search(query, limit=5)]


def test_search_by_kecamatan_lists_its_kelurahan(index):
    codes = [m.kelurahan.code for m in index.search("kec. tebet", limit=10)]
    assert codes and all(code.startswith("31.74.01.") for code in codes[:7])


def test_search_nothing_for_empty_or_gibberish(index):
    assert index.search("") == []
    assert index.search("   ") == []
    assert index.search("qqqqzzzz") == []
    assert len(index.search("a", limit=3)) <= 3


OWNER_MATRIX = [
    ("province", "kota:31.71", True),
    ("province", "kelurahan:31.71.06.1001", True),
    ("province", "office:inspektorat", True),
    ("kota:31.71", "kota:31.71", True),
    ("kota:31.71", "kecamatan:31.71.06", True),
    ("kota:31.71", "kelurahan:31.71.06.1001", True),
    ("kota:31.71", "kelurahan:31.72.02.1001", False),
    ("kota:31.71", "province", False),
    ("kota:31.71", "office:balai_kota", False),
    ("kecamatan:31.71.06", "kelurahan:31.71.06.1001", True),
    ("kecamatan:31.71.06", "kelurahan:31.71.01.1001", False),
    ("kecamatan:31.71.06", "kota:31.71", False),
    ("kelurahan:31.71.06.1001", "kelurahan:31.71.06.1001", True),
    ("kelurahan:31.71.06.1001", "kelurahan:31.71.06.1002", False),
    ("kelurahan:31.71.06.1001", "kecamatan:31.71.06", False),
    ("office:inspektorat", "office:inspektorat", True),
    ("office:inspektorat", "office:balai_kota", False),
    ("office:inspektorat", "kelurahan:31.71.06.1001", False),
    ("kota:31.7", "kelurahan:31.71.06.1001", False),  # no string-prefix accidents
    ("kecamatan:31.71.0", "kelurahan:31.71.06.1001", False),
    ("kota:31.71", "kelurahan:31.71.99.9999", False),  # unknown code
    ("kota:31.71", "kecamatan:31.71.06.1001", False),  # level and code disagree
]


@pytest.mark.parametrize(("owner", "other", "expected"), OWNER_MATRIX)
def test_owner_contains_matrix(index, owner, other, expected):
    assert index.owner_contains(owner, other) is expected


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-6.5, max_value=-5.1), st.floats(min_value=106.3, max_value=107.1))
def test_locate_inside_the_bounding_box_answers_a_consistent_hierarchy(lat, lon):
    match = default_index().locate(lat, lon)
    if match is not None:
        assert match.kelurahan.code.startswith(match.kecamatan.code + ".")
        assert match.kecamatan.code.startswith(match.kota.code + ".")


SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "geo"


@pytest.mark.skipif(not SOURCE.exists(), reason="../shared/data/geo is not on this machine")
def test_build_script_reproduces_the_committed_area_files(tmp_path):
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_areas.py"
    subprocess.run(
        [sys.executable, str(script), str(SOURCE), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in ("kelurahan.geojson", "wilayah.csv", "streets.csv", "rw.csv"):
        assert (tmp_path / name).read_bytes() == (DEFAULT_DIRECTORY / name).read_bytes(), name
