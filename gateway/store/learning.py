"""Admins' decisions kept as labelled examples (written in the transaction of the change
they come from, whichever door it came through), and the text models learned from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from gateway.store.engine import StoreEngine
from gateway.store.schema import decisions, text_models
from normalizers.report import HistoryEntry, Report

# Rejection reasons that say "this is not a complaint": the not-a-complaint examples.
NOISE_REASONS = frozenset({"spam", "not_a_complaint"})


def decision_text(report: Report) -> str:
    """The words a decision was made on: the citizen's title and text, as classified."""
    return "\n".join(p for p in (report.title, report.text) if p)


def decisions_of(report: Report, entries: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    """The decisions a person made in these new history entries of `report`: category set
    or kept (at submit), location chosen, rejection with its reason, hand-over, reopening."""
    found: list[dict[str, Any]] = []

    def add(entry: HistoryEntry, kind: str, label: str, detail: str | None = None) -> None:
        found.append(
            {
                "report_id": report.id,
                "kind": kind,
                "label": label[:80],
                "detail": detail,
                "text": decision_text(report),
                "channel": report.channel,
                "by": entry.by[:128],
                "decided_at": entry.at,
            }
        )

    for entry in entries:
        if entry.by == "system":
            continue
        changes = entry.changes or {}
        if entry.note == "enriched":
            if "category" in changes:
                add(entry, "category", str(changes["category"]), "set")
            location = changes.get("location")
            if isinstance(location, dict) and location.get("kelurahan"):
                add(entry, "location", str(location["kelurahan"]))
            if "owner" in changes:
                add(entry, "handover", str(changes["owner"]))
        elif entry.note == "submitted":
            category = report.category
            add(entry, "category", category.code, "set" if category.source == "admin" else "kept")
            if report.location.kelurahan is not None:
                add(entry, "location", report.location.kelurahan.code)
        elif entry.status == "rejected" and "reason" in changes:
            add(entry, "rejection", str(changes["reason"]))
        elif entry.note == "reopened":
            add(entry, "reopened", "")
    return found


def record_decisions_sync(
    conn: Connection, report: Report, entries: Sequence[HistoryEntry]
) -> None:
    rows = decisions_of(report, entries)
    if rows:
        conn.execute(decisions.insert(), rows)


@dataclass(frozen=True, slots=True)
class LabelledReport:
    """What a report's decisions, in order, finally say about its text."""

    report_id: str
    text: str
    category: str | None  # the latest category an admin set or kept
    noise: bool | None  # rejected as spam / not a complaint, or handled as a complaint
    last_decision_id: int
    decided_at: datetime


def fold_decisions(rows: Sequence[Any]) -> list[LabelledReport]:
    """One labelled example per report from its decisions (in id order): the latest word
    wins, a reopening takes a rejection back. Ordered by the report's latest decision."""
    state: dict[str, dict[str, Any]] = {}
    for row in rows:
        s = state.setdefault(row.report_id, {"category": None, "noise": None})
        if row.kind == "category":
            s["category"] = row.label if row.label != "unknown" else None
            s["noise"] = False
        elif row.kind == "rejection":
            if row.label in NOISE_REASONS:
                s["category"], s["noise"] = None, True
            else:  # a duplicate or out-of-scope complaint is still a complaint
                s["noise"] = False
        elif row.kind == "reopened":
            s["noise"] = None
        else:
            continue
        s["text"], s["last"], s["at"] = row.text, row.id, row.decided_at
    out = [
        LabelledReport(report_id, s["text"], s["category"], s["noise"], s["last"], s["at"])
        for report_id, s in state.items()
        if "last" in s and (s["category"] is not None or s["noise"] is not None)
    ]
    out.sort(key=lambda e: e.last_decision_id)
    return out


@dataclass(frozen=True, slots=True)
class StoredModel:
    id: int
    trained_at: datetime
    trained_on: int
    last_decision_id: int
    evaluated_on: int
    category_accuracy: float | None
    noise_accuracy: float | None
    activated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trained_at": self.trained_at.isoformat(),
            "trained_on": self.trained_on,
            "evaluated_on": self.evaluated_on,
            "category_accuracy": self.category_accuracy,
            "noise_accuracy": self.noise_accuracy,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
        }


_MODEL_COLUMNS = (
    text_models.c.id,
    text_models.c.trained_at,
    text_models.c.trained_on,
    text_models.c.last_decision_id,
    text_models.c.evaluated_on,
    text_models.c.category_accuracy,
    text_models.c.noise_accuracy,
    text_models.c.activated_at,
)
_ACTIVE = (
    select(*_MODEL_COLUMNS)
    .where(text_models.c.activated_at.is_not(None))
    .order_by(text_models.c.activated_at.desc(), text_models.c.id.desc())
    .limit(1)
)


class LearningStore(StoreEngine):
    """Decisions and text models."""

    async def labelled_reports(self) -> list[LabelledReport]:
        async with self.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        decisions.c.id,
                        decisions.c.report_id,
                        decisions.c.kind,
                        decisions.c.label,
                        decisions.c.text,
                        decisions.c.decided_at,
                    ).order_by(decisions.c.id)
                )
            ).all()
        return fold_decisions(rows)

    async def report_decisions(self, report_id: str) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(
                select(decisions).where(decisions.c.report_id == report_id).order_by(decisions.c.id)
            )
            return [dict(row._mapping) for row in rows]

    async def save_text_model(
        self,
        data: bytes,
        *,
        trained_at: datetime,
        trained_on: int,
        last_decision_id: int,
        evaluated_on: int,
        category_accuracy: float | None,
        noise_accuracy: float | None,
        activate: bool,
    ) -> int:
        async with self.write() as conn:
            result = await conn.execute(
                text_models.insert().values(
                    data=data,
                    trained_at=trained_at,
                    trained_on=trained_on,
                    last_decision_id=last_decision_id,
                    evaluated_on=evaluated_on,
                    category_accuracy=category_accuracy,
                    noise_accuracy=noise_accuracy,
                    activated_at=trained_at if activate else None,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def active_text_model(self) -> StoredModel | None:
        async with self.read() as conn:
            row = (await conn.execute(_ACTIVE)).first()
        return StoredModel(*row) if row else None

    async def text_model_data(self, model_id: int) -> bytes | None:
        async with self.read() as conn:
            row = (
                await conn.execute(select(text_models.c.data).where(text_models.c.id == model_id))
            ).first()
        return bytes(row[0]) if row else None

    async def last_training_at(self) -> datetime | None:
        async with self.read() as conn:
            return (await conn.execute(select(func.max(text_models.c.trained_at)))).scalar()
