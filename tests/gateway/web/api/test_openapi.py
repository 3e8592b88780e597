"""The OpenAPI document describes every admin API route, and live answers match it.

Every route of the app's router is documented, and a set of chosen requests (successes and
each kind of refusal, which generated data rarely reaches: a lease held by another, a
stale version, an incomplete submit) get answers whose status is documented and whose body
validates against the documented schema (a small JSON Schema validator below, plus the
pydantic model itself). tests/gateway/web/api/test_schemathesis.py explores the rest with generated
data.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.web.openapi import document, response_model
from tests.gateway.web.api.reports import KOTA_PUSAT, MENTENG, make_report, put_reports

IN_MENTENG = {"lat": -6.1963, "lon": 106.8305}


class SchemaError(AssertionError):
    pass


def validate(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str = "$") -> None:
    """The subset of JSON Schema 2020-12 pydantic emits: $ref, type, properties, required,
    additionalProperties, items, anyOf, enum, const, format date-time."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        validate(value, doc["components"]["schemas"][name], doc, where)
        return
    if "anyOf" in schema:
        problems = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, doc, where)
                return
            except SchemaError as exc:
                problems.append(str(exc))
        raise SchemaError(f"{where}: matches no option: {problems}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} not in {schema['enum']}")
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kind is not None and not checks[kind](value):
        raise SchemaError(f"{where}: {value!r} is not {kind}")
    if kind == "string" and schema.get("format") == "date-time":
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
            raise SchemaError(f"{where}: {value!r} is not RFC 3339")
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{where}: {name} is required")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                validate(item, properties[name], doc, f"{where}.{name}")
            elif extra is False:
                raise SchemaError(f"{where}: {name} is not documented")
            elif isinstance(extra, dict):
                validate(item, extra, doc, f"{where}.{name}")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], doc, f"{where}[{i}]")


def test_the_validator_refuses_what_it_should():
    doc = document()
    report = {"$ref": "#/components/schemas/Report"}
    for bad in ({}, {"id": 1}, [], None):
        try:
            validate(bad, report, doc)
        except SchemaError:
            continue
        raise AssertionError(f"{bad!r} passed")


async def test_every_api_route_is_documented_and_every_documented_route_exists(make_kanal):
    k = await make_kanal()
    doc = document()
    served = set()
    for route in k.client.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if not path.startswith("/api/v1/") or route.method in ("HEAD", "*"):
            continue
        served.add((route.method.lower(), path))
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                assert answer["content"]["application/json"]["schema"], (method, path, status)


async def test_live_answers_match_the_document(make_kanal):
    k = await make_kanal()
    doc = document()
    r = await k.client.get("/api/v1/openapi.json")  # no token needed
    assert r.status == 200 and (await r.json()) == doc
    assert doc["openapi"].startswith("3.")

    first, second, other = (
        make_report(MENTENG),
        make_report(MENTENG, minutes=1),
        make_report(KOTA_PUSAT, minutes=2),
    )
    await put_reports(k.store, first, second, other)
    ana = await k.token(MENTENG, "admin", name="ana")
    budi = await k.token(KOTA_PUSAT, "admin", name="budi")
    viewer = await k.token(MENTENG, "viewer")
    province = await k.token("province")
    rep = "/api/v1/reports/{id}"

    def h(token: str | None, version: int | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if version is not None:
            headers["If-Match"] = str(version)
        return headers

    # (method, documented path, concrete path, token, body, If-Match, expected status)
    one = f"/api/v1/reports/{first.id}"
    two = f"/api/v1/reports/{second.id}"
    calls: list[tuple[str, str, str, str | None, Any, int | None, int]] = [
        ("get", "/api/v1/queue", "/api/v1/queue?limit=1", ana, None, None, 200),
        ("get", "/api/v1/queue", "/api/v1/queue?limit=0", ana, None, None, 400),
        ("get", "/api/v1/queue", "/api/v1/queue", None, None, None, 401),
        ("get", "/api/v1/reports", "/api/v1/reports?geo=false&q=jalan", province, None, None, 200),
        ("get", "/api/v1/reports", "/api/v1/reports?geo=maybe", province, None, None, 400),
        ("get", rep, one, ana, None, None, 200),
        ("get", rep, f"/api/v1/reports/{other.id}", ana, None, None, 404),
        ("post", rep + "/claim", one + "/claim", ana, None, None, 200),
        ("post", rep + "/claim", one + "/claim", budi, None, None, 409),
        ("post", rep + "/claim", one + "/claim", viewer, None, None, 403),
        ("patch", rep, one, ana, {"category": "jalan"}, None, 428),
        ("patch", rep, one, ana, {"category": "jalan"}, 1, 412),
        ("patch", rep, one, ana, {"category": "nope"}, 2, 422),
        ("patch", rep, one, ana, b"{", 2, 400),
        ("patch", rep, one, budi, {"category": "jalan"}, 2, 409),
        ("post", rep + "/submit", one + "/submit", ana, None, None, 422),
        ("patch", rep, one, ana, {"category": "jalan", "location": IN_MENTENG}, 2, 200),
        ("post", rep + "/submit", one + "/submit", budi, None, None, 409),
        ("post", rep + "/submit", one + "/submit", ana, None, None, 202),
        ("post", rep + "/release", two + "/release", ana, None, None, 200),
        ("post", rep + "/reject", two + "/reject", ana, {"reason": "spam"}, None, 200),
        ("post", rep + "/reject", two + "/reject", ana, {"reason": "?"}, None, 422),
        ("post", rep + "/reopen", two + "/reopen", ana, None, None, 200),
        ("post", rep + "/reopen", two + "/reopen", ana, None, None, 409),  # wrong_status
        ("patch", rep, two, ana, {"attention": None}, 3, 409),  # no_attention
        ("post", rep + "/retry", two + "/retry", ana, None, None, 409),  # not failed
        ("get", "/api/v1/stats", "/api/v1/stats", ana, None, None, 200),
        ("get", "/api/v1/stats", "/api/v1/stats", province, None, None, 200),
        ("get", "/api/v1/inbox", "/api/v1/inbox", province, None, None, 200),
        ("get", "/api/v1/inbox", "/api/v1/inbox", ana, None, None, 403),
        ("get", "/api/v1/geocode", "/api/v1/geocode?q=menteng", ana, None, None, 200),
        ("get", "/api/v1/geocode", "/api/v1/geocode", ana, None, None, 400),
    ]
    for method, template, path, token, body, version, expected in calls:
        kwargs: dict[str, Any] = {"headers": h(token, version)}
        if isinstance(body, bytes):
            kwargs["data"] = body
        elif body is not None:
            kwargs["json"] = body
        r = await k.client.request(method, path, **kwargs)
        label = f"{method.upper()} {path} as {token and token[:8]}"
        assert r.status == expected, (label, await r.text())
        operation = doc["paths"][template][method]
        assert str(r.status) in operation["responses"], f"{label}: {r.status} undocumented"
        assert r.content_type == "application/json"
        answer = await r.json()
        schema = operation["responses"][str(r.status)]["content"]["application/json"]["schema"]
        validate(answer, schema, doc, label)
        model = response_model(method, template, r.status)
        assert model is not None
        model.model_validate(answer)
