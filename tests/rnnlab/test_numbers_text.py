"""The numbers that the strategy verdicts print (rnnlab.strategies: the Strategies page and `rnnlab
compare`) on runs written through the real store (db.store, SQLite) with known answers: the printed
loss ÷ baseline and its upper bound agree with the verdict they explain, and the solve rate and
loss ÷ baseline of one row use the same baseline (the held-out one when stored)."""

from __future__ import annotations

import math

import pytest

from db import queries, store
from rnnlab import health, strategies
from rnnlab.spec import parse_spec
from tests.synthetic import epoch_record, run_info

B = 1 / 6                     # tests.synthetic.run_info's analytic baseline (adding a16: MSE of predicting 1)
HELD = 0.1657446240859728     # the trivial predictor on adding a16 T=100 seed 0's held-out set, as measured


def store_run(url: str, cell: str, seed: int, loss: float, *, se: float | None = None,
              heldout: float | None = None) -> int:
    """A finished run with two epochs; its last val loss is ``loss`` with standard error ``se``, its
    held-out baseline ``heldout`` (None: not stored). Its health evidence is clean (no flag)."""
    s = parse_spec({"cell": cell, "hidden_size": 8, "epochs": 1, "steps_per_epoch": 2, "seed": seed})
    (run_id,) = store.create_runs([s], url=url)
    store.claim_run(run_id, "w", url=url)
    info = run_info(cell)
    info.baseline_heldout_loss = heldout
    store.record_info(run_id, info, attempt=1, url=url)
    for e in range(2):
        rec = epoch_record(e, cell=cell, seed=seed)
        rec.grad_norm_mean, rec.grad_norm_max = 1.0, 1.5
        for layer in rec.layers:
            layer.saturated_frac = 0.1
        if e == 1:
            rec.val_loss, rec.val_loss_se = loss, se
        store.record_epoch(run_id, rec, attempt=1, url=url)
    store.finish_run(run_id, "succeeded", "finished", attempt=1, url=url)
    return run_id


def table_of(url: str, ids: list[int]):
    eng = queries.engine_for(url)
    runs = queries.runs_by_ids(ids, engine=eng)
    t = strategies.summary(runs, queries.final_summary(ids, engine=eng), strategies.groups_of(runs, "cell"),
                           queries.run_health(ids, engine=eng))
    return t.set_index("group", drop=False)


@pytest.mark.parametrize("x, text", [
    (0.996, "99.6%"), (0.9996, "99.96%"), (0.99999, "99.999%"), (1.0, "100%"), (1 - 1e-12, "<100%"),
    (2.4793, "248%"), (0.9, "90%"), (0.44, "44%"), (0.0006, "0.06%"), (1e-9, "1e-07%"), (0.0, "0%"),
    (0.123456, "12.3%"),
])
def test_a_percentage_keeps_its_side_of_100_and_of_0(x, text):
    assert strategies.pct(x) == text


@pytest.mark.parametrize("x, text", [(2 / 3, "67%"), (1.0, "100%"), (0.0, "0%"), (199 / 200, "99.5%"),
                                     (1 / 200, "0.5%"), (0.8, "80%")])
def test_a_solve_rate_reads_as_before_unless_it_would_round_to_all_or_none(x, text):
    assert strategies.pct(x, 2) == text


def test_an_upper_bound_below_one_never_reads_100_percent(sqlite_url):
    """One run at 0.9 × the held-out baseline with an SE of (0.096 / 1.96) × it: the upper bound is
    0.9 + 1.96 · SE ÷ baseline = 0.996 < 1, so the group beats the baseline. The old text said
    'beats the baseline … 95% upper bound 100%'."""
    rid = store_run(sqlite_url, "lstm", 0, 0.9 * HELD, se=0.096 / 1.96 * HELD, heldout=HELD)
    row = table_of(sqlite_url, [rid]).loc["lstm"]
    assert row["_upper"] == pytest.approx(0.996) and row["beats baseline"]
    assert "beats the baseline, partly learns (loss at 90% of the baseline, 95% upper bound 99.6% " \
           "(held-out standard errors))" in row["verdict"]
    assert "100%" not in row["verdict"]


def test_a_tiny_ratio_never_reads_0_percent(sqlite_url):
    """Two solved runs at 0.0005 and 0.0007 × the held-out baseline: loss ÷ baseline 0.0006. The old
    text said 'loss at 0% of the baseline'."""
    ids = [store_run(sqlite_url, "lstm", s, r * HELD, se=1e-6, heldout=HELD) for s, r in enumerate([0.0005, 0.0007])]
    ids += [store_run(sqlite_url, "rnn", s, r * HELD, se=1e-3, heldout=HELD) for s, r in enumerate([0.95, 1.15])]
    t = table_of(sqlite_url, ids)
    lstm = t.loc["lstm"]
    assert lstm["loss ÷ baseline"] == pytest.approx(0.0006) and lstm["solve rate"] == 1.0
    assert "solves the task (2/2 runs); loss at 0.06% of the baseline" in lstm["verdict"]
    text = strategies.overall(t.reset_index(drop=True), "cell")
    assert text.startswith("Best cell here: **lstm** (loss at 0.06% of the baseline, solve rate 100%")
    assert "Runner-up rnn (loss at 105% of the baseline, solve rate 0%" in text and " 0% of the baseline" not in text


def test_the_runner_up_sentence_keeps_its_digits(sqlite_url):
    ids = [store_run(sqlite_url, "lstm", s, r * HELD, se=1e-6, heldout=HELD) for s, r in enumerate([0.0005, 0.0007])]
    ids += [store_run(sqlite_url, "gru", s, r * HELD, se=1e-6, heldout=HELD) for s, r in enumerate([0.0011, 0.0013])]
    text = strategies.overall(table_of(sqlite_url, ids).reset_index(drop=True), "cell")
    assert "Runner-up gru (loss at 0.12% of the baseline, solve rate 100%" in text, text


def test_solve_rate_and_loss_over_baseline_use_one_baseline(sqlite_url):
    """Loss 0.0166: 0.0996 of the analytic baseline 1/6 but 0.10015 of the held-out one 0.16574.
    With the held-out baseline stored the run is not solved (health.solved says so too) and the row
    says solve rate 0 next to loss ÷ baseline 0.10015; without it, both use 1/6: solved, 0.0996."""
    held = store_run(sqlite_url, "lstm", 0, 0.0166, se=1e-4, heldout=HELD)
    analytic = store_run(sqlite_url, "gru", 0, 0.0166, se=1e-4, heldout=None)
    t = table_of(sqlite_url, [held, analytic])
    assert not health.solved(0.0166, HELD) and health.solved(0.0166, B)
    assert t.loc["lstm", "loss ÷ baseline"] == pytest.approx(0.0166 / HELD) and 0.0166 / HELD > 0.1
    assert t.loc["lstm", "solve rate"] == 0.0
    assert t.loc["gru", "loss ÷ baseline"] == pytest.approx(0.0166 / B) and t.loc["gru", "solve rate"] == 1.0
    assert "solves the task" not in t.loc["lstm", "verdict"] and "solves the task (1/1 runs)" in t.loc["gru", "verdict"]
    assert not math.isnan(t.loc["lstm", "solve rate"])
