"""bench/bench_e2e.py at a tiny rate on SQLite: it must measure real work (every webhook
acknowledged reaches its fake CRM and every citizen's acknowledgement is recorded), and its
stage split must see each stage run only once released."""

from __future__ import annotations

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
    finally:
        await sc.close()

    assert result.sent == 40
    assert result.acknowledged == 40 and not result.errors
    assert result.drained and result.missing_at_crm == 0
    assert result.delivered == 40
    assert len({ticket for ticket, _, _ in arrivals}) == 40  # each report once
    assert result.acks_recorded == 40 and result.acks_sent == 40
    assert 0 < result.p50 <= result.p99 < 10
    assert result.cpu_s > 0 and result.sustained


async def test_the_stage_split_runs_each_stage_only_once_released() -> None:
    args = bench_e2e.parse_args(["--backend", "sqlite", "--connections", "4"])
    sc = bench_e2e.Scenario(args, "sqlite", 1)
    try:
        split = await bench_e2e.stage_split(sc, n=30, rate=50, connections=4)
        posted = sc.crm.created()
        counts = await sc.store.counts()
    finally:
        await sc.close()

    assert [s.name.split()[0] for s in split.stages] == ["intake", "pipeline", "dispatch", "notify"]
    assert all(s.reports == 30 and s.cpu_s > 0 for s in split.stages)
    assert posted == 30
    assert counts.reports == 30 and counts.acks_recorded == 30 and counts.backlog == 0


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
