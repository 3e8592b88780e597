"""The learning-curve benchmark (bench/bench_learning_curve.py) on a small stream: messages
through a real kanal and the admin API, `kanal learn` (the command or its function) every
80 decisions, and a curve in which the learned model answers complaints in words the
keyword rules cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_learning_curve import curve, replay, table
from bench.synthetic_decisions import decisions


@pytest.mark.slow
@pytest.mark.parametrize("as_process", [True, False], ids=["kanal learn", "its function"])
async def test_the_curve_shows_the_model_answering_what_the_rules_cannot(
    tmp_path: Path, as_process: bool
):
    stream = decisions(240, seed=1, new_words_share=0.9)
    result = await replay(tmp_path, stream, 80, min_decisions=10, learn_as_process=as_process)

    assert [s.number for s in result.served] == list(range(1, 241))
    assert [r.after for r in result.retrainings] == [80, 160]
    assert all(r.output for r in result.retrainings)  # what `kanal learn` printed
    activated = result.retrainings[-1].serving
    assert activated is not None, result.retrainings[-1].output

    # Before any model, kanal served exactly what the keyword rules say on the same text.
    for s in result.served[:80]:
        assert (s.category, s.source, s.model_id) == (s.rules, "rules", None)
        assert s.noise_score == round(s.rules_noise, 3)
    # After the activation, the serving process used the model for new reports.
    assert {s.model_id for s in result.served[160:]} == {activated}

    windows = curve(result.served, [80, 160])
    assert [(w.first, w.last) for w in windows] == [(1, 80), (81, 160), (161, 240)]
    assert sum(w.kanal.n for w in windows) == sum(d.category is not None for d in stream)
    first, last = windows[0], windows[-1]
    assert first.kanal == first.rules and first.by_model == 0
    assert last.by_model > 0
    assert last.kanal_new.n > 0
    assert last.kanal_new.coverage is not None and last.rules_new.coverage is not None
    assert last.kanal_new.coverage > last.rules_new.coverage
    assert last.kanal_new.right > last.rules_new.right

    lines = table(windows)
    assert len(lines) == 2 + 3 and lines[-1].startswith("161-240")
