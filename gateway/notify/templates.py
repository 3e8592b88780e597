"""The texts citizens get: config/notify/{language}.toml, one per kind (ack, done) and
family (sms, e-mail, chat), with the ticket and the tracking link filled in."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.base.config import Settings
from gateway.notify.planning import Plan
from normalizers.report import Report

ROOT = Path(__file__).resolve().parents[2]


DEFAULT_TEMPLATES = ROOT / "config" / "notify"


KINDS = ("ack", "done")


class Templates:
    """config/notify/{language}.toml: `[ack]`/`[done]` × sms, email_subject, email, chat."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]):
        self.texts = texts

    @classmethod
    def load(cls, directory: str | Path, language: str) -> Templates:
        path = Path(directory or DEFAULT_TEMPLATES) / f"{language}.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        missing = [
            f"{kind}.{key}"
            for kind in KINDS
            for key in ("sms", "email_subject", "email", "chat")
            if not isinstance((data.get(kind) or {}).get(key), str)
        ]
        if missing:
            raise ValueError(f"{path}: missing texts {', '.join(missing)}")
        return cls(data)

    def render(self, kind: str, family: str, **values: str) -> str:
        return self.texts[kind][family].strip().format_map(_Blank(values))


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def family_of(channel: str) -> str:
    if channel == "sms":
        return "sms"
    if channel == "email":
        return "email"
    return "chat"


def track_url(settings: Settings, ticket: str) -> str:
    return f"{settings.server.public_url}/track/{ticket}"


def render_body(
    plan: Plan, report: Report, kind: str, templates: Templates, settings: Settings
) -> tuple[str, dict[str, Any]]:
    family = family_of(report.channel)
    values = {"ticket": report.ticket, "track_url": track_url(settings, report.ticket)}
    meta = dict(plan.meta)
    if family == "email":
        # A neutral subject with the ticket: the citizen's own subject is never echoed.
        meta["subject"] = templates.render(kind, "email_subject", **values)
        meta["message_id"] = f"<{kind}.{report.id.lower()}@{meta.pop('domain', 'kanal.invalid')}>"
    return templates.render(kind, family, **values), meta
