"""The canonical report: the one shape every channel's message becomes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal[
    "received",
    "pending_enrichment",
    "ready",
    "posting",
    "posted",
    "in_progress",
    "done",
    "rejected",
    "failed",
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
OPEN_STATUSES = ("received", "pending_enrichment", "ready", "posting", "posted", "in_progress")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reporter(Model):
    name: str | None = None
    phone: str | None = None  # E.164 when it parsed as a phone number
    email: str | None = None
    handle: str | None = None
    channel_user_id: str | None = None
    phone_raw: str | None = None  # the sender string as it arrived


class Attachment(Model):
    sha256: str | None = None
    content_type: str | None = None
    size: int | None = None
    filename: str | None = None
    source_url: str | None = None
    state: Literal["stored", "pending", "unavailable"] = "pending"
    error: str | None = None
    file_id: str | None = None


class AreaRef(Model):
    code: str
    name: str


class Location(Model):
    lat: float | None = None
    lon: float | None = None
    source: Literal["device", "exif", "admin"] | None = None
    accuracy_m: float | None = None
    address: str | None = None
    kelurahan: AreaRef | None = None
    kecamatan: AreaRef | None = None
    kota: AreaRef | None = None
    precision: Literal["point", "kelurahan"] | None = None


class Category(Model):
    code: str = "unknown"
    name: str = "Belum diketahui"
    agency: str | None = None
    service_code: str | None = None
    confidence: float = 0.0
    # Who answered: the keyword rules (or the channel's own label), the model learned from
    # admins' decisions, or an admin.
    source: Literal["rules", "model", "admin"] = "rules"


class LocationSuggestion(Model):
    kelurahan: AreaRef
    kecamatan: AreaRef | None = None
    kota: AreaRef | None = None
    lat: float | None = None
    lon: float | None = None
    confidence: float
    evidence: str


class DuplicateSuggestion(Model):
    id: str
    ticket: str
    why: str


class Suggestions(Model):
    locations: list[LocationSuggestion] = Field(default_factory=list)
    duplicate_of: list[DuplicateSuggestion] = Field(default_factory=list)


class Lease(Model):
    holder: str
    until: datetime


class FollowUp(Model):
    at: datetime
    channel: str
    text: str
    attachments: list[Attachment] = Field(default_factory=list)
    raw_message_id: str | None = None
    # Who sent it (only the reporter may add follow-ups); None on follow-ups stored before.
    sender: Reporter | None = None


class Delivery(Model):
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None


class Notification(Model):
    channel: str
    kind: Literal["ack", "done"]
    state: Literal["queued", "sending", "sent", "failed", "skipped"]
    sent_at: datetime | None = None
    error: str | None = None


class CrmState(Model):
    system: str | None = None
    request_id: str | None = None
    token: str | None = None
    status: str | None = None
    status_notes: str | None = None
    posted_at: datetime | None = None
    updated_at: datetime | None = None


class HistoryEntry(Model):
    at: datetime
    status: str
    by: str
    note: str | None = None
    changes: dict[str, object] | None = None


class Report(Model):
    id: str
    ticket: str
    channel: str
    connector: str
    intake: Literal["webhook", "poll", "smtp", "desk", "import"]
    external_id: str
    received_at: datetime
    reporter: Reporter = Field(default_factory=Reporter)
    confidential: bool = False
    text: str = ""
    title: str | None = None
    description: str | None = None
    language: str = "id"
    attachments: list[Attachment] = Field(default_factory=list)
    location: Location = Field(default_factory=Location)
    geo_tagged: bool = False
    non_geo_reason: Literal["no_location", "out_of_area"] | None = None
    category: Category = Field(default_factory=Category)
    noise_score: float = 0.0
    suggestions: Suggestions = Field(default_factory=Suggestions)
    owner: str
    status: Status
    version: int = 1
    lease: Lease | None = None
    duplicate_of: str | None = None
    incomplete: bool = False
    follow_ups: list[FollowUp] = Field(default_factory=list)
    delivery: Delivery = Field(default_factory=Delivery)
    notifications: list[Notification] = Field(default_factory=list)
    crm: CrmState = Field(default_factory=CrmState)
    rejection: dict[str, str | None] | None = None
    # Why the report is back in its owner's queue whatever its status ("follow_up_after_done").
    attention: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
