"""The enrichment writes of the admin API, through HTTP on a live app."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway.web.api.reports import (
    KOTA_PUSAT,
    MENTENG,
    OFFICE,
    PEGANGSAAN,
    make_report,
    put_reports,
)

# A point inside kelurahan Menteng (31.71.06.1001) and one in the Java Sea.
IN_MENTENG = {"lat": -6.1963, "lon": 106.8305}
OUTSIDE_DKI = {"lat": -7.25, "lon": 112.75}  # Surabaya


def auth(token: str, version: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = str(version)
    return headers


async def setup(
    make_kanal: Any, db_url: str | None = None, owner: str = MENTENG, **report_fields: Any
) -> Any:
    k = await make_kanal(db_url)
    k.report = make_report(owner, **report_fields)
    await put_reports(k.store, k.report)
    k.ana = await k.token(MENTENG, "admin", name="ana")
    k.budi = await k.token(KOTA_PUSAT, "admin", name="budi")
    return k


async def test_claim_gives_a_15_minute_lease_and_another_admin_gets_409_with_the_holder(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.post(url + "/claim", headers=auth(k.ana))
    assert r.status == 200
    body = await r.json()
    assert body["lease"]["holder"] == "ana"
    r = await k.client.post(url + "/claim", headers=auth(k.budi))
    assert r.status == 409
    error = (await r.json())["error"]
    assert error["code"] == "claimed" and error["holder"] == "ana"
    assert error["until"] == body["lease"]["until"]
    # Nor may the other admin change, submit or reject it.
    version = body["version"]
    r = await k.client.patch(url, json={"category": "jalan"}, headers=auth(k.budi, version))
    assert r.status == 409
    assert (await k.client.post(url + "/submit", headers=auth(k.budi))).status == 409
    r = await k.client.post(url + "/reject", json={"reason": "spam"}, headers=auth(k.budi))
    assert r.status == 409
    # Released, the other admin may take it.
    assert (await k.client.post(url + "/release", headers=auth(k.ana))).status == 200
    r = await k.client.post(url + "/claim", headers=auth(k.budi))
    assert r.status == 200 and (await r.json())["lease"]["holder"] == "budi"


async def test_a_lapsed_lease_passes_to_whoever_comes_next(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    assert (await k.client.post(url + "/claim", headers=auth(k.ana))).status == 200
    real_clock = k.store.clock
    k.store.clock = lambda: real_clock() + __import__("datetime").timedelta(minutes=16)
    r = await k.client.post(url + "/claim", headers=auth(k.budi))
    assert r.status == 200 and (await r.json())["lease"]["holder"] == "budi"


async def test_patch_needs_if_match_and_a_stale_version_gets_412(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.patch(url, json={"category": "jalan"}, headers=auth(k.ana))
    assert r.status == 428
    r = await k.client.patch(url, json={"category": "jalan"}, headers=auth(k.ana, 1))
    assert r.status == 200, await r.text()
    assert r.headers["ETag"] == '"2"'
    r = await k.client.patch(url, json={"description": "x"}, headers=auth(k.ana, 1))
    assert r.status == 412
    assert (await r.json())["error"]["version"] == 2


async def test_patch_without_a_lease_takes_one_and_renews_it(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.patch(url, json={"category": "jalan"}, headers=auth(k.ana, 1))
    first = await r.json()
    assert first["lease"]["holder"] == "ana"
    await asyncio.sleep(0.01)
    r = await k.client.patch(url, json={"address": "Jl. Teuku Umar"}, headers=auth(k.ana, 2))
    second = await r.json()
    assert second["lease"]["until"] > first["lease"]["until"]


async def test_enrichment_by_point_then_submit_sends_it_on_as_the_kelurahan_s(make_kanal):
    k = await setup(make_kanal, owner=KOTA_PUSAT)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.post(url + "/submit", headers=auth(k.budi))
    assert r.status == 422
    assert (await r.json())["error"] == {
        "code": "incomplete",
        "message": "the report needs location and category",
        "missing": ["location", "category"],
    }
    patch = {
        "location": IN_MENTENG,
        "address": "Jl. Teuku Umar 1",
        "category": "jalan",
        "description": "Lubang jalan 1 m di depan SD",
    }
    r = await k.client.patch(url, json=patch, headers=auth(k.budi, 1))  # a refusal changes nothing
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["location"]["source"] == "admin"
    assert report["location"]["precision"] == "point"
    assert report["location"]["kelurahan"]["code"] == "31.71.06.1001"
    assert report["location"]["address"] == "Jl. Teuku Umar 1"
    assert report["category"]["code"] == "jalan" and report["category"]["agency"]
    assert report["text"] == k.report.text  # the citizen's words never change
    assert report["owner"] == KOTA_PUSAT  # still in the kota's queue until submitted
    r = await k.client.post(url + "/submit", headers=auth(k.budi))
    assert r.status == 202, await r.text()
    report = await r.json()
    assert report["status"] == "ready"
    assert report["owner"] == MENTENG
    assert report["geo_tagged"] is False
    assert report["location"]["source"] == "admin"
    assert report["lease"] is None
    last = report["history"][-1]
    assert last["by"] == "budi" and last["status"] == "ready"
    enriched = next(h for h in report["history"] if h["note"] == "enriched")
    assert enriched["by"] == "budi"
    assert enriched["changes"]["category"] == "jalan"
    assert enriched["changes"]["description"] == "Lubang jalan 1 m di depan SD"


async def test_kelurahan_code_gives_the_centroid_at_kelurahan_precision(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.patch(
        url, json={"kelurahan_code": "31.71.06.1002", "category": "sampah"}, headers=auth(k.ana, 1)
    )
    assert r.status == 200, await r.text()
    location = (await r.json())["location"]
    assert location["precision"] == "kelurahan"
    assert location["kelurahan"]["code"] == "31.71.06.1002"
    assert location["lat"] is not None and location["lon"] is not None
    r = await k.client.post(url + "/submit", headers=auth(k.ana))
    assert r.status == 202
    assert (await r.json())["owner"] == PEGANGSAAN


async def test_refusals_are_422_with_what_was_wrong(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    cases = [
        ({"location": OUTSIDE_DKI}, "out_of_area"),
        ({"kelurahan_code": "31.71.06.9999"}, "unknown_kelurahan"),
        ({"category": "no_such_thing"}, "unknown_category"),
        ({"owner": "kelurahan:31.99.99.9999"}, "unknown_owner"),
        ({"owner": "office:nowhere"}, "unknown_owner"),
        ({"text": "rewritten"}, "invalid"),  # the citizen's text is never changed
        ({"location": IN_MENTENG, "kelurahan_code": "31.71.06.1001"}, "invalid"),
        ({"category": None}, "invalid"),
    ]
    for body, code in cases:
        r = await k.client.patch(url, json=body, headers=auth(k.ana, 1))
        assert r.status == 422, (body, await r.text())
        assert (await r.json())["error"]["code"] == code, body
    r = await k.client.patch(url, data=b"{not json", headers=auth(k.ana, 1))
    assert r.status == 400
    current = await (await k.client.get(url, headers=auth(k.ana))).json()
    assert current["version"] == 1  # nothing refused changed anything


async def test_hand_over_to_the_kota_leaves_the_kelurahan_admin_without_it(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.patch(url, json={"owner": KOTA_PUSAT}, headers=auth(k.ana, 1))
    assert r.status == 200, await r.text()
    assert (await r.json())["lease"] is None
    assert (await k.client.get(url, headers=auth(k.ana))).status == 404
    r = await k.client.get("/api/v1/queue", headers=auth(k.budi))
    assert [i["id"] for i in (await r.json())["items"]] == [k.report.id]
    # The kota admin enriches and submits: the owner the person chose is kept.
    r = await k.client.patch(
        url, json={"location": IN_MENTENG, "category": "jalan"}, headers=auth(k.budi, 2)
    )
    assert r.status == 200
    r = await k.client.post(url + "/submit", headers=auth(k.budi))
    assert (await r.json())["owner"] == KOTA_PUSAT


async def test_reject_as_duplicate_links_the_original_and_reopen_puts_it_back(make_kanal):
    k = await setup(make_kanal)
    original = make_report(MENTENG, minutes=-60)
    elsewhere = make_report("kelurahan:31.74.01.1001")
    await put_reports(k.store, original, elsewhere)
    url = f"/api/v1/reports/{k.report.id}"
    r = await k.client.post(url + "/reject", json={"reason": "duplicate"}, headers=auth(k.ana))
    assert r.status == 422
    r = await k.client.post(
        url + "/reject",
        json={"reason": "duplicate", "duplicate_of": elsewhere.id},
        headers=auth(k.ana),
    )
    assert r.status == 422  # a report outside the caller's scope does not exist for them
    assert (await r.json())["error"]["code"] == "unknown_duplicate"
    r = await k.client.post(url + "/reject", json={"reason": "maybe"}, headers=auth(k.ana))
    assert r.status == 422
    r = await k.client.post(
        url + "/reject",
        json={"reason": "duplicate", "duplicate_of": original.id, "note": "sama"},
        headers=auth(k.ana),
    )
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["status"] == "rejected" and report["duplicate_of"] == original.id
    assert report["history"][-1]["by"] == "ana"
    r = await k.client.get("/api/v1/queue", headers=auth(k.ana))
    assert k.report.id not in [i["id"] for i in (await r.json())["items"]]
    r = await k.client.post(url + "/reopen", headers=auth(k.ana))
    assert r.status == 200
    report = await r.json()
    assert report["status"] == "pending_enrichment" and report["duplicate_of"] is None
    assert (await k.client.post(url + "/reopen", headers=auth(k.ana))).status == 409


async def test_viewers_read_only_and_officers_are_not_let_in(make_kanal):
    k = await setup(make_kanal)
    viewer = await k.token(MENTENG, "viewer")
    officer = await k.token(MENTENG, "officer")
    url = f"/api/v1/reports/{k.report.id}"
    assert (await k.client.get(url, headers=auth(viewer))).status == 200
    writes = [
        ("post", url + "/claim", None),
        ("post", url + "/release", None),
        ("patch", url, {"category": "jalan"}),
        ("post", url + "/submit", None),
        ("post", url + "/reject", {"reason": "spam"}),
        ("post", url + "/reopen", None),
    ]
    for method, path, body in writes:
        r = await k.client.request(method, path, json=body, headers=auth(viewer, 1))
        assert r.status == 403, (method, path)
    for method, path in [
        ("get", url),
        ("get", "/api/v1/queue"),
        ("get", "/api/v1/stats"),
        ("post", url + "/claim"),
    ]:
        r = await k.client.request(method, path, headers=auth(officer))
        assert r.status == 403, (method, path)
    assert (await k.client.get(url)).status == 401


async def test_a_confidential_identity_is_the_province_s_alone(make_kanal):
    k = await setup(make_kanal, confidential=True)
    url = f"/api/v1/reports/{k.report.id}"
    seen = await (await k.client.get(url, headers=auth(k.ana))).json()
    assert seen["reporter"]["phone"] is None and seen["reporter"]["name"] is None
    r = await k.client.patch(url, json={"reporter": {"name": "X"}}, headers=auth(k.ana, 1))
    assert r.status == 403
    r = await k.client.patch(url, json={"confidential": False}, headers=auth(k.ana, 1))
    assert r.status == 403
    province = await k.token("province", "admin", name="pemprov")
    r = await k.client.patch(
        url, json={"reporter": {"phone": "0812-9999-0000"}}, headers=auth(province, 1)
    )
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["reporter"]["phone"] == "+6281299990000"
    assert report["reporter"]["name"] == "Budi"  # partial: the rest stays
    # The history says which fields changed, never their values.
    assert report["history"][-1]["changes"] == {"reporter": ["phone"]}


async def test_two_admins_racing_for_one_report_one_wins(make_kanal):
    k = await setup(make_kanal)
    url = f"/api/v1/reports/{k.report.id}"
    results = await asyncio.gather(
        *[k.client.post(url + "/claim", headers=auth(t)) for t in (k.ana, k.budi) * 4]
    )
    holders = {(await r.json())["lease"]["holder"] for r in results if r.status == 200}
    assert len(holders) == 1
    assert all(r.status in (200, 409) for r in results)


async def test_geocode_suggests_places_for_an_address(make_kanal):
    k = await setup(make_kanal)
    r = await k.client.get(
        "/api/v1/geocode", params={"q": "kelurahan menteng"}, headers=auth(k.ana)
    )
    assert r.status == 200
    items = (await r.json())["items"]
    assert items and items[0]["kelurahan"]["code"] == "31.71.06.1001"
    assert (await k.client.get("/api/v1/geocode", headers=auth(k.ana))).status == 400


async def test_metrics_count_admin_actions(make_kanal):
    k = await setup(make_kanal)
    await k.client.post(f"/api/v1/reports/{k.report.id}/claim", headers=auth(k.ana))
    text = await (await k.client.get("/metrics")).text()
    assert 'kanal_admin_actions_total{action="claim",outcome="ok"} 1.0' in text


async def test_office_owned_reports_can_be_handed_to_a_kelurahan(make_kanal):
    k = await setup(make_kanal, owner=OFFICE)
    office = await k.token(OFFICE, "admin", name="balai")
    r = await k.client.patch(
        f"/api/v1/reports/{k.report.id}", json={"owner": MENTENG}, headers=auth(office, 1)
    )
    assert r.status == 200
    r = await k.client.get("/api/v1/queue", headers=auth(k.ana))
    assert [i["id"] for i in (await r.json())["items"]] == [k.report.id]
