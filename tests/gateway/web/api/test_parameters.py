"""Every bad query parameter of the admin API is a 400 `bad_parameter` naming that
parameter, read by the same schema the OpenAPI document shows."""

from __future__ import annotations

import pytest

from gateway.web.openapi import document
from tests.gateway.web.api.reports import MENTENG, make_report, put_reports

# (path and query, the parameter that must be blamed)
BAD = [
    ("/api/v1/inbox?limit=%C2%B2", "limit"),  # "²".isdigit() is true
    ("/api/v1/geocode?q=a&limit=%C2%B2", "limit"),
    ("/api/v1/geocode?q=a&limit=21", "limit"),
    ("/api/v1/geocode?q=", "q"),
    ("/api/v1/geocode", "q"),
    ("/api/v1/reports?limit=%C2%B2", "limit"),
    ("/api/v1/queue?limit=%C2%B2", "limit"),
    ("/api/v1/reports?limit=501", "limit"),
    ("/api/v1/reports?limit=-1", "limit"),
    ("/api/v1/queue?limit=1e2", "limit"),
    ("/api/v1/reports?cursor=bm90LWEtY3Vyc29y", "cursor"),
    ("/api/v1/queue?cursor=%00", "cursor"),
    ("/api/v1/reports?since=", "since"),
    ("/api/v1/reports?since=2026-11-27", "since"),
    ("/api/v1/reports?since=2026-13-01T00:00:00Z", "since"),
    ("/api/v1/reports?geo=maybe", "geo"),
    ("/api/v1/reports?attention=1", "attention"),
    ("/api/v1/reports?status=posted,nope", "status"),
    ("/api/v1/reports?q=", "q"),
    ("/api/v1/reports?q=a%00b", "q"),
    ("/api/v1/reports?owner=kelurahan:31.71", "owner"),
    ("/api/v1/reports?kelurahan=31.71.06.100%D9%A3", "kelurahan"),
    ("/api/v1/reports?stauts=posted", "stauts"),  # a typo would otherwise list everything
    ("/api/v1/stats?=null", ""),
]


@pytest.mark.parametrize(("path", "parameter"), BAD)
async def test_a_bad_parameter_is_a_400_naming_it(make_kanal, path, parameter):
    k = await make_kanal()
    token = await k.token("province")
    r = await k.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status == 400, await r.text()
    error = (await r.json())["error"]
    assert (error["code"], error["parameter"]) == ("bad_parameter", parameter)


async def test_good_parameters_of_every_kind_are_accepted(make_kanal):
    k = await make_kanal()
    await put_reports(k.store, make_report(MENTENG), make_report(MENTENG, minutes=1))
    auth = {"Authorization": f"Bearer {await k.token('province')}"}
    first = await (await k.client.get("/api/v1/reports?limit=1", headers=auth)).json()
    assert first["next_cursor"]
    for query in (
        f"cursor={first['next_cursor']}&limit=1",
        "since=2026-11-27T00:00:00Z&geo=false&attention=false",
        "since=2026-11-27t08:00:00.123456789%2B07:00",
        "since=0001-01-01T00:00:00%2B23:59",  # before year 1 in UTC: clamped, not a 500
        "since=9999-12-31T23:59:60-23:59",
        "status=pending_enrichment,ready&owner=kelurahan:31.71.06.1001&q=jalan",
        "kelurahan=31.71.06.1001&channel=sms",
    ):
        r = await k.client.get(f"/api/v1/reports?{query}", headers=auth)
        assert r.status == 200, (query, await r.text())
    since = await (
        await k.client.get("/api/v1/reports?since=2026-11-27T01:00:30Z", headers=auth)
    ).json()
    assert len(since["items"]) == 1  # the filter is applied, not only parsed
    r = await k.client.get("/api/v1/geocode?q=menteng&limit=20", headers=auth)
    assert r.status == 200


def test_the_document_states_the_limits_the_handlers_apply():
    doc = document()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/reports"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 50,
    }
    assert params["q"]["schema"]["minLength"] == 1
    assert params["since"]["schema"]["format"] == "date-time"
    geocode = {p["name"]: p for p in doc["paths"]["/api/v1/geocode"]["get"]["parameters"]}
    assert geocode["q"]["required"] and geocode["q"]["schema"]["minLength"] == 1
    assert geocode["limit"]["schema"]["maximum"] == 20
    patch = doc["paths"]["/api/v1/reports/{id}"]["patch"]
    if_match = next(p for p in patch["parameters"] if p["name"] == "If-Match")
    assert if_match["schema"]["pattern"] == '^(W/)?("[0-9]{1,9}"|[0-9]{1,9})$'
    conflict = patch["responses"]["409"]["content"]["application/json"]["schema"]
    name = conflict["$ref"].rsplit("/", 1)[1]
    codes = {
        doc["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]["properties"]["error"][
            "$ref"
        ]
        for option in doc["components"]["schemas"][name]["anyOf"]
    }
    assert len(codes) == 3  # claimed, wrong_status and no_attention
