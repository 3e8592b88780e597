"""Learning from admins: every decision kept with its text, through the API and the pages
alike; `kanal learn` trains, evaluates against the active model and activates only a better
one; running processes pick it up; `category.source` says who answered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bench.synthetic_decisions import decisions as synthetic_decisions
from gateway.cli import main as kanal_main
from gateway.pipeline import learning
from gateway.pipeline.learning import active_models, learn
from gateway.store.schema import decisions
from tests.gateway.web.admin.helpers import MENTENG, sign_in, sms_in_queue
from tests.gateway.web.api.reports import KOTA_PUSAT, make_report, put_reports

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def auth(token: str, version: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = str(version)
    return headers


def kinds(rows):  # type: ignore[no-untyped-def]
    return [(r["kind"], r["label"], r["detail"], r["by"]) for r in rows]


async def put_decisions(store, n: int, seed: int = 1) -> None:  # type: ignore[no-untyped-def]
    """`n` made-up decisions (bench/synthetic_decisions.py), as if admins had made them."""
    rows = []
    for i, d in enumerate(synthetic_decisions(n, seed=seed)):
        common = {
            "report_id": f"r{seed}-{i:06d}",
            "text": d.text,
            "channel": "sms",
            "by": "ana",
            "decided_at": T0 + timedelta(minutes=i),
        }
        if d.noise:
            rows.append({**common, "kind": "rejection", "label": "not_a_complaint", "detail": None})
        else:
            rows.append({**common, "kind": "category", "label": d.category, "detail": "kept"})
    async with store.write() as conn:
        await conn.execute(decisions.insert(), rows)


# --- decisions are recorded ------------------------------------------------------------------


async def test_api_decisions_are_kept_with_the_text_they_were_made_on(make_kanal):
    k = await make_kanal()
    text = "Got mampet di gang kelinci, air naik ke jalan"
    report = make_report(KOTA_PUSAT, text=text)
    other = make_report(KOTA_PUSAT, text="promo slot gacor maxwin")
    handed = make_report(KOTA_PUSAT, text="Pohon tumbang di taman")
    await put_reports(k.store, report, other, handed)
    token = await k.token(KOTA_PUSAT, "admin", name="budi")
    url = f"/api/v1/reports/{report.id}"

    r = await k.client.patch(url, json={"category": "jalan"}, headers=auth(token, 1))
    assert r.status == 200
    body = await r.json()
    assert body["category"]["source"] == "admin"
    r = await k.client.patch(
        url,
        json={"category": "saluran_air_kali_sungai", "kelurahan_code": "31.71.06.1001"},
        headers=auth(token, 2),
    )
    assert r.status == 200
    assert (await k.client.post(url + "/submit", headers=auth(token))).status == 202
    rows = await k.store.report_decisions(report.id)
    assert kinds(rows) == [
        ("category", "jalan", "set", "budi"),
        ("category", "saluran_air_kali_sungai", "set", "budi"),
        ("location", "31.71.06.1001", None, "budi"),
        ("category", "saluran_air_kali_sungai", "set", "budi"),
        ("location", "31.71.06.1001", None, "budi"),
    ]
    assert {row["text"] for row in rows} == {text}

    r = await k.client.post(
        f"/api/v1/reports/{other.id}/reject", json={"reason": "spam"}, headers=auth(token)
    )
    assert r.status == 200
    assert kinds(await k.store.report_decisions(other.id)) == [("rejection", "spam", None, "budi")]
    assert (await k.client.post(f"/api/v1/reports/{other.id}/reopen", headers=auth(token))).ok
    assert kinds(await k.store.report_decisions(other.id))[-1] == ("reopened", "", None, "budi")

    r = await k.client.patch(
        f"/api/v1/reports/{handed.id}", json={"owner": "office:balai_kota"}, headers=auth(token, 1)
    )
    assert r.status == 200
    assert kinds(await k.store.report_decisions(handed.id)) == [
        ("handover", "office:balai_kota", None, "budi")
    ]

    # The labelled examples: the latest word per report; a reopening takes back a rejection.
    labelled = {e.report_id: e for e in await k.store.labelled_reports()}
    assert labelled[report.id].category == "saluran_air_kali_sungai"
    assert labelled[report.id].noise is False and labelled[report.id].text == text
    assert other.id not in labelled and handed.id not in labelled


async def test_a_category_kept_at_submit_is_a_decision_and_says_kept(make_kanal):
    k = await make_kanal()
    report = make_report(KOTA_PUSAT, text="Lampu PJU mati di Jl. Kebon Sirih")
    report.category.code, report.category.name = "jaringan_listrik", "Jaringan Listrik"
    await put_reports(k.store, report)
    token = await k.token(KOTA_PUSAT, "admin", name="budi")
    url = f"/api/v1/reports/{report.id}"
    r = await k.client.patch(url, json={"kelurahan_code": "31.71.06.1001"}, headers=auth(token, 1))
    assert r.status == 200
    assert (await k.client.post(url + "/submit", headers=auth(token))).status == 202
    assert kinds(await k.store.report_decisions(report.id))[-2:] == [
        ("category", "jaringan_listrik", "kept", "budi"),
        ("location", "31.71.06.1001", None, "budi"),
    ]


async def test_page_decisions_are_kept_like_the_api_s(make_kanal):
    k = await make_kanal()
    text = "Sampah menumpuk di pinggir kali dekat SDN 01 Kelurahan Menteng"
    report_id = await sms_in_queue(k, 1, text)
    spam_id = await sms_in_queue(k, 2, "promo pinjaman online cair hubungi wa")
    csrf = await sign_in(k.client, "ana", MENTENG, store=k.store)
    report = await k.store.get_report(report_id)
    r = await k.client.post(
        f"/admin/reports/{report_id}/enrich",
        data={
            "csrf": csrf,
            "version": str(report.version),
            "kelurahan_code": "31.71.06.1001",
            "category": "sampah",
            "category_was": report.category.code,
        },
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    r = await k.client.post(
        f"/admin/reports/{report_id}/submit", data={"csrf": csrf}, allow_redirects=False
    )
    assert r.status == 303
    rows = await k.store.report_decisions(report_id)
    # The rules had already said "sampah": the admin chose a place and kept the category.
    assert [(kind, label, detail) for kind, label, detail, _ in kinds(rows)] == [
        ("location", "31.71.06.1001", None),
        ("category", "sampah", "kept"),
        ("location", "31.71.06.1001", None),
    ]
    assert {row["by"] for row in rows} == {"ana"} and {row["text"] for row in rows} == {text}
    r = await k.client.post(
        f"/admin/reports/{spam_id}/reject",
        data={"csrf": csrf, "reason": "not_a_complaint"},
        allow_redirects=False,
    )
    assert r.status == 303
    assert kinds(await k.store.report_decisions(spam_id)) == [
        ("rejection", "not_a_complaint", None, "ana")
    ]


async def test_system_changes_are_not_decisions(make_kanal):
    k = await make_kanal()
    await sms_in_queue(k, 1, "Jalan berlubang di depan SDN 01")
    async with k.store.read() as conn:
        assert (await conn.execute(decisions.select())).first() is None


# --- kanal learn -------------------------------------------------------------------------------


def test_kanal_learn_trains_activates_only_a_better_model_and_dry_run_changes_nothing(
    tmp_path, capsys
):
    from tests.conftest import write_config

    config = write_config(tmp_path, f"sqlite:///{tmp_path}/kanal.db", "")

    async def prepare() -> None:
        from gateway.base.config import load_config
        from gateway.store import Store

        store = Store(load_config(str(config), environ={}).settings.database.url)
        await store.migrate()
        await put_decisions(store, 1500)
        await store.close()

    asyncio.run(prepare())

    assert kanal_main(["learn", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "active (keyword rules): category" in out and "new:" in out
    assert "dry run: the new model is better; nothing was saved or activated" in out

    assert kanal_main(["learn", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "labelled reports: 1500 (1200 to train on, the most recent 300" in out
    assert "activated model 1" in out
    rules_line, new_line = (line for line in out.splitlines() if "category" in line)
    rules_acc = float(rules_line.split("category")[1].split("%")[0])
    new_acc = float(new_line.split("category")[1].split("%")[0])
    assert new_acc > rules_acc

    # The same decisions again: the new model is no better than the active one.
    assert kanal_main(["learn", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "active (model 1)" in out and "not activated" in out

    async def active_id() -> int | None:
        from gateway.store import Store

        store = Store(f"sqlite:///{tmp_path}/kanal.db")
        found = await store.active_text_model()
        await store.close()
        return found.id if found else None

    assert asyncio.run(active_id()) == 1


async def test_too_few_decisions_train_nothing(make_kanal):
    k = await make_kanal()
    await put_decisions(k.store, 10)
    outcome = await learn(k.store, 50, dry_run=False, now=T0)
    assert outcome.skipped and "fewer than learning.min_decisions" in outcome.skipped
    assert await k.store.active_text_model() is None


async def test_a_running_kanal_uses_a_newly_activated_model_and_says_so(make_kanal, monkeypatch):
    k = await make_kanal()
    monkeypatch.setattr(learning, "REFRESH_S", 0.05)
    refresher = asyncio.create_task(learning.run_model_refresh(k.runtime))
    try:
        # A misspelt keyword the rules cannot read; the model learned it from admins.
        text = "sampahh numpuk di depan rumah saya sudah 2 minggu"
        first = await sms_in_queue(k, 1, text)
        before = await k.store.get_report(first)
        assert before.category.source == "rules"

        await put_decisions(k.store, 1500)
        outcome = await learn(k.store, 50, dry_run=False, now=T0)
        assert outcome.activated
        for _ in range(100):
            if active_models(k.runtime).current is not None:
                break
            await asyncio.sleep(0.05)
        second = await sms_in_queue(k, 2, "tolong " + text)
        after = await k.store.get_report(second)
        assert (after.category.source, after.category.code) == ("model", "sampah")

        token = await k.token("province", "viewer")
        stats = await (await k.client.get("/api/v1/stats", headers=auth(token))).json()
        model = stats["model"]
        assert model["id"] == outcome.model_id and model["trained_on"] == 1200
        assert model["evaluated_on"] == 300
        assert model["category_accuracy"] == outcome.new.category_accuracy
        assert outcome.new.category_accuracy > outcome.active.category_accuracy
        await sign_in(k.client, "ana", "province", store=k.store)
        page = await (await k.client.get("/admin/stats")).text()
        assert "dari 1200 keputusan admin" in page
    finally:
        refresher.cancel()


def test_more_right_answers_bought_with_many_more_wrong_ones_is_not_better():
    from gateway.pipeline.learning import Figures

    # Of 100 complaints: the rules name 50 and are right on 48; a young model names 95 and
    # is right on 70 (25 wrong); an older one names 90 and is right on 85.
    rules = Figures(0.48, 1.0, 100, 10, 48 / 50, 50)
    young = Figures(0.70, 1.0, 100, 10, 70 / 95, 95)
    older = Figures(0.85, 1.0, 100, 10, 85 / 90, 90)
    assert not young.better_than(rules)
    assert older.better_than(rules) and older.better_than(young)
    assert not rules.better_than(rules)
    # On the same category figures, the not-a-complaint accuracy decides.
    assert Figures(0.48, 1.0, 100, 10, 48 / 50, 50).better_than(
        Figures(0.48, 0.9, 100, 10, 0.96, 50)
    )
