"""CRM delivery in one process: what the CRM receives, retries, give-ups, retry, hold mode."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from gateway.crm.destinations import build_request
from gateway.crm.dispatcher import Dispatcher
from gateway.store.reports import ReportStore
from gateway.store.schema import reports
from normalizers.report import Attachment, Report
from tests.conftest import wait_for
from tests.fakes.open311 import FakeOpen311
from tests.gateway.crm.helpers import T0, crm_section, jaki_body, jaki_headers


@pytest.fixture
async def crm():
    async with FakeOpen311() as fake:
        yield fake


async def intake(k: Any, count: int, *, prefix: str = "J", start: int = 0) -> list[str]:
    """Post `count` signed JAKI reports, normalize them, return their report ids."""
    tickets = []
    for n in range(start, start + count):
        body = jaki_body(n, prefix=prefix)
        r = await k.client.post("/webhooks/jaki", data=body, headers=jaki_headers(body))
        assert r.status == 200, await r.text()
        tickets.append((await r.json())["ticket"])
    await k.drain()
    ids = [await k.store.report_id_by_ticket(t) for t in tickets]
    assert all(ids)
    return ids  # type: ignore[return-value]


async def report(k: Any, report_id: str) -> Report:
    found = await k.store.get_report(report_id)
    assert found is not None
    return found


async def test_a_ready_report_reaches_the_crm_once_with_the_contract_fields(make_kanal, crm):
    k = await make_kanal(extra=crm_section(crm.endpoint))
    [rid] = await intake(k, 1)
    assert (await report(k, rid)).status == "ready"
    dispatcher = Dispatcher(k.runtime)
    assert await dispatcher.drain() == 1
    await dispatcher.close()

    [(headers, form)] = crm.requests
    assert headers["Idempotency-Key"] == rid
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert form["api_key"] == "test-key"
    assert form["service_code"] == "JLN" or form["service_code"]  # the category's own code
    assert form["lat"] == "-6.1958" and form["long"] == "106.834"
    assert form["description"].startswith("Jalan berlubang")
    assert form["first_name"] == "Siti" and form["last_name"] == "Rahma"
    assert form["phone"] == "+6281234567890" and form["email"] == "siti@example.id"
    assert form["attribute[kanal_id]"] == rid
    assert form["attribute[channel]"] == "jaki"
    assert form["attribute[kelurahan]"].startswith("31.71.")
    assert "media_url" not in form  # no photo

    done = await report(k, rid)
    assert done.status == "posted"
    assert done.crm.request_id == crm.record_for(rid).service_request_id
    assert done.crm.system == "open311" and done.crm.posted_at is not None
    assert done.delivery.attempts == 1 and done.delivery.last_error is None
    assert [(h.status, h.by) for h in done.history][-2:] == [("posting", "crm"), ("posted", "crm")]


async def test_category_unknown_uses_the_fallback_code_and_confidential_sends_no_identity(
    make_kanal, crm
):
    k = await make_kanal(extra=crm_section(crm.endpoint, default_service_code="LAINNYA"))
    [rid] = await intake(k, 1)

    def unknown_confidential_kelurahan_only(r: Report) -> Report:
        r = r.model_copy(deep=True, update={"history": []})
        r.confidential = True
        r.category.code, r.category.service_code = "unknown", None
        r.location.lat = r.location.lon = None
        r.location.precision = "kelurahan"
        return r

    await k.store.update_report(rid, unknown_confidential_kelurahan_only)
    request = await build_request(k.runtime, await report(k, rid), k.store.clock())
    assert request.service_code == "LAINNYA"
    assert (request.first_name, request.last_name, request.email, request.phone) == (None,) * 4
    code = (await report(k, rid)).location.kelurahan.code  # type: ignore[union-attr]
    assert (request.lat, request.long) == k.runtime.areas.centroid(code)
    assert request.extra_attributes == {"location_precision": "kelurahan"}


def _jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (8, 8), "red")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def test_media_url_serves_the_photo_without_exif_and_stays_the_same_across_retries(
    make_kanal, crm
):
    k = await make_kanal(extra=crm_section(crm.endpoint))
    [rid] = await intake(k, 1)
    photo = _jpeg_with_exif()
    import hashlib

    digest = hashlib.sha256(photo).hexdigest()
    await k.store.put_blob(digest, "image/jpeg", photo)

    def with_photo(r: Report) -> Report:
        r = r.model_copy(deep=True, update={"history": []})
        r.attachments = [
            Attachment(sha256=digest, content_type="image/jpeg", size=len(photo), state="stored")
        ]
        return r

    await k.store.update_report(rid, with_photo)
    crm.fail_next(2, status=503)
    dispatcher = Dispatcher(k.runtime)
    await wait_for(lambda: _status_is(k, rid, "posted", dispatcher), timeout=10)
    await dispatcher.close()

    urls = {form["media_url"] for _, form in crm.requests}
    assert len(crm.requests) == 3 and len(urls) == 1
    url = urls.pop()
    assert url.startswith(k.runtime.settings.server.public_url + "/media/crm/")
    path = url.split("://", 1)[1].partition("/")[2]
    r = await k.client.get("/" + path)
    assert r.status == 200 and r.content_type == "image/jpeg"
    served = await r.read()
    assert b"SecretCam" in photo and b"SecretCam" not in served
    assert Image.open(io.BytesIO(served)).getexif().get(0x010F) is None
    tampered = "/" + path[:-1] + ("0" if path[-1] != "0" else "1")
    assert (await k.client.get(tampered)).status == 404


async def _status_is(k: Any, rid: str, status: str, dispatcher: Dispatcher) -> bool:
    await dispatcher.drain(timeout_s=2)
    return (await report(k, rid)).status == status


async def test_the_crm_failing_and_timing_out_for_a_while_loses_nothing_and_duplicates_nothing(
    make_kanal, db_url
):
    async with FakeOpen311() as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint, timeout_s=0.3))
        crm.fail_next(15, status=500)
        crm.timeout_next(6, seconds=0.6, accept_after_timeout=True)  # accepted, answer lost
        crm.rate_limit_next(3, retry_after=0.2)
        ids = await intake(k, 30)
        task = asyncio.create_task(Dispatcher(k.runtime).run())
        try:

            async def all_posted() -> bool:
                items, _ = await k.store.list_reports("province", status=["posted"], limit=500)
                return len(items) == len(ids)

            await wait_for(all_posted, timeout=40, interval=0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await crm.settle()
        assert crm.unique_reports() == set(ids)
        assert crm.duplicates() == set()
        assert len(crm.requests) > len(ids)  # there were retries
        for headers, form in crm.requests:
            assert headers["Idempotency-Key"] == form["attribute[kanal_id]"]


async def test_a_field_the_crm_rejects_fails_at_once_with_its_text_and_retry_revives_it(
    make_kanal, crm
):
    k = await make_kanal(extra=crm_section(crm.endpoint))
    [rid] = await intake(k, 1)
    crm.reject_field("email", "email domain not accepted")
    dispatcher = Dispatcher(k.runtime)
    await dispatcher.drain()
    failed = await report(k, rid)
    assert failed.status == "failed" and failed.delivery.attempts == 1
    assert failed.delivery.last_error == "email domain not accepted"
    assert failed.history[-1].status == "failed" and failed.history[-1].by == "crm"
    assert failed.history[-1].note == "email domain not accepted"

    admin = await k.token("province", "admin")
    viewer = await k.token("province", "viewer")
    elsewhere = await k.token("kota:31.72", "admin")

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    url = f"/api/v1/reports/{rid}/retry"
    assert (await k.client.post(url)).status == 401
    assert (await k.client.post(url, headers=auth(viewer))).status == 403
    assert (await k.client.post(url, headers=auth(elsewhere))).status == 404
    crm.accept_field("email")
    r = await k.client.post(url, headers=auth(admin))
    assert r.status == 202, await r.text()
    assert (await r.json())["status"] == "ready"
    r = await k.client.post(url, headers=auth(admin))
    assert r.status == 409 and (await r.json())["error"]["code"] == "not_failed"
    await dispatcher.drain()
    await dispatcher.close()
    assert (await report(k, rid)).status == "posted"
    assert crm.unique_reports() == {rid}


async def test_after_max_attempts_the_report_fails_with_the_crms_own_error(make_kanal, crm):
    k = await make_kanal(extra=crm_section(crm.endpoint, max_attempts=3, breaker_failures=50))
    [rid] = await intake(k, 1)
    crm.down()
    dispatcher = Dispatcher(k.runtime)
    await wait_for(lambda: _status_is(k, rid, "failed", dispatcher), timeout=10)
    await dispatcher.close()
    failed = await report(k, rid)
    assert failed.delivery.attempts == 3
    assert failed.delivery.last_error == "HTTP 503: Service temporarily unavailable"
    assert len(crm.requests) == 3 and not crm.created


async def test_retry_after_is_honoured_and_the_wait_is_visible_on_the_report(make_kanal, crm):
    k = await make_kanal(extra=crm_section(crm.endpoint, retry_max_delay_s=60))
    [rid] = await intake(k, 1)
    crm.rate_limit_next(1, retry_after=30)
    dispatcher = Dispatcher(k.runtime)
    before = k.store.clock()
    await dispatcher.drain()
    waiting = await report(k, rid)
    assert waiting.status == "posting"
    assert waiting.delivery.attempts == 1
    assert "429" in (waiting.delivery.last_error or "")
    assert waiting.delivery.next_attempt_at >= before + timedelta(seconds=30)  # type: ignore[operator]
    assert await dispatcher.drain() == 0  # not due yet
    await dispatcher._refresh_gauges(every_s=0)
    metrics = k.runtime.metrics.render().decode()
    assert "kanal_crm_waiting_retry 1.0" in metrics
    assert 'kanal_crm_attempts_total{outcome="retry"} 1.0' in metrics
    await dispatcher.close()


async def test_a_token_answer_is_resolved_to_the_service_request_id(make_kanal):
    async with FakeOpen311(token_mode=True, token_polls=1) as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint))
        [rid] = await intake(k, 1)
        dispatcher = Dispatcher(k.runtime)
        await wait_for(lambda: _status_is(k, rid, "posted", dispatcher), timeout=10)
        await dispatcher.close()
        done = await report(k, rid)
        assert done.crm.request_id == crm.record_for(rid).service_request_id
        assert done.crm.token == crm.record_for(rid).token
        assert len(crm.requests) == 1  # never posted twice while the token resolved


async def test_hold_keeps_ready_reports_and_open311_then_sends_them_in_order_of_arrival(
    make_kanal, crm, tmp_path
):
    url = f"sqlite:///{tmp_path}/hold.db"
    held = await make_kanal(db_url=url, extra=crm_section(crm.endpoint, mode="hold"))
    for n, minute in enumerate((5, 1, 3, 2, 4)):  # arrival order differs from intake order
        body = jaki_body(n, created_at=T0 + timedelta(minutes=minute))
        r = await held.client.post("/webhooks/jaki", data=body, headers=jaki_headers(body))
        assert r.status == 200, await r.text()
    await held.drain()
    task = asyncio.create_task(Dispatcher(held.runtime).run())
    await asyncio.sleep(0.8)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert crm.requests == []
    items, _ = await held.store.list_reports("province", status=["ready"], limit=50)
    assert len(items) == 5

    sending = await make_kanal(db_url=url, extra=crm_section(crm.endpoint, concurrency=1))
    dispatcher = Dispatcher(sending.runtime)
    await dispatcher.drain()
    await dispatcher.close()
    by_arrival = sorted(items, key=lambda r: (r.received_at, r.id))
    assert [r.kanal_id for r in crm.created] == [r.id for r in by_arrival]


async def test_status_back_moves_reports_to_in_progress_and_done(make_kanal, crm):
    from gateway.crm.status import poll_statuses

    k = await make_kanal(extra=crm_section(crm.endpoint))
    first, second = await intake(k, 2)
    dispatcher = Dispatcher(k.runtime)
    await dispatcher.drain()
    await dispatcher.close()
    await poll_statuses(k.runtime)  # baseline: nothing happened yet
    assert {(await report(k, i)).status for i in (first, second)} == {"posted"}

    crm.update_request(crm.record_for(first).service_request_id, "Petugas menuju lokasi")
    crm.close_request(crm.record_for(second).service_request_id, "Jalan sudah ditambal")
    await poll_statuses(k.runtime)
    moving, closed = await report(k, first), await report(k, second)
    assert moving.status == "in_progress" and moving.crm.status_notes == "Petugas menuju lokasi"
    assert closed.status == "done" and closed.crm.status == "closed"
    entry = closed.history[-1]
    assert (entry.status, entry.by, entry.note) == ("done", "crm", "Jalan sudah ditambal")
    assert entry.changes and entry.changes["crm_status"] == "closed"
    assert entry.changes["updated_datetime"]
    await poll_statuses(k.runtime)  # nothing new: no new history
    assert len((await report(k, second)).history) == len(closed.history)
    [get] = [g for g in crm.gets if g[0].endswith("/requests.json")][-1:]
    assert set(get[1]["service_request_id"].split(",")) == {
        crm.record_for(first).service_request_id
    }  # done reports are no longer followed


async def test_crm_metrics_show_attempts(make_kanal, crm):
    k = await make_kanal(extra=crm_section(crm.endpoint))
    await intake(k, 2)
    crm.fail_next(1, status=500)
    dispatcher = Dispatcher(k.runtime)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(crm.created) < 2:
        await dispatcher.drain(timeout_s=1)
        await asyncio.sleep(0.05)
    await dispatcher.close()
    text = (await (await k.client.get("/metrics")).read()).decode()
    assert 'kanal_crm_attempts_total{outcome="accepted"} 2.0' in text
    assert 'kanal_crm_attempts_total{outcome="retry"} 1.0' in text
    assert "kanal_crm_post_seconds_count 3.0" in text


async def test_retries_after_crm_failures_take_no_new_version_and_keep_their_count(
    make_kanal, db_url
):
    async with FakeOpen311() as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint))
        [rid] = await intake(k, 1)
        ready = await report(k, rid)
        crm.fail_next(3, status=503)
        dispatcher = Dispatcher(k.runtime)
        await wait_for(lambda: _status_is(k, rid, "posted", dispatcher), timeout=10)
        await dispatcher.close()
        done = await report(k, rid)
    assert len(crm.requests) == 4
    # Taken (ready → posting) and posted are what the API shows change; three failed
    # attempts and the retries after them are bookkeeping, on the report but no version.
    assert done.version == ready.version + 2
    assert done.delivery.attempts == 4 and done.delivery.last_error is None
    assert [h.status for h in done.history][-2:] == ["posting", "posted"]


async def test_outcomes_arriving_together_are_recorded_in_one_transaction(make_kanal, db_url):
    async with FakeOpen311(latency_s=0.05) as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint, concurrency=8))
        ids = await intake(k, 8)
        transactions = 0
        run_write = k.store.run_write

        async def counted(fn: Any) -> Any:
            nonlocal transactions
            transactions += 1
            return await run_write(fn)

        k.store.run_write = counted
        dispatcher = Dispatcher(k.runtime)
        await dispatcher.drain()
        await dispatcher.close()
        assert {(await report(k, rid)).status for rid in ids} == {"posted"}
    assert crm.unique_reports() == set(ids) and not crm.duplicates()
    # One claim for the eight, and their outcomes (answered within a few milliseconds of
    # each other) in far fewer transactions than one each.
    assert transactions <= 4, transactions


async def test_delivery_goes_on_while_webhooks_keep_the_inbox_busy(make_kanal):
    """The dispatcher waits for intake a few milliseconds per claim, not for intake to stop:
    webhooks without pause once held it to one round a second."""
    async with FakeOpen311() as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint, concurrency=2))
        ids = await intake(k, 12)
        k.store.writer().idle.clear()  # as while webhooks keep arriving
        dispatcher = Dispatcher(k.runtime)
        task = asyncio.create_task(dispatcher.run())
        try:
            started = time.monotonic()
            while crm.unique_reports() != set(ids):
                assert time.monotonic() - started < 3.0, "delivery waited for intake to stop"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_claims_run_ahead_while_outcomes_wait_for_their_commit(make_kanal):
    """A delivery whose exchange has ended holds no slot while its outcome waits for the
    writer: new claims are taken and posted meanwhile."""
    async with FakeOpen311() as crm:
        k = await make_kanal(extra=crm_section(crm.endpoint, concurrency=2))
        ids = await intake(k, 6)
        dispatcher = Dispatcher(k.runtime)
        release = asyncio.Event()
        record_batch = dispatcher._record_batch

        async def slow_commit(batch: Any) -> None:
            await release.wait()
            await record_batch(batch)

        dispatcher._record_batch = slow_commit  # type: ignore[method-assign]
        task = asyncio.create_task(dispatcher.run())
        try:
            # With every outcome held, all six are still posted (2 slots, 3 rounds).
            await wait_for(lambda: _all_posted_to(crm, ids), timeout=3)
            release.set()
            await wait_for(lambda: _statuses(k, ids, "posted"), timeout=5)
        finally:
            release.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _all_posted_to(crm: FakeOpen311, ids: list[str]) -> bool:
    return crm.unique_reports() == set(ids)


async def _statuses(k: Any, ids: list[str], status: str) -> bool:
    return {(await report(k, rid)).status for rid in ids} == {status}


async def test_an_outcome_is_recorded_without_reading_the_report_again(
    make_kanal, db_url, monkeypatch
):
    async with FakeOpen311() as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint))
        ids = await intake(k, 4)
        parsed = 0
        parse = Report.model_validate_json

        def counted(*args: Any, **kwargs: Any) -> Report:
            nonlocal parsed
            parsed += 1
            return parse(*args, **kwargs)

        monkeypatch.setattr(Report, "model_validate_json", counted)
        dispatcher = Dispatcher(k.runtime)
        await dispatcher.drain()
        await dispatcher.close()
        monkeypatch.setattr(Report, "model_validate_json", parse)
        assert parsed <= 4  # the claims' (or none); the outcomes' own were 4 more
        done = [await report(k, rid) for rid in ids]
    assert {r.status for r in done} == {"posted"}
    assert [h.status for h in done[0].history][-2:] == ["posting", "posted"]
    assert done[0].crm.request_id == crm.record_for(ids[0]).service_request_id


async def test_an_edit_made_while_the_report_is_posted_is_kept_with_the_outcome(make_kanal, db_url):
    async with FakeOpen311(latency_s=0.3) as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint))
        [rid] = await intake(k, 1)
        dispatcher = Dispatcher(k.runtime)
        draining = asyncio.create_task(dispatcher.drain())
        await wait_for(lambda: _statuses(k, [rid], "posting"), timeout=3)

        def edit(current: Report) -> Report:
            current.history = []
            current.title = "Jalan berlubang (diperiksa)"
            return current

        await k.store.update_report(rid, edit)
        assert await draining == 1
        await dispatcher.close()
        done = await report(k, rid)
    assert done.status == "posted" and done.title == "Jalan berlubang (diperiksa)"
    assert done.crm.request_id == crm.record_for(rid).service_request_id


async def test_every_column_still_agrees_with_the_report_after_each_kind_of_outcome(
    make_kanal, db_url
):
    """A delivery step writes only the columns it can change; every other column (ticket,
    kelurahan, search text, reporter, attention…) must still say what the report says,
    whatever the outcome: posted, retried, refused, resolved from a token, edited midway."""
    async with FakeOpen311(token_mode=True, token_polls=1) as crm:
        k = await make_kanal(db_url=db_url, extra=crm_section(crm.endpoint, retry_max_delay_s=60))
        ids = await intake(k, 4)
        crm.rate_limit_next(1, retry_after=30)  # one waits for a retry
        dispatcher = Dispatcher(k.runtime)
        await dispatcher.drain()
        crm.reject_field("email", "email domain not accepted")
        more = await intake(k, 1, start=10)  # refused

        def edit(current: Report) -> Report:
            current.history = []
            current.title = "Jalan berlubang (diperiksa)"
            return current

        await k.store.update_report(ids[0], edit)
        await wait_for(lambda: _all_settled(k, ids + more, dispatcher), timeout=15)
        await dispatcher.close()
        statuses = {(await report(k, rid)).status for rid in ids + more}
        assert {"posted", "posting", "failed"} <= statuses
        async with k.store.read() as conn:
            rows = (await conn.execute(select(reports))).mappings().all()
    assert len(rows) == 5
    for row in rows:
        stored = Report.model_validate_json(row["doc"])
        expected = ReportStore._columns(stored)
        for name, value in expected.items():
            if name != "doc":
                assert row[name] == value, (row["id"], name)


async def _all_settled(k: Any, ids: list[str], dispatcher: Dispatcher) -> bool:
    await dispatcher.step()
    done = [await report(k, rid) for rid in ids]
    return all(
        r.status in ("posted", "failed") or (r.status == "posting" and r.delivery.last_error)
        for r in done
    )
