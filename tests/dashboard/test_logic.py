"""The dashboard's pure logic: the form's visibility rules and error routing, sweep values,
presets, the strategy verdicts and the time estimate."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard import analysis, estimate, forms, sweeps
from dashboard.components import parse_ids, plain, spec_diff
from dashboard.presets import PRESETS
from rnnlab.spec import SweepSpec, expand_sweep, parse_spec


def form_state(**values):
    state: dict = {}
    forms.ensure_defaults(state)
    state.update({forms.P + k: v for k, v in values.items()})
    return state


def test_default_form_is_the_default_spec():
    spec, errors = forms.validate(forms.collect(form_state()))
    assert errors == [] and spec == parse_spec({})


def test_fields_that_do_not_apply_are_left_out():
    d = forms.collect(form_state(**{"cell": "gru", "activation": "relu", "leaky_slope": 0.2, "init.forget_bias_on": True,
                                    "clip.mode": "none", "optimizer.name": "adam", "optimizer.momentum": 0.9}))
    assert "activation" not in d and "leaky_slope" not in d and "forget_bias" not in d["init"]
    assert d["clip"] == {"mode": "none"} and "momentum" not in d["optimizer"]
    assert forms.validate(d)[1] == []
    d = forms.collect(form_state(**{"activation": "leaky_relu", "leaky_slope": 0.2, "clip.mode": "value",
                                    "clip.clip_value": 0.5, "task.name": "forecast", "task.forecast.series": "sine",
                                    "task.forecast.path": "/x.csv"}))
    assert d["leaky_slope"] == 0.2 and d["clip"] == {"mode": "value", "clip_value": 0.5} and "path" not in d["task"]


def test_load_spec_round_trips_through_the_form():
    original = parse_spec({"cell": "lstm", "init": {"recurrent": "orthogonal", "input": "xavier_normal", "forget_bias": 1.0,
                                                    "spectral_radius": 0.9},
                           "clip": {"mode": "norm", "max_norm": 2.0}, "task": {"name": "copy", "seq_len": 30, "n_copy": 5},
                           "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "seed": 4, "name": "mine"})
    state = form_state()
    forms.load_spec(state, original.to_dict())
    assert forms.validate(forms.collect(state))[0] == original


@pytest.mark.parametrize("error, field", [
    ("hidden_size: got 99999; the operator's limit is 4096", "hidden_size"),
    ("clip.max_norm is required when clip.mode is 'norm'", "clip.max_norm"),
    ("[cell='lstm'] activation applies only to cell 'rnn' (LSTM ...)", "activation"),
    ("init.forget_bias applies only to cell 'lstm', not 'rnn'", "init.forget_bias"),
])
def test_errors_are_routed_to_the_field_they_name(error, field):
    assert forms.field_of(error) == field


def test_sweep_values_and_seeds_parse():
    assert sweeps.parse_values("rnn, lstm") == ["rnn", "lstm"]
    assert sweeps.parse_values("1e-3, 0.01") == [0.001, 0.01]
    assert sweeps.parse_values("none, {mode: norm, max_norm: 1}") == ["none", {"mode": "norm", "max_norm": 1}]
    assert sweeps.parse_seeds("0-2, 5") == [0, 1, 2, 5]
    with pytest.raises(ValueError):
        sweeps.parse_seeds("a")


def test_sweep_build_reports_every_bad_grid_point_and_duplicates():
    base = forms.collect(form_state())
    bad = sweeps.build(base, {"cell": ["rnn", "lstm"], "activation": ["relu"]}, [0], None)
    assert bad.errors and all("activation" in e for e in bad.errors) and not bad.specs
    dup = sweeps.build(base, {"hidden_size": [64, 64]}, [0, 1], "x")
    assert len(dup.specs) == 4 and dup.duplicates == [(0, 2), (1, 3)]


def test_every_preset_expands():
    for name, (_, sweep) in PRESETS.items():
        assert isinstance(sweep, SweepSpec) and len(expand_sweep(sweep)) >= 4, name


def test_loading_a_preset_reproduces_its_sweep():
    _, sweep = PRESETS["Exploding init: clipping off vs on"]
    state = form_state()
    forms.load_spec(state, sweep.base)
    sweeps.load_sweep(state, sweep)
    vary = {k: sweeps.parse_values(state[sweeps.S + "vals." + k]) for k in state[sweeps.S + "fields"]}
    plan = sweeps.build(forms.collect(state), vary, sweeps.parse_seeds(state[sweeps.S + "seeds"]), sweep.name)
    assert [s.spec_hash() for s in plan.specs] == [s.spec_hash() for s in expand_sweep(sweep)]


def _runs(rows):
    return pd.DataFrame(rows)


def _strategy_case(losses: dict[str, list[float]]):
    rows, final, i = [], [], 0
    for cell, values in losses.items():
        for seed, loss in enumerate(values):
            i += 1
            spec = parse_spec({"cell": cell, "seed": seed}).to_dict()
            rows.append({"id": i, "status": "succeeded", "seed": seed, "baseline_loss": 1 / 6, "seq_len": 100, "spec": spec})
            horizon = 11.0 if cell == "rnn" else 150.0
            final.append({"run_id": i, "val_loss": loss, "val_metric": loss, "horizon": horizon, "decay_per_step": -0.1})
    runs = _runs(rows)
    return analysis.summary(runs, _runs(final), analysis.groups_of(runs, "cell"))


def test_strategy_summary_and_verdicts():
    table = _strategy_case({"rnn": [0.16, 0.17, 0.165], "lstm": [0.001, 0.002, 0.0015]}).set_index("group")
    assert table.loc["lstm", "solve rate"] == 1.0 and table.loc["rnn", "solve rate"] == 0.0
    assert table.loc["lstm", "final loss"] == pytest.approx((0.001 * 0.002 * 0.0015) ** (1 / 3))
    assert "solves the task (3/3 runs)" in table.loc["lstm", "verdict"]
    assert "no better than the trivial baseline" in table.loc["rnn", "verdict"] and "≈11 of 100" in table.loc["rnn", "verdict"]
    text = analysis.overall(table.reset_index(), "cell")
    assert "**lstm**" in text and "do not overlap" in text


def test_two_seeds_are_not_called_a_clear_result():
    table = _strategy_case({"rnn": [0.16, 0.17], "lstm": [0.001, 0.002]})
    text = analysis.overall(table, "cell")
    assert "**lstm**" in text and "do not overlap" not in text and "add seeds" in text
    single = _strategy_case({"rnn": [0.16], "lstm": [0.001]})
    assert "a hint, not a result" in analysis.overall(single, "cell")


def test_aggregate_bands():
    df = pd.DataFrame({"run_id": [1, 2, 1, 2], "epoch": [0, 0, 1, 1], "v": [1.0, 3.0, 10.0, 1000.0]})
    mm = analysis.aggregate(df, {1: "a", 2: "a"}, "epoch", "v", "min–max")
    assert mm[["mean", "lo", "hi"]].values.tolist() == [[2.0, 1.0, 3.0], [505.0, 10.0, 1000.0]]
    geo = analysis.aggregate(df, {1: "a", 2: "a"}, "epoch", "v", "95% CI", log=True)
    assert geo["mean"].iloc[1] == pytest.approx(100.0)
    lo, hi = geo["lo"].iloc[1], geo["hi"].iloc[1]
    half = 12.71 * math.sqrt(2) / math.sqrt(2)   # t(1)·sd/√n in log10 units: values 1 and 3, sd = √2, n = 2
    assert math.log10(hi) - 2 == pytest.approx(half) and 2 - math.log10(lo) == pytest.approx(half)


def test_time_estimate_scales_with_size_and_calibrates():
    small, big = parse_spec({"hidden_size": 32}), parse_spec({"hidden_size": 128, "task": {"name": "adding", "seq_len": 400}})
    assert estimate.seconds(big) > 4 * estimate.seconds(small)
    samples = pd.DataFrame([{"cell": "rnn", "hidden_size": 32, "seq_len": 100, "num_layers": 1, "batch_size": 64,
                             "steps": 100, "seconds": 100 * 2 * estimate._model("rnn", 32, 100, 1, 64)}])
    scale, n = estimate.calibration(samples)
    assert n == 1 and scale == pytest.approx(2.0)
    assert "on 2 workers" in estimate.describe(600, 2)


def test_helpers():
    assert parse_ids("3, 1,3 x7") == [3, 1, 7]
    assert plain("**a** <b>") == r"\*\*a\*\* \<b\>"
    d = spec_diff({"a": {"x": 1, "y": {"z": 2}}, "b": {"x": 1, "y": {"z": 3}}})
    assert d.to_dict("records") == [{"field": "y.z", "a": "2", "b": "3"}]


def test_the_varying_factor_is_picked_by_default():
    runs = pd.DataFrame({"spec": [parse_spec({"num_layers": n, "seed": s}).to_dict() for n in (1, 2) for s in (0, 1)]})
    assert analysis.varying_factor(runs) == "depth"
    assert analysis.varying_factor(runs.iloc[:1]) == "cell"
