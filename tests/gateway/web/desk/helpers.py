"""Signing people in for desk tests: a person in the store and a client session with cookies."""

from __future__ import annotations

import io
import re
from typing import Any

from aiohttp import FormData

from gateway.web.people import create_user

PASSWORD = "kata-sandi-rahasia-1"


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


async def sign_in(
    k: Any,
    name: str = "petugas",
    scope: str = "kelurahan:31.71.06.1001",
    role: str = "officer",
    password: str = PASSWORD,
    create: bool = True,
) -> str:
    """Creates the person (unless told not to), signs in on k.client; returns the CSRF token."""
    if create:
        await create_user(k.store, name, password, role, scope)
    page = await k.client.get("/signin")
    assert page.status == 200
    token = hidden(await page.text(), "csrf")
    r = await k.client.post(
        "/signin",
        data={"name": name, "password": password, "csrf": token, "next": "/desk"},
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    desk = await k.client.get("/desk/media")
    assert desk.status == 200
    return hidden(await desk.text(), "csrf")


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def walk_in(csrf: str, files: list[tuple[str, str, bytes]] = (), **fields: str) -> FormData:  # type: ignore[assignment]
    form = FormData()
    form.add_field("csrf", csrf)
    for key, value in {"text": "Lampu jalan mati di depan sekolah", **fields}.items():
        form.add_field(key, value)
    for field, filename, data in files:
        form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return form
