"""No token ever reads, lists, counts, searches or changes a report outside its scope:
every token against every report, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

from gateway.store import scope_contains
from normalizers.report import AreaRef, Location
from tests.gateway.web.api.reports import (
    KEC_MENTENG,
    KOTA_PUSAT,
    KOTA_SELATAN,
    MENTENG,
    OFFICE,
    PEGANGSAAN,
    make_report,
    put_reports,
)

OWNERS = [
    "province",
    KOTA_PUSAT,
    KEC_MENTENG,
    MENTENG,
    PEGANGSAAN,
    "kecamatan:31.71.01",
    "kelurahan:31.71.01.1001",
    KOTA_SELATAN,
    "kecamatan:31.74.01",
    "kelurahan:31.74.01.1001",
    OFFICE,
    "office:inspektorat",
]
SCOPES = [
    "province",
    KOTA_PUSAT,
    KOTA_SELATAN,
    KEC_MENTENG,
    "kecamatan:31.74.01",
    MENTENG,
    PEGANGSAAN,
    "kelurahan:31.74.01.1001",
    OFFICE,
    "office:inspektorat",
]


def expected_visible(scope: str, owners: list[str]) -> set[str]:
    """The contract's rule written out by hand, independent of the store's code."""
    if scope == "province":
        return set(owners)
    kind, _, code = scope.partition(":")
    seen = set()
    for owner in owners:
        okind, _, ocode = owner.partition(":")
        if owner == scope:
            seen.add(owner)
        elif kind in ("kota", "kecamatan") and okind in ("kecamatan", "kelurahan"):
            if ocode.startswith(code + ".") and (kind == "kota" or okind == "kelurahan"):
                seen.add(owner)
    return seen


def test_the_hand_written_rule_agrees_with_scope_contains():
    for scope in SCOPES:
        assert expected_visible(scope, OWNERS) == {o for o in OWNERS if scope_contains(scope, o)}


def bearer(token: str, version: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = str(version)
    return headers


async def test_scope_matrix(make_kanal, db_url):
    k = await make_kanal(db_url)
    reports = []
    for i, owner in enumerate(OWNERS):
        report = make_report(owner, minutes=i)
        if owner.startswith("kelurahan:"):
            # Located reports too, so the kelurahan filter is exercised.
            code = owner.split(":", 1)[1]
            report.location = Location(kelurahan=AreaRef(code=code, name=code))
        reports.append(report)
    await put_reports(k.store, *reports)
    by_id = {r.id: r for r in reports}
    tokens = {scope: await k.token(scope, "admin", name=f"admin-{scope}") for scope in SCOPES}

    for scope, token in tokens.items():
        visible = {r.id for r in reports if r.owner in expected_visible(scope, OWNERS)}
        assert visible or scope.startswith("office:"), scope

        async def ids(path: str, scope: str = scope, token: str = token, **params: str) -> set[str]:
            r = await k.client.get(path, params={"limit": "500", **params}, headers=bearer(token))
            assert r.status == 200, (scope, path, await r.text())
            return {item["id"] for item in (await r.json())["items"]}

        assert await ids("/api/v1/reports") == visible, scope
        assert await ids("/api/v1/queue") == visible, scope
        assert await ids("/api/v1/reports", q="jalan berlubang") == visible, scope
        assert await ids("/api/v1/reports", status="pending_enrichment", geo="false") == visible
        for report in reports:
            wanted = {report.id} & visible
            assert await ids("/api/v1/reports", owner=report.owner) == wanted, (scope, report.owner)
            assert await ids("/api/v1/queue", owner=report.owner) == wanted, (scope, report.owner)
            if report.location.kelurahan is not None:
                found = await ids("/api/v1/reports", kelurahan=report.location.kelurahan.code)
                assert found == wanted, (scope, report.owner)
            assert await ids("/api/v1/reports", q=report.ticket.lower()) == wanted

        r = await k.client.get("/api/v1/stats", headers=bearer(token))
        stats = await r.json()
        owners_seen = Counter(by_id[i].owner for i in visible)
        assert stats["by_owner"] == dict(owners_seen), scope
        assert sum(stats["by_status"].values()) == len(visible)
        assert sum(stats["by_channel"].values()) == len(visible)
        assert set(stats["oldest_waiting"]) == set(owners_seen)

        for report in reports:
            url = f"/api/v1/reports/{report.id}"
            r = await k.client.get(url, headers=bearer(token))
            if report.id in visible:
                assert r.status == 200
                continue
            assert r.status == 404, (scope, report.owner)
            assert report.text not in await r.text()
            writes = [
                ("post", url + "/claim", None),
                ("post", url + "/release", None),
                ("patch", url, {"category": "jalan"}),
                ("post", url + "/submit", None),
                ("post", url + "/reject", {"reason": "spam"}),
                ("post", url + "/reopen", None),
            ]
            for method, path, body in writes:
                r = await k.client.request(method, path, json=body, headers=bearer(token, 1))
                assert r.status == 404, (scope, report.owner, method, path, r.status)
            dup = {"reason": "duplicate", "duplicate_of": report.id}
            some_visible = next(iter(visible), None)
            if some_visible:  # naming an unseen report as the original reveals nothing either
                r = await k.client.post(
                    f"/api/v1/reports/{some_visible}/reject", json=dup, headers=bearer(token)
                )
                assert r.status == 422, (scope, report.owner)

    # Nothing outside any scope changed: every report is still at its first version.
    for report in reports:
        stored = await k.store.get_report(report.id)
        assert stored is not None and stored.version == 1 and stored.status == "pending_enrichment"


async def test_the_inbox_of_failed_messages_is_for_the_province_only(make_kanal):
    k = await make_kanal()
    for scope in (KOTA_PUSAT, MENTENG, OFFICE):
        r = await k.client.get("/api/v1/inbox", headers=bearer(await k.token(scope)))
        assert r.status == 403
    r = await k.client.get("/api/v1/inbox", headers=bearer(await k.token("province")))
    assert r.status == 200
