"""Stats come from counters the database keeps (migration 0004); they always agree with a
count of the reports themselves, on both stores."""

from __future__ import annotations

from sqlalchemy import text

from gateway.web.stats import fold_deltas, rebuild_counts, scoped_stats
from tests.gateway.web.api.reports import KOTA_PUSAT, MENTENG, PEGANGSAAN, make_report, put_reports

IN_MENTENG = {"lat": -6.1963, "lon": 106.8305}


async def test_counters_follow_every_change_of_owner_and_status(make_kanal, db_url):
    k = await make_kanal(db_url)
    reports = [
        make_report(owner, minutes=i)
        for i, owner in enumerate(
            [MENTENG, MENTENG, PEGANGSAAN, KOTA_PUSAT, "province", "office:balai_kota"]
        )
    ]
    reports.append(make_report(MENTENG, status="done", geo_tagged=True, channel="jaki"))
    await put_reports(k.store, *reports)
    token = await k.token("province", name="pemprov")
    h = {"Authorization": f"Bearer {token}"}
    a, b, c, d = (f"/api/v1/reports/{r.id}" for r in reports[:4])
    assert (
        await k.client.patch(
            a, json={"location": IN_MENTENG, "category": "jalan"}, headers={**h, "If-Match": "1"}
        )
    ).status == 200
    assert (await k.client.post(a + "/submit", headers=h)).status == 202
    assert (await k.client.post(b + "/reject", json={"reason": "spam"}, headers=h)).status == 200
    assert (
        await k.client.patch(c, json={"owner": KOTA_PUSAT}, headers={**h, "If-Match": "1"})
    ).status == 200
    assert (await k.client.post(d + "/reject", json={"reason": "spam"}, headers=h)).status == 200
    assert (await k.client.post(d + "/reopen", headers=h)).status == 200
    for scope in ("province", KOTA_PUSAT, MENTENG, PEGANGSAAN, "office:balai_kota"):
        counted = await scoped_stats(k.store, scope)
        direct = await k.store.stats(scope)  # GROUP BY over the reports table
        assert counted == direct, scope
    assert await fold_deltas(k.store) == 0  # reading folded everything
    before = await scoped_stats(k.store, "province")
    await rebuild_counts(k.store)
    assert await scoped_stats(k.store, "province") == before


async def test_the_counting_triggers_exist_at_head(make_kanal, db_url):
    # A later migration that rebuilds `reports` (SQLite batch mode) would drop them.
    k = await make_kanal(db_url)
    async with k.store.read() as conn:
        if k.store.dialect == "sqlite":
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            assert {r[0] for r in rows} >= {
                "reports_count_insert",
                "reports_count_update",
                "reports_count_delete",
            }
        else:
            rows = await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
            assert "reports_count" in {r[0] for r in rows}


async def test_counters_stay_exact_under_concurrent_writes_and_reads(make_kanal, db_url):
    import asyncio

    k = await make_kanal(db_url)
    reports = [make_report(MENTENG, minutes=i) for i in range(30)]
    await put_reports(k.store, *reports)
    tokens = [await k.token("province", name=f"admin-{i}") for i in range(3)]

    async def work(i: int) -> None:
        h = {"Authorization": f"Bearer {tokens[i % 3]}"}
        url = f"/api/v1/reports/{reports[i].id}"
        await k.client.post(url + "/reject", json={"reason": "spam"}, headers=h)
        await k.client.get("/api/v1/stats", headers=h)
        if i % 2:
            await k.client.post(url + "/reopen", headers=h)

    await asyncio.gather(*(work(i) for i in range(30)))
    assert await scoped_stats(k.store, "province") == await k.store.stats("province")
    by_status = (await scoped_stats(k.store, "province"))["by_status"]
    assert by_status == {"rejected": 15, "pending_enrichment": 15}
