"""What an operator graphs and alerts on, read through /metrics of a live app: the age of
each owner's oldest waiting report and whether the store answers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.web.api.reports import KOTA_PUSAT, MENTENG, T0, make_report, put_reports


async def scrape(k) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await k.client.get("/metrics")
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def ages(samples: dict) -> dict[str, float]:
    return {
        dict(labels)["owner"]: value
        for (name, labels), value in samples.items()
        if name == "kanal_enrichment_oldest_age_seconds"
    }


async def test_the_oldest_waiting_report_of_each_owner_has_its_age_on_metrics(make_kanal):
    k = await make_kanal()
    menteng_oldest = make_report(MENTENG, minutes=0)
    await put_reports(
        k.store,
        menteng_oldest,
        make_report(MENTENG, minutes=30),
        make_report(KOTA_PUSAT, minutes=50),
        make_report(KOTA_PUSAT, minutes=5, status="ready"),  # not waiting: not counted
    )
    k.store.clock = lambda: T0 + timedelta(hours=1)
    assert ages(await scrape(k)) == {MENTENG: 3600.0, KOTA_PUSAT: 600.0}

    # Later, and Menteng's oldest has been enriched: the next-oldest one counts.
    k.store.clock = lambda: T0 + timedelta(hours=2)
    await k.store.update_report(
        menteng_oldest.id, lambda r: r.model_copy(update={"status": "ready", "history": []})
    )
    assert ages(await scrape(k)) == {MENTENG: 5400.0, KOTA_PUSAT: 4200.0}

    # Kota Pusat's queue empties: its series goes, rather than freezing at its last age.
    for report in await _waiting(k, KOTA_PUSAT):
        await k.store.update_report(
            report, lambda r: r.model_copy(update={"status": "ready", "history": []})
        )
    assert ages(await scrape(k)) == {MENTENG: 5400.0}


async def _waiting(k, owner: str) -> list[str]:
    items, _ = await k.store.list_reports(owner, status=["pending_enrichment"])
    return [item.id for item in items if item.owner == owner]  # the scope holds kelurahan too


async def test_store_up_is_1_while_the_store_answers_and_0_when_it_does_not(make_kanal):
    k = await make_kanal()
    assert (await k.client.get("/readyz")).status == 200
    assert (await scrape(k))[("kanal_store_up", ())] == 1.0

    # The database file turns into something that is not a database.
    await k.store.close()
    database = Path(k.store.url.removeprefix("sqlite:///"))
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 1000)

    assert (await scrape(k))[("kanal_store_up", ())] == 0.0
    assert (await k.client.get("/readyz")).status == 503
    assert (await scrape(k))[("kanal_store_up", ())] == 0.0
