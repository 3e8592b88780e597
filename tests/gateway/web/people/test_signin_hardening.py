"""Sign-in against attackers: concurrent guessing stops at the lock, a lock does
not reset the count, names cannot be learned from answers or timing, `next` never leads
off-site, and a store that cannot be written is a 503 page, not a 500."""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import time
from datetime import timedelta

import pytest

from gateway.store import StoreUnavailable
from gateway.web import people
from gateway.web.people import LOCK_AFTER_FAILURES, authenticate, create_user, disable_user
from tests.gateway.web.desk.helpers import PASSWORD, hidden, sign_in
from tests.gateway.web.people import test_people

WRONG = "salah-salah-salah"
store = test_people.store  # the fixture: a migrated store, on SQLite and PostgreSQL


def count_real_checks(monkeypatch) -> list[str]:
    """Every password verified against a stored hash (not the dummy one) is recorded."""
    checked: list[str] = []
    real = people.verify_password

    def counting(password: str, encoded: str) -> bool:
        if encoded != people._DUMMY_HASH:
            checked.append(password)
        return real(password, encoded)

    monkeypatch.setattr(people, "verify_password", counting)
    return checked


async def test_150_concurrent_guesses_with_one_form_check_at_most_five_passwords(
    make_kanal, db_url, monkeypatch
):
    k = await make_kanal(db_url)
    k.runtime.settings.server.signin_burst = 1000  # this test is about the lock, not the rate
    await create_user(k.store, "ani", PASSWORD, "officer", "office:inspektorat")
    checked = count_real_checks(monkeypatch)
    token = hidden(await (await k.client.get("/signin")).text(), "csrf")

    async def guess(i: int) -> int:
        password = PASSWORD if i == 80 else f"{WRONG}-{i}"
        r = await k.client.post(
            "/signin",
            data={"name": "ani", "password": password, "csrf": token},
            allow_redirects=False,
        )
        await r.read()
        return r.status

    statuses = await asyncio.gather(*(guess(i) for i in range(150)))
    assert len(checked) <= LOCK_AFTER_FAILURES, len(checked)
    assert 303 not in statuses  # the right password came after the lock: no session
    assert set(statuses) == {401}
    assert not any(c.key == "kanal_session" for c in k.client.session.cookie_jar)


async def test_a_lock_does_not_reset_the_count_so_the_next_failure_locks_again(store):
    await create_user(store, "budi", PASSWORD, "officer", "office:inspektorat")
    now = store.clock()
    for _ in range(LOCK_AFTER_FAILURES):
        await authenticate(store, "budi", WRONG)
    assert (await authenticate(store, "budi", PASSWORD)).reason == "locked"
    store.clock = lambda: now + timedelta(minutes=16)
    assert (await authenticate(store, "budi", WRONG)).reason == "locked"  # one try, locked again
    assert (await authenticate(store, "budi", PASSWORD)).person is None
    store.clock = lambda: now + timedelta(minutes=32)
    assert (await authenticate(store, "budi", PASSWORD)).person is not None
    assert (await authenticate(store, "budi", WRONG)).reason == "bad_credentials"  # count cleared


def _page(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]*"', 'name="csrf" value=""', html)


async def test_unknown_locked_disabled_and_wrong_get_the_same_answer(make_kanal):
    k = await make_kanal()
    for name in ("locked", "disabled", "known"):
        await create_user(k.store, name, PASSWORD, "officer", "office:inspektorat")
    await disable_user(k.store, "disabled")
    for _ in range(LOCK_AFTER_FAILURES):
        await authenticate(k.store, "locked", WRONG)

    async def attempt(name: str, password: str) -> tuple[int, str]:
        token = hidden(await (await k.client.get("/signin")).text(), "csrf")
        r = await k.client.post(
            "/signin", data={"name": name, "password": password, "csrf": token, "next": "/desk"}
        )
        return r.status, _page(await r.text()).replace(f'value="{name}"', 'value="NAME"')

    answers = {
        "unknown": await attempt("nobody", WRONG),
        "locked (right password)": await attempt("locked", PASSWORD),
        "disabled (right password)": await attempt("disabled", PASSWORD),
        "wrong password": await attempt("known", WRONG),
    }
    assert len(set(answers.values())) == 1, answers
    assert answers["unknown"][0] == 401


async def test_unknown_locked_disabled_and_wrong_take_comparable_time(store):
    for name in ("locked", "disabled", "known"):
        await create_user(store, name, PASSWORD, "officer", "office:inspektorat")
    await disable_user(store, "disabled")
    for _ in range(LOCK_AFTER_FAILURES):
        await authenticate(store, "locked", WRONG)

    async def median(name: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            await authenticate(store, name, WRONG)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    await median("known")  # warm up
    timings = {n: await median(n) for n in ("nobody", "locked", "disabled", "known")}
    # Each does one scrypt run (tens of ms); a locked account used to answer in 3 ms.
    assert max(timings.values()) < 3 * min(timings.values()), timings


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/x",
        "//evil.example/x",
        "/\\evil.example/x",
        "https://evil.example/x",
        "/\n/evil.example",
        "/ /evil.example",
        "/\x00/evil.example",
        "desk",
        "",
    ],
)
async def test_next_never_leads_off_site(make_kanal, target):
    k = await make_kanal()
    page = await k.client.get("/signin", params={"next": target})
    assert hidden(await page.text(), "next") == "/desk"
    await sign_in(k, name="citra")
    r = await k.client.get("/signin", params={"next": target}, allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/desk")


async def test_the_raw_tab_trick_of_the_issue_is_refused(make_kanal):
    k = await make_kanal()
    await sign_in(k, name="dewi")
    r = await k.client.get("/signin?next=/%09/evil.example/x", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/desk")
    r = await k.client.get("/signin?next=/admin/reports%3Fq%3Dx", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/admin/reports?q=x")  # local: kept


async def test_sign_in_answers_a_503_page_when_the_store_cannot_be_written(make_kanal, monkeypatch):
    k = await make_kanal()
    await create_user(k.store, "eka", PASSWORD, "officer", "office:inspektorat")
    token = hidden(await (await k.client.get("/signin")).text(), "csrf")

    @contextlib.asynccontextmanager
    async def full_disk():
        raise StoreUnavailable("database or disk is full")
        yield

    monkeypatch.setattr(k.store, "write", full_disk)
    r = await k.client.post(
        "/signin", data={"name": "eka", "password": PASSWORD, "csrf": token}, allow_redirects=False
    )
    assert r.status == 503
    assert r.content_type == "text/html" and "coba lagi" in await r.text()
    assert r.headers["Retry-After"]
