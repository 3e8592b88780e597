"""Defensive readers for platform JSON (Meta, X): optional objects, arrays, ids, text and
coordinates, each refusing what is not of its type with MalformedPayload."""

from __future__ import annotations

import math
from typing import Any

from connectors.base import Coordinates, MalformedPayload


def sub_object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """`parent[key]` when it is an object, else an empty one (optional sub-objects)."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} is not an object")
    return value


def json_array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedPayload(f"{what} is not an array")
    return value


def id_text(value: Any) -> str | None:
    """Ids arrive as strings, sometimes as numbers; never as anything else."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, str | int):
        return str(value)
    raise MalformedPayload(f"bad id {value!r}")


def text_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def coordinates_at(lat: Any, lon: Any) -> Coordinates | None:
    """Coordinates when both are finite numbers in range, else None (never a guess)."""
    if isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Coordinates(lat=float(lat), lon=float(lon))
