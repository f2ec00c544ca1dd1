"""‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) from the probe pass vs two independent computations: a hand-built graph
of torch.nn.*Cell modules with retain_grad, and central finite differences in float64."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from models.build import build_model
from models.probe import run_probe, unrolled_forward
from models.tasks import make_task

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def _setup(tiny, cell, layers=1, task=None, activation=None):
    spec = tiny(cell=cell, activation=activation, num_layers=layers, hidden_size=4,
                task=task or {"name": "adding", "seq_len": 7}, probe={"batch_size": 3})
    t = make_task(spec.task, spec.seed)
    net = build_model(spec, t).double()
    b = t.probe(3)
    return t, net, type(b)(b.x.double(), b.y.double() if b.y.is_floating_point() else b.y)


def _cells(net):
    """torch.nn.*Cell copies of every layer's weights (an implementation independent of models/)."""
    out = []
    for k in range(net.num_layers):
        p = net.layer_params(k)
        kw = {"nonlinearity": net.activation} if net.cell == "rnn" else {}
        c = CELLS[net.cell](p["w_ih"].shape[1], net.hidden_size, **kw).double()
        with torch.no_grad():
            c.weight_ih.copy_(p["w_ih"]); c.weight_hh.copy_(p["w_hh"])
            c.bias_ih.copy_(p["b_ih"]); c.bias_hh.copy_(p["b_hh"])
        out.append(c)
    return out


def _hand_forward(net, cells, x, delta=None):
    """Forward through nn.*Cell modules; ``delta[(k, t)]`` is added to h_t of layer k."""
    hs_all, cs_all = [], []
    inp = list(x)
    for k, cell in enumerate(cells):
        h = torch.zeros(x.shape[1], net.hidden_size, dtype=x.dtype)
        c = torch.zeros_like(h)
        hs, cs = [], []
        for t, xt in enumerate(inp):
            if net.cell == "lstm":
                h, c = cell(xt, (h, c))
                if c.requires_grad:
                    c.retain_grad()
                cs.append(c)
            else:
                h = cell(xt, h)
            if delta is not None and (k, t) in delta:
                h = h + delta[(k, t)]
            if h.requires_grad:
                h.retain_grad()
            hs.append(h)
        hs_all.append(hs); cs_all.append(cs)
        inp = hs
    top = torch.stack(hs_all[-1])
    return net.head(top[-1] if net.output_mode == "last" else top), hs_all, cs_all


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 3)])
def test_profile_matches_hand_built_cells(tiny, cell, layers):
    task, net, b = _setup(tiny, cell, layers)
    res = run_probe(net, task, b)
    out, hs, cs = _hand_forward(net, _cells(net), b.x)
    task.loss(out, b.y).backward()
    for k, trace in enumerate(res.layers):
        want = np.array([h.grad.norm().item() for h in hs[k]])
        np.testing.assert_allclose(trace.grad_h.numpy(), want, rtol=1e-9, atol=1e-15)
        if cell == "lstm":
            want_c = np.array([c.grad.norm().item() for c in cs[k]])
            np.testing.assert_allclose(trace.grad_c.numpy(), want_c, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("cell,layers,activation", [
    ("rnn", 1, "tanh"), ("rnn", 2, "sigmoid"), ("rnn", 1, "leaky_relu"), ("rnn", 1, "prelu"),
    ("lstm", 2, None), ("gru", 2, None)])
def test_profile_matches_finite_differences(tiny, cell, layers, activation):
    task, net, b = _setup(tiny, cell, layers, activation=activation)
    res = run_probe(net, task, b)
    eps = 1e-6
    B, H, T = b.x.shape[1], net.hidden_size, b.x.shape[0]
    for k in range(layers):
        fd = np.zeros(T)
        for t in range(T):
            g = np.zeros((B, H))
            for i in range(B):
                for j in range(H):
                    d = torch.zeros(B, H, dtype=torch.float64)
                    d[i, j] = eps
                    up = _hand_equations_loss(net, task, b, {(k, t): d})
                    down = _hand_equations_loss(net, task, b, {(k, t): -d})
                    g[i, j] = (up - down) / (2 * eps)
            fd[t] = np.linalg.norm(g)
        np.testing.assert_allclose(res.layers[k].grad_h.numpy(), fd, rtol=1e-5, atol=1e-10)


def _hand_equations_loss(net, task, b, delta):
    """The loss with ``delta[(k, t)]`` added to h_t of layer k, every cell equation written out here."""
    sig = torch.sigmoid
    acts = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": sig,
            "leaky_relu": lambda z: torch.where(z > 0, z, net.slope * z),
            "prelu": lambda z: torch.where(z > 0, z, 0.25 * z)}   # PReLU's initial slope
    H = net.hidden_size
    inp = b.x
    with torch.no_grad():
        for k in range(net.num_layers):
            p = {n: v.double() for n, v in net.layer_params(k).items() if v is not None}
            h = torch.zeros(b.x.shape[1], H, dtype=torch.float64)
            c = torch.zeros_like(h)
            hs = []
            for t in range(inp.shape[0]):
                gi = inp[t] @ p["w_ih"].T + p["b_ih"]
                gh = h @ p["w_hh"].T + p["b_hh"]
                if net.cell == "rnn":
                    h = acts[net.activation](gi + gh)
                elif net.cell == "lstm":
                    a = gi + gh
                    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
                    c = f * c + i * g
                    h = o * torch.tanh(c)
                else:
                    r = sig(gi[:, :H] + gh[:, :H])
                    z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
                    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                    h = (1 - z) * n + z * h
                if (k, t) in delta:
                    h = h + delta[(k, t)]
                hs.append(h)
            inp = torch.stack(hs)
        out = net.head(inp[-1] if net.output_mode == "last" else inp)
        return float(task.loss(out, b.y))


@pytest.mark.parametrize("cell,activation", [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"),
                                             ("rnn", "prelu"), ("lstm", None), ("gru", None)])
def test_probe_forward_equals_training_forward(tiny, cell, activation):
    task, net, b = _setup(tiny, cell, 2, activation=activation)
    out = unrolled_forward(net, b.x)[0]
    torch.testing.assert_close(out, net(b.x), rtol=1e-10, atol=1e-12)


def test_every_step_task_profile_and_last_step_profile(tiny):
    task, net, b = _setup(tiny, "gru", 1, task={"name": "copy", "seq_len": 4, "n_copy": 2, "n_symbols": 3})
    res = run_probe(net, task, b)
    out, hs, _ = _hand_forward(net, _cells(net), b.x)
    task.loss(out, b.y).backward(retain_graph=True)
    want = np.array([h.grad.norm().item() for h in hs[0]])
    np.testing.assert_allclose(res.layers[0].grad_h.numpy(), want, rtol=1e-9)
    for h in hs[0]:
        h.grad = None
    task.loss(out[-1:], b.y[-1:]).backward()
    want_last = np.array([h.grad.norm().item() for h in hs[0]])
    np.testing.assert_allclose(res.layers[0].grad_h_last.numpy(), want_last, rtol=1e-9)


def test_every_step_tasks_derive_decay_measures_from_the_last_step_loss(tiny):
    from models.diagnostics import horizon, log_ratio
    from models.report import layer_stats

    task, net, b = _setup(tiny, "lstm", 1, task={"name": "forecast", "seq_len": 9})
    res = run_probe(net, task, b)
    layer = layer_stats(net, res)[0]
    last = res.layers[0].grad_h_last.numpy()
    assert layer.log_ratio == log_ratio(last) and layer.horizon == horizon(last)
    assert layer.grad_h == res.layers[0].grad_h.tolist()
    assert not np.allclose(last, res.layers[0].grad_h.numpy())   # the two profiles really differ
