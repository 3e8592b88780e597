"""The Open311 client against the fake CRM, through the real HTTP path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from crm_client import (
    Accepted,
    CrmError,
    Open311Client,
    Pending,
    Rejected,
    RetryLater,
    ServiceRequest,
    form_fields,
    parse_retry_after,
)
from crm_client.open311 import interpret_post_response
from tests.fakes.open311 import FakeOpen311

CLIENT_TIMEOUT_S = 0.3


def a_request(**overrides: object) -> ServiceRequest:
    fields: dict[str, object] = {
        "report_id": "01JD4M0000000000000000000A",
        "ticket": "KNL-7Q4M-2K9D",
        "channel": "sms",
        "kelurahan_code": "31.71.06.1001",
        "service_code": "jalan",
        "lat": -6.195,
        "long": 106.823,
        "address_string": "Jl. Teuku Umar, Menteng",
        "description": "Jalan berlubang di depan SDN 01 Menteng",
        "first_name": "Budi",
        "last_name": "Santoso",
        "email": "budi@example.id",
        "phone": "+6281234567890",
        "media_url": "https://kanal.example/m/abc123",
    }
    fields.update(overrides)
    return ServiceRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def crm() -> AsyncIterator[FakeOpen311]:
    async with FakeOpen311() as fake:
        yield fake


@pytest.fixture
async def client(crm: FakeOpen311) -> AsyncIterator[Open311Client]:
    async with Open311Client(crm.endpoint, crm.api_key, timeout_s=CLIENT_TIMEOUT_S) as c:
        yield c


# ---------------------------------------------------------------- the form, pure


def test_the_form_carries_every_field_in_a_stable_order() -> None:
    req = a_request(extra_attributes={"location_precision": "kelurahan"})
    assert form_fields(req, "K", "jakarta.go.id") == [
        ("api_key", "K"),
        ("jurisdiction_id", "jakarta.go.id"),
        ("service_code", "jalan"),
        ("lat", "-6.195"),
        ("long", "106.823"),
        ("address_string", "Jl. Teuku Umar, Menteng"),
        ("description", "Jalan berlubang di depan SDN 01 Menteng"),
        ("first_name", "Budi"),
        ("last_name", "Santoso"),
        ("email", "budi@example.id"),
        ("phone", "+6281234567890"),
        ("media_url", "https://kanal.example/m/abc123"),
        ("attribute[kanal_id]", "01JD4M0000000000000000000A"),
        ("attribute[ticket]", "KNL-7Q4M-2K9D"),
        ("attribute[channel]", "sms"),
        ("attribute[kelurahan]", "31.71.06.1001"),
        ("attribute[location_precision]", "kelurahan"),
    ]


def test_an_empty_jurisdiction_and_missing_fields_are_left_out() -> None:
    req = a_request(
        lat=None,
        long=None,
        first_name=None,
        last_name=None,
        email=None,
        phone=None,
        media_url=None,
        kelurahan_code=None,
    )
    names = [name for name, _ in form_fields(req, "K", "")]
    assert names == [
        "api_key",
        "service_code",
        "address_string",
        "description",
        "attribute[kanal_id]",
        "attribute[ticket]",
        "attribute[channel]",
    ]


@pytest.mark.parametrize(
    ("lat", "long", "expected"),
    [
        (-6.19500001234, 106.8, ("-6.195", "106.8")),
        (-6.123456789, 106.987654321, ("-6.1234568", "106.9876543")),
        (0.0, -0.00000001, ("0", "0")),
        (1e-7, 106.0, ("0.0000001", "106")),
    ],
)
def test_coordinates_have_at_most_seven_decimals(
    lat: float, long: float, expected: tuple[str, str]
) -> None:
    form = dict(form_fields(a_request(lat=lat, long=long), "K", ""))
    assert (form["lat"], form["long"]) == expected


def test_a_request_that_cannot_be_sent_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="lat and long go together"):
        a_request(long=None)
    with pytest.raises(ValueError, match=r"attribute\[kanal_id\] is set by kanal"):
        a_request(extra_attributes={"kanal_id": "other"})
    with pytest.raises(ValueError, match="characters Open311 cannot carry"):
        a_request(extra_attributes={"a]b": "x"})


# ---------------------------------------------------------------- posting


async def test_a_report_reaches_the_crm_with_exactly_these_fields(
    crm: FakeOpen311, client: Open311Client
) -> None:
    req = a_request(extra_attributes={"location_precision": "kelurahan"})
    outcome = await client.post_request(req)

    assert outcome == Accepted("SR-000001", "Ditindaklanjuti 3x24 jam")
    [(headers, form)] = crm.requests
    assert list(form.items()) == form_fields(req, crm.api_key, "")
    assert headers["Idempotency-Key"] == req.report_id
    assert headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert headers["User-Agent"] == "kanal/0.1"
    assert crm.unique_reports() == {req.report_id}


async def test_a_confidential_report_sends_no_personal_field(
    crm: FakeOpen311, client: Open311Client
) -> None:
    req = a_request(first_name=None, last_name=None, email=None, phone=None)
    assert isinstance(await client.post_request(req), Accepted)
    [(_, form)] = crm.requests
    assert not {"first_name", "last_name", "email", "phone"} & set(form)
    assert form["attribute[kanal_id]"] == req.report_id


async def test_the_jurisdiction_is_sent_when_configured(crm: FakeOpen311) -> None:
    async with Open311Client(crm.endpoint, crm.api_key, "dki.jakarta.go.id") as client:
        await client.post_request(a_request())
    [(_, form)] = crm.requests
    assert form["jurisdiction_id"] == "dki.jakarta.go.id"


async def test_every_attempt_carries_the_same_idempotency_key(
    crm: FakeOpen311, client: Open311Client
) -> None:
    req = a_request()
    crm.fail_next(1, status=500)
    crm.rate_limit_next(1, retry_after=1)
    assert isinstance(await client.post_request(req), RetryLater)
    assert isinstance(await client.post_request(req), RetryLater)
    assert isinstance(await client.post_request(req), Accepted)
    assert isinstance(await client.post_request(req), Accepted)  # a replay after success

    assert [h["Idempotency-Key"] for h, _ in crm.requests] == [req.report_id] * 4
    assert len(crm.created) == 1
    assert not crm.duplicates()


async def test_unicode_descriptions_arrive_intact(crm: FakeOpen311, client: Open311Client) -> None:
    text = "Jalan ambles 🚧 di Jl. Kebon Sirih — “parah”, RT 03/RW 05; ñ 中文 & 100% <rusak>"
    assert isinstance(await client.post_request(a_request(description=text)), Accepted)
    [(_, form)] = crm.requests
    assert form["description"] == text


async def test_a_long_description_is_cut_to_4000_characters_with_an_ellipsis(
    crm: FakeOpen311, client: Open311Client
) -> None:
    text = "Sampah menumpuk di pasar. " * 200  # 5200 characters
    assert isinstance(await client.post_request(a_request(description=text)), Accepted)
    [(_, form)] = crm.requests
    assert len(form["description"]) == 4000
    assert form["description"].endswith("…")
    assert text.startswith(form["description"][:3990])


async def test_a_description_of_exactly_4000_characters_is_sent_whole(
    crm: FakeOpen311, client: Open311Client
) -> None:
    text = "x" * 4000
    await client.post_request(a_request(description=text))
    assert crm.requests[0][1]["description"] == text


async def test_a_token_answer_is_pending_until_the_crm_resolves_it(crm: FakeOpen311) -> None:
    crm.token_mode = True
    async with Open311Client(crm.endpoint, crm.api_key) as client:
        outcome = await client.post_request(a_request())
        assert outcome == Pending("TK-000001")
        assert await client.resolve_token("TK-000001") is None
        assert await client.resolve_token("TK-000001") == "SR-000001"
        assert await client.resolve_token("TK-unknown") is None
    token_gets = [path for path, _ in crm.gets if "/tokens/" in path]
    assert token_gets[0] == "/open311/v2/tokens/TK-000001.json"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_retried_later(
    crm: FakeOpen311, client: Open311Client, status: int
) -> None:
    crm.fail_next(1, status=status)
    outcome = await client.post_request(a_request())
    assert isinstance(outcome, RetryLater)
    assert outcome.status == status
    assert f"HTTP {status}" in outcome.error
    assert "Injected failure" in outcome.error
    assert crm.created == []


async def test_429_is_retried_no_earlier_than_retry_after(
    crm: FakeOpen311, client: Open311Client
) -> None:
    crm.rate_limit_next(1, retry_after=7)
    outcome = await client.post_request(a_request())
    assert outcome == RetryLater("HTTP 429: Too many requests", 7.0, 429)


async def test_retry_after_as_an_http_date_is_understood(
    crm: FakeOpen311, client: Open311Client
) -> None:
    crm.rate_limit_next(1, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=90)))
    outcome = await client.post_request(a_request())
    assert isinstance(outcome, RetryLater)
    assert outcome.retry_after_s is not None
    assert 85 <= outcome.retry_after_s <= 90


async def test_a_timeout_is_retried_later_and_the_key_prevents_a_duplicate(
    crm: FakeOpen311, client: Open311Client
) -> None:
    req = a_request()
    crm.timeout_next(1, seconds=CLIENT_TIMEOUT_S + 0.3, accept_after_timeout=True)
    started = time.monotonic()
    outcome = await client.post_request(req)
    assert time.monotonic() - started < CLIENT_TIMEOUT_S + 0.25
    assert isinstance(outcome, RetryLater)
    assert outcome.status is None
    assert "timed out" in outcome.error

    await crm.settle()  # the CRM accepted it after the client gave up
    assert crm.unique_reports() == {req.report_id}
    assert await client.post_request(req) == Accepted("SR-000001", "Ditindaklanjuti 3x24 jam")
    assert not crm.duplicates()


async def test_against_a_crm_without_idempotency_a_late_accept_duplicates() -> None:
    # The one window the contract admits: documented, and visible to the invariant checks.
    async with FakeOpen311(honour_idempotency=False) as crm:
        async with Open311Client(crm.endpoint, crm.api_key, timeout_s=CLIENT_TIMEOUT_S) as client:
            req = a_request()
            crm.timeout_next(1, seconds=CLIENT_TIMEOUT_S + 0.2)
            assert isinstance(await client.post_request(req), RetryLater)
            await crm.settle()
            assert isinstance(await client.post_request(req), Accepted)
        assert crm.duplicates() == {req.report_id}


async def test_a_timed_out_request_the_crm_dropped_creates_nothing(
    crm: FakeOpen311, client: Open311Client
) -> None:
    crm.timeout_next(1, seconds=CLIENT_TIMEOUT_S + 0.1, accept_after_timeout=False)
    assert isinstance(await client.post_request(a_request()), RetryLater)
    await crm.settle()
    assert crm.created == []


async def test_a_crm_that_is_down_is_retried_later(crm: FakeOpen311, client: Open311Client) -> None:
    crm.down()
    outcome = await client.post_request(a_request())
    assert isinstance(outcome, RetryLater)
    assert outcome.status == 503
    crm.up()
    assert isinstance(await client.post_request(a_request()), Accepted)


async def test_connection_refused_is_retried_later(crm: FakeOpen311, client: Open311Client) -> None:
    await crm.stop_listening()
    outcome = await client.post_request(a_request())
    assert isinstance(outcome, RetryLater)
    assert outcome.status is None
    assert "Connect" in outcome.error
    await crm.start_listening()
    assert isinstance(await client.post_request(a_request()), Accepted)


async def test_a_rejected_field_fails_with_the_crms_own_words(
    crm: FakeOpen311, client: Open311Client
) -> None:
    crm.reject_field("attribute[kelurahan]", "Kelurahan 31.71.06.1001 tidak dikenal")
    outcome = await client.post_request(a_request())
    assert outcome == Rejected("Kelurahan 31.71.06.1001 tidak dikenal", 400)
    assert crm.created == []


async def test_a_wrong_api_key_is_rejected(crm: FakeOpen311) -> None:
    async with Open311Client(crm.endpoint, "wrong-key") as client:
        outcome = await client.post_request(a_request())
    assert outcome == Rejected("Invalid or missing api_key", 403)


async def test_an_unknown_service_code_is_rejected() -> None:
    async with FakeOpen311(services=["jalan", "pju"]) as crm:
        async with Open311Client(crm.endpoint, crm.api_key) as client:
            assert isinstance(await client.post_request(a_request()), Accepted)
            outcome = await client.post_request(a_request(report_id="R2", service_code="banjir"))
    assert outcome == Rejected("service_code 'banjir' is not a known service", 400)


async def test_a_report_without_any_location_is_rejected(
    crm: FakeOpen311, client: Open311Client
) -> None:
    outcome = await client.post_request(a_request(lat=None, long=None, address_string=None))
    assert isinstance(outcome, Rejected)
    assert "location is required" in outcome.error


async def test_a_shared_session_is_left_open(crm: FakeOpen311) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = Open311Client(crm.endpoint, crm.api_key, session=session)
        assert isinstance(await client.post_request(a_request()), Accepted)
        await client.close()
        assert not session.closed


# ---------------------------------------------------------------- following up


async def test_statuses_come_back_in_one_batch(crm: FakeOpen311, client: Open311Client) -> None:
    ids = []
    for n in range(3):
        outcome = await client.post_request(a_request(report_id=f"R{n}"))
        assert isinstance(outcome, Accepted)
        ids.append(outcome.service_request_id)
    crm.update_request(ids[1], "Sudah diteruskan ke Suku Dinas Bina Marga Jakarta Pusat")
    crm.close_request(ids[2], "Lubang sudah ditambal")

    statuses = {s.service_request_id: s for s in await client.fetch_statuses(ids)}

    assert [s.status for s in statuses.values()] == ["open", "open", "closed"]
    assert statuses[ids[0]].status_notes is None
    assert statuses[ids[1]].status_notes == (
        "Sudah diteruskan ke Suku Dinas Bina Marga Jakarta Pusat"
    )
    assert statuses[ids[2]].status_notes == "Lubang sudah ditambal"
    assert statuses[ids[2]].agency_responsible == "Dinas Bina Marga"
    for status in statuses.values():
        assert status.updated_datetime is not None
        assert status.updated_datetime.tzinfo is not None
    assert statuses[ids[2]].updated_datetime > statuses[ids[0]].updated_datetime  # type: ignore[operator]
    [(path, query)] = crm.gets
    assert path == "/open311/v2/requests.json"
    assert query["service_request_id"] == ",".join(ids)
    assert query["api_key"] == crm.api_key


async def test_many_ids_are_asked_fifty_at_a_time(crm: FakeOpen311, client: Open311Client) -> None:
    outcome = await client.post_request(a_request())
    assert isinstance(outcome, Accepted)
    ids = [f"SR-X{n}" for n in range(119)] + [outcome.service_request_id]

    statuses = await client.fetch_statuses(ids)

    assert [s.service_request_id for s in statuses] == [outcome.service_request_id]
    batches = [query["service_request_id"].split(",") for _, query in crm.gets]
    assert [len(b) for b in batches] == [50, 50, 20]
    assert [i for batch in batches for i in batch] == ids


async def test_a_failing_status_query_raises_a_retryable_crm_error(
    crm: FakeOpen311, client: Open311Client
) -> None:
    crm.fail_next(1, status=502, on="get")
    with pytest.raises(CrmError) as caught:
        await client.fetch_statuses(["SR-1"])
    assert caught.value.retryable
    assert caught.value.status == 502
    assert await client.fetch_statuses(["SR-1"]) == []


async def test_a_forbidden_status_query_is_not_retryable(crm: FakeOpen311) -> None:
    crm.fail_next(1, status=403, on="get")
    async with Open311Client(crm.endpoint, crm.api_key) as client:
        with pytest.raises(CrmError) as caught:
            await client.fetch_statuses(["SR-1"])
    assert not caught.value.retryable


async def test_no_ids_means_no_query(crm: FakeOpen311, client: Open311Client) -> None:
    assert await client.fetch_statuses([]) == []
    assert crm.gets == []


# ---------------------------------------------------------------- answers, pure


def test_a_bare_object_answer_is_understood() -> None:
    assert interpret_post_response(200, {}, b'{"service_request_id": 42}') == Accepted("42")


def test_service_request_id_wins_over_token() -> None:
    body = b'[{"service_request_id": "A1", "token": "T1"}]'
    assert interpret_post_response(201, {}, body) == Accepted("A1")


@pytest.mark.parametrize("body", [b"OK", b"[]", b"[{}]", b"<html>proxy</html>", b"\xff\xfe"])
def test_an_unreadable_success_is_retried_later(body: bytes) -> None:
    outcome = interpret_post_response(200, {}, body)
    assert isinstance(outcome, RetryLater)
    assert outcome.status == 200


@pytest.mark.parametrize("status", [408, 409, 425])
def test_transient_4xx_are_retried_later(status: int) -> None:
    assert isinstance(interpret_post_response(status, {}, b""), RetryLater)


def test_an_error_without_an_error_array_keeps_the_first_500_characters() -> None:
    outcome = interpret_post_response(400, {}, b"Bad " * 300)
    assert isinstance(outcome, Rejected)
    assert len(outcome.error) == 500
    assert outcome.error.startswith("Bad Bad")


def test_several_errors_are_joined() -> None:
    body = b'[{"code": 400, "description": "lat invalid"}, {"code": 400, "description": "x"}]'
    assert interpret_post_response(400, {}, body) == Rejected("lat invalid; x", 400)


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("Fri, 27 Nov 2026 08:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Fri, 27 Nov 2026 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


# ---------------------------------------------------------------- the fake itself


async def test_the_fake_refuses_json_bodies_and_serves_single_requests(crm: FakeOpen311) -> None:
    import aiohttp

    async with Open311Client(crm.endpoint, crm.api_key) as client:
        outcome = await client.post_request(a_request())
    assert isinstance(outcome, Accepted)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{crm.endpoint}/requests.json", json={"api_key": "x"}) as r:
            assert r.status == 415
            assert (await r.json())[0]["code"] == 415
        url = f"{crm.endpoint}/requests/{outcome.service_request_id}.json"
        async with session.get(url) as r:
            [item] = await r.json()
            assert item["status"] == "open"
            assert item["lat"] == -6.195
        async with session.get(f"{crm.endpoint}/requests/SR-nope.json") as r:
            assert r.status == 404
    assert len(crm.requests) == 2  # the refused one is on record too


async def test_the_fake_can_refuse_a_reused_key_with_a_different_request() -> None:
    async with FakeOpen311(idempotency_conflicts=True) as crm:
        async with Open311Client(crm.endpoint, crm.api_key) as client:
            assert isinstance(await client.post_request(a_request()), Accepted)
            assert isinstance(await client.post_request(a_request()), Accepted)
            changed = await client.post_request(a_request(media_url="https://kanal.example/m/new"))
    assert changed == Rejected("Idempotency-Key reused with a different request", 422)
    assert len(crm.created) == 1
