"""Diagnostics that had no independent check, recomputed from the formulas of docs/metrics.md with plain torch
ops on the model's own weights (read from the engine's checkpoints) and the probe batch, in float64, and
compared with what ``models.train`` records: GRU gate means and saturation (r, z), the tanh candidate's
saturation (LSTM g, GRU n), the dead-unit fraction of leaky ReLU and PReLU cells, γ = max(1, |a|) for a PReLU
slope |a| > 1, and clip_fraction with clip.mode 'value'. No rnnlab helper computes an expected value here (the
task object gives the data and the loss only), and every case is one whose answer is not 0, 1 or a default."""

import io

import numpy as np
import pytest
import torch

from models import train
from models.tasks import make_task

# the conventions of docs/metrics.md (Activation health, clip_fraction), written out here, not imported
TANH_SAT = 0.99                  # a tanh candidate value counts as saturated when |v| > this
GATE_LOW, GATE_HIGH = 0.1, 0.9   # a sigmoid gate value counts as saturated when < GATE_LOW or > GATE_HIGH
MARGIN = 1e-5   # no value this close to a threshold: float32 (engine) and float64 (here) then fall on the same side


def _run(spec, resume=None):
    """The engine's records and checkpoints, by epoch."""
    recs, cks = {}, {}
    res = train(spec, resume=resume, on_epoch=lambda r: recs.__setitem__(r.epoch, r),
                on_checkpoint=lambda e, b: cks.__setitem__(e, b))
    assert res.outcome == "succeeded", res
    return recs, cks


def _load(blob):
    return torch.load(io.BytesIO(blob), weights_only=True)


def _weights(blob):
    """The checkpoint's model weights in float64, keyed as in the state dict (rnn.weight_hh_l0, head.bias, …)."""
    return {k: v.double() for k, v in _load(blob)["model"].items()}


def _edited(blob, **values):
    """The same checkpoint with some of the recurrent stack's tensors overwritten: name → a constant, or a
    function of the old tensor giving the new one."""
    state = _load(blob)
    for name, v in values.items():
        t = state["model"][f"rnn.{name}"]
        t.copy_(v(t.clone()) if callable(v) else torch.full_like(t, v))
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _layer(w, k):
    return (w[f"rnn.weight_ih_l{k}"], w[f"rnn.weight_hh_l{k}"], w[f"rnn.bias_ih_l{k}"], w[f"rnn.bias_hh_l{k}"])


def _gated_values(cell, w, x, H, layers):
    """Per layer, every step's gate and candidate values (T, B, H), from the cell equations of docs/metrics.md;
    also the top layer's states (T, B, H)."""
    out = []
    for k in range(layers):
        W_ih, W_hh, b_ih, b_hh = _layer(w, k)
        h = torch.zeros(x.shape[1], H, dtype=torch.float64)
        c = torch.zeros_like(h)
        vals, hs = {}, []
        for xt in x:
            gi, gh = xt @ W_ih.T + b_ih, h @ W_hh.T + b_hh
            if cell == "gru":   # r, z, n stacked in that order; b_hn stays inside r ⊙ (·)
                r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                h = (1 - z) * n + z * h
                step = {"r": r, "z": z, "n": n}
            else:               # i, f, g, o stacked in that order
                a = gi + gh
                i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H])
                g, o = torch.tanh(a[:, 2 * H:3 * H]), torch.sigmoid(a[:, 3 * H:])
                c = f * c + i * g
                h = o * torch.tanh(c)
                step = {"i": i, "f": f, "g": g, "o": o}
            for name, v in step.items():
                vals.setdefault(name, []).append(v)
            hs.append(h)
        out.append({name: torch.stack(v) for name, v in vals.items()})
        x = torch.stack(hs)
    return out, x


def _fraction_outside(v, low, high):
    assert (v - low).abs().min() > MARGIN and (v - high).abs().min() > MARGIN, "a value sits on a threshold"
    return ((v < low) | (v > high)).double().mean().item()


# -- gated cells: gate means and saturation, candidate saturation ---------------------------------

@pytest.mark.parametrize("cell,gates,candidate", [("gru", "rz", "n"), ("lstm", "ifo", "g")])
def test_gate_health_and_candidate_saturation_of_gated_cells(tiny, cell, gates, candidate):
    H, B, layers = 6, 5, 2
    spec = tiny(cell=cell, num_layers=layers, hidden_size=H, epochs=1, probe={"batch_size": B}, seed=3,
                init={"recurrent": "normal", "input": "normal", "std": 1.5}, optimizer={"name": "sgd", "lr": 0.05})
    recs, cks = _run(spec)
    x = make_task(spec.task, spec.seed).probe(B).x.double()
    w = _weights(cks[1])
    per_layer, top = _gated_values(cell, w, x, H, layers)

    # the equations above are PyTorch's own: the top layer's states match the fused module's
    ref = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](2, H, layers).double()
    ref.load_state_dict({k.removeprefix("rnn."): v for k, v in w.items() if k.startswith("rnn.")})
    with torch.no_grad():
        assert torch.allclose(ref(x)[0], top, atol=1e-12)

    assert len(recs[1].layers) == layers
    for layer, vals in zip(recs[1].layers, per_layer):
        assert set(layer.gate_mean) == set(layer.gate_saturated) == set(gates)   # the candidate is no gate
        for name in gates:
            v = vals[name]
            sat = _fraction_outside(v, GATE_LOW, GATE_HIGH)
            assert 0 < sat < 1, (layer.layer, name, sat)
            assert layer.gate_mean[name] == pytest.approx(v.mean().item(), abs=1e-6), (layer.layer, name)
            assert layer.gate_saturated[name] == pytest.approx(sat, abs=1e-12), (layer.layer, name)
        g = vals[candidate]
        sat = _fraction_outside(g, -TANH_SAT, TANH_SAT)
        assert 0 < sat < 1, (layer.layer, sat)
        assert layer.saturated_frac == pytest.approx(sat, abs=1e-12), layer.layer
        assert layer.dead_frac is None


# -- leaky ReLU and PReLU: dead units -------------------------------------------------------------

def _vanilla_preactivations(w, x, H, layers, slopes):
    """Per layer, every step's pre-activation z_t = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh (T, B, H), with
    h_t = z_t where z_t > 0 and slope·z_t elsewhere (leaky ReLU, or PReLU with the layer's slope a)."""
    zs_all = []
    for k in range(layers):
        W_ih, W_hh, b_ih, b_hh = _layer(w, k)
        h = torch.zeros(x.shape[1], H, dtype=torch.float64)
        zs, hs = [], []
        for xt in x:
            z = xt @ W_ih.T + b_ih + h @ W_hh.T + b_hh
            h = torch.where(z > 0, z, slopes[k] * z)
            zs.append(z)
            hs.append(h)
        zs_all.append(torch.stack(zs))
        x = torch.stack(hs)
    return zs_all


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu"])
def test_dead_fraction_of_leaky_relu_and_prelu(tiny, activation):
    """A unit is dead when its pre-activation is ≤ 0 at every step for every probe example. Half the units
    of layer 0 get a negative bias (from an edited checkpoint), so some die and some do not; the slope (0.2,
    or a PReLU slope of −0.5, which turns negative pre-activations into positive states) feeds the negative
    side back through W_hh."""
    H, B, layers = 16, 8, 2
    over = {"leaky_slope": 0.2} if activation == "leaky_relu" else {}
    spec = tiny(cell="rnn", activation=activation, num_layers=layers, hidden_size=H, epochs=1, seed=1,
                probe={"batch_size": B}, init={"recurrent": "normal", "input": "normal", "std": 0.25},
                optimizer={"name": "sgd", "lr": 0.01}, **over)
    _, cks = _run(spec)
    edits = {"bias_ih_l0": lambda b: torch.cat([b[:H // 2] - 0.5, b[H // 2:]])}
    if activation == "prelu":
        edits["prelu_l0"] = -0.5
    recs, cks = _run(spec, resume=_edited(cks[0], **edits))
    w = _weights(cks[1])
    slopes = [0.2] * layers if activation == "leaky_relu" else [w[f"rnn.prelu_l{k}"].item() for k in range(layers)]
    zs = _vanilla_preactivations(w, make_task(spec.task, spec.seed).probe(B).x.double(), H, layers, slopes)
    assert len(recs[1].layers) == layers
    deads = []
    for layer, z in zip(recs[1].layers, zs):
        assert z.abs().min() > MARGIN, "a pre-activation sits on 0"
        deads.append((z <= 0).reshape(-1, H).all(dim=0).double().mean().item())
        assert layer.dead_frac == pytest.approx(deads[-1], abs=1e-12), layer.layer
        assert layer.saturated_frac is None
    assert 0 < deads[0] < 1, deads


# -- PReLU: γ = max(1, |a|) -----------------------------------------------------------------------

def test_gamma_of_prelu_is_the_largest_of_one_and_the_slope_magnitude(tiny):
    """Layer 0's slope is set to −1.5 (γ = |a| = 1.5, where max(1, a) would say 1), layer 1's to −0.6
    (γ = 1, where |a| alone would say 0.6); γ·σ_max is checked against the end-of-epoch slope and W_hh."""
    H, layers = 6, 2
    spec = tiny(cell="rnn", activation="prelu", num_layers=layers, hidden_size=H, epochs=1, seed=2,
                optimizer={"name": "sgd", "lr": 0.01})
    _, cks = _run(spec)
    recs, cks = _run(spec, resume=_edited(cks[0], prelu_l0=-1.5, prelu_l1=-0.6))
    w = _weights(cks[1])
    want_gamma = []
    for layer in recs[1].layers:
        a = w[f"rnn.prelu_l{layer.layer}"].item()
        sigma = np.linalg.svd(w[f"rnn.weight_hh_l{layer.layer}"].numpy(), compute_uv=False)[0]
        gamma = max(1.0, abs(a))
        want_gamma.append(gamma)
        assert layer.sigma_max == pytest.approx(sigma, rel=1e-9)
        assert layer.gamma_sigma_max == pytest.approx(gamma * sigma, rel=1e-9), (layer.layer, a)
    assert want_gamma[0] == pytest.approx(1.5, abs=0.05) and want_gamma[1] == 1.0


# -- clip_fraction with clip.mode 'value' ---------------------------------------------------------

class _Net(torch.nn.Module):
    """The run's network, built here from torch modules: a GRU and a linear head on the last step."""

    def __init__(self, H):
        super().__init__()
        self.rnn, self.head = torch.nn.GRU(2, H), torch.nn.Linear(H, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


def test_clip_fraction_in_value_mode_matches_a_replay(tiny):
    """Replay the run from its initial weights with plain torch: a step counts as clipped when some
    |∂L/∂θ_i| > clip_value, and each gradient element is then clamped to ±clip_value before the SGD update.
    The replay ends on the engine's own weights (so the clamp was applied as counted), and the counted
    fraction of every epoch is strictly between 0 and 1."""
    H, cv, lr, epochs, steps = 6, 0.5, 0.1, 2, 6
    spec = tiny(cell="gru", hidden_size=H, epochs=epochs, steps_per_epoch=steps, batch_size=8, seed=5,
                clip={"mode": "value", "clip_value": cv}, optimizer={"name": "sgd", "lr": lr})
    recs, cks = _run(spec)
    task = make_task(spec.task, spec.seed)
    net = _Net(H)
    net.load_state_dict(_load(cks[0])["model"])
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    fractions = []
    for epoch in range(1, epochs + 1):
        largest = []
        for step in range(steps):
            b = task.batch(epoch, step, spec.batch_size)
            opt.zero_grad()
            task.loss(net(b.x), b.y).backward()
            largest.append(max(p.grad.abs().max().item() for p in net.parameters()))
            with torch.no_grad():
                for p in net.parameters():
                    p.grad.clamp_(-cv, cv)
            opt.step()
        largest = np.array(largest)
        assert np.abs(largest - cv).min() > 1e-6 * cv, "a step's largest gradient sits on clip_value"
        fractions.append(float(np.mean(largest > cv)))
        assert recs[epoch].clip_fraction == pytest.approx(fractions[-1], abs=1e-12), epoch
        end = _load(cks[epoch])["model"]
        for name, p in net.state_dict().items():
            assert torch.allclose(p, end[name], rtol=1e-5, atol=1e-7), (epoch, name)
    assert all(0 < f < 1 for f in fractions), fractions
