"""Facts that must hold whatever the code does: zero init gives zero W_hh gradient, the P13 bound
‖g_{t−1}‖ ≤ γ·σ_max·‖g_t‖ for vanilla cells, and divergence is recorded, not raised."""

import math

import numpy as np
import pytest

from models import diagnose, train


def _records(spec, **kw):
    recs = []
    res = train(spec, on_epoch=recs.append, **kw)
    return res, recs


def test_zero_init_tanh_rnn_has_exactly_zero_recurrent_gradient(tiny):
    res, recs = _records(tiny(cell="rnn", init={"recurrent": "zeros", "input": "zeros"}, epochs=1))
    assert res.outcome == "succeeded"
    at_init = {p.name: p for p in recs[0].params}   # epoch 0: the gradient at W = U = b = 0
    w_hh = at_init["weight_hh_l0"]
    assert w_hh.grad_norm_mean == 0.0 and w_hh.hist_zeros == 8 * 8 and sum(w_hh.hist) == 0
    assert all(g == 0.0 for g in recs[0].layers[0].grad_h) is False   # ∂L/∂h_t itself is not zero
    assert at_init["weight_ih_l0"].grad_norm_mean > 0                 # U gets a gradient (δ_t x_tᵀ)
    # once U has moved, h ≠ 0 and W_hh starts to learn
    assert next(p for p in recs[1].params if p.name == "weight_hh_l0").grad_norm_max > 0


@pytest.mark.parametrize("activation,init", [
    ("tanh", "default"), ("tanh", "orthogonal"), ("sigmoid", "kaiming"), ("relu", "identity"),
    ("relu", "xavier_normal"), ("leaky_relu", "kaiming"), ("prelu", "orthogonal"), ("sigmoid", "normal"),
])
def test_gradient_bound_for_vanilla_cells(tiny, activation, init):
    spec = tiny(cell="rnn", activation=activation, init={"recurrent": init, "input": "xavier_uniform", "std": 0.5},
                hidden_size=16, epochs=2, task={"name": "adding", "seq_len": 25},
                optimizer={"name": "adam", "lr": 0.01})
    res, recs = _records(spec)
    assert res.outcome == "succeeded"
    checked = 0
    for rec in recs:
        layer = rec.layers[0]
        g = np.asarray(layer.grad_h)
        bound = layer.gamma_sigma_max
        assert bound is not None and math.isfinite(bound)
        ok = g[:-1] <= bound * g[1:] * (1 + 1e-5) + 1e-30
        assert ok.all(), f"epoch {rec.epoch}: violated at t={np.flatnonzero(~ok)}"
        checked += (g > 0).sum()
    assert checked >= len(recs) * 25 // 2   # the bound is tested on real, non-zero profiles


def test_gamma_values(tiny):
    from models import describe
    gammas = {a: describe(tiny(cell="rnn", activation=a)).gamma
              for a in ("tanh", "sigmoid", "relu", "leaky_relu", "prelu")}
    assert gammas == {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "leaky_relu": 1.0, "prelu": 1.0}
    assert describe(tiny(cell="lstm")).gamma is None


def test_exploding_init_diverges_without_raising(tiny):
    spec = tiny(cell="rnn", activation="relu",
                init={"recurrent": "identity", "input": "uniform", "scale": 30.0, "bound": 1.0},
                task={"name": "adding", "seq_len": 40}, epochs=3)
    res, recs = _records(spec)
    assert res.outcome == "diverged"
    assert "epoch 1, step 0" in res.message and "non-finite" in res.message
    last = recs[-1]
    assert last.epoch == 1 and last.nonfinite_steps == 1 and last.steps == 0
    assert not math.isfinite(last.train_loss) and not math.isfinite(last.grad_norm_max)
    assert not math.isfinite(recs[0].val_loss)            # at init the loss is already non-finite
    assert diagnose(last, None).startswith("gradients explode")


def test_huge_learning_rate_diverges_and_is_recorded(tiny):
    spec = tiny(cell="rnn", activation="relu", init="identity", optimizer={"name": "sgd", "lr": 10.0},
                epochs=5, steps_per_epoch=5, task={"name": "adding", "seq_len": 30})
    res, recs = _records(spec)
    assert res.outcome == "diverged", res
    bad = recs[-1]
    assert bad.nonfinite_steps >= 1 or not all(math.isfinite(p.weight_norm) for p in bad.params)
    assert res.epochs_done == bad.epoch - 1
