"""The notifier plans a report the pipeline of its process just wrote from the report kept
in memory, not by parsing it again; a report changed since is read from the store."""

from __future__ import annotations

from typing import Any

import pytest

from normalizers.report import Report
from tests.gateway.notify.helpers import arrive, notification, notifier, sms


async def test_a_new_report_is_acknowledged_without_parsing_it_again(
    make_kanal: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = await make_kanal(db_url)
    report = await arrive(k, sms(connector="sms_generic"))
    parsed: list[str] = []
    parse = Report.model_validate_json

    def counting(data: Any, *args: Any, **kwargs: Any) -> Report:
        made = parse(data, *args, **kwargs)
        parsed.append(made.id)
        return made

    monkeypatch.setattr(Report, "model_validate_json", counting)
    await notifier(k).drain()
    monkeypatch.undo()
    assert report.id not in parsed
    assert (await notification(k, report.id))["kind"] == "ack"


async def test_a_report_changed_since_it_was_written_is_not_taken_from_memory(
    make_kanal: Any, db_url: str
) -> None:
    k = await make_kanal(db_url)
    report = await arrive(k, sms(connector="sms_generic"))
    assert k.store.recent_report(report.id, report.version) is not None

    def titled(r: Report) -> Report:
        return r.model_copy(update={"history": [], "title": "Lampu PJU"})

    changed = await k.store.update_report(report.id, titled)
    assert changed is not None and changed.version == report.version + 1
    assert k.store.recent_report(report.id, changed.version) is None
