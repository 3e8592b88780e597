"""A write to a report outside the caller's scope is a 404 whatever else is wrong with
it: a stale If-Match must not reveal that the report exists."""

from __future__ import annotations

from tests.gateway.web.api.reports import MENTENG, PEGANGSAAN, make_report, put_reports

WRITES = [
    ("patch", "", {"category": "jalan"}),
    ("post", "/claim", None),
    ("post", "/release", None),
    ("post", "/submit", None),
    ("post", "/reject", {"reason": "spam"}),
    ("post", "/reopen", None),
    ("post", "/retry", None),
]


async def test_every_write_to_another_kelurahans_report_is_404_even_with_a_stale_if_match(
    make_kanal, db_url
):
    k = await make_kanal(db_url)
    theirs = make_report(PEGANGSAAN)
    await put_reports(k.store, theirs)
    mine = await k.token(MENTENG, "admin")
    for method, suffix, body in WRITES:
        for version in ("7", "1"):  # stale, and the report's real version
            r = await k.client.request(
                method,
                f"/api/v1/reports/{theirs.id}{suffix}",
                json=body,
                headers={"Authorization": f"Bearer {mine}", "If-Match": version},
            )
            assert r.status == 404, (method, suffix, version, await r.text())
            assert "version" not in (await r.json())["error"]
    # the report's own kelurahan still gets the 412 it should
    own = await k.token(PEGANGSAAN, "admin")
    r = await k.client.patch(
        f"/api/v1/reports/{theirs.id}",
        json={"category": "jalan"},
        headers={"Authorization": f"Bearer {own}", "If-Match": "7"},
    )
    assert (r.status, (await r.json())["error"]["version"]) == (412, 1)
