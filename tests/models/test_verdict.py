"""``diagnose`` on hand-made records, the probe cadence, and the engine's import lane."""

import ast
import math
import subprocess
import sys
from pathlib import Path

from models import diagnose, train
from rnnlab.records import EpochRecord, LayerStat, RunInfo


def _layer(grad_h, log_ratio, horizon, layer=0, rho=0.5, saturated=0.0, dead=None):
    return LayerStat(layer=layer, rho=rho, sigma_max=1.0, gamma_sigma_max=1.0, gate_spectra={},
                     saturated_frac=saturated, dead_frac=dead, gate_mean={}, gate_saturated={},
                     grad_h=grad_h, grad_c=None, log_ratio=log_ratio, decay_per_step=-0.5,
                     horizon=horizon, steps_in_past=1.0)


def _record(layers, gmax=1.0, nonfinite=0, probed=True, gmean=None, steps=10, epoch=3):
    return EpochRecord(epoch=epoch, steps=steps, train_loss=0.1, val_loss=0.1, val_metric=0.5,
                       grad_norm_mean=gmax if gmean is None else gmean, grad_norm_max=gmax, clip_fraction=0.0,
                       nonfinite_steps=nonfinite, train_seconds=1.0, diag_seconds=0.1, probed=probed,
                       layers=layers if probed else [])


def test_vanishing():
    line = diagnose(_record([_layer([1e-9] + [1.0] * 99, -9.0, 14.0)]), None)
    assert line == "gradients vanish: ‖g_1‖/‖g_T‖ = 1e-09, horizon 14 steps"


def test_vanishing_names_the_worst_layer():
    layers = [_layer([1.0] * 10, 0.0, 9.0, 0), _layer([1e-5] + [1.0] * 9, -5.0, 3.0, 1)]
    assert diagnose(_record(layers), None) == "gradients vanish (layer 1): ‖g_1‖/‖g_T‖ = 1e-05, horizon 3 steps"


def test_healthy_whole_sequence():
    line = diagnose(_record([_layer([0.3] * 99 + [1.0], math.log10(0.3), 99.0)]), None)
    assert line == "healthy: ‖g_1‖/‖g_T‖ = 0.3, horizon 99 steps (the whole sequence)"


def test_exploding_by_ratio_norm_and_nonfinite():
    assert diagnose(_record([_layer([1e5] + [1.0] * 9, 5.0, 9.0)]), None).startswith(
        "gradients explode: ‖g_1‖/‖g_T‖ = 1e+05")
    assert diagnose(_record([_layer([1.0] * 10, 0.0, 9.0)], gmax=5e3), None).startswith("gradients explode")
    assert diagnose(_record([], gmax=math.inf, nonfinite=1), None).startswith("gradients explode: non-finite")


def test_non_finite_profile_is_exploding():
    line = diagnose(_record([_layer([math.nan] * 4 + [1.0], math.nan, math.nan)]), None)
    assert line == "gradients explode: ‖∂L/∂h_t‖ is non-finite in layer 0 at epoch 3"


def test_zero_and_unprobed():
    assert diagnose(_record([_layer([0.0] * 5, math.nan, math.nan)]), None).startswith("gradients are zero")
    assert diagnose(_record([], probed=False), None).startswith("not probed this epoch")


def test_a_ratio_of_zero_over_zero_is_undefined_not_infinite_and_not_healthy():
    """‖g_1‖ = ‖g_T‖ = 0 with gradient in between (log ratio 0/0 = NaN): the line read "healthy:
    ‖g_1‖/‖g_T‖ = inf". A NaN ratio is no evidence of health; one finite healthy layer still is."""
    import numpy as np

    from models import diagnostics as D

    g = [0.0] + [0.5] * 48 + [0.0]
    lr, hz = D.log_ratio(np.array(g)), D.horizon(np.array(g))
    assert math.isnan(lr)
    line = diagnose(_record([_layer(g, lr, hz)]), None)
    assert line.startswith("no gradient verdict: ‖g_1‖/‖g_T‖ undefined (‖g_1‖ = ‖g_T‖ = 0)"), line
    assert "inf" not in line and "healthy" not in line
    two = diagnose(_record([_layer(g, lr, hz, 0), _layer([0.3] * 9 + [1.0], math.log10(0.3), 9.0, 1)]), None)
    assert two.startswith("healthy (layer 1): ‖g_1‖/‖g_T‖ = 0.3"), two


# The exploding-init preset (tanh, ρ(W_hh) = 3, SGD + momentum, no clipping), seed 0, as recorded:
# at epoch 1 the gradient norm reached 3.9e6 (mean 7.7e4 over 50 steps) while the profile already
# vanished; from epoch 2 on ρ(W_hh) ≈ 2.0e4, 99.999 % of units saturated, ‖g_t‖ = 0 at 48 of 50 steps.
DEAD_PROFILE = [0.0] * 48 + [0.0380, 0.0934]
INITIAL = _record([_layer([2.9e6] + [1.0] * 48 + [0.19], 7.19, 49.0, rho=3.0, saturated=0.275)], gmax=5.1e6,
                  steps=0, epoch=0)


def test_an_exploding_epoch_is_not_called_vanishing():
    rec = _record([_layer([1e-9] + [1.0] * 49, -9.0, 14.0)], gmax=1.5e7, gmean=3.0e5, steps=50, epoch=1)
    # 1.5e7 read "2e+07" with one significant digit; a training epoch's norm is an explosion whatever the
    # end-of-epoch profile says (the largest norm came from some step's weights, which it did not see)
    assert diagnose(rec, None) == "gradients explode: gradient norm reached 1.5e+07 in epoch 1 (mean 3e+05)"


def test_a_norm_spike_is_an_explosion_a_bump_is_not():
    steps, others = 50, 0.3            # 49 steps at 0.3 and one at `top`: spike factor = top / 0.3
    for top, explodes in ((50.0, True), (20.0, False)):
        rec = _record([_layer([1e-5] + [1.0] * 9, -5.0, 3.0)], gmax=top, gmean=(others * (steps - 1) + top) / steps,
                      steps=steps)
        line = diagnose(rec, None)
        assert line.startswith("gradients explode: a gradient-norm spike" if explodes else "gradients vanish"), line
    assert "167× the mean of the other steps" in diagnose(
        _record([_layer([1.0] * 10, 0.0, 9.0)], gmax=50.0, gmean=(0.3 * 49 + 50) / 50, steps=50), None)


def test_a_saturated_dead_network_is_not_vanish_horizon_0():
    rec = _record([_layer(DEAD_PROFILE, -math.inf, 1.0, rho=2.03e4, saturated=0.99999)], gmax=5.2, gmean=1.6, steps=50)
    assert diagnose(rec, None) == "saturated: 100% of units saturated; ‖∂L/∂h_t‖ = 0 at 48 of 50 steps"
    grown = diagnose(rec, None, INITIAL)    # with the epoch-0 record, ρ's growth is seen first
    assert grown == (f"weights explode: ρ(W_hh) grew {2.03e4 / 3.0:.2g}× since initialization (3 → 2.03e+04); "
                     "saturated: 100% of units saturated; ‖∂L/∂h_t‖ = 0 at 48 of 50 steps")


def test_rho_growth_below_the_threshold_is_not_an_explosion():
    rec = _record([_layer([0.3] * 9 + [1.0], math.log10(0.3), 9.0, rho=3.0 * 99)])
    assert diagnose(rec, None, INITIAL).startswith("healthy")


def test_dead_relu_units():
    rec = _record([_layer([0.0] * 9 + [0.5], -math.inf, 0.0, saturated=None, dead=1.0)])
    assert diagnose(rec, None) == "dead units: 100% of units never active; ‖∂L/∂h_t‖ = 0 at 9 of 10 steps"


def test_an_exploding_layer_beats_a_vanishing_one():
    layers = [_layer([1e5] + [1.0] * 9, 5.0, 9.0, 0), _layer([1e-5] + [1.0] * 9, -5.0, 3.0, 1)]
    assert diagnose(_record(layers), None).startswith("gradients explode (layer 0): ‖g_1‖/‖g_T‖ = 1e+05")


def test_an_unprobed_epoch_still_shows_an_explosion():
    assert diagnose(_record([], gmax=2e4, gmean=1e3, steps=50, probed=False), None).startswith(
        "gradients explode: gradient norm reached 2e+04")


def test_probe_cadence(tiny):
    recs = []
    train(tiny(epochs=5, steps_per_epoch=1, probe={"every": 2, "batch_size": 3}), on_epoch=recs.append)
    assert [r.probed for r in recs] == [True, False, True, False, True, True]
    assert all(r.layers == [] for r in recs if not r.probed)
    assert all(sum(p.hist) + p.hist_zeros > 0 for r in recs for p in r.params)  # histograms every epoch


FORBIDDEN = ("db", "worker", "dashboard", "celery", "sqlalchemy", "streamlit")


def test_engine_imports_stay_in_its_lane():
    root = Path(__file__).resolve().parents[2] / "models"
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN, f"{f}: imports {n}"


def test_import_and_describe_do_not_touch_cuda():
    code = ("import torch, models; from rnnlab.spec import parse_spec; "
            "models.describe(parse_spec({'cell': 'lstm', 'hidden_size': 4})); "
            "print(torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


# A converged network: every ‖g_t‖ < 1e-10 (steps_in_past = 0) because its loss is ~0. Not dead, and
# models.diagnose and rnnlab.strategies.run_flags (the Strategies verdict) must say the same (rnnlab/health.py).
TINY = [1e-11 * 0.9 ** (50 - t) for t in range(1, 51)]          # the review's profile: smooth, all < 1e-10
BASELINE = 1 / 6


def _info(heldout=None):
    return RunInfo(task="adding", variant="a16", seq_len=50, metric_name="mse", higher_is_better=False,
                   baseline_loss=BASELINE, baseline_metric=BASELINE, loss_name="mse", num_params=100, device="cpu",
                   gamma=1.0, baseline_heldout_loss=heldout)


def _converging(profile, loss, saturated=0.1):
    rec = _record([_layer(profile, math.log10(profile[0] / profile[-1]) if profile[-1] else math.nan, 49.0,
                          saturated=saturated)], gmax=1e-9)
    rec.val_loss = loss
    return rec


def test_a_converged_network_is_healthy_a_stuck_one_has_zero_gradients():
    assert diagnose(_converging(TINY, 1e-9 * BASELINE), _info()).startswith("healthy")
    stuck = diagnose(_converging(TINY, BASELINE), _info())        # the same profile, loss on the baseline
    assert stuck == "gradients are zero: ‖∂L/∂h_t‖ < 1e-10 at every step"
    zero = diagnose(_converging([0.0] * 50, 1e-9 * BASELINE), _info())
    assert zero.startswith("healthy: converged (loss 1.67e-10 ≤ 10% of the baseline 0.167)"), zero
    # the run's own held-out baseline, when stored, is the one compared with (as for 'beats baseline')
    assert diagnose(_converging(TINY, 1e-9), _info(heldout=1e-9)).startswith("gradients are zero")
    assert diagnose(_converging(TINY, 1e-9), None).startswith("gradients are zero")   # no baseline: no evidence


def test_one_dead_layer_of_a_stack_is_named():
    rec = _record([_layer([0.0] * 10, math.nan, math.nan, 0), _layer([0.3] * 9 + [1.0], math.log10(0.3), 9.0, 1)])
    assert diagnose(rec, _info()) == "gradients are zero (layer 0): ‖∂L/∂h_t‖ = 0 at every step"


def test_diagnose_and_the_strategy_flags_agree_on_dead():
    from models.diagnostics import steps_in_past
    from rnnlab.strategies import run_flags

    for profile in (TINY, [0.0] * 50, [1e-11] * 49 + [2e-10], [0.3] * 49 + [1.0]):
        for loss in (0.0, 1e-9 * BASELINE, 0.1 * BASELINE, 0.11 * BASELINE, BASELINE):
            line = diagnose(_converging(profile, loss), _info())
            flags = run_flags({"status": "succeeded", "val_loss": loss, "baseline_loss": BASELINE,
                               "steps_in_past_min": steps_in_past(profile), "saturated_frac": 0.1})
            assert line.startswith("gradients are zero") == ("dead" in flags), (profile[:2], loss, line, flags)


# Every-step tasks (copy, charlm, forecast): the stored log_ratio, horizon and steps_in_past come from
# grad_h_last (‖∂ℓ_T/∂h_t‖, models/report.py layer_stats), not from grad_h, and the diagnosis must use
# the same profile. The layer is built as layer_stats builds it: every measure from grad_h_last.
def _every_step_layer(grad_h, grad_h_last):
    import numpy as np

    from models import diagnostics as D

    d = np.array(grad_h_last, dtype=np.float64)
    return LayerStat(layer=0, rho=0.5, sigma_max=1.0, gamma_sigma_max=1.0, gate_spectra={},
                     saturated_frac=0.1, dead_frac=None, gate_mean={}, gate_saturated={},
                     grad_h=grad_h, grad_c=None, log_ratio=D.log_ratio(d), decay_per_step=D.decay_per_step(d),
                     horizon=D.horizon(d), steps_in_past=D.steps_in_past(d), grad_h_last=grad_h_last)


def _every_step(grad_h, grad_h_last, loss):
    rec = _record([_every_step_layer(grad_h, grad_h_last)])
    rec.val_loss = loss
    return rec


LIVELY = [0.3] * 49 + [1.0]          # every step's own loss term keeps ‖∂L/∂h_t‖ up


def test_every_step_no_gradient_is_decided_on_the_stored_profile():
    """grad_h lively, grad_h_last 0 at every step: the stored steps_in_past is 0 (the Strategies verdict
    calls the run dead), so the line says the gradient is zero, naming the profile it measured."""
    rec = _every_step(LIVELY, [0.0] * 50, BASELINE)
    assert rec.layers[0].steps_in_past == 0
    assert diagnose(rec, _info()) == "gradients are zero: ‖∂ℓ_T/∂h_t‖ = 0 at every step"
    solved = diagnose(_every_step(LIVELY, TINY, 1e-9 * BASELINE), _info())
    assert solved.startswith("healthy: converged (loss 1.67e-10 ≤ 10% of the baseline 0.167), "
                             "‖∂ℓ_T/∂h_t‖ < 1e-10"), solved


def test_every_step_a_zero_total_profile_is_not_zero_when_the_stored_one_is_not():
    """The converse: grad_h below 1e-20 in square at every step, grad_h_last not: the stored
    steps_in_past is 1, so 'gradients are zero' would contradict it; the ratio of grad_h_last decides."""
    rec = _every_step(TINY, LIVELY, BASELINE)
    assert rec.layers[0].steps_in_past == 1
    # (its loss sits at the baseline, which the line adds: see test_healthy_gradients_of_a_net_that_learned_nothing)
    assert diagnose(rec, _info()) == ("healthy: ‖g_1‖/‖g_T‖ = 0.3, horizon 49 steps (the whole sequence); but val loss "
                                      "1× the baseline (no better than the trivial predictor)")


def test_every_step_zero_counts_and_non_finite_use_the_last_step_profile():
    sat = _every_step_layer(LIVELY, [0.0] * 48 + [0.0380, 0.0934])
    sat.saturated_frac = 0.99999
    assert diagnose(_record([sat]), None) == "saturated: 100% of units saturated; ‖∂ℓ_T/∂h_t‖ = 0 at 48 of 50 steps"
    nan = _every_step_layer(LIVELY, [math.nan] * 49 + [1.0])
    assert diagnose(_record([nan]), None) == "gradients explode: ‖∂ℓ_T/∂h_t‖ is non-finite in layer 0 at epoch 3"


def test_every_step_diagnose_and_the_strategy_flags_agree_on_dead():
    """run_flags reads the stored steps_in_past; diagnose must reach the same answer on every pairing of
    a total profile with a last-step profile, including the ones where the two disagree."""
    from rnnlab.strategies import run_flags

    profiles = (TINY, [0.0] * 50, [1e-11] * 49 + [2e-10], LIVELY)
    for grad_h in profiles:
        for last in profiles:
            for loss in (1e-9 * BASELINE, BASELINE):
                rec = _every_step(grad_h, last, loss)
                line = diagnose(rec, _info())
                flags = run_flags({"status": "succeeded", "val_loss": loss, "baseline_loss": BASELINE,
                                   "steps_in_past_min": rec.layers[0].steps_in_past, "saturated_frac": 0.1})
                assert line.startswith("gradients are zero") == ("dead" in flags), (grad_h[:2], last[:2], loss, line)


def test_each_part_of_a_combined_verdict_names_its_own_layer():
    """Layer 0 saturated while layer 1's ρ grew 200×: the line read "weights explode (layer 1): …; 100%
    of units saturated", which put the saturation on layer 1."""
    init = _record([_layer([1.0] * 10, 0.0, 9.0, 0, rho=1.0), _layer([1.0] * 10, 0.0, 9.0, 1, rho=1.0)], steps=0,
                   epoch=0)
    rec = _record([_layer([1.0] * 10, 0.0, 9.0, 0, rho=1.0, saturated=1.0),
                   _layer([1.0] * 10, 0.0, 9.0, 1, rho=200.0)])
    assert diagnose(rec, None, init) == ("weights explode (layer 1): ρ(W_hh) grew 2e+02× since initialization "
                                         "(1 → 200); saturated (layer 0): 100% of units saturated")


def test_ratios_either_side_of_a_threshold_print_apart():
    """‖g_1‖/‖g_T‖ = 9.87e-4 vanishes and 1.02e-3 does not: with one significant digit both lines
    printed "1e-03", one "healthy", the other "gradients vanish"."""
    lo = diagnose(_record([_layer([9.87e-4] + [1.0] * 9, math.log10(9.87e-4), 3.0)]), None)
    hi = diagnose(_record([_layer([1.02e-3] + [1.0] * 9, math.log10(1.02e-3), 3.0)]), None)
    assert lo == "gradients vanish: ‖g_1‖/‖g_T‖ = 9.87e-04, horizon 3 steps"
    assert hi == "healthy: ‖g_1‖/‖g_T‖ = 1.02e-03, horizon 3 steps"


def test_a_large_norm_at_init_whose_gradient_shrinks_going_back_is_not_called_an_explosion():
    """The Activations preset's ReLU runs (W_hh = I): at initialization the gradient norm is 1.0e3 because
    the loss is large, while ‖g_1‖/‖g_T‖ = 0.71 < 1: the gradient shrinks going back in time, so P13's
    growth (γ·σ_max > 1) is absent. The line said "gradients explode"; it says what was measured."""
    rec = _record([_layer([0.71] + [1.0] * 9, math.log10(0.71), 9.0)], gmax=1002.0, steps=0, epoch=0)
    rec.val_loss = 19 * BASELINE
    line = diagnose(rec, _info())
    assert line == ("large gradients: gradient norm 1e+03 at initialization, but ‖g_1‖/‖g_T‖ = 0.71: the gradient "
                    "shrinks going back in time, so it does not explode through time; val loss 19× the baseline")
    # growing going back in some layer, it is an explosion
    grows = _record([_layer([0.71] + [1.0] * 9, math.log10(0.71), 9.0, 0), _layer([5.0] + [1.0] * 9, 0.7, 9.0, 1)],
                    gmax=1002.0, steps=0, epoch=0)
    assert diagnose(grows, _info()).startswith("gradients explode: gradient norm reached 1e+03 in epoch 0")
    # in a training epoch the norm came from a step the probe did not see: still an explosion
    trained = _record([_layer([0.71] + [1.0] * 9, math.log10(0.71), 9.0)], gmax=1002.0, gmean=900.0, steps=50)
    assert diagnose(trained, _info()).startswith("gradients explode: gradient norm reached 1e+03 in epoch 3")


def test_healthy_gradients_of_a_net_that_learned_nothing_say_so():
    """The phase preset's ρ = 2, T = 25 run ended at 1.36× the baseline and read only "healthy: … = 58":
    the line speaks of the gradient; after training a loss at or above the baseline is named with it."""
    rec = _record([_layer([0.3] * 9 + [1.0], math.log10(0.3), 9.0)])
    rec.val_loss = 1.36 * BASELINE
    assert diagnose(rec, _info()) == ("healthy: ‖g_1‖/‖g_T‖ = 0.3, horizon 9 steps (the whole sequence); but val "
                                      "loss 1.36× the baseline (no better than the trivial predictor)")
    rec.val_loss = 0.5 * BASELINE     # learned something: nothing added
    assert diagnose(rec, _info()) == "healthy: ‖g_1‖/‖g_T‖ = 0.3, horizon 9 steps (the whole sequence)"
    init = _record([_layer([0.3] * 9 + [1.0], math.log10(0.3), 9.0)], steps=0, epoch=0)
    init.val_loss = 1.36 * BASELINE   # at initialization nothing was trained yet: nothing added
    assert diagnose(init, _info()).endswith("(the whole sequence)")
