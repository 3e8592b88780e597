"""People: slow password hashes, sign-in, lockout, idle sessions, `kanal user`."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from gateway import cli
from gateway.store import Store
from gateway.web.people import (
    authenticate,
    create_user,
    disable_user,
    hash_password,
    load_session,
    set_password,
    start_session,
    verify_password,
)
from tests.conftest import write_config
from tests.gateway.web.desk.helpers import PASSWORD, hidden, sign_in


def test_a_password_is_stored_as_a_self_describing_scrypt_hash():
    encoded = hash_password("rahasia-sekali-123")
    scheme, n, r, p, _salt, _digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert verify_password("rahasia-sekali-123", encoded)
    assert not verify_password("rahasia-sekali-124", encoded)
    assert hash_password("rahasia-sekali-123") != encoded  # a salt per hash
    assert not verify_password("x", "md5$abc") and not verify_password("x", "scrypt$1$2")


@pytest.fixture
async def store(db_url):
    s = Store(db_url)
    await s.migrate()
    yield s
    await s.close()


async def test_five_failures_lock_the_account_for_fifteen_minutes(store):
    await create_user(store, "ani", PASSWORD, "officer", "office:inspektorat")
    now = store.clock()
    for _ in range(4):
        assert (await authenticate(store, "ani", "salah-salah-salah")).reason == "bad_credentials"
    assert (await authenticate(store, "ani", "salah-salah-salah")).reason == "locked"
    assert (await authenticate(store, "ani", PASSWORD)).reason == "locked"  # even the right one
    store.clock = lambda: now + timedelta(minutes=16)
    assert (await authenticate(store, "ani", PASSWORD)).person is not None


async def test_unknown_and_disabled_people_get_the_same_answer(store):
    await create_user(store, "budi", PASSWORD, "officer", "office:inspektorat")
    await disable_user(store, "budi")
    assert (await authenticate(store, "budi", PASSWORD)).reason == "bad_credentials"
    assert (await authenticate(store, "siapa", PASSWORD)).reason == "bad_credentials"


async def test_a_session_ends_after_the_idle_timeout_and_when_the_person_is_disabled(store):
    person = await create_user(store, "citra", PASSWORD, "officer", "office:inspektorat")
    session_id, csrf = await start_session(store, person)
    now = store.clock()
    store.clock = lambda: now + timedelta(minutes=20)
    assert (await load_session(store, session_id, 30)).csrf_token == csrf
    store.clock = lambda: now + timedelta(minutes=45)  # 25 idle minutes since the last touch
    assert await load_session(store, session_id, 30) is not None
    store.clock = lambda: now + timedelta(minutes=80)
    assert await load_session(store, session_id, 30) is None
    session_id, _ = await start_session(store, person)
    assert await set_password(store, "citra", "kata-sandi-baru-99")
    assert await load_session(store, session_id, 30) is None  # a new password ends sessions


async def test_sign_in_sign_out_and_disable_over_http(make_kanal):
    k = await make_kanal()
    csrf = await sign_in(k, name="dewi")
    assert (await k.client.get("/desk", allow_redirects=False)).status == 200
    cookie = next(c for c in k.client.session.cookie_jar if c.key == "kanal_session")
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    r = await k.client.post("/signout", data={"csrf": csrf}, allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/signin")
    assert (await k.client.get("/desk", allow_redirects=False)).status == 303
    await sign_in(k, name="dewi", create=False)
    await disable_user(k.store, "dewi")
    assert (await k.client.get("/desk", allow_redirects=False)).status == 303


async def test_a_wrong_password_page_says_so_without_naming_which_part_was_wrong(make_kanal):
    k = await make_kanal()
    token = hidden(await (await k.client.get("/signin")).text(), "csrf")
    r = await k.client.post("/signin", data={"name": "x", "password": "y" * 12, "csrf": token})
    assert r.status == 401
    assert "Nama pengguna atau kata sandi salah." in await r.text()


async def test_a_viewer_may_not_use_the_desk(make_kanal):
    k = await make_kanal()
    await create_user(k.store, "vera", PASSWORD, "viewer", "province")
    token = hidden(await (await k.client.get("/signin")).text(), "csrf")
    await k.client.post("/signin", data={"name": "vera", "password": PASSWORD, "csrf": token})
    assert (await k.client.get("/desk")).status == 403


def test_kanal_user_create_reads_the_password_from_stdin_and_refuses_short_ones(
    tmp_path, monkeypatch, capsys
):
    config = str(write_config(tmp_path, f"sqlite:///{tmp_path}/cli.db"))
    monkeypatch.setattr("sys.stdin", io.StringIO("pendek\n"))
    assert (
        cli.main(
            [
                "user",
                "create",
                "--name",
                "eka",
                "--role",
                "officer",
                "--scope",
                "kelurahan:31.71.06.1001",
                "--config",
                config,
            ]
        )
        == 2
    )
    assert "at least 10 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        cli.main(
            [
                "user",
                "create",
                "--name",
                "eka",
                "--role",
                "officer",
                "--scope",
                "kelurahan:31.71.06.1001",
                "--config",
                config,
            ]
        )
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("kata-sandi-baru-99\n"))
    assert cli.main(["user", "password", "--name", "eka", "--config", config]) == 0
    assert cli.main(["user", "disable", "--name", "eka", "--config", config]) == 0
    assert cli.main(["user", "disable", "--name", "eka", "--config", config]) == 1
    assert (
        cli.main(
            [
                "user",
                "create",
                "--name",
                "fajar",
                "--role",
                "officer",
                "--scope",
                "kota:99.99",
                "--config",
                config,
            ]
        )
        == 2
    )


def test_kanal_user_list_shows_role_scope_state_and_last_sign_in_but_never_a_hash(
    tmp_path, monkeypatch, capsys
):
    import asyncio

    from gateway.base.config import load_config

    config = str(write_config(tmp_path, f"sqlite:///{tmp_path}/cli.db"))
    assert cli.main(["user", "list", "--config", config]) == 0
    assert "no people yet" in capsys.readouterr().out

    async def people() -> None:
        store = Store(load_config(config, environ={}).settings.database.url)
        await store.migrate()
        try:
            await create_user(store, "gita", PASSWORD, "admin", "kota:31.71")
            await create_user(store, "hadi", PASSWORD, "officer", "office:inspektorat")
            await create_user(store, "indra", PASSWORD, "viewer", "province")
            assert (await authenticate(store, "gita", PASSWORD)).person is not None
            await disable_user(store, "hadi")
            for _ in range(5):
                await authenticate(store, "indra", "salah-salah-salah")
        finally:
            await store.close()

    asyncio.run(people())
    assert cli.main(["user", "list", "--config", config]) == 0
    out = capsys.readouterr().out
    lines = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert lines["gita"][1:4] == ["admin", "kota:31.71", "active"]
    assert lines["gita"][4].startswith("last sign-in 20")
    assert lines["hadi"][1:] == ["officer", "office:inspektorat", "disabled", "never signed in"]
    assert lines["indra"][1:] == ["viewer", "province", "locked", "never signed in"]
    assert "scrypt" not in out
