"""Meta (Facebook page, Instagram account) from signed webhook to canonical report:
accounts → channel and owner, media fetched from the CDN, conversations, unsends."""

from __future__ import annotations

from tests.fakes.meta_api import FakeMetaGraph
from tests.gateway.pipeline.social.helpers import (
    IG_ID,
    META_VERIFY,
    MONAS,
    PAGE_ID,
    all_reports,
    group_key_column,
    jobs,
    jpeg,
    loopback_media,
    meta_body,
    meta_event,
    meta_extra,
    post_meta,
    raw_states,
)


async def test_a_page_message_with_photo_and_location_in_jakarta_is_a_geo_tagged_facebook_report(
    make_kanal, db_url
):
    k = await make_kanal(db_url=db_url, extra=meta_extra())
    photo = jpeg()
    async with FakeMetaGraph("page-token") as graph:
        url = graph.add_cdn_file("lampu.jpg", photo, "image/jpeg")
        body = meta_body(
            meta_event(mid="m_1", text="Lampu jalan mati", images=[url], location=MONAS)
        )
        r = await post_meta(k, body)
        assert r.status == 200 and await r.text() == "EVENT_RECEIVED"
        assert await k.drain() == 1
        [report] = await all_reports(k)
        assert (report.channel, report.connector, report.intake) == ("facebook", "meta", "webhook")
        assert report.geo_tagged and report.status == "ready"
        assert report.owner.startswith("kelurahan:31.71.")
        assert report.attachments[0].state == "pending"
        assert report.attachments[0].source_url == url
        assert [j["state"] for j in await jobs(k)] == ["pending"]

        async with loopback_media(k) as worker:
            assert await worker.drain() == 1
        assert graph.cdn_hits == ["lampu.jpg"]

    report = await k.store.get_report(report.id)
    [attachment] = report.attachments
    assert attachment.state == "stored"
    assert attachment.content_type == "image/jpeg" and attachment.size == len(photo)
    assert await k.store.get_blob(attachment.sha256) == ("image/jpeg", photo)
    assert [h.by for h in report.history if h.status == "attachment"] == ["media"]
    assert [j["state"] for j in await jobs(k)] == ["stored"]
    assert report.status == "ready"  # the report never waited for its photo


async def test_each_meta_account_maps_to_its_channel_and_owner(make_kanal):
    k = await make_kanal(extra=meta_extra())
    await post_meta(k, meta_body(meta_event(mid="m_fb", text="Trotoar rusak")))
    ig = meta_event(mid="m_ig", account=IG_ID, sender="1785", text="Banjir di kolong tol")
    await post_meta(k, meta_body(ig, account=IG_ID))
    assert await k.drain() == 2
    by_channel = {r.channel: r for r in await all_reports(k)}
    assert by_channel["facebook"].owner == "office:balai_kota"
    assert by_channel["instagram"].owner == "office:inspektorat"
    assert all(r.status == "pending_enrichment" and not r.geo_tagged for r in by_channel.values())
    assert by_channel["instagram"].reporter.channel_user_id == "1785"


async def test_hostile_media_urls_are_marked_unavailable_and_the_report_stands(make_kanal):
    k = await make_kanal(extra=meta_extra(["127.0.0.1", "10.1.2.3", "169.254.169.254"]))
    async with FakeMetaGraph("page-token") as graph:
        good = graph.add_cdn_file("ok.jpg", jpeg(), "image/jpeg")
        big = graph.add_cdn_file("big.jpg", jpeg((400, 400)) + b"\0" * 6000, "image/jpeg")
        html = graph.add_cdn_file("login.jpg", b"<!DOCTYPE html><html>log in</html>", "image/jpeg")
        images = [
            "http://10.1.2.3/x.jpg",  # private address, though listed
            "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
            "https://evil.example.com/x.jpg",  # not a Meta host
            big,  # over server.max_upload_bytes
            html,  # an HTML page calling itself a JPEG
            f"{graph.base_url}/cdn/expired.jpg",  # 404: the CDN link expired
            good,
        ]
        await post_meta(k, meta_body(meta_event(mid="m_bad", text="Got sampah", images=images)))
        assert await k.drain() == 1
        async with loopback_media(k, max_bytes=5000) as worker:
            assert await worker.drain() >= 7
        assert "x.jpg" not in graph.cdn_hits  # refused before any connection

    [report] = await all_reports(k)
    states = [(a.state, a.error or "") for a in report.attachments]
    assert [s for s, _ in states] == ["unavailable"] * 6 + ["stored"]
    errors = [e for _, e in states[:6]]
    assert "private address" in errors[0]
    assert "link-local" in errors[1]
    assert "not among the channel's media_hosts" in errors[2]
    assert "too large" in errors[3]
    assert "text/html" in errors[4]
    assert "HTTP 404" in errors[5]
    assert report.status == "pending_enrichment"
    assert {j["state"] for j in await jobs(k)} == {"unavailable", "stored"}


async def test_without_the_test_flag_loopback_media_is_refused(make_kanal):
    k = await make_kanal(extra=meta_extra())
    async with FakeMetaGraph("page-token") as graph:
        url = graph.add_cdn_file("a.jpg", jpeg(), "image/jpeg")
        await post_meta(k, meta_body(meta_event(mid="m_lo", text="Pohon tumbang", images=[url])))
        await k.drain()
        from gateway.pipeline.media import MediaWorker

        async with MediaWorker(k.runtime) as worker:
            await worker.drain()
        assert graph.cdn_hits == []
    [report] = await all_reports(k)
    assert report.attachments[0].state == "unavailable"
    assert "loopback" in (report.attachments[0].error or "")


async def test_messages_in_a_row_join_one_report_and_a_later_one_starts_another(make_kanal, db_url):
    k = await make_kanal(db_url=db_url, extra=meta_extra())
    async with FakeMetaGraph("page-token") as graph:
        url = graph.add_cdn_file("kabel.jpg", jpeg(), "image/jpeg")
        # Two in one pipeline batch, one more after the first report exists.
        await post_meta(k, meta_body(meta_event(mid="c1", at_s=0, text="Lampu jalan mati")))
        await post_meta(k, meta_body(meta_event(mid="c2", at_s=30, text="sudah seminggu")))
        assert await k.drain() == 2
        await post_meta(k, meta_body(meta_event(mid="c3", at_s=100, images=[url], location=MONAS)))
        assert await k.drain() == 1
        # 120 s after the conversation's latest message (t=100): a new report.
        await post_meta(k, meta_body(meta_event(mid="c4", at_s=400, text="Got mampet di RT 5")))
        assert await k.drain() == 1
        async with loopback_media(k) as worker:
            await worker.drain()

    first, second = await all_reports(k)
    assert first.text == "Lampu jalan mati\nsudah seminggu"
    assert [a.state for a in first.attachments] == ["stored"]
    # The location sent after the words geo-tags the report and moves it to the CRM queue.
    assert first.geo_tagged and first.status == "ready" and first.owner.startswith("kelurahan:")
    assert [h.status for h in first.history].count("joined") == 2
    assert second.text == "Got mampet di RT 5" and second.attachments == []
    assert await group_key_column(k, first.id) == f"dm:facebook:{PAGE_ID}:7001"
    assert set((await raw_states(k)).values()) == {"done"}


async def test_another_citizen_or_another_account_never_joins(make_kanal):
    k = await make_kanal(extra=meta_extra())
    await post_meta(k, meta_body(meta_event(mid="a1", text="Jalan rusak")))
    await post_meta(k, meta_body(meta_event(mid="a2", at_s=5, sender="7002", text="Banjir")))
    ig = meta_event(mid="a3", at_s=6, account=IG_ID, text="Sampah")
    await post_meta(k, meta_body(ig, account=IG_ID))
    assert await k.drain() == 3
    assert len(await all_reports(k)) == 3


async def test_a_message_after_the_report_was_posted_becomes_a_follow_up(make_kanal):
    k = await make_kanal(extra=meta_extra())
    async with FakeMetaGraph("page-token") as graph:
        url = graph.add_cdn_file("after.jpg", jpeg(), "image/jpeg")
        await post_meta(k, meta_body(meta_event(mid="p1", text="Pohon tumbang", location=MONAS)))
        await k.drain()
        [report] = await all_reports(k)

        def posted(r):  # what the CRM dispatcher does
            return r.model_copy(update={"status": "posted", "history": []})

        await k.store.update_report(report.id, posted)
        await post_meta(
            k, meta_body(meta_event(mid="p2", at_s=40, text="Ini fotonya", images=[url]))
        )
        assert await k.drain() == 1
        async with loopback_media(k) as worker:
            assert await worker.drain() == 1

    [report] = await all_reports(k)
    assert report.text == "Pohon tumbang" and report.status == "posted"
    [follow_up] = report.follow_ups
    assert follow_up.text == "Ini fotonya" and follow_up.channel == "facebook"
    assert [a.state for a in follow_up.attachments] == ["stored"]
    assert [j["position"] for j in await jobs(k)] == [1000]
    assert "follow_up" in [h.status for h in report.history]


async def test_an_unsent_instagram_message_is_recorded_on_its_report(make_kanal):
    k = await make_kanal(extra=meta_extra())
    text = meta_event(mid="ig_1", account=IG_ID, sender="1785", text="Trotoar rusak")
    await post_meta(k, meta_body(text, account=IG_ID))
    await k.drain()
    unsend = meta_event(mid="ig_1", at_s=20, account=IG_ID, sender="1785", deleted=True)
    await post_meta(k, meta_body(unsend, account=IG_ID))
    # an unsend of a message kanal never saw stays on record, ignored
    stray = meta_event(mid="ig_x", at_s=21, account=IG_ID, sender="1785", deleted=True)
    await post_meta(k, meta_body(stray, account=IG_ID))
    assert await k.drain() == 2

    [report] = await all_reports(k)
    [entry] = [h for h in report.history if h.status == "unsent"]
    assert entry.note == "the citizen unsent message ig_1"
    assert report.text == "Trotoar rusak"
    states = await raw_states(k)
    assert states["delete:ig_1"] == "done" and states["delete:ig_x"] == "ignored"


async def test_a_redelivered_webhook_stores_and_creates_nothing_new(make_kanal):
    k = await make_kanal(extra=meta_extra())
    body = meta_body(meta_event(mid="dup", text="Parkir liar di trotoar"))
    assert (await post_meta(k, body)).status == 200
    assert await k.drain() == 1
    assert (await post_meta(k, body)).status == 200
    assert await k.drain() == 0
    assert await k.store.count_raw() == 1 and len(await all_reports(k)) == 1


async def test_unsigned_or_oversized_webhooks_are_refused_and_store_nothing(make_kanal):
    k = await make_kanal(extra=meta_extra())
    body = meta_body(meta_event(mid="x", text="Jalan berlubang"))
    r = await post_meta(k, body, signed=False)
    assert r.status == 401
    r = await k.client.post(
        "/webhooks/meta", data=body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    assert r.status == 401
    huge = meta_body(meta_event(mid="y", text="x" * (k.runtime.settings.server.max_body_bytes + 1)))
    r = await post_meta(k, huge)
    assert r.status == 413
    assert await k.store.count_raw() == 0


async def test_the_subscription_handshake_echoes_the_challenge(make_kanal):
    k = await make_kanal(extra=meta_extra())
    ok = await k.client.get(
        "/webhooks/meta",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": META_VERIFY,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status == 200 and await ok.text() == "1158201444"
    bad = await k.client.get(
        "/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert bad.status == 403


async def test_a_failing_cdn_is_retried_with_backoff_then_given_up(make_kanal):
    import asyncio

    from aiohttp import web

    photo = jpeg()
    hits: dict[str, int] = {"flaky": 0, "down": 0}

    async def flaky(request: web.Request) -> web.Response:
        hits["flaky"] += 1
        if hits["flaky"] == 1:
            return web.Response(status=503)
        return web.Response(body=photo, content_type="image/jpeg")

    async def down(request: web.Request) -> web.Response:
        hits["down"] += 1
        return web.Response(status=502)

    app = web.Application()
    app.add_routes([web.get("/flaky.jpg", flaky), web.get("/down.jpg", down)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        k = await make_kanal(extra=meta_extra())
        images = [f"{base}/flaky.jpg", f"{base}/down.jpg"]
        await post_meta(k, meta_body(meta_event(mid="r1", text="Banjir", images=images)))
        await k.drain()
        async with loopback_media(k) as worker:  # 2 attempts, 10 ms base delay
            for _ in range(20):
                await worker.drain()
                if not [j for j in await jobs(k) if j["state"] == "pending"]:
                    break
                await asyncio.sleep(0.05)
        metrics = k.runtime.metrics.render().decode()
    finally:
        await runner.cleanup()

    [report] = await all_reports(k)
    assert [a.state for a in report.attachments] == ["stored", "unavailable"]
    assert "HTTP 502 (after 2 attempts)" in (report.attachments[1].error or "")
    assert hits == {"flaky": 2, "down": 2}
    assert 'kanal_media_fetched_total{connector="meta"} 1.0' in metrics
    assert 'kanal_media_failed_total{connector="meta",outcome="unavailable"} 1.0' in metrics
    assert 'kanal_media_failed_total{connector="meta",outcome="retry"} 2.0' in metrics
