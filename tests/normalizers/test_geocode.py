"""Offline geocoding and the optional geopy provider, with a fake provider (no network)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from normalizers.geo import default_index
from normalizers.geocode import Geocoder, GeopyGeocoder


@dataclass
class FakeLocation:
    latitude: float
    longitude: float
    address: str


class FakeProvider:
    """Stands in for a geopy geocoder: records calls, answers from a table."""

    def __init__(self, answers: dict[str, list[FakeLocation]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    def geocode(self, query: str, **kwargs):
        self.calls.append((query, kwargs))
        return self.answers.get(query)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def index():
    return default_index()


def test_offline_geocoder_answers_from_the_gazetteer(index):
    results = Geocoder(index).suggest("kel. kampung melayu, jatinegara")
    assert results[0].kelurahan.code == "31.75.03.1001"
    assert results[0].source in {"places", "gazetteer"}
    assert index.locate(results[0].lat, results[0].lon) is not None
    assert results[0].as_dict()["kelurahan"] == {"code": "31.75.03.1001", "name": "Kampung Melayu"}


def test_offline_geocoder_finds_kelurahan_by_plain_name_and_typo(index):
    assert Geocoder(index).suggest("setiabudi")[0].kelurahan.name == "Setia Budi"
    assert any(r.kelurahan.name == "Jatinegara" for r in Geocoder(index).suggest("jatinegra"))
    assert Geocoder(index).suggest("") == []


def test_online_provider_is_asked_only_when_offline_results_run_short(index):
    provider = FakeProvider(
        {
            "Jalan Sabang no 5": [
                FakeLocation(-6.1865, 106.8262, "Jalan Sabang, Kebon Sirih, Jakarta Pusat")
            ]
        }
    )
    clock = FakeClock()
    online = GeopyGeocoder(provider, index, clock=clock, sleep=clock.sleep)
    results = Geocoder(index, online=online).suggest("Jalan Sabang no 5", limit=3)
    online_results = [r for r in results if r.source == "fakeprovider"]
    assert online_results and online_results[0].kelurahan is not None
    assert online_results[0].display_name.startswith("Jalan Sabang")


def test_geopy_results_outside_dki_have_no_kelurahan(index):
    provider = FakeProvider({"depok": [FakeLocation(-6.4025, 106.7942, "Depok, Jawa Barat")]})
    result = GeopyGeocoder(provider, index, sleep=lambda s: None).suggest("depok")[0]
    assert result.kelurahan is None and result.kecamatan is None and result.kota is None
    assert result.as_dict()["kelurahan"] is None


def test_geopy_calls_are_cached_and_rate_limited(index):
    provider = FakeProvider(
        {
            "a": [FakeLocation(-6.1754, 106.8272, "Monas")],
            "b": [FakeLocation(-6.1950, 106.8230, "Bundaran HI")],
        }
    )
    clock = FakeClock()
    online = GeopyGeocoder(provider, index, min_delay_seconds=1.0, clock=clock, sleep=clock.sleep)
    assert online.suggest("a")[0].kelurahan.code == "31.71.01.1001"
    assert online.suggest("A")[0].kelurahan.code == "31.71.01.1001"  # cache, no call
    assert len(provider.calls) == 1
    online.suggest("b")
    assert len(provider.calls) == 2
    assert clock.slept == [pytest.approx(1.0)]  # waited the minimum delay between calls


def test_geopy_cache_entries_expire(index):
    provider = FakeProvider({"a": [FakeLocation(-6.1754, 106.8272, "Monas")]})
    clock = FakeClock()
    online = GeopyGeocoder(provider, index, cache_ttl_seconds=60, clock=clock, sleep=clock.sleep)
    online.suggest("a")
    clock.now += 61
    online.suggest("a")
    assert len(provider.calls) == 2


def test_no_answer_from_the_provider_is_an_empty_list(index):
    online = GeopyGeocoder(FakeProvider({}), index, sleep=lambda s: None)
    assert online.suggest("nowhere") == []
    assert online.suggest("") == []


def test_a_provider_named_by_string_is_built_with_geopy_without_any_network_call(index):
    online = GeopyGeocoder("nominatim", index, provider_options={"user_agent": "kanal-test"})
    assert type(online.provider).__name__ == "Nominatim"
    assert online._bias_kwargs()["country_codes"] == "id"
