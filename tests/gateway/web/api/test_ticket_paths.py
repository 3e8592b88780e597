"""Every report path takes the ticket as well as the id: a citizen's ticket (in any case)
finds the report, writes through it work, and scope still hides what is not the caller's,
on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.gateway.web.api.reports import PEGANGSAAN
from tests.gateway.web.api.test_enrichment_api import auth, setup


async def test_a_report_is_read_and_written_by_its_ticket(make_kanal, db_url):
    k = await setup(make_kanal, db_url)
    by_ticket = f"/api/v1/reports/{k.report.ticket}"
    r = await k.client.get(by_ticket, headers=auth(k.ana))
    assert r.status == 200
    body = await r.json()
    assert body["id"] == k.report.id and body["ticket"] == k.report.ticket
    assert body["history"]  # read through the ticket, the history comes too
    r = await k.client.get(f"/api/v1/reports/{k.report.ticket.lower()}", headers=auth(k.ana))
    assert r.status == 200 and (await r.json())["id"] == k.report.id
    r = await k.client.post(by_ticket + "/claim", headers=auth(k.ana))
    assert r.status == 200 and (await r.json())["lease"]["holder"] == "ana"
    version = (await r.json())["version"]
    r = await k.client.patch(by_ticket, json={"category": "jalan"}, headers=auth(k.ana, version))
    assert r.status == 200
    assert (await r.json())["category"]["code"] == "jalan"
    r = await k.client.get(f"/api/v1/reports/{k.report.id}", headers=auth(k.ana))
    assert (await r.json())["category"]["code"] == "jalan"


async def test_a_ticket_outside_the_callers_scope_or_unknown_is_404(make_kanal, db_url):
    k = await setup(make_kanal, db_url)
    other = await k.token(PEGANGSAAN, "admin", name="other")
    r = await k.client.get(f"/api/v1/reports/{k.report.ticket}", headers=auth(other))
    assert r.status == 404
    r = await k.client.get("/api/v1/reports/KNL-0000-0000", headers=auth(k.ana))
    assert r.status == 404
