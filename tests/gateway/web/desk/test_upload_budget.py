"""A desk request is held to the app's client_max_size while its multipart is streamed:
files that are each under max_upload_bytes but together over it get 413."""

from __future__ import annotations

from tests.gateway.web.desk.helpers import jpeg_bytes, sign_in, walk_in
from tests.gateway.web.desk.test_walk_in import raw_count


async def test_files_each_under_the_cap_but_over_the_request_budget_get_413(make_kanal):
    k = await make_kanal()
    cap = k.runtime.settings.server.max_upload_bytes  # 20 MB per file, the default
    csrf = await sign_in(k)
    each = jpeg_bytes() + bytes(cap * 6 // 10)
    files = [("photos", f"{i}.jpg", each) for i in range(3)]  # 36 MB in one request
    r = await k.client.post("/desk", data=walk_in(csrf, files=files))
    assert r.status == 413
    assert await raw_count(k) == 0


async def test_one_file_at_the_cap_still_fits_the_request(make_kanal):
    k = await make_kanal()
    cap = k.runtime.settings.server.max_upload_bytes
    csrf = await sign_in(k)
    photo = jpeg_bytes() + bytes(cap - 4096)
    r = await k.client.post("/desk", data=walk_in(csrf, files=[("photos", "a.jpg", photo)]))
    assert r.status != 413
