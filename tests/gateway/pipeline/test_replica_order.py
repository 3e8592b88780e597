"""Two workers (replicas) on one store: the messages of one conversation are normalized in
order, so a shared location that follows a text joins the text's report even when another
worker took the text and has not committed its report yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Coordinates, RawMessage, Sender
from gateway.pipeline.worker import make_pipeline
from gateway.store import NewRaw
from gateway.store.ids import new_id
from tests.gateway.pipeline.helpers import as_raw


def telegram(user: str, *, text: str = "", at: datetime, point: bool = False) -> NewRaw:
    message = RawMessage(
        connector="telegram",
        channel="telegram",
        external_id=new_id(),
        received_at=at,
        sender=Sender(user_id=user, name="Sari", handle="sari"),
        text=text,
        coordinates=Coordinates(lat=-6.1958, lon=106.8340) if point else None,
        group_key=f"dm:telegram:{user}",
        extra={"chat_id": int(user), "chat_type": "private"},
    )
    return as_raw(message)  # its group key kept, as intake does


async def test_a_location_waits_for_the_text_another_worker_is_normalizing(
    make_kanal: Any, db_url: str
):
    k = await make_kanal(db_url)
    now = datetime.now(UTC)
    await k.store.insert_raw_batch(
        [telegram("777", text="Jalan berlubang besar, motor jatuh", at=now)]
    )
    first = make_pipeline(k.runtime)
    first.worker_id = "replica-a"
    taken = await k.store.claim_raw("replica-a", 64, 60.0)  # the text, being normalized
    assert len(taken) == 1
    await k.store.insert_raw_batch(
        [
            telegram("777", at=now + timedelta(seconds=5), point=True),
            telegram("888", text="Sampah menumpuk di kali", at=now + timedelta(seconds=5)),
        ]
    )
    # Another worker takes the other citizen's message, not the location.
    other = await k.store.claim_raw("replica-b", 64, 60.0)
    assert [r["group_key"] for r in other] == ["dm:telegram:888"]
    await k.store.settle_raw("replica-b", ignored=[(other[0]["id"], "test")])

    first._claimed_ahead = taken
    assert await first.process_once() == 1  # the text's report is committed
    second = make_pipeline(k.runtime)
    second.worker_id = "replica-b"
    assert await second.drain() == 1  # now the location, which joins it
    reports, _ = await k.store.list_reports("province", limit=10)
    assert len(reports) == 1
    assert reports[0].geo_tagged and reports[0].text.startswith("Jalan berlubang")
