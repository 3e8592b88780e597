"""`kanal serve` as a real process runs the media service: a Meta photo is fetched from the
CDN fake and stored with the report, with no test code driving the pipeline or the worker."""

from __future__ import annotations

import aiohttp

from gateway.store import Store
from tests.conftest import wait_for, write_config
from tests.connectors.signing import meta_signature
from tests.fakes.meta_api import FakeMetaGraph
from tests.gateway.pipeline.social.helpers import (
    META_SECRET,
    MONAS,
    jpeg,
    meta_body,
    meta_event,
    meta_extra,
)


async def test_serve_fetches_a_meta_photo_in_the_background(tmp_path, serve_process):
    db_url = f"sqlite:///{tmp_path}/kanal.db"
    config = write_config(tmp_path, db_url, meta_extra())
    # [pipeline] is in the base test config: the test-only flag comes from the environment.
    server = serve_process(config, env={"KANAL_PIPELINE__ALLOW_PRIVATE_MEDIA_HOSTS": "true"})
    photo = jpeg((16, 16))
    async with FakeMetaGraph("page-token") as graph:
        url = graph.add_cdn_file("s.jpg", photo, "image/jpeg")
        server.start()
        body = meta_body(meta_event(mid="s1", text="Sampah", images=[url], location=MONAS))
        async with aiohttp.ClientSession() as session:
            r = await session.post(
                f"{server.base_url}/webhooks/meta",
                data=body,
                headers={"X-Hub-Signature-256": meta_signature(META_SECRET, body)},
            )
            assert r.status == 200
        store = Store(db_url)
        try:

            async def stored():
                async with store.read() as conn:
                    from sqlalchemy import select

                    from gateway.store.schema import reports

                    ids = [r[0] for r in await conn.execute(select(reports.c.id))]
                if not ids:
                    return None
                report = await store.get_report(ids[0])
                return report if report and report.attachments[0].state == "stored" else None

            report = await wait_for(stored, timeout=15)
            assert await store.get_blob(report.attachments[0].sha256) == ("image/jpeg", photo)
        finally:
            await store.close()
    assert "allow_private_media_hosts" in server.log_path.read_text()
