"""The store, run against SQLite and PostgreSQL alike: dedupe by unique key, claims that
lapse, singleton leases, group completion, scoped listing and cursors."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import ClaimLost, NewRaw, Store, StoredRaw, scope_condition, scope_contains
from gateway.store.ids import new_id
from normalizers.report import Report


def raw(external_id: str, connector: str = "sms_generic", **kw) -> NewRaw:  # type: ignore[no-untyped-def]
    return NewRaw(
        id=new_id(),
        connector=connector,
        channel="sms",
        intake="webhook",
        external_id=external_id,
        received_at=datetime.now(UTC),
        payload=b"{}",
        headers={},
        message={"x": 1},
        **kw,
    )


@pytest.fixture
async def store(db_url):
    s = Store(db_url)
    await s.migrate()
    yield s
    await s.close()


async def test_the_same_message_from_many_requests_at_once_is_stored_once(store):
    writer = store.writer()
    results = await asyncio.gather(*(writer.submit([raw("same")]) for _ in range(50)))
    created = [r[0] for r in results if r[0].created]
    assert len(created) == 1
    assert {r[0].ticket for r in results} == {created[0].ticket}  # everyone gets the same ticket
    assert await store.count_raw() == 1
    # The same external id on another connector is another message.
    assert (await writer.submit([raw("same", connector="jaki")]))[0].created


async def test_a_colliding_ticket_is_drawn_again_and_a_batch_mixing_new_and_seen_keys_is_answered(
    store, monkeypatch
):
    first = (await store.writer().submit([raw("t1")]))[0]
    # One ticket per row and attempt: the first attempt gives t2 the ticket already taken
    # (the whole batch is rolled back), the second draws fresh ones.
    draws = iter(
        [
            *(first.ticket, "KNL-AAAA-AAAA", "KNL-AAAA-AAAB"),
            *("KNL-BBBB-BBB0", "KNL-BBBB-BBB1", "KNL-BBBB-BBB2"),
        ]
    )
    monkeypatch.setattr("gateway.store.inbox.new_ticket", lambda: next(draws))
    stored = await store.insert_raw_batch([raw("t2"), raw("t1"), raw("t2")])
    assert [s.created for s in stored] == [True, False, False]
    assert stored[0].ticket == "KNL-BBBB-BBB0"  # the second attempt's ticket
    assert stored[1].id == first.id and stored[1].ticket == first.ticket
    assert stored[2].id == stored[0].id and stored[2].ticket == stored[0].ticket
    assert await store.count_raw() == 2


async def test_a_driver_error_on_the_sqlite_inbox_path_is_store_unavailable_and_rolled_back(
    tmp_path, monkeypatch
):
    """The inbox talks to sqlite3 directly: its errors must mean what SQLAlchemy's do."""
    import sqlite3

    from gateway.store import StoreUnavailable

    store = Store(f"sqlite:///{tmp_path}/kanal.db")
    await store.migrate()
    assert store.inbox_engine is not None
    real = store.inbox_engine.raw_connection

    class Failing:
        def __init__(self):  # type: ignore[no-untyped-def]
            self.pooled = real()
            self.driver_connection = self

        @property
        def in_transaction(self):  # type: ignore[no-untyped-def]
            return self.pooled.driver_connection.in_transaction

        def execute(self, sql, *args):  # type: ignore[no-untyped-def]
            if sql.startswith("INSERT"):
                raise sqlite3.OperationalError("disk I/O error")
            return self.pooled.driver_connection.execute(sql, *args)

        def close(self):  # type: ignore[no-untyped-def]
            self.pooled.close()

    monkeypatch.setattr(store.inbox_engine, "raw_connection", Failing)
    with pytest.raises(StoreUnavailable, match="disk I/O error"):
        await store.insert_raw_batch([raw("io")])
    monkeypatch.undo()
    # The transaction was rolled back: the same message goes in on the next delivery.
    assert (await store.insert_raw_batch([raw("io")]))[0].created
    assert await store.count_raw() == 1
    await store.close()


async def test_migrations_are_idempotent(store):
    before = await store.schema_version()
    await store.migrate()
    assert await store.schema_version() == before is not None


async def test_a_claim_lapses_when_its_worker_dies_and_the_dead_worker_cannot_settle(store):
    await store.writer().submit([raw(f"c{i}") for i in range(5)])
    first = await store.claim_raw("worker-a", 10, ttl_s=0.2)
    assert len(first) == 5
    assert await store.claim_raw("worker-b", 10, ttl_s=30) == []  # held by worker-a
    await asyncio.sleep(0.3)
    second = await store.claim_raw("worker-b", 10, ttl_s=30)
    assert {r["id"] for r in second} == {r["id"] for r in first}
    with pytest.raises(ClaimLost):
        report = Report(
            id=new_id(),
            ticket=first[0]["ticket"],
            channel="sms",
            connector="sms_generic",
            intake="webhook",
            external_id="c0",
            received_at=datetime.now(UTC),
            owner="province",
            status="pending_enrichment",
        )
        await store.settle_raw("worker-a", created=[([first[0]["id"]], report, [])])


async def test_concurrent_workers_claim_disjoint_work(store):
    await store.writer().submit([raw(f"w{i}") for i in range(60)])
    claims = await asyncio.gather(*(store.claim_raw(f"w-{n}", 7, 30) for n in range(6)))
    ids = [r["id"] for claim in claims for r in claim]
    assert len(ids) == len(set(ids)) == 42


async def test_a_singleton_lease_passes_on_only_when_it_lapses(store):
    assert await store.take_lease("poller:imap", "replica-1", 0.3)
    assert not await store.take_lease("poller:imap", "replica-2", 0.3)
    assert await store.take_lease("poller:imap", "replica-1", 0.3)  # renewed by its holder
    await asyncio.sleep(0.4)
    assert await store.take_lease("poller:imap", "replica-2", 30)
    assert not await store.take_lease("poller:imap", "replica-1", 30)


async def test_state_round_trips_json(store):
    assert await store.get_state("imap:INBOX") is None
    await store.set_state("imap:INBOX", {"uidvalidity": 7, "last_uid": 42})
    await store.set_state("imap:INBOX", {"uidvalidity": 7, "last_uid": 43})
    assert await store.get_state("imap:INBOX") == {"uidvalidity": 7, "last_uid": 43}


async def test_held_parts_are_ripe_when_complete_or_timed_out(store):
    await store.writer().submit(
        [
            raw("p1", group_key="concat:a", part_total=2),
            raw("p2", group_key="concat:a", part_total=2),
            raw("q1", group_key="concat:b", part_total=3),
        ]
    )
    # A part waits while an earlier part of its message is new or being normalized.
    claimed = await store.claim_raw("w", 10, 30)
    assert sorted(r["external_id"] for r in claimed) == ["p1", "q1"]
    await store.settle_raw("w", held=[r["id"] for r in claimed])
    assert await store.ripe_groups(timeout_s=3600) == []
    claimed = await store.claim_raw("w", 10, 30)
    assert [r["external_id"] for r in claimed] == ["p2"]
    await store.settle_raw("w", held=[r["id"] for r in claimed])
    assert await store.ripe_groups(timeout_s=3600) == [("concat:a", True)]
    assert sorted(await store.ripe_groups(timeout_s=0)) == [("concat:a", True), ("concat:b", False)]


def report(n: int, owner: str, at: datetime) -> Report:
    return Report(
        id=new_id(),
        ticket=f"KNL-TEST-{n:04d}",
        channel="sms",
        connector="sms_generic",
        intake="webhook",
        external_id=f"r{n}",
        received_at=at,
        owner=owner,
        status="pending_enrichment",
        text=f"laporan {n}",
    )


async def test_listing_is_scoped_ordered_and_paged_by_cursor(store):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    owners = [
        "kelurahan:31.71.06.1001",
        "kelurahan:31.74.07.1001",
        "kecamatan:31.71.06",
        "kota:31.71",
        "province",
        "office:inspektorat",
    ]
    made = []
    for n in range(30):
        r = report(n, owners[n % len(owners)], base + timedelta(minutes=n % 10, seconds=n))
        made.append(r)
        async with store.write() as conn:
            await store.insert_report(conn, r, f"raw-{n}", None)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await store.list_reports("kota:31.71", limit=4, cursor=cursor)
        seen += [r.id for r in page]
        if cursor is None:
            break
    expected = sorted(
        (r for r in made if scope_contains("kota:31.71", r.owner)),
        key=lambda r: (r.received_at, r.id),
        reverse=True,
    )
    assert seen == [r.id for r in expected]
    oldest, _ = await store.list_reports("province", limit=3, oldest_first=True)
    assert [r.received_at for r in oldest] == sorted(r.received_at for r in made)[:3]
    found, _ = await store.list_reports("province", q="LAPORAN 7")
    assert {r.text for r in found} == {"laporan 7"}
    stats = await store.stats("kelurahan:31.71.06.1001")
    assert stats["by_owner"] == {"kelurahan:31.71.06.1001": 5}


@functools.cache
def _scope_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    from gateway.store.schema import metadata, reports

    engine = create_engine("sqlite://")
    metadata.create_all(engine, tables=[reports])
    return engine


@given(
    scope=st.sampled_from(
        [
            "province",
            "kota:31.71",
            "kecamatan:31.71.06",
            "kelurahan:31.71.06.1001",
            "office:inspektorat",
            "kota:31.7",
            "kecamatan:31.71.0",
        ]
    ),
    owner=st.sampled_from(
        [
            "province",
            "kota:31.71",
            "kota:31.72",
            "kecamatan:31.71.06",
            "kecamatan:31.71.061",
            "kelurahan:31.71.06.1001",
            "kelurahan:31.72.01.1001",
            "office:inspektorat",
            "office:balai_kota",
        ]
    ),
)
def test_the_sql_scope_rule_and_the_in_memory_one_agree(scope, owner):
    from sqlalchemy import delete, insert, select

    from gateway.store.schema import reports

    engine = _scope_engine()
    with engine.begin() as conn:
        conn.execute(delete(reports))
        conn.execute(
            insert(reports).values(
                id="r",
                ticket="t",
                raw_message_id="m",
                channel="sms",
                connector="c",
                received_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
                status="received",
                owner=owner,
                geo_tagged=False,
                category_code="unknown",
                search_text="",
                version=1,
                attempts=0,
                doc="{}",
            )
        )
        visible = (
            conn.execute(select(reports.c.id).where(scope_condition(scope))).first() is not None
        )
    assert visible == scope_contains(scope, owner)


async def test_requests_coming_steadily_share_a_commit_and_a_lone_one_does_not_wait(
    store, monkeypatch
):
    writer = store.writer()
    commits: list[int] = []

    async def instant(rows):  # type: ignore[no-untyped-def]
        commits.append(len(rows))
        return [StoredRaw(r.id, "KNL-TEST-0000", True) for r in rows]

    monkeypatch.setattr(store, "insert_raw_batch", instant)
    writer.linger_s = 5.0  # were a lone request held back, this test would take 5 s
    started = asyncio.get_running_loop().time()
    await writer.submit([raw("lone")])  # nothing came shortly before it: committed at once
    assert asyncio.get_running_loop().time() - started < 1.0
    assert commits == [1]

    # A steady stream, one request every 2 ms (a moderate rate): the writer lingers for the
    # next ones instead of committing each alone (instant commits: without lingering, 12).
    writer.linger_s = 0.05
    await asyncio.sleep(0.1)

    async def one_every_2_ms(i: int) -> None:
        await asyncio.sleep(0.002 * i)
        await writer.submit([raw(f"steady{i}")])

    commits.clear()
    await asyncio.gather(*(one_every_2_ms(i) for i in range(12)))
    assert sum(commits) == 12
    assert len(commits) <= 4, commits


async def test_background_work_rests_after_holding_the_writer_only_while_webhooks_queue(
    store, monkeypatch
):
    writer = store.writer()
    rests: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        rests.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    await store.yield_writer(0.03)  # nothing waits for the writer: no rest
    assert rests == []
    for i in range(2):
        writer._queue.put_nowait(([raw(f"q{i}")], asyncio.get_running_loop().create_future()))
    await store.yield_writer(0.03)  # two webhooks queued behind it: as long again
    await store.yield_writer(5.0)  # never long
    assert rests == [0.03, 0.1]
    while not writer._queue.empty():
        writer._queue.get_nowait()[1].cancel()


async def test_intake_surges_only_while_many_requests_wait_for_each_commit(store, monkeypatch):
    """A peak (senders keep many requests waiting for every commit) is a surge; a steady few
    hundred a second (a few per commit) is not, nor one large commit after background work
    held the writer; a surge ends when requests stop coming."""
    writer = store.writer()
    slow = asyncio.Event()

    async def held(rows):  # type: ignore[no-untyped-def]
        await slow.wait()  # requests gather while a commit runs, as at a peak
        return [StoredRaw(r.id, "KNL-TEST-0000", True) for r in rows]

    monkeypatch.setattr(store, "insert_raw_batch", held)
    writer.linger_s = 0

    async def commits_of(size: int, count: int) -> None:
        for c in range(count):
            slow.clear()
            first = asyncio.ensure_future(writer.submit([raw(f"first{size}-{c}")]))
            await asyncio.sleep(0)
            rest = [
                asyncio.ensure_future(writer.submit([raw(f"r{size}-{c}-{i}")]))
                for i in range(size - 1)
            ]
            await asyncio.sleep(0)
            slow.set()
            await asyncio.gather(first, *rest)

    await commits_of(3, 40)  # steady: 3 per commit (the first alone, then 2)
    assert not writer.surging
    await commits_of(40, 1)  # one long hold of the writer: one large commit
    assert not writer.surging
    await commits_of(30, 25)  # a peak
    assert writer.surging and store.intake_surging()
    waited = asyncio.get_running_loop().time()
    await store.wait_out_surge(0.2)  # background work waits, bounded
    assert asyncio.get_running_loop().time() - waited >= 0.2
    await asyncio.sleep(0.3)  # requests stopped coming
    assert not writer.surging
    waited = asyncio.get_running_loop().time()
    await store.wait_out_surge(5.0)
    assert asyncio.get_running_loop().time() - waited < 0.1


def test_many_rows_written_through_sqlites_driver_are_stored_as_sqlalchemy_stores_them():
    """execute_many's fast path on SQLite binds each value as SQLAlchemy would: the stored
    rows (datetimes with their zone, booleans, NULLs, JSON text) are byte for byte the same."""
    from sqlalchemy import create_engine

    from gateway.store.bulk import _positional, execute_many
    from gateway.store.schema import metadata, report_history, reports

    engine = create_engine("sqlite://")
    metadata.create_all(engine, tables=[reports, report_history])
    at = datetime(2026, 2, 20, 7, 30, 15, 123456, tzinfo=UTC)

    def row(report_id: str) -> dict[str, Any]:
        return {
            "id": report_id,
            "ticket": f"T-{report_id}",
            "raw_message_id": f"m-{report_id}",
            "channel": "sms",
            "connector": "sms_generic",
            "received_at": at,
            "updated_at": at,
            "status": "ready",
            "owner": "province",
            "kelurahan_code": None,
            "geo_tagged": True,
            "category_code": "unknown",
            "reporter_key": None,
            "search_text": "jalan rusak",
            "version": 1,
            "lease_holder": None,
            "lease_until": None,
            "attempts": 0,
            "next_attempt_at": None,
            "doc": '{"text": "jalan rusak \\u00e9"}',
        }

    with engine.begin() as conn:
        conn.execute(reports.insert(), [row("a1"), row("a2")])
        execute_many(conn, reports.insert(), [row("b1"), row("b2")])
        history = {"at": at, "status": "ready", "by": "pipeline", "note": None, "changes": None}
        conn.execute(report_history.insert(), [{"report_id": "a1", **history}])
        execute_many(conn, report_history.insert(), [{"report_id": "b1", **history}])
        stored = {
            r[0]: r[1:]
            for r in conn.exec_driver_sql("SELECT * FROM reports ORDER BY id").fetchall()
        }
        logged = conn.exec_driver_sql("SELECT report_id, at, status FROM report_history").all()
    assert len(stored) == 4
    for name in ("1", "2"):
        a, b = stored[f"a{name}"], stored[f"b{name}"]
        assert [x for x in a if not str(x).endswith(f"a{name}")] == [
            x for x in b if not str(x).endswith(f"b{name}")
        ]
    assert logged[0][1:] == logged[1][1:]
    assert _positional.cache_info().currsize >= 2  # the driver's path was taken


def test_claiming_in_order_looks_an_earlier_message_of_the_group_up_by_the_groups_index():
    """Not by state: in a backlog that would read every waiting message for each one."""
    from sqlalchemy import create_engine

    from gateway.store.inbox import claimable_raw
    from gateway.store.schema import metadata

    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    pick = claimable_raw(datetime.now(UTC), 64, "sqlite")
    with engine.connect() as conn:
        sql = str(pick.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    [lookup] = [step for step in plan if step.startswith("SEARCH earlier")]
    assert "ix_raw_group" in lookup, plan
    # The oldest waiting messages come from the (state, id) index alone: no table row is
    # read for the messages of a backlog beyond those claimed.
    assert any("COVERING INDEX ix_raw_state_id" in step for step in plan), plan
