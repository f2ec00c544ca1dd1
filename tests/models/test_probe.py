"""‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) from the probe pass vs two independent computations: a hand-built graph
of torch.nn.*Cell modules with retain_grad, and central finite differences in float64. Every profile
test also runs on CUDA where a GPU is present; a fused-style LSTM node (h_t and c_t out of one node,
as ``_thnn_fused_lstm_cell`` on CUDA) shows why the probe writes the cell equations out."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from models.build import build_model
from models.probe import run_probe, unrolled_forward
from models.tasks import make_task

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _setup(tiny, cell, layers=1, task=None, activation=None, device="cpu"):
    spec = tiny(cell=cell, activation=activation, num_layers=layers, hidden_size=4,
                task=task or {"name": "adding", "seq_len": 7}, probe={"batch_size": 3})
    t = make_task(spec.task, spec.seed)
    net = build_model(spec, t).double().to(device)
    b = t.probe(3)
    return t, net, type(b)(b.x.double(), b.y.double() if b.y.is_floating_point() else b.y).to(device)


def _cpu(net, b):
    """CPU copies of the network and batch, for the float64 reference computations."""
    return copy.deepcopy(net).cpu(), b.to("cpu")


def _cells(net):
    """torch.nn.*Cell copies of every layer's weights (an implementation independent of models/)."""
    out = []
    for k in range(net.num_layers):
        p = net.layer_params(k)
        kw = {"nonlinearity": net.activation} if net.cell == "rnn" else {}
        c = CELLS[net.cell](p["w_ih"].shape[1], net.hidden_size, **kw).double()
        with torch.no_grad():
            c.weight_ih.copy_(p["w_ih"])
            c.weight_hh.copy_(p["w_hh"])
            c.bias_ih.copy_(p["b_ih"])
            c.bias_hh.copy_(p["b_hh"])
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
        hs_all.append(hs)
        cs_all.append(cs)
        inp = hs
    top = torch.stack(hs_all[-1])
    return net.head(top[-1] if net.output_mode == "last" else top), hs_all, cs_all


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 3)])
def test_profile_matches_hand_built_cells(tiny, cell, layers, device):
    task, net, b = _setup(tiny, cell, layers, device=device)
    res = run_probe(net, task, b)
    net, b = _cpu(net, b)   # CPU nn.LSTMCell is decomposed, so c.grad there is the total derivative
    out, hs, cs = _hand_forward(net, _cells(net), b.x)
    task.loss(out, b.y).backward()
    for k, trace in enumerate(res.layers):
        want = np.array([h.grad.norm().item() for h in hs[k]])
        np.testing.assert_allclose(trace.grad_h.cpu().numpy(), want, rtol=1e-9, atol=1e-15)
        if cell == "lstm":
            want_c = np.array([c.grad.norm().item() for c in cs[k]])
            np.testing.assert_allclose(trace.grad_c.cpu().numpy(), want_c, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell,layers,activation", [
    ("rnn", 1, "tanh"), ("rnn", 2, "sigmoid"), ("rnn", 1, "leaky_relu"), ("rnn", 1, "prelu"),
    ("lstm", 2, None), ("gru", 2, None)])
def test_profile_matches_finite_differences(tiny, cell, layers, activation, device):
    task, net, b = _setup(tiny, cell, layers, activation=activation, device=device)
    res = run_probe(net, task, b)
    net, b = _cpu(net, b)
    for k in range(layers):
        np.testing.assert_allclose(res.layers[k].grad_h.cpu().numpy(), _fd_profile(net, task, b, k, "h"),
                                   rtol=1e-5, atol=1e-10)
        if cell == "lstm":   # the total derivative: through c_{t+1} and through h_t = o_t ⊙ tanh(c_t)
            np.testing.assert_allclose(res.layers[k].grad_c.cpu().numpy(), _fd_profile(net, task, b, k, "c"),
                                       rtol=1e-5, atol=1e-10)


def _fd_profile(net, task, b, k, kind, eps=1e-6):
    """‖∂L/∂h_t‖ (kind 'h') or ‖∂L/∂c_t‖ ('c') of layer k for every t, by central differences in float64."""
    B, H, T = b.x.shape[1], net.hidden_size, b.x.shape[0]
    fd = np.zeros(T)
    for t in range(T):
        g = np.zeros((B, H))
        for i in range(B):
            for j in range(H):
                d = torch.zeros(B, H, dtype=torch.float64)
                d[i, j] = eps
                up = _hand_equations_loss(net, task, b, {(k, t, kind): d})
                down = _hand_equations_loss(net, task, b, {(k, t, kind): -d})
                g[i, j] = (up - down) / (2 * eps)
        fd[t] = np.linalg.norm(g)
    return fd


def _hand_equations_loss(net, task, b, delta):
    """The loss with ``delta[(k, t, 'h')]`` added to h_t of layer k (``(k, t, 'c')``: to the LSTM's c_t
    before h_t is computed from it), every cell equation written out here."""
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
                    c = f * c + i * g + delta.get((k, t, "c"), 0.0)
                    h = o * torch.tanh(c)
                else:
                    r = sig(gi[:, :H] + gh[:, :H])
                    z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
                    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                    h = (1 - z) * n + z * h
                if (k, t, "h") in delta:
                    h = h + delta[(k, t, "h")]
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


@pytest.mark.parametrize("device", DEVICES)
def test_every_step_task_profile_and_last_step_profile(tiny, device):
    task, net, b = _setup(tiny, "gru", 1, task={"name": "copy", "seq_len": 4, "n_copy": 2, "n_symbols": 3},
                          device=device)
    res = run_probe(net, task, b)
    net, b = _cpu(net, b)
    out, hs, _ = _hand_forward(net, _cells(net), b.x)
    task.loss(out, b.y).backward(retain_graph=True)
    want = np.array([h.grad.norm().item() for h in hs[0]])
    np.testing.assert_allclose(res.layers[0].grad_h.cpu().numpy(), want, rtol=1e-9)
    for h in hs[0]:
        h.grad = None
    task.loss(out[-1:], b.y[-1:]).backward()
    want_last = np.array([h.grad.norm().item() for h in hs[0]])
    np.testing.assert_allclose(res.layers[0].grad_h_last.cpu().numpy(), want_last, rtol=1e-9)


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


# -- a fused-style LSTM node: h_t and c_t are two outputs of one autograd node ----------------------

def _lstm_equations(x, h, c, w_ih, w_hh, b_ih, b_hh):
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = a.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class FusedStyleLSTMCell(torch.autograd.Function):
    """One node that outputs (h_t, c_t) together, like ``_thnn_fused_lstm_cell`` on CUDA: the path
    c_t → h_t lies inside the node, so a gradient taken at its c_t output misses it."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        ctx.save_for_backward(x, h, c, w_ih, w_hh, b_ih, b_hh)
        return _lstm_equations(x, h, c, w_ih, w_hh, b_ih, b_hh)

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        inputs = [t.detach().requires_grad_() for t in ctx.saved_tensors]
        with torch.enable_grad():
            return torch.autograd.grad(_lstm_equations(*inputs), inputs, (grad_h, grad_c))


def _fused_lstm_cell(x, hc, w_ih, w_hh, b_ih, b_hh):
    """Drop-in for ``torch.lstm_cell`` that builds the fused-style graph."""
    return FusedStyleLSTMCell.apply(x, hc[0], hc[1], w_ih, w_hh, b_ih, b_hh)


def test_gradient_at_a_fused_nodes_c_output_misses_the_path_through_h(tiny):
    task, net, b = _setup(tiny, "lstm", 1)
    p = net.layer_params(0)
    h = c = torch.zeros(b.x.shape[1], net.hidden_size, dtype=torch.float64)
    hs, cs = [], []
    for x_t in b.x.unbind(0):
        h, c = _fused_lstm_cell(x_t, (h, c), p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
        hs.append(h)
        cs.append(c)
    out = net.head(hs[-1])
    grads = torch.autograd.grad(task.loss(out, b.y), hs + cs, allow_unused=True)   # the naive reading
    norms = np.array([0.0 if g is None else g.norm().item() for g in grads])
    naive_h, naive_c = norms[:len(hs)], norms[len(hs):]
    want_h, want_c = _fd_profile(net, task, b, 0, "h"), _fd_profile(net, task, b, 0, "c")
    np.testing.assert_allclose(naive_h, want_h, rtol=1e-5, atol=1e-10)   # h_t is the node's whole output
    assert naive_c[-1] == 0 and want_c[-1] > 0                           # c_T feeds only h_T, inside the node
    assert not np.allclose(naive_c, want_c, rtol=0.1)
    res = run_probe(net, task, b)
    np.testing.assert_allclose(res.layers[0].grad_c.numpy(), want_c, rtol=1e-5, atol=1e-10)


def test_probe_does_not_depend_on_the_devices_lstm_kernel(tiny, monkeypatch):
    """With torch.lstm_cell replaced by the fused-style node (what CUDA runs), ∂L/∂c_t is unchanged."""
    task, net, b = _setup(tiny, "lstm", 2)
    monkeypatch.setattr(torch, "lstm_cell", _fused_lstm_cell)
    res = run_probe(net, task, b)
    for k in range(2):
        np.testing.assert_allclose(res.layers[k].grad_c.numpy(), _fd_profile(net, task, b, k, "c"),
                                   rtol=1e-5, atol=1e-10)
