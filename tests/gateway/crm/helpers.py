"""Shared by the CRM fault tests: signed JAKI bodies and a CRM section with fast retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import kanal_signature
from tests.conftest import SECRETS

# Inside kelurahan Menteng (Jakarta Pusat): geo-tagged, so the report goes straight to ready.
LAT, LON = -6.1958, 106.8340
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def jaki_body(
    n: int, *, prefix: str = "J", created_at: datetime | None = None, **extra: Any
) -> bytes:
    body = {
        "id": f"{prefix}-{n:06d}",
        "reporter": {"name": "Siti Rahma", "phone": "081234567890", "email": "siti@example.id"},
        "text": f"Jalan berlubang besar di depan SDN 01 Menteng nomor {n}",
        "category": "Jalan",
        "location": {"lat": LAT, "lon": LON, "accuracy_m": 12.5, "address": "Jl. Besuki, Menteng"},
        "photos": [],
        "created_at": (created_at or T0 + timedelta(seconds=n)).isoformat(),
        **extra,
    }
    return json.dumps(body).encode()


def jaki_headers(body: bytes) -> dict[str, str]:
    return {
        "X-Kanal-Signature": kanal_signature(SECRETS["jaki"], body),
        "Content-Type": "application/json",
    }


def crm_section(endpoint: str, *, mode: str = "open311", **overrides: Any) -> str:
    """A [crm] table whose retries, timeouts and breaker fit in a test's few seconds."""
    values: dict[str, Any] = {
        "mode": mode,
        "endpoint": endpoint,
        "api_key": "test-key",
        "timeout_s": 0.5,
        "retry_base_s": 0.05,
        "retry_max_delay_s": 0.3,
        "breaker_failures": 5,
        "breaker_reset_s": 0.2,
        "claim_ttl_s": 3.0,
        "max_attempts": 100,
        "concurrency": 4,
        "status_poll_interval_s": 0.5,
    }
    values.update(overrides)
    lines = ["", "[crm]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
