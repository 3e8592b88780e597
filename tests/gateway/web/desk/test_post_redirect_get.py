"""A desk form with errors is answered by a redirect to the form again (post/redirect/get):
what was typed comes back from a draft only its officer can read, the problem is told once,
and reloading the page posts nothing. A form that goes through goes to its receipt."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from gateway.store.schema import kv_state
from gateway.web.drafts import keep_draft, read_draft
from tests.gateway.web.desk.helpers import hidden, sent_back, sign_in, walk_in
from tests.gateway.web.desk.test_walk_in import raw_count

# Longer than any cookie could carry back: the draft is kept by the server.
LONG = "Got tersumbat di Jalan Kebon Sirih dekat sekolah, air meluap ke rumah warga. " * 80


async def drafts(k) -> int:  # type: ignore[no-untyped-def]
    async with k.store.read() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(kv_state)
                    .where(kv_state.c.key.like("desk_draft:%"))
                )
            ).scalar_one()
        )


async def test_a_walk_in_with_errors_comes_back_by_a_get_that_a_reload_does_not_post(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    assert len(LONG) > 5000
    r = await k.client.post(
        "/desk",
        data=walk_in(csrf, text=LONG, name="Citra", phone="12ab"),
        allow_redirects=False,
    )
    assert r.status == 303
    back = r.headers["Location"]
    assert back.startswith("/desk?draft=") and "Citra" not in back
    page = await k.client.get(back)
    html = await page.text()
    assert page.status == 200
    assert "Formulir belum terkirim: periksa isian yang ditandai." in html
    assert "Nomor telepon tidak valid" in html and 'value="Citra"' in html
    assert LONG.strip()[:200] in html and html.count("Got tersumbat") == 80
    # A reload is a GET: the same entries, the message not told twice, nothing posted.
    again = await (await k.client.get(back)).text()
    assert 'value="Citra"' in again and "Nomor telepon tidak valid" in again
    assert "Formulir belum terkirim" not in again
    assert await raw_count(k) == 0
    # Corrected and sent from that page: the receipt, and the draft forgotten.
    draft = hidden(again, "draft")
    form = walk_in(csrf, text=LONG, name="Citra", phone="0812 3456 7890", draft=draft)
    r = await k.client.post("/desk", data=form, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/desk/receipt/")
    assert await raw_count(k) == 1 and await drafts(k) == 0
    assert 'value="Citra"' not in await (await k.client.get(back)).text()


async def test_a_draft_is_read_by_no_other_officer(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post(
        "/desk", data=walk_in(csrf, name="Citra", phone="12ab"), allow_redirects=False
    )
    back = r.headers["Location"]
    await k.client.post("/signout", data={"csrf": csrf})
    await sign_in(k, name="lain")  # another officer in the same browser
    html = await (await k.client.get(back)).text()
    assert "<h1>Pengaduan langsung</h1>" in html  # the form, empty
    assert "Citra" not in html and "Nomor telepon tidak valid" not in html


async def test_a_clipping_with_errors_comes_back_by_a_get(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k)
    r = await k.client.post(
        "/desk/media",
        data={"csrf": csrf, "outlet": "", "headline": "Banjir", "text": LONG},
    )
    assert sent_back(r)
    html = await r.text()
    assert "Nama media wajib diisi." in html and 'value="Banjir"' in html
    assert html.count("Got tersumbat") == 80
    assert "Formulir belum terkirim" in html
    assert await raw_count(k) == 0


async def test_drafts_last_half_an_hour_and_are_then_dropped(make_kanal):
    k = await make_kanal()
    real = k.store.clock
    first = await keep_draft(k.store, 7, "walk_in", {"text": "Sampah"}, {"phone": "x"})
    found = await read_draft(k.store, 7, "walk_in", first)
    assert found is not None and found.values == {"text": "Sampah"}
    assert await read_draft(k.store, 8, "walk_in", first) is None  # another person
    assert await read_draft(k.store, 7, "clipping", first) is None  # another form
    k.store.clock = lambda: real() + timedelta(minutes=31)
    assert await read_draft(k.store, 7, "walk_in", first) is None
    await keep_draft(k.store, 7, "walk_in", {"text": "Lampu"}, {})
    assert await drafts(k) == 1  # the old one went with the new one's write
