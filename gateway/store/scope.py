"""Scopes as SQL and in memory: which owners a token or a person may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    or_,
    text,
)

from gateway.store.schema import (
    reports,
)


def scope_condition(scope: str) -> Any:
    """Which report owners a scope sees: owner-based, never location-based."""
    kind, _, code = scope.partition(":")
    if kind == "province":
        return text("1=1")
    if kind == "kota":
        return or_(
            reports.c.owner == scope,
            reports.c.owner.like(f"kecamatan:{code}.%"),
            reports.c.owner.like(f"kelurahan:{code}.%"),
        )
    if kind == "kecamatan":
        return or_(reports.c.owner == scope, reports.c.owner.like(f"kelurahan:{code}.%"))
    return reports.c.owner == scope


def scope_contains(scope: str, owner: str) -> bool:
    """The same rule as `scope_condition`, for one owner in memory."""
    kind, _, code = scope.partition(":")
    if kind == "province" or owner == scope:
        return True
    if kind == "kota":
        return owner.startswith((f"kecamatan:{code}.", f"kelurahan:{code}."))
    if kind == "kecamatan":
        return owner.startswith(f"kelurahan:{code}.")
    return False
