"""Shared by the /admin page tests: a citizen's SMS in a kelurahan's queue, and signing in."""

from __future__ import annotations

import json
import re
from typing import Any

from connectors.base import kanal_signature
from gateway.web.people import create_user
from tests.conftest import SECRETS

PASSWORD = "kata-sandi-rahasia-1"
MENTENG = "kelurahan:31.71.06.1001"


async def send_sms(k: Any, message_id: str, sender: str, text: str, received_at: str) -> None:
    """A generic SMS webhook signed as the gateway signs it; 200 expected."""
    body = json.dumps(
        {
            "id": message_id,
            "from": sender,
            "to": "1708",
            "text": text,
            "received_at": received_at,
        }
    ).encode()
    r = await k.client.post(
        "/webhooks/sms/generic",
        data=body,
        headers={
            "X-Kanal-Signature": kanal_signature(SECRETS["sms_generic"], body),
            "Content-Type": "application/json",
        },
    )
    assert r.status == 200, await r.text()


async def sms_in_queue(k: Any, n: int, text: str, owner: str = MENTENG, at: str = "08:00") -> str:
    """A signed generic SMS, normalized, then handed to `owner`'s queue; returns its id."""
    await send_sms(k, f"m{n}", "081234567890", text, f"2026-11-27T{at}:00+07:00")
    await k.drain()
    # The SMS answer carries no ticket: find the report by its (unique) text.
    [report], _ = await k.store.list_reports("province", q=text.lower()[:40], limit=2)
    report_id = report.id
    await k.store.update_report(
        report_id, lambda r: r.model_copy(update={"owner": owner, "history": []})
    )
    return report_id


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


async def sign_in(
    client: Any, name: str, scope: str, role: str = "admin", store: Any = None
) -> str:
    """Creates the person (when a store is given) and signs `client` in; returns CSRF token."""
    if store is not None:
        await create_user(store, name, PASSWORD, role, scope)
    page = await client.get("/signin")
    token = hidden(await page.text(), "csrf")
    r = await client.post(
        "/signin",
        data={"name": name, "password": PASSWORD, "csrf": token, "next": "/admin"},
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    page = await client.get("/admin")
    assert page.status == 200
    return hidden(await page.text(), "csrf")


async def second_client(k: Any) -> Any:
    """Another browser on the same kanal (its own cookies)."""
    from aiohttp.test_utils import TestClient

    client = TestClient(k.client.server)
    await client.start_server()
    return client
