"""Every recorded diagnostic against an independent computation (numpy, direct formulas)."""

import math

import numpy as np
import pytest
import torch

from models import train
from models.build import build_model
from models.diagnostics import decay_per_step, histogram, horizon, log_ratio, steps_in_past
from models.tasks import make_task
from rnnlab.records import HIST_EDGES, HIST_LEN


def _records(spec):
    recs, cks = [], []
    train(spec, on_epoch=recs.append, on_checkpoint=lambda e, b: cks.append(b))
    return recs, cks


def _state(ck):
    import io
    return torch.load(io.BytesIO(ck), weights_only=True)["model"]


# -- profile summaries on hand-made profiles ------------------------------------------------------

def test_summaries_of_a_geometric_profile():
    T = 30
    g = 0.5 ** np.arange(T)[::-1]          # ‖g_t‖ = 0.5^(T−t)
    assert log_ratio(g) == pytest.approx((T - 1) * np.log10(0.5))
    assert decay_per_step(g) == pytest.approx(np.log10(0.5))
    assert horizon(g) == 9                  # 0.5^9 ≈ 2.0e-3 ≥ 1e-3 > 0.5^10 ≈ 9.8e-4
    assert steps_in_past(g) == 1.0


def test_summaries_of_flat_zero_and_broken_profiles():
    assert horizon(np.ones(12)) == 11 and decay_per_step(np.ones(12)) == 0.0
    g = np.array([0.0, 0.0, 1e-11, 1e-9, 1.0])   # squares: 0, 0, 1e-22, 1e-18, 1
    assert steps_in_past(g) == pytest.approx(2 / 5)
    assert log_ratio(g) == -math.inf
    assert math.isnan(horizon(np.zeros(5)))
    assert horizon(np.array([5.0, np.nan, 1.0, 1.0])) == 1   # NaN stops the horizon


# -- histograms -----------------------------------------------------------------------------------

def _numpy_hist(g):
    g = np.asarray(g, dtype=np.float64).ravel()
    fin = g[np.isfinite(g)]
    nz = np.abs(fin[fin != 0])
    lg = np.log10(nz)
    inner, _ = np.histogram(lg, bins=np.asarray(HIST_EDGES))
    counts = np.concatenate([[np.sum(lg < HIST_EDGES[0])], inner, [np.sum(lg >= HIST_EDGES[-1])]])
    # np.histogram closes its last bin on the right; ours sends log10|g| == 2.0 to overflow
    counts[-2] -= np.sum(lg == HIST_EDGES[-1])
    return counts.tolist(), int(np.sum(fin == 0)), int(np.sum(~np.isfinite(g)))


def test_histogram_matches_numpy_including_edges():
    rng = np.random.default_rng(0)
    g = 10.0 ** rng.uniform(-12, 4, 5000) * rng.choice([-1, 1], 5000)
    g = np.concatenate([g, [0.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e-10, 1e2, 1e-12, 1e5]])
    counts, zeros, nonfinite = histogram(torch.tensor(g, dtype=torch.float32))
    want = _numpy_hist(torch.tensor(g, dtype=torch.float32).double().numpy())
    assert len(counts) == HIST_LEN
    assert (counts, zeros, nonfinite) == want
    assert zeros == 3 and nonfinite == 3 and sum(counts) + zeros + nonfinite == g.size


def test_recorded_histograms_are_of_the_probe_batch_gradient(tiny):
    spec = tiny(cell="lstm", epochs=1)
    recs, cks = _records(spec)
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    net.load_state_dict(_state(cks[1]))
    b = task.probe(spec.probe.batch_size)
    task.loss(net(b.x), b.y).backward()
    for ps, (name, p) in zip(recs[1].params, net.named_params()):
        assert ps.name == name
        counts, zeros, nonfinite = _numpy_hist(p.grad.double().numpy())
        # the probe pass and this fused pass differ by float rounding: allow a few bin moves
        assert sum(abs(a - c) for a, c in zip(ps.hist, counts)) <= max(2, p.numel() // 50)
        assert ps.hist_zeros == zeros and ps.hist_nonfinite == nonfinite


# -- spectra, update ratio, weight norms ----------------------------------------------------------

@pytest.mark.parametrize("cell,gates", [("rnn", "h"), ("lstm", "ifgo"), ("gru", "rzn")])
def test_spectra_match_numpy(tiny, cell, gates):
    spec = tiny(cell=cell, num_layers=2, hidden_size=6, epochs=1, init={"recurrent": "kaiming", "input": "default"})
    recs, cks = _records(spec)
    state = _state(cks[1])
    for layer in recs[1].layers:
        w = state[f"rnn.weight_hh_l{layer.layer}"].double().numpy()
        blocks = {g: w[j * 6:(j + 1) * 6] for j, g in enumerate(gates)}
        cand = blocks[{"rnn": "h", "lstm": "g", "gru": "n"}[cell]]
        assert layer.rho == pytest.approx(np.abs(np.linalg.eigvals(cand)).max(), rel=1e-9)
        assert layer.sigma_max == pytest.approx(np.linalg.svd(cand, compute_uv=False)[0], rel=1e-9)
        if cell == "rnn":
            assert layer.gamma_sigma_max == pytest.approx(layer.sigma_max)  # tanh: γ = 1
        else:
            assert layer.gamma_sigma_max is None
            for g, blk in blocks.items():
                assert layer.gate_spectra[g]["rho"] == pytest.approx(np.abs(np.linalg.eigvals(blk)).max(), rel=1e-9)
                assert layer.gate_spectra[g]["sigma_max"] == pytest.approx(np.linalg.norm(blk, 2), rel=1e-9)


def test_update_ratio_and_weight_norm(tiny):
    spec = tiny(cell="gru", epochs=2, optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.5})
    recs, cks = _records(spec)
    before, after = _state(cks[1]), _state(cks[2])
    for ps in recs[2].params:
        key = ps.name if ps.name.startswith("head.") else f"rnn.{ps.name}"
        a, b = before[key].double().numpy(), after[key].double().numpy()
        assert ps.update_ratio == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-6)
        assert ps.weight_norm == pytest.approx(np.linalg.norm(b), rel=1e-6)
    assert all(ps.update_ratio == 0 for ps in recs[0].params)


def test_grad_norm_stats_and_clip_fraction_match_a_replay(tiny):
    """Replay epoch 1 by hand (same batches, same optimizer) and recompute every step statistic."""
    spec = tiny(cell="rnn", epochs=1, steps_per_epoch=4, clip={"mode": "norm", "max_norm": 0.05},
                optimizer={"name": "sgd", "lr": 0.1})
    recs, _ = _records(spec)
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    per_param, totals, losses = [], [], []
    for step in range(4):
        b = task.batch(1, step, spec.batch_size)
        loss = task.loss(net(b.x), b.y)
        opt.zero_grad()
        loss.backward()
        norms = [np.linalg.norm(p.grad.double().numpy()) for _, p in net.named_params()]
        per_param.append(norms)
        totals.append(np.sqrt(np.sum(np.square(norms))))
        losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.05)
        opt.step()
    rec = recs[1]
    per_param = np.array(per_param)
    assert rec.train_loss == pytest.approx(np.mean(losses), rel=1e-6)
    assert rec.grad_norm_mean == pytest.approx(np.mean(totals), rel=1e-5)
    assert rec.grad_norm_max == pytest.approx(np.max(totals), rel=1e-5)
    assert rec.clip_fraction == np.mean(np.array(totals) > 0.05)
    for i, ps in enumerate(rec.params):
        assert ps.grad_norm_mean == pytest.approx(per_param[:, i].mean(), rel=1e-5)
        assert ps.grad_norm_max == pytest.approx(per_param[:, i].max(), rel=1e-5)


# -- activation health ----------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_saturation_and_dead_units_by_direct_computation(tiny, activation):
    spec = tiny(cell="rnn", activation=activation, epochs=1, hidden_size=16,
                init={"recurrent": "normal", "input": "normal", "std": 1.5}, probe={"batch_size": 8})
    recs, cks = _records(spec)
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    net.load_state_dict(_state(cks[1]))
    x = task.probe(8).x.double()
    p = {k: v.detach().double() for k, v in net.layer_params(0).items() if v is not None}
    h = torch.zeros(8, 16, dtype=torch.float64)
    hs, zs = [], []
    for t in range(x.shape[0]):
        z = x[t] @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
        h = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation](z)
        hs.append(h.numpy())
        zs.append(z.numpy())
    H, Z = np.array(hs), np.array(zs)
    layer = recs[1].layers[0]
    if activation == "tanh":
        assert layer.saturated_frac == pytest.approx(np.mean(np.abs(H) > 0.99), abs=1e-3)
        assert layer.saturated_frac > 0 and layer.dead_frac is None
    elif activation == "sigmoid":
        assert layer.saturated_frac == pytest.approx(np.mean((H < 0.01) | (H > 0.99)), abs=1e-3)
    else:
        dead = np.all(Z.reshape(-1, 16) <= 0, axis=0).mean()
        assert layer.dead_frac == pytest.approx(dead) and layer.saturated_frac is None


def test_lstm_gate_means_and_saturation(tiny):
    spec = tiny(cell="lstm", epochs=1, hidden_size=5, init={"forget_bias": 4.0})
    recs, cks = _records(spec)
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    net.load_state_dict(_state(cks[1]))
    cell = torch.nn.LSTMCell(2, 5)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in net.rnn.state_dict().items()})
    x = task.probe(spec.probe.batch_size).x
    h = c = torch.zeros(x.shape[1], 5)
    fs = []
    with torch.no_grad():
        for xt in x:
            gates = xt @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
            fs.append(torch.sigmoid(gates[:, 5:10]).numpy())
            h, c = cell(xt, (h, c))
    F = np.array(fs)
    layer = recs[1].layers[0]
    assert layer.gate_mean["f"] == pytest.approx(F.mean(), abs=1e-5)
    assert layer.gate_saturated["f"] == pytest.approx(np.mean((F < 0.1) | (F > 0.9)), abs=1e-5)
    assert layer.gate_mean["f"] > 0.9   # forget bias 4 → σ(≈4) ≈ 0.98
    assert set(layer.gate_mean) == {"i", "f", "o"}
