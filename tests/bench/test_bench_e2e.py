"""bench/bench_e2e.py at a tiny rate on SQLite: it must measure real work (every webhook
acknowledged reaches its fake CRM, every citizen's acknowledgement is recorded, and every
WhatsApp citizen's goes through the fake Graph API exactly once, with the ticket), and its
stage split must see each stage run only once released."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import bench_e2e

pytestmark = pytest.mark.slow


async def test_a_steady_run_delivers_every_report_to_the_crm_and_acknowledges_each_citizen() -> (
    None
):
    args = bench_e2e.parse_args(["--backend", "sqlite", "--connections", "4"])
    sc = bench_e2e.Scenario(args, "sqlite", 1)
    try:
        sc.start()
        result = await bench_e2e.steady_run(sc, rate=20, seconds=2, connections=4, profile=None)
        arrivals = sc.crm.arrivals()
        acks = sc.graph.acks()
        tickets = await sc.store.chat_tickets()
    finally:
        await sc.close()

    assert result.sent == 40
    assert result.acknowledged == 40 and not result.errors
    assert result.drained and result.missing_at_crm == 0
    assert result.delivered == 40  # the WhatsApp reports too
    assert len(arrivals) == len({ticket for ticket, _, _ in arrivals}) == 40  # each once
    assert result.duplicates == 0
    assert result.acks_recorded == 40 and result.acks_sent == 40
    assert 0 < result.p50 <= result.p99 < 10
    assert result.cpu_s > 0 and result.sustained
    # A quarter of the reports came from WhatsApp citizens, each acknowledged through the
    # provider once, as a text carrying its own ticket.
    assert len(tickets) == 10 and set(tickets.values()) <= {t for t, _, _ in arrivals}
    assert sorted(to for to, _, _, _ in acks) == sorted({to for to, _, _, _ in acks})
    assert len(acks) == 10 and all(kind == "text" for _, kind, _, _ in acks)
    chat = result.chat
    assert (chat.citizens, chat.once, chat.missing, chat.twice, chat.wrong) == (10, 10, 0, 0, 0)
    assert chat.refused == 0
    assert 0 < chat.p50 <= chat.p99 < 10


def sent(citizen: str, due: float) -> bench_e2e.Sent:
    return bench_e2e.Sent(due, due + 0.01, 200, None, citizen, f"wamid.{citizen}")


def test_the_ack_count_finds_citizens_acknowledged_never_twice_or_with_another_ticket() -> None:
    sends = [sent("628571", 100.0), sent("628572", 100.0), sent("628573", 100.0)]
    sends += [sent("628574", 100.0), bench_e2e.Sent(100.0, 100.01, 200, "JAKI-1")]
    tickets = {f"wamid.62857{i}": f"T-{i}" for i in range(1, 5)}
    acks = [
        ("628571", "text", "Laporan diterima, tiket T-1", 100.5),
        ("628572", "text", "tiket T-2", 101.0),
        ("628572", "text", "tiket T-2", 102.0),  # twice
        ("628574", "text", "tiket T-3", 100.2),  # another citizen's ticket
        ("628579", "text", "tiket T-9", 100.2),  # nobody of this run
    ]

    chat = bench_e2e.chat_acks(sends, acks, tickets, refused=2)

    assert (chat.citizens, chat.once, chat.missing, chat.twice) == (4, 1, 1, 1)
    assert chat.wrong == 2 and chat.refused == 2
    assert math.isinf(chat.p99)  # 628573 never got one
    assert chat.p50 == pytest.approx(0.5)  # first answers: 0.2, 0.5, 1.0 and none


@pytest.mark.pg
async def test_two_replicas_on_postgresql_share_the_webhooks_and_deliver_each_report_once(
    pg_server: str,
) -> None:
    args = bench_e2e.parse_args(["--backend", "postgresql", "--connections", "4"])
    sc = bench_e2e.Scenario(args, "postgresql", 2)
    try:
        sc.start()
        result = await bench_e2e.steady_run(sc, rate=20, seconds=2, connections=4, profile=None)
    finally:
        await sc.close()

    assert result.acknowledged == 40 and result.delivered == 40 and result.duplicates == 0
    assert result.acks_recorded == 40
    assert result.chat.citizens == result.chat.once == 10 and not result.chat.wrong
    assert result.cpu_s > 0
    assert result.server.active_s > 0  # PostgreSQL's own account of the statements run


async def test_the_stage_split_runs_each_stage_only_once_released() -> None:
    args = bench_e2e.parse_args(["--backend", "sqlite", "--connections", "4"])
    sc = bench_e2e.Scenario(args, "sqlite", 1)
    try:
        split = await bench_e2e.stage_split(sc, n=30, rate=50, connections=4)
        posted = sc.crm.created()
        counts = await sc.store.counts()
        through_provider = sc.graph.sent()
    finally:
        await sc.close()

    assert [s.name.split()[0] for s in split.stages] == ["intake", "pipeline", "dispatch", "notify"]
    assert all(s.reports == 30 and s.cpu_s > 0 for s in split.stages)
    assert posted == 30
    assert counts.reports == 30 and counts.acks_recorded == 30 and counts.backlog == 0
    assert through_provider == 7  # the notify phase sent the WhatsApp citizens' (30 × 0.25)


async def test_a_hold_that_does_not_hold_fails_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the stages not held (here: nothing held at all), the split refuses to measure."""
    args = bench_e2e.parse_args(["--backend", "sqlite", "--connections", "4"])
    sc = bench_e2e.Scenario(args, "sqlite", 1)
    monkeypatch.setattr(bench_e2e, "STAGES", ())
    try:
        with pytest.raises(RuntimeError, match="held stages ran"):
            await bench_e2e.stage_split(sc, n=20, rate=50, connections=4)
    finally:
        await sc.close()


def test_the_profile_counts_own_time_by_innermost_function_and_kanal_time_inside(
    tmp_path: Path,
) -> None:
    profiler = bench_e2e.Profiler(tmp_path, py_spy=None)
    profiler.raw.write_text(
        "main (gateway/cli/serve.py:26);step (gateway/crm/dispatcher.py:217);"
        "post (aiohttp/client.py:90) 30\n"
        "main (gateway/cli/serve.py:26);step (gateway/crm/dispatcher.py:230) 10\n"
        "main (gateway/cli/serve.py:26);handle (gateway/intake/webhooks.py:40);"
        "post (aiohttp/client.py:91) 60\n"
    )

    lines = profiler.report(top=5)

    assert "[100 samples" in lines[0]
    own = lines[1 : lines.index(next(x for x in lines if "callees included" in x))]
    inside = lines[len(own) + 2 :]
    assert [x.split() for x in own] == [
        ["90.0%", "post", "(aiohttp/client.py)"],  # two lines of one function, together
        ["10.0%", "step", "(gateway/crm/dispatcher.py)"],
    ]
    assert [x.split() for x in inside] == [  # the entry point (in every sample) left out
        ["60.0%", "handle", "(gateway/intake/webhooks.py)"],
        ["40.0%", "step", "(gateway/crm/dispatcher.py)"],
    ]


def test_latencies_print_as_seconds_beyond_the_drain_or_nothing_to_measure() -> None:
    assert bench_e2e.seconds(0.256) == "0.26"
    assert bench_e2e.seconds(math.inf) == ">drain"
    assert bench_e2e.seconds(bench_e2e.percentile([], 99)) == "-"  # --chat-share 0
