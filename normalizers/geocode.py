"""Address text → coordinates for the admin's "find location" box (`GET /api/v1/geocode`).

Offline by default: answers come from the gazetteer and the text-location matcher. An
online geopy provider (e.g. Nominatim) is wrapped only when configured; its calls block,
so the caller runs `suggest` in a thread. Every result is placed in a kelurahan through
`AreaIndex.locate`, never trusted from the provider.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from normalizers.geo import Area, AreaIndex, default_index
from normalizers.places import suggest_locations

# DKI Jakarta plus a margin, as (south-west, north-east) for geopy's viewbox.
DKI_VIEWBOX = ((-6.40, 106.36), (-5.18, 107.00))


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    lat: float
    lon: float
    kelurahan: Area | None  # None when the point is outside DKI Jakarta
    kecamatan: Area | None
    kota: Area | None
    display_name: str
    source: str  # "gazetteer" | "places" | the geopy provider's name
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        def area(value: Area | None) -> dict[str, str] | None:
            return None if value is None else {"code": value.code, "name": value.name}

        return {
            "lat": self.lat,
            "lon": self.lon,
            "kelurahan": area(self.kelurahan),
            "kecamatan": area(self.kecamatan),
            "kota": area(self.kota),
            "display_name": self.display_name,
            "source": self.source,
            "confidence": self.confidence,
        }


class GeocoderBackend(Protocol):
    def suggest(self, q: str, limit: int = 5) -> list[GeocodeResult]: ...


class Geocoder:
    """Offline suggestions first, then (if configured) an online provider's."""

    def __init__(
        self, index: AreaIndex | None = None, online: GeocoderBackend | None = None
    ) -> None:
        self.index = index or default_index()
        self.online = online

    def suggest(self, q: str, limit: int = 5) -> list[GeocodeResult]:
        query = (q or "").strip()[:300]
        if not query or limit <= 0:
            return []
        results: list[GeocodeResult] = []
        seen: set[str] = set()
        for place in suggest_locations(query, self.index, limit=limit):
            point = (place.lat, place.lon)
            if place.lat is None or place.lon is None:
                point = self.index.centroid(place.kelurahan.code) or (None, None)
            if point[0] is None or point[1] is None:
                continue
            seen.add(place.kelurahan.code)
            results.append(
                GeocodeResult(
                    lat=point[0],
                    lon=point[1],
                    kelurahan=place.kelurahan,
                    kecamatan=place.kecamatan,
                    kota=place.kota,
                    display_name=_display(
                        place.kelurahan, place.kecamatan, place.kota, place.evidence
                    ),
                    source="places",
                    confidence=place.confidence,
                )
            )
        for rank, match in enumerate(self.index.search(query, limit=limit)):
            if match.kelurahan.code in seen:
                continue
            centroid = self.index.centroid(match.kelurahan.code)
            if centroid is None:
                continue
            seen.add(match.kelurahan.code)
            results.append(
                GeocodeResult(
                    lat=centroid[0],
                    lon=centroid[1],
                    kelurahan=match.kelurahan,
                    kecamatan=match.kecamatan,
                    kota=match.kota,
                    display_name=_display(match.kelurahan, match.kecamatan, match.kota),
                    source="gazetteer",
                    confidence=round(max(0.1, 0.6 - 0.05 * rank), 3),
                )
            )
        if len(results) < limit and self.online is not None:
            results.extend(self.online.suggest(query, limit=limit - len(results)))
        return results[:limit]


def _display(kelurahan: Area, kecamatan: Area, kota: Area, evidence: str = "") -> str:
    place = f"Kel. {kelurahan.name}, Kec. {kecamatan.name}, {kota.name}"
    return f"{evidence} — {place}" if evidence else place


class _TTLCache:
    """A small LRU cache whose entries also expire; thread-safe (geocoding runs in threads)."""

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._data: OrderedDict[tuple[str, int], tuple[float, list[GeocodeResult]]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> list[GeocodeResult] | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            stored_at, value = item
            if self._clock() - stored_at > self._ttl:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, int], value: list[GeocodeResult]) -> None:
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)


class GeopyGeocoder:
    """A geopy provider, rate limited and cached; built only when the config names one.

    `provider` is a geopy geocoder instance, or a provider name (e.g. "nominatim") resolved
    with `geopy.geocoders.get_geocoder_for_service` and built with `provider_options`
    (Nominatim's usage policy requires a real `user_agent`). Calls block.
    """

    def __init__(
        self,
        provider: Any,
        index: AreaIndex | None = None,
        *,
        provider_options: dict[str, Any] | None = None,
        min_delay_seconds: float = 1.0,  # Nominatim's policy: at most one request a second
        cache_entries: int = 1024,
        cache_ttl_seconds: float = 24 * 3600,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(provider, str):
            from geopy.geocoders import get_geocoder_for_service

            self.name = provider.lower()
            provider = get_geocoder_for_service(self.name)(**(provider_options or {}))
        else:
            self.name = type(provider).__name__.lower()
        self.provider = provider
        self.index = index or default_index()
        self._min_delay = min_delay_seconds
        self._clock = clock
        self._sleep = sleep
        self._last_call: float | None = None
        self._lock = threading.Lock()
        self._cache = _TTLCache(cache_entries, cache_ttl_seconds, clock)

    def _rate_limited_geocode(self, query: str, limit: int) -> Any:
        # Serialise calls and keep the provider's minimum delay between them, like
        # geopy.extra.rate_limiter.RateLimiter, but shared by every thread.
        with self._lock:
            if self._last_call is not None:
                wait = self._min_delay - (self._clock() - self._last_call)
                if wait > 0:
                    self._sleep(wait)
            try:
                return self.provider.geocode(
                    query, exactly_one=False, limit=limit, **self._bias_kwargs()
                )
            finally:
                self._last_call = self._clock()

    def _bias_kwargs(self) -> dict[str, Any]:
        if self.name == "nominatim" or type(self.provider).__name__ == "Nominatim":
            return {"country_codes": "id", "viewbox": DKI_VIEWBOX}
        return {}

    def suggest(self, q: str, limit: int = 5) -> list[GeocodeResult]:
        query = " ".join((q or "").split())[:300]
        if not query or limit <= 0:
            return []
        key = (query.lower(), limit)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = self._rate_limited_geocode(query, limit) or []
        if not isinstance(found, list):
            found = [found]
        results = []
        for location in found[:limit]:
            lat, lon = float(location.latitude), float(location.longitude)
            match = self.index.locate(lat, lon)
            results.append(
                GeocodeResult(
                    lat=lat,
                    lon=lon,
                    kelurahan=match.kelurahan if match else None,
                    kecamatan=match.kecamatan if match else None,
                    kota=match.kota if match else None,
                    display_name=str(getattr(location, "address", "") or query),
                    source=self.name,
                    # A provider's hit is a place that exists; it is not the citizen's spot.
                    confidence=0.6 if match else 0.3,
                )
            )
        self._cache.put(key, results)
        return results
