"""The Strategies flag 'exploding' weighs a gradient norm ≥ 1e3 as models.diagnose does
(rnnlab.health.norm_explodes): a training epoch's norm (some step's, before clipping) always counts;
the norm at initialization (epoch 0, no training step: the probe batch's own gradient) counts only when
the gradient does not shrink going back in time. Runs are written through the real store into a real
SQLite database and read back by db.queries as the Strategies page and ``rnnlab compare`` read them."""

from __future__ import annotations

import math
from itertools import product

import numpy as np

from db import queries, store
from rnnlab import strategies
from tests.dashboard.seed import info_for, records, spec
from tests.test_strategies_conclusions import verdicts

T = 50


def _profile(layer, ratio: float) -> None:
    """Layer's stored profile with ‖g_1‖/‖g_T‖ = ``ratio`` (NaN: ‖g_1‖ = ‖g_T‖ = 0, a 0/0 ratio), and the
    measures layer_stats derives from it."""
    from models import diagnostics as D

    if math.isnan(ratio):
        g = np.array([0.0] + [0.5] * (T - 2) + [0.0])
    else:
        g = np.array([ratio ** ((T - t) / (T - 1)) for t in range(1, T + 1)])
    layer.grad_h, layer.grad_c = g.tolist(), None
    layer.log_ratio, layer.horizon, layer.steps_in_past = D.log_ratio(g), D.horizon(g), D.steps_in_past(g)
    layer.decay_per_step = D.decay_per_step(g)


def _run(url: str, *, init_norm: float, init_ratios: list[float], train_norm: float, activation: str = "tanh",
         seed: int = 0, loss: float = 0.002, epochs: int = 3, steps: int = 20, only_init: bool = False,
         status: str = "succeeded"):
    """A run through the store: epoch 0's gradient norm ``init_norm`` (the probe batch's, as the engine
    records it: mean = max) with ‖g_1‖/‖g_T‖ = ``init_ratios`` per layer; every training epoch's largest
    step norm ``train_norm`` (mean = max: no spike); the last val loss ``loss``. ``only_init``: epoch 0
    alone is stored (a run still training its first epoch). Returns (run id, its records)."""
    s = spec("rnn", seq_len=T, num_layers=len(init_ratios), seed=seed, epochs=epochs, steps_per_epoch=steps,
             activation=activation)
    (run_id,) = store.create_runs([s], tags=("init-norm",), url=url)
    store.claim_run(run_id, "test-worker", url=url)
    store.record_info(run_id, info_for(s), attempt=1, url=url)
    recs = records(s)[:1] if only_init else records(s)
    for rec in recs:
        for layer in rec.layers:
            layer.rho = 0.9                      # no ρ growth: the norm is the only evidence
        if rec.epoch == 0:
            rec.grad_norm_max = rec.grad_norm_mean = init_norm
            for layer, ratio in zip(rec.layers, init_ratios):
                _profile(layer, ratio)
        else:
            rec.grad_norm_max = rec.grad_norm_mean = train_norm
            for layer in rec.layers:
                _profile(layer, 0.5)
    recs[-1].val_loss = loss
    for rec in recs:
        store.record_epoch(run_id, rec, attempt=1, url=url)
    if status != "running":
        store.finish_run(run_id, status, "finished", attempt=1, url=url)
    return run_id, recs


def _flags(url: str, ids: list[int]) -> dict[int, list[str]]:
    eng = queries.engine_for(url)
    runs = queries.runs_by_ids(ids, engine=eng)
    d = strategies.per_run(runs, queries.final_summary(ids, engine=eng), strategies.groups_of(runs, "cell"),
                           queries.run_health(ids, engine=eng))
    return dict(zip(d["id"].astype(int), d["_flags"]))


def test_a_large_norm_only_at_initialization_whose_gradient_shrinks_back_is_not_exploding(sqlite_url):
    """The Activations preset's ReLU runs (W_hh = I) at initialization: norm 1.11e3 and 1.2e3 while
    ‖g_1‖/‖g_T‖ = 0.69 and 0.58. With training steps below 1e3 the group is not flagged and ranks
    first; a run with epoch 0 alone (still in its first epoch) was flagged 'exploding' on epoch 0's
    norm, which run_health took as a training norm when a run had no training epoch."""
    relu = [_run(sqlite_url, init_norm=n, init_ratios=[r], train_norm=20.0, activation="relu", seed=s,
                 loss=loss)[0]
            for s, (n, r, loss) in enumerate([(1.11e3, 0.69, 0.002), (1.2e3, 0.58, 0.0025)])]
    tanh = [_run(sqlite_url, init_norm=2.0, init_ratios=[0.3], train_norm=2.0, seed=s, loss=loss)[0]
            for s, loss in enumerate([0.03, 0.035])]
    table, text = verdicts(sqlite_url, relu + tanh, "activation")
    assert table.loc["relu", "_broken"] == [] and table.loc["relu", "rank"] == 1, table[["flags", "rank"]]
    assert text.startswith("Best activation here: **relu**") and "exploding" not in text
    first, recs = _run(sqlite_url, init_norm=1.2e3, init_ratios=[0.58], train_norm=20.0, activation="relu", seed=7,
                       only_init=True, status="running")
    assert "exploding" not in _flags(sqlite_url, [first])[first]
    import models

    line = models.diagnose(recs[0], info_for(spec("rnn", seq_len=T)))
    assert line.startswith("large gradients: gradient norm 1.2e+03 at initialization"), line


def test_a_large_norm_in_a_training_epoch_or_a_growing_one_at_initialization_is_exploding(sqlite_url):
    """relu: the Activations preset as measured (seed 0, one training step): 1.11e3 at init, shrinking
    (0.69), then the one step's pre-clip norm 1.27e3 in epoch 1: exploding, as the diagnosis of epoch 1
    says. tanh: 1.5e3 at init with ‖g_1‖/‖g_T‖ = 1.3 (growing going back), every training step below
    1e3: the diagnosis of epoch 0 says 'gradients explode', and the flag was missing (run_health left
    epoch 0 out of a run that has training epochs). sigmoid: 5e3 at init but shrinking, 1.3e3 in
    training: its evidence is the training norm, not the excused one."""
    import models

    relu, relu_recs = _run(sqlite_url, init_norm=1.11e3, init_ratios=[0.69], train_norm=1.265e3, activation="relu",
                           epochs=1, steps=1)
    grown, grown_recs = _run(sqlite_url, init_norm=1.5e3, init_ratios=[1.3], train_norm=20.0)
    sig, _ = _run(sqlite_url, init_norm=5e3, init_ratios=[0.4], train_norm=1.3e3, activation="sigmoid")
    info = info_for(spec("rnn", seq_len=T))
    assert models.diagnose(relu_recs[-1], info, relu_recs[0]).startswith(
        "gradients explode: gradient norm reached 1.26e+03 in epoch 1")
    assert models.diagnose(grown_recs[0], info).startswith(
        "gradients explode: gradient norm reached 1.5e+03 in epoch 0")
    flags = _flags(sqlite_url, [relu, grown, sig])
    assert all("exploding" in f for f in flags.values()), flags
    table, text = verdicts(sqlite_url, [relu, grown, sig], "activation")
    assert table["rank"].isna().all() and text.startswith("No group solved the task")
    assert "**tanh**: exploding in 1/1 runs (gradient norm up to 1.5e+03)" in text
    assert "**relu**: exploding in 1/1 runs (gradient norm up to 1.26e+03)" in text
    assert "**sigmoid**: exploding in 1/1 runs (gradient norm up to 1.3e+03)" in text   # not 5e+03


INIT_NORMS = (500.0, 1.2e3)
TRAIN_NORMS = (20.0, 1.2e3)
INIT_RATIOS = ([0.7], [1.3], [0.7, 0.6], [0.7, 1.3], [0.7, math.nan], [0.0001])


def test_the_flag_and_the_diagnosis_agree_on_the_same_records(sqlite_url):
    """On every pairing of a norm at initialization (below or above 1e3), a per-layer ‖g_1‖/‖g_T‖ at
    initialization (shrinking, growing, one layer of two growing, one of two 0/0) and a training norm
    (below or above 1e3): 'exploding' among the run's Strategies flags exactly when models.diagnose
    calls some epoch's gradient norm an explosion. Nothing else explodes (no ρ growth, no spike,
    ‖g_1‖/‖g_T‖ ≤ 1.3)."""
    import models

    info = info_for(spec("rnn", seq_len=T))
    cases = {}
    for init_norm, ratios, train_norm in product(INIT_NORMS, INIT_RATIOS, TRAIN_NORMS):
        run_id, recs = _run(sqlite_url, init_norm=init_norm, init_ratios=ratios, train_norm=train_norm, epochs=1)
        lines = [models.diagnose(rec, info, recs[0]) for rec in recs]
        cases[run_id] = (init_norm, ratios, train_norm, any(x.startswith("gradients explode") for x in lines), lines)
    flags = _flags(sqlite_url, list(cases))
    wrong = {k: (v[:3], v[4][:2], flags[k]) for k, v in cases.items() if v[3] != ("exploding" in flags[k])}
    assert not wrong, wrong
    # both answers occur, from epoch 0 alone too (500 in training)
    assert {v[3] for k, v in cases.items() if v[2] == 20.0} == {True, False}
