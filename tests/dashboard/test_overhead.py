"""dashboard/overhead.py: the diagnostics' share of training time, per epoch and cumulative (hand-computed)."""

import math

import pandas as pd
import pytest

from dashboard.overhead import budget_of, overhead_figure, overhead_summary, overhead_table

EPOCHS = pd.DataFrame({   # unsorted on purpose, as a read may return it
    "run_id": [1, 1, 1, 1], "epoch": [2, 0, 3, 1], "train_seconds": [10.0, 0.0, 20.0, 10.0],
    "diag_seconds": [0.5, 2.0, 1.0, 1.0], "probed": [False, True, True, True],
})


def test_shares_by_hand():
    t = overhead_table(EPOCHS)
    assert t["epoch"].tolist() == [0, 1, 2, 3]
    assert math.isnan(t["share"][0]) and t["share"][1:].tolist() == pytest.approx([0.1, 0.05, 0.05])
    # Σ diag / Σ train: epoch 0 has trained nothing; then 3/10, 3.5/20, 4.5/40
    assert math.isnan(t["cumulative"][0])
    assert t["cumulative"][1:].tolist() == pytest.approx([0.3, 0.175, 0.1125])
    assert t["probed"].tolist() == [True, True, False, True]


def test_summary_against_the_budget():
    t = overhead_table(EPOCHS)
    assert overhead_summary(t, 0.2) == ("Diagnostics took 11.2% of training time; 3 of 4 epochs probed; "
                                        "probe.budget 20% — within it.")
    assert overhead_summary(t, 0.05).endswith("probe.budget 5% — over it.")
    assert "no probe.budget" in overhead_summary(t, None)
    assert "nothing trained yet" in overhead_summary(overhead_table(EPOCHS[EPOCHS.epoch == 0]), 0.1)


def test_figure_and_budget_from_the_stored_spec():
    t = overhead_table(EPOCHS)
    fig = overhead_figure(t, 0.03)
    bars = [d for d in fig.data if d.type == "bar"]
    assert [list(b.x) for b in bars] == [[0, 1, 3], [2]]        # probed, unprobed
    assert list(bars[1].y) == pytest.approx([5.0])
    assert fig.layout.shapes[0].y0 == pytest.approx(3.0)          # the budget line, in percent
    assert budget_of({"probe": {"every": 1, "batch_size": 32, "budget": 0.03}}) == 0.03
    assert budget_of({"probe": {"every": 1, "batch_size": 32}}) is None and budget_of(None) is None
