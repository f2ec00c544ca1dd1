"""The dashboard's pure logic: the form's visibility rules and error routing, sweep values,
presets, the strategy verdicts and the time estimate."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard import analysis, estimate, forms, sweeps
from dashboard.components import plain, spec_diff
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
    d = forms.collect(form_state(**{"cell": "gru", "activation": "relu", "leaky_slope": 0.2,
                                    "init.forget_bias_on": True,
                                    "clip.mode": "none", "optimizer.name": "adam", "optimizer.momentum": 0.9}))
    assert "activation" not in d and "leaky_slope" not in d and "forget_bias" not in d["init"]
    assert d["clip"] == {"mode": "none"} and "momentum" not in d["optimizer"]
    assert forms.validate(d)[1] == []
    d = forms.collect(form_state(**{"activation": "leaky_relu", "leaky_slope": 0.2, "clip.mode": "value",
                                    "clip.clip_value": 0.5, "task.name": "forecast", "task.forecast.series": "sine",
                                    "task.forecast.path": "/x.csv"}))
    assert d["leaky_slope"] == 0.2 and d["clip"] == {"mode": "value", "clip_value": 0.5} and "path" not in d["task"]


def test_load_spec_round_trips_through_the_form():
    original = parse_spec({"cell": "lstm", "init": {"recurrent": "orthogonal", "input": "xavier_normal",
                                                    "forget_bias": 1.0, "spectral_radius": 0.9},
                           "clip": {"mode": "norm", "max_norm": 2.0},
                           "task": {"name": "copy", "seq_len": 30, "n_copy": 5},
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


def test_sweep_build_reports_every_bad_grid_point_and_duplicates(sqlite_url):
    base = forms.collect(form_state())
    bad = sweeps.build(base, {"cell": ["rnn", "lstm"], "activation": ["relu"]}, [0], None, url=sqlite_url)
    assert bad.errors and all("activation" in e for e in bad.errors) and not bad.specs
    dup = sweeps.build(base, {"hidden_size": [64, 64]}, [0, 1], "x", url=sqlite_url)
    assert len(dup.specs) == 4 and dup.duplicates == [(0, 2), (1, 3)]


def test_every_preset_expands():
    for name, (_, sweep) in PRESETS.items():
        assert isinstance(sweep, SweepSpec) and len(expand_sweep(sweep)) >= 4, name


def test_a_preset_claims_only_what_a_study_tests():
    """A preset's text is either a built-in study's claim over exactly that study's CPU sweep (which its
    runs reproduce on every calibrated seed, docs/studies.md), or says that it tests no claim."""
    import studies

    by_claim = {st.claim: st for st in studies.STUDIES.values()}
    tested = set()
    for name, (text, sweep) in PRESETS.items():
        st = next((st for claim, st in by_claim.items() if claim in text), None)
        if st is None:
            assert "no claim is tested" in text, name
            continue
        tested.add(st.name)
        assert sweep == st.sweep("cpu"), name
        assert f"Study {st.name} v{st.version}" in text, name
    assert tested == {st.name for st in by_claim.values()}   # every study can be started from a preset


def test_the_phase_diagram_preset_says_which_probe_the_explorer_shows(sqlite_url):
    """The Explorer's gradient outcome (and its ρ) is the run's last probe, after training, not the
    gradient at initialization: the preset that sends the user there says so."""
    from dashboard import explore
    from db import queries as q
    from tests.dashboard.seed import records, seed_run, spec

    text, _ = PRESETS["Phase diagram: spectral radius × T"]
    assert "at init" not in text.replace("spectral radius set at init", "")
    assert "last probe" in text and "after training" in text
    s = spec("rnn", seq_len=30, seed=0, init={"recurrent": "orthogonal", "spectral_radius": 1.5})
    rid = seed_run(sqlite_url, s)
    recs = records(s)
    first, last = recs[0].layers[0], recs[-1].layers[0]
    assert abs(first.log_ratio - last.log_ratio) > 0.1 and abs(first.rho - last.rho) > 0.1  # the probes differ
    row = explore.outcomes_table(q.explore_runs({}, engine=q.engine_for(sqlite_url))[0]).set_index("id").loc[rid]
    assert row["log10 ‖g_1‖/‖g_T‖"] == pytest.approx(last.log_ratio) and row["ρ"] == pytest.approx(last.rho)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_loading_a_preset_reproduces_its_sweep(sqlite_url, preset):
    """Every preset, loaded into the form and read back from the widgets' text, plans exactly its
    sweep's runs (explicit points included)."""
    _, sweep = PRESETS[preset]
    state = form_state()
    forms.load_spec(state, sweep.base)
    sweeps.load_sweep(state, sweep)
    vary = {k: sweeps.parse_values(state[sweeps.S + "vals." + k]) for k in state[sweeps.S + "fields"]}
    plan = sweeps.build(forms.collect(state), vary, sweeps.parse_seeds(state[sweeps.S + "seeds"]), sweep.name,
                        url=sqlite_url, points=sweeps.parse_points(state[sweeps.S + "points"]))
    assert not plan.errors, plan.errors
    assert [s.spec_hash() for s in plan.specs] == [s.spec_hash() for s in expand_sweep(sweep)]


def _runs(rows):
    return pd.DataFrame(rows)


def _strategy_case(losses: dict[str, list[float]], diverged: frozenset = frozenset()):
    """``diverged``: the (cell, seed) runs whose status is 'diverged' (their loss as given)."""
    rows, final, i = [], [], 0
    for cell, values in losses.items():
        for seed, loss in enumerate(values):
            i += 1
            spec = parse_spec({"cell": cell, "seed": seed}).to_dict()
            status = "diverged" if (cell, seed) in diverged else "succeeded"
            rows.append({"id": i, "status": status, "seed": seed, "baseline_loss": 1 / 6, "seq_len": 100,
                         "spec": spec})
            horizon = 11.0 if cell == "rnn" else 150.0
            final.append({"run_id": i, "val_loss": loss, "val_metric": loss, "horizon": horizon,
                          "decay_per_step": -0.1})
    runs = _runs(rows)
    return analysis.summary(runs, _runs(final), analysis.groups_of(runs, "cell"))


def test_strategy_summary_and_verdicts():
    table = _strategy_case({"rnn": [0.16, 0.17, 0.165], "lstm": [0.001, 0.002, 0.0015]}).set_index("group")
    assert table.loc["lstm", "solve rate"] == 1.0 and table.loc["rnn", "solve rate"] == 0.0
    assert table.loc["lstm", "final loss"] == pytest.approx((0.001 * 0.002 * 0.0015) ** (1 / 3))
    assert "solves the task (3/3 runs)" in table.loc["lstm", "verdict"]
    rnn = table.loc["rnn", "verdict"]
    assert "no better than the trivial baseline" in rnn and "≈11 of 100" in rnn
    assert table.loc["lstm", "rank"] == 1 and pd.isna(table.loc["rnn", "rank"])
    assert table.loc["lstm", "beats baseline"] and not table.loc["rnn", "beats baseline"]
    text = analysis.overall(table.reset_index(), "cell")
    assert "**lstm**" in text and "do not overlap" in text


def test_a_diverged_run_with_a_tiny_last_loss_does_not_count_as_solving():
    """The engine skips the non-finite step's update, so a diverged run can end on a finite, tiny loss:
    only its status says it broke off. It did not solve the task."""
    losses = {"rnn": [0.16, 0.17, 0.165], "lstm": [0.001, 0.002, 0.0015]}
    table = _strategy_case(losses, diverged=frozenset({("lstm", 0), ("lstm", 2)})).set_index("group")
    assert table.loc["lstm", "solve rate"] == pytest.approx(1 / 3) and table.loc["lstm", "diverged"] == 2
    assert "solves the task" not in table.loc["lstm", "verdict"], table.loc["lstm", "verdict"]
    # the same losses with every run finished solve it on all three
    assert _strategy_case(losses).set_index("group").loc["lstm", "solve rate"] == 1.0


def test_two_seeds_are_not_called_a_clear_result():
    table = _strategy_case({"rnn": [0.16, 0.17], "lstm": [0.001, 0.002]})
    text = analysis.overall(table, "cell")
    assert "**lstm**" in text and "do not overlap" not in text and "add seeds" in text
    single = _strategy_case({"rnn": [0.16], "lstm": [0.001]})
    assert "a hint, not a result" in analysis.overall(single, "cell")


# Known cases for the verdict, as the database would return them: runs (one row per run, with its
# spec), final (last epoch loss, last probe's layer-0 horizon and log_ratio) and health
# (db.queries.run_health). Each run: (group spec overrides, seed, loss, horizon, log_ratio, health).
def _verdict_case(factor: str, T: int, cases: list[tuple[dict, int, float, float, float, dict]]):
    runs, final, health = [], [], []
    for i, (over, seed, loss, horizon, log_ratio, h) in enumerate(cases, start=1):
        spec = parse_spec({"task": {"name": "adding", "seq_len": T}, "seed": seed, **over}).to_dict()
        runs.append({"id": i, "status": h.pop("status", "succeeded"), "seed": seed, "baseline_loss": 1 / 6,
                     "seq_len": T, "spec": spec})
        final.append({"run_id": i, "val_loss": loss, "val_metric": 0.0, "horizon": horizon, "decay_per_step": -0.1,
                      "log_ratio": log_ratio})
        health.append({"run_id": i, "baseline_heldout_loss": None, "val_loss_se": math.nan, "nonfinite_steps": 0,
                       "grad_norm_max": 1.0, "spike": 3.0, "rho_growth": 1.5, "saturated_frac": 0.1,
                       "dead_frac": math.nan, "log_ratio_max": log_ratio, "steps_in_past_min": T, **h})
    runs = pd.DataFrame(runs)
    table = analysis.summary(runs, pd.DataFrame(final), analysis.groups_of(runs, factor), pd.DataFrame(health))
    return table.set_index("group", drop=False), analysis.overall(table, factor)


T975 = {1: 12.706205, 2: 4.302653}   # two-sided 95% Student t quantiles by degrees of freedom, written out
B = 1 / 6                            # _verdict_case's analytic baseline


EXPLODE = {"cell": "rnn", "init": {"recurrent": "orthogonal", "input": "xavier_uniform", "spectral_radius": 3.0},
           "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}}


def test_exploding_init_preset_nothing_worked():
    """Both arms of 'Exploding init: clipping off vs on' are dead (values as recorded: without clipping
    ρ(W_hh) 3 → 2e4, 99.999 % saturated, ‖g_t‖ = 0 at 48 of 50 steps; with clipping the pre-clip norm
    stays ~1e6 and the loss far above the baseline). On each seed's own 256-sequence held-out set the
    trivial predictor scores 0.150, 0.176, 0.153 (issue 8), so loss 0.1525 is no better than trivial."""
    held = [0.150, 0.176, 0.153]
    dead = [({**EXPLODE, "clip": "none"}, s, loss, 1.0, -math.inf,
             {"grad_norm_max": 3.9e6, "rho_growth": 6.8e3, "saturated_frac": 0.99999, "steps_in_past_min": 2,
              "val_loss_se": 0.012, "baseline_heldout_loss": held[s]}) for s, loss in enumerate([0.1525, 0.170, 0.151])]
    clipped = [({**EXPLODE, "clip": {"mode": "norm", "max_norm": 1.0}}, s, loss, 49.0, 6.5,
                {"grad_norm_max": 1.9e6, "rho_growth": 1.2, "saturated_frac": 0.6, "val_loss_se": 0.08,
                 "baseline_heldout_loss": held[s]}) for s, loss in enumerate([1.13, 0.98, 1.05])]
    table, text = _verdict_case("clipping", 50, dead + clipped)
    assert not table["beats baseline"].any() and table["rank"].isna().all()
    assert text.startswith("No group solved the task") and "Best" not in text
    assert ("**none**: exploding in 3/3 runs (gradient norm up to 3.9e+06, ρ(W_hh) grew 6.8e+03×); saturated in 3/3"
            in text)
    assert "**norm ≤ 1.0**: exploding in 3/3 runs" in text
    assert table.loc["none", "_broken"] == ["exploding", "saturated"]
    assert "exploding in 3/3 runs" in table.loc["norm ≤ 1.0", "verdict"]


def test_identity_horizon_beats_kaiming_loss_noise():
    """Inits preset, T = 50, three seeds (the preset's two plus one between them): kaiming's
    geometric-mean loss is lower (0.0816 vs 0.0830) but the seeds' intervals overlap; identity's
    gradient reaches 49 of 50 steps, kaiming's 12. The zero init never moves (no gradient at any step,
    loss on the baseline) and is flagged dead."""
    base = {"cell": "rnn"}
    zeros = [({**base, "init": "zeros"}, s, 1 / 6, math.nan, math.nan, {"steps_in_past_min": 0, "saturated_frac": 0.0})
             for s in range(2)]
    cases = [({**base, "init": "identity"}, s, loss, 49.0, -0.3, {"val_loss_se": 0.004})
             for s, loss in enumerate([0.080, 0.083, 0.086])]
    cases += [({**base, "init": "kaiming"}, s, loss, 12.0, -2.5, {"val_loss_se": 0.004})
              for s, loss in enumerate([0.074, 0.082, 0.090])]
    table, text = _verdict_case("init", 50, cases + zeros)
    assert table.loc["kaiming", "final loss"] < table.loc["identity", "final loss"]
    assert table.loc["identity", "rank"] == 1 and table.loc["kaiming", "rank"] == 2
    assert pd.isna(table.loc["zeros", "rank"])
    assert list(table["group"]) == ["identity", "kaiming", "zeros"]
    assert text.startswith("Best init here: **identity**")
    assert ("ranks first on gradient evidence (horizon the whole sequence (49 steps) vs ≈12 of 50 steps)" in text)
    assert "**zeros**: dead in 2/2 runs" in text
    # With the preset's two seeds only, kaiming's (0.074 and 0.090: 44% and 54% of the baseline) are too far
    # apart for two seeds to show it beats the baseline: 0.49 + 12.706·0.068/√2 ≈ 1.10 > 1. Unranked.
    two = [({**base, "init": "identity"}, s, loss, 49.0, -0.3, {"val_loss_se": 0.004})
           for s, loss in enumerate([0.080, 0.086])]
    two += [({**base, "init": "kaiming"}, s, loss, 12.0, -2.5, {"val_loss_se": 0.004})
            for s, loss in enumerate([0.074, 0.090])]
    table, text = _verdict_case("init", 50, two + zeros)
    r = [0.074 * 6, 0.090 * 6]
    assert table.loc["kaiming", "_upper"] == pytest.approx(
        sum(r) / 2 + T975[1] * abs(r[0] - r[1]) / math.sqrt(2) / math.sqrt(2), rel=1e-3)
    assert table.loc["identity", "rank"] == 1 and pd.isna(table.loc["kaiming", "rank"])
    assert text.startswith("Best init here: **identity**") and "does not beat the baseline" in text


def test_a_broken_group_is_never_first_even_with_the_lowest_loss():
    cases = [({"clip": "none"}, s, 0.001, 99.0, 0.5, {"grad_norm_max": 5e4} if s == 0 else {}) for s in range(3)]
    cases += [({"clip": {"mode": "norm", "max_norm": 1.0}}, s, loss, 40.0, -1.0, {})
              for s, loss in enumerate([0.05, 0.06, 0.055])]
    table, text = _verdict_case("clipping", 100, cases)
    assert table.loc["norm ≤ 1.0", "rank"] == 1 and pd.isna(table.loc["none", "rank"])
    assert text.startswith("Best clipping here: **norm ≤ 1.0**") and "**none**: exploding in 1/3 runs" in text
    assert "Every other group is flagged or does not beat the baseline." in text


def test_a_confounded_group_is_named_with_the_fields_that_vary():
    cases = [({"cell": "lstm", "optimizer": {"name": "adam", "lr": lr}}, s, 0.002, 99.0, -0.5, {})
             for s, lr in enumerate([0.001, 0.001, 0.01])]
    cases += [({"cell": "rnn"}, s, 0.16, 10.0, -4.0, {}) for s in range(3)]
    table, text = _verdict_case("cell", 100, cases)
    assert table.loc["lstm", "_confounds"] == {"optimizer.lr": ["0.001", "0.01"]}
    assert table.loc["rnn", "_confounds"] == {}          # seeds differ, nothing else
    assert "confounded: optimizer.lr: 0.001, 0.01" in table.loc["lstm", "verdict"]
    assert "Confounded (other spec fields vary within the group): **lstm** (optimizer.lr: 0.001, 0.01)" in text


def test_beating_the_baseline_uses_its_uncertainty():
    one = [({"cell": "rnn"}, 0, 0.15, 10.0, -1.0, {})]
    table, _ = _verdict_case("cell", 100, one)             # one run, no SE: needs a 25% margin, 0.15 is 90%
    assert not table.loc["rnn", "beats baseline"] and "a 25% margin" in table.loc["rnn", "verdict"]
    table, _ = _verdict_case("cell", 100, [({"cell": "rnn"}, 0, 0.15, 10.0, -1.0,
                                           {"val_loss_se": 0.005, "baseline_heldout_loss": 0.176})])
    assert table.loc["rnn", "_upper"] == pytest.approx(0.15 / 0.176 + 1.96 * 0.005 / 0.176)
    assert table.loc["rnn", "beats baseline"]
    table, _ = _verdict_case("cell", 100, [({"cell": "rnn"}, 0, 0.15, 10.0, -1.0,
                                           {"val_loss_se": 0.005, "baseline_heldout_loss": 0.150})])
    assert not table.loc["rnn", "beats baseline"]          # no better than the trivial predictor on the same set


@pytest.mark.parametrize("evidence, flags", [
    ({"status": "diverged"}, ["non-finite"]),
    ({"grad_norm_max": 1.5e7}, ["exploding"]),
    ({"spike": 150.0}, ["exploding"]),
    ({"rho_growth": 6.8e3, "saturated_frac": 0.99999}, ["exploding", "saturated"]),
    ({"dead_frac": 1.0}, ["dead"]),
    ({"steps_in_past_min": 0.0}, ["dead"]),
    ({"steps_in_past_min": 0.0, "val_loss": 0.1, "baseline_loss": 1 / 6}, ["dead"]),      # 60%: not learned
    ({"steps_in_past_min": 0.0, "val_loss": 1e-9, "baseline_loss": 1 / 6}, []),           # converged
    ({"steps_in_past_min": 0.0, "val_loss": 1e-9, "baseline_heldout_loss": 1e-9, "baseline_loss": 1 / 6}, ["dead"]),
    ({"log_ratio": -9.0}, ["vanishing"]),
    ({"grad_norm_max": 999.0, "spike": 99.0, "rho_growth": 99.0, "saturated_frac": 0.98, "log_ratio": -2.9}, []),
])
def test_run_flags(evidence, flags):
    assert analysis.run_flags({"status": "succeeded", "val_loss": 0.1, **evidence}) == flags


# The review's cases (strategies defects 1-4): the baseline is 1/6 here, so each loss is the review's
# loss ÷ baseline times B.


def test_seed_disagreement_is_not_hidden_by_small_held_out_errors():
    """LSTM seeds at 0.2, 0.9 and 1.5 × the baseline, each with a held-out SE of 1% of it: the old
    bound (√ΣSE² ÷ n) said 88% and named LSTM best although one seed is 50% worse than the baseline.
    The seeds' t interval is far wider: nothing beats the baseline ('nothing worked')."""
    se = {"val_loss_se": 0.01 * B}
    cases = [({"cell": "lstm"}, s, r * B, 49.0, -0.5, dict(se)) for s, r in enumerate([0.2, 0.9, 1.5])]
    cases += [({"cell": "gru"}, s, B, 49.0, -0.5, dict(se)) for s in range(3)]
    table, text = _verdict_case("cell", 50, cases)
    r = [0.2, 0.9, 1.5]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert table.loc["lstm", "_upper"] == pytest.approx(mean + T975[2] * sd / math.sqrt(3), rel=1e-3)   # ≈ 2.48
    assert table.loc["lstm", "_basis"] == "spread over 3 seeds"
    assert not table["beats baseline"].any() and table["rank"].isna().all()
    assert text.startswith("No group solved the task: none beat the trivial baseline") and "Best" not in text
    assert "95% upper bound 248% (spread over 3 seeds)" in table.loc["lstm", "verdict"]


def test_held_out_errors_still_bound_seeds_that_agree():
    """Two seeds both at 0.9 × the baseline (no spread) with SEs of 5% of it: the SE bound,
    0.9 + 1.96·√(2·0.05²)/2 ≈ 0.969, is the wider one and is used; still below 1."""
    cases = [({"cell": "lstm"}, s, 0.9 * B, 49.0, -0.5, {"val_loss_se": 0.05 * B}) for s in range(2)]
    table, _ = _verdict_case("cell", 50, cases)
    assert table.loc["lstm", "_upper"] == pytest.approx(0.9 + 1.96 * math.sqrt(2 * 0.05 ** 2) / 2)
    assert table.loc["lstm", "_basis"] == "held-out standard errors" and table.loc["lstm", "beats baseline"]


def test_a_growing_gradient_profile_does_not_win_the_tie_break():
    """Both reach the whole sequence and their losses are within noise; LSTM's ‖g_1‖/‖g_T‖ = 10^2.8
    (growing toward the explosion threshold 1e3), GRU's = 1 (flat). GRU must rank first, and the
    conclusion must name ‖g_1‖/‖g_T‖ as the deciding evidence, not the (equal) horizons."""
    cases = [({"cell": "lstm"}, s, r * B, 49.0, 2.8, {}) for s, r in enumerate([0.05, 0.08])]
    cases += [({"cell": "gru"}, s, r * B, 49.0, 0.0, {}) for s, r in enumerate([0.06, 0.07])]
    table, text = _verdict_case("cell", 50, cases)
    assert table.loc["lstm", "final loss"] < table.loc["gru", "final loss"]      # 0.063 vs 0.065 of 1: lstm lower
    assert table.loc["gru", "rank"] == 1 and table.loc["lstm", "rank"] == 2
    assert text.startswith("Best cell here: **gru**")
    assert "gru ranks first on gradient evidence (‖g_1‖/‖g_T‖ ≈ 1 vs 631)" in text
    assert "horizon the whole sequence (49 steps) vs" not in text


def test_the_review_growing_vs_flat_case_ranks_the_flat_profile_first():
    """The review's case 4 as given: LSTM 0.05, 0.08 × baseline with log ratio 2.8; GRU 0.03, 0.05 with 0."""
    cases = [({"cell": "lstm"}, s, r * B, 49.0, 2.8, {}) for s, r in enumerate([0.05, 0.08])]
    cases += [({"cell": "gru"}, s, r * B, 49.0, 0.0, {}) for s, r in enumerate([0.03, 0.05])]
    table, text = _verdict_case("cell", 50, cases)
    assert list(table["group"]) == ["gru", "lstm"] and text.startswith("Best cell here: **gru**")
    assert "ranks first on gradient evidence" not in text          # gru's loss is lower anyway


def test_the_tie_break_prefers_log_ratio_closest_to_zero_either_side():
    """Ties on learning and horizon: |log10 ‖g_1‖/‖g_T‖| decides, so −0.5 beats +1.5 and +1.5 beats −2.5."""
    cases = [({"cell": c}, s, 0.05 * B * (1 + 0.01 * s), 49.0, lr, {})
             for c, lr in (("rnn", -2.5), ("gru", 1.5), ("lstm", -0.5)) for s in range(3)]
    table, _ = _verdict_case("cell", 50, cases)
    assert list(table["group"]) == ["lstm", "gru", "rnn"] and list(table["rank"]) == [1, 2, 3]


def test_a_loss_of_exactly_zero_is_the_best_loss_not_a_missing_one():
    """LSTM final losses (0, 0, 0.3 × baseline): zeros count as 1e-12 (the floor), so the geometric mean
    is (1e-12 · 1e-12 · 0.05)^(1/3), not 0.05 (the old code dropped the zeros)."""
    cases = [({"cell": "lstm"}, s, r * B, 49.0, -0.5, {}) for s, r in enumerate([0.0, 0.0, 0.3])]
    cases += [({"cell": "gru"}, s, 0.1 * B, 49.0, -0.5, {}) for s in range(3)]
    table, text = _verdict_case("cell", 50, cases)
    assert table.loc["lstm", "final loss"] == pytest.approx((1e-12 * 1e-12 * 0.3 * B) ** (1 / 3), rel=1e-9)
    assert table.loc["lstm", "final loss"] < table.loc["gru", "final loss"]
    # within noise of each other (lstm's seeds span 11 decades); gru solves 3/3 vs 2/3 and ranks first on that
    assert list(table["group"]) == ["gru", "lstm"]
    assert ("lstm's loss ÷ baseline is lower but within noise of gru's; gru ranks first on solve rate (100% vs 67%)"
            in text)


def test_an_all_zero_loss_group_ranks_first():
    cases = [({"cell": "lstm"}, s, 0.0, 49.0, -0.5, {}) for s in range(2)]
    cases += [({"cell": "gru"}, s, 0.05 * B, 49.0, -0.5, {}) for s in range(2)]
    table, text = _verdict_case("cell", 50, cases)
    assert table.loc["lstm", "final loss"] == pytest.approx(1e-12) and table.loc["lstm", "rank"] == 1
    assert text.startswith("Best cell here: **lstm**") and "final loss 1e-12" in text


def test_a_converged_run_with_no_gradient_is_not_dead():
    """Loss 1e-9 × baseline and every ‖g_t‖ < 1e-10 (steps_in_past = 0): it converged, the gradient is
    ~0 because the loss is. models.diagnose calls the same profile healthy (tests/models/test_verdict.py)."""
    cases = [({"cell": "lstm"}, s, 1e-9 * B, 49.0, -0.5, {"steps_in_past_min": 0.0}) for s in range(2)]
    cases += [({"cell": "gru"}, s, 0.05 * B, 49.0, -0.5, {}) for s in range(2)]
    table, text = _verdict_case("cell", 50, cases)
    assert table.loc["lstm", "_broken"] == [] and table.loc["lstm", "rank"] == 1
    assert text.startswith("Best cell here: **lstm**") and "dead" not in text


def test_no_gradient_and_no_learning_is_dead_nothing_worked():
    """No gradient at any step and the loss on the baseline (all-zero init) in every group: both dead."""
    cases = [({"cell": c}, s, B, math.nan, math.nan, {"steps_in_past_min": 0.0, "saturated_frac": 0.0})
             for c in ("lstm", "gru") for s in range(2)]
    table, text = _verdict_case("cell", 50, cases)
    assert table["rank"].isna().all() and all(b == ["dead"] for b in table["_broken"])
    assert text.startswith("No group solved the task") and "**lstm**: dead in 2/2 runs" in text


def test_aggregate_bands():
    df = pd.DataFrame({"run_id": [1, 2, 1, 2], "epoch": [0, 0, 1, 1], "v": [1.0, 3.0, 10.0, 1000.0]})
    mm = analysis.aggregate(df, {1: "a", 2: "a"}, "epoch", "v", "min–max")
    assert mm[["mean", "lo", "hi"]].values.tolist() == [[2.0, 1.0, 3.0], [505.0, 10.0, 1000.0]]
    geo = analysis.aggregate(df, {1: "a", 2: "a"}, "epoch", "v", "95% CI", log=True)
    assert geo["mean"].iloc[1] == pytest.approx(100.0)
    lo, hi = geo["lo"].iloc[1], geo["hi"].iloc[1]
    half = T975[1] * math.sqrt(2) / math.sqrt(2)   # t(1)·sd/√n in log10 units: values 1 and 3, sd = √2, n = 2
    assert math.log10(hi) - 2 == pytest.approx(half) and 2 - math.log10(lo) == pytest.approx(half)


def test_time_estimate_scales_with_size_and_calibrates():
    small, big = parse_spec({"hidden_size": 32}), parse_spec({"hidden_size": 128,
                                                              "task": {"name": "adding", "seq_len": 400}})
    assert estimate.seconds(big) > 4 * estimate.seconds(small)
    samples = pd.DataFrame([{"cell": "rnn", "hidden_size": 32, "seq_len": 100, "num_layers": 1, "batch_size": 64,
                             "steps": 100, "seconds": 100 * 2 * estimate._model("rnn", 32, 100, 1, 64)}])
    scale, n = estimate.calibration(samples)
    assert n == 1 and scale == pytest.approx(2.0)
    assert "on 2 run slots" in estimate.describe(600, 2)


def test_helpers():
    assert plain("**a** <b>") == r"\*\*a\*\* \<b\>"
    d = spec_diff({"a": {"x": 1, "y": {"z": 2}}, "b": {"x": 1, "y": {"z": 3}}})
    assert d.to_dict("records") == [{"field": "y.z", "a": "2", "b": "3"}]


def test_the_varying_factor_is_picked_by_default():
    runs = pd.DataFrame({"spec": [parse_spec({"num_layers": n, "seed": s}).to_dict() for n in (1, 2) for s in (0, 1)]})
    assert analysis.varying_factor(runs) == "depth"
    assert analysis.varying_factor(runs.iloc[:1]) == "cell"


def test_run_id_ranges_are_read_as_ranges_and_bounded():
    from dashboard.page_context import run_ids

    assert run_ids("3-6", "Run ids", 12) == ([3, 4, 5, 6], [])   # not runs 3 and 6
    assert run_ids("3 - 5, 9; 4–7", "Run ids", 12) == ([3, 4, 5, 9, 6, 7], [])
    ids, problems = run_ids("1-1000000000", "Run ids", 12)    # refused by arithmetic, nothing expanded
    assert ids == [] and problems == ["Run ids: the range 1-1000000000 spans more than 12 runs, the most allowed "
                                      "here; ignored."]
    ids, problems = run_ids("6-3, 8", "Run ids", 12)
    assert ids == [8] and "6-3 ends before it starts" in problems[0]
    ids, problems = run_ids("1-10, 11-12, 13", "Run ids", 12)
    assert ids == list(range(1, 13)) and "the first 12" in problems[-1]


def test_compare_and_strategies_read_a_range_of_run_ids(lab, open_page):
    _, ids = lab
    a = ids["cells"][0]
    assert ids["cells"][:3] == [a, a + 1, a + 2]
    at = open_page("compare", runs=f"{a}-{a + 2}")
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.query_params["runs"] in ([f"{a},{a + 1},{a + 2}"], f"{a},{a + 1},{a + 2}")
    at = open_page("compare", runs=f"{a}-{a + 50}")
    assert any("spans more than 12 runs" in w.value for w in at.warning), [w.value for w in at.warning]
    at = open_page("strategies", runs=f"{a}-{a + 2}", factor="cell")
    assert not at.exception
    assert at.query_params["runs"] in ([f"{a},{a + 1},{a + 2}"], f"{a},{a + 1},{a + 2}")
