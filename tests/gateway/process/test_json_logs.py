"""`[log] format = "json"`: a real `kanal serve` writes one JSON object per line, and the
lines logged while it handled a request carry that request's id, the id it answered in
X-Request-Id. A trusted proxy's well-formed id is kept; anyone else's is replaced."""

from __future__ import annotations

import json
import re

import aiohttp

from tests.conftest import write_config

JSON_LOGS = '\n[log]\nformat = "json"\n'


def log_lines(server) -> list[dict]:
    lines = server.log_path.read_text().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def refused_sign_in(session: aiohttp.ClientSession, base: str, **headers: str) -> str:
    """A wrong password (logged at info: "sign-in refused"); the request id it answered."""
    page = await session.get(f"{base}/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    r = await session.post(
        f"{base}/signin",
        data={"name": "nobody", "password": "wrong", "csrf": csrf.group(1), "next": "/desk"},
        headers=headers,
        allow_redirects=False,
    )
    assert r.status == 401
    return r.headers["X-Request-Id"]


async def test_json_logs_carry_the_request_id_of_the_request_being_handled(tmp_path, serve_process):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", JSON_LOGS)
    server = serve_process(config, {"KANAL_SERVER__TRUSTED_PROXIES": '["127.0.0.1/32"]'})
    server.start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        request_id = await refused_sign_in(session, server.base_url)
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        # The proxy (trusted here) names the request: kanal keeps its id...
        kept = await refused_sign_in(
            session, server.base_url, **{"X-Request-Id": "nginx-7f3a9c2e41d0"}
        )
        assert kept == "nginx-7f3a9c2e41d0"
        # ...unless it is no well-formed id (a log line could be forged with one).
        forged = await refused_sign_in(
            session, server.base_url, **{"X-Request-Id": '" level=ERROR message="forged'}
        )
        assert re.fullmatch(r"[0-9a-f]{32}", forged)
    server.stop()

    lines = log_lines(server)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    started = [line for line in lines if line["message"].startswith("kanal serve on")]
    assert started and "request_id" not in started[0]  # not during a request
    for rid in (request_id, kept, forged):
        mine = [line for line in lines if line.get("request_id") == rid]
        assert [line["message"] for line in mine] == ["sign-in refused (bad_credentials)"], mine
        assert mine[0]["level"] == "INFO" and mine[0]["logger"].startswith("kanal")


async def test_text_logs_by_default_and_an_untrusted_client_cannot_choose_its_id(
    tmp_path, serve_process
):
    server = serve_process(write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db"))
    server.start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        request_id = await refused_sign_in(
            session, server.base_url, **{"X-Request-Id": "client-chosen-id-123"}
        )
        assert request_id != "client-chosen-id-123"
        missing = await session.get(f"{server.base_url}/no/such/page")
        assert missing.status == 404 and missing.headers["X-Request-Id"] != request_id
    server.stop()
    text = server.log_path.read_text()
    assert not text.lstrip().startswith("{")
    assert f"[{request_id}]: sign-in refused (bad_credentials)" in text
