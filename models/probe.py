"""The probe pass: re-run the model one step at a time over its own weights and take the total
derivatives ∂L/∂h_t (and ∂L/∂c_t) with ``torch.autograd.grad`` with respect to every step's state."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .cells import RecurrentNet, activate
from .tasks import Batch, Task


@dataclass
class LayerTrace:
    """What one layer did on the probe batch (all detached, time-major)."""

    h: torch.Tensor                                  # (T, B, H) hidden states
    z: torch.Tensor | None = None                    # (T, B, H) pre-activations (vanilla cells)
    gates: dict[str, torch.Tensor] = field(default_factory=dict)  # gate values (gated cells)
    grad_h: torch.Tensor | None = None               # (T,) ‖∂L/∂h_t‖ over batch × hidden
    grad_c: torch.Tensor | None = None               # (T,) ‖∂L/∂c_t‖ (LSTM)
    grad_h_last: torch.Tensor | None = None          # (T,) ‖∂ℓ_T/∂h_t‖ (loss of the final step only)


@dataclass
class ProbeResult:
    loss: float
    layers: list[LayerTrace]
    param_grads: list[torch.Tensor]                  # ∂L/∂θ on the probe batch, in named_params order


def _layer_steps(net: RecurrentNet, k: int, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layer k over the whole sequence, one ATen cell call per step (PyTorch's own cell equations);
    returns the per-step states h_t (and c_t for LSTM) as graph nodes."""
    p = net.layer_params(k)
    w_ih, w_hh, b_ih, b_hh = p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]
    h = x.new_zeros(x.shape[1], net.hidden_size)
    c = torch.zeros_like(h)
    hs, cs = [], []
    if net.cell == "rnn" and net.activation not in ("tanh", "relu"):
        xp = F.linear(x, w_ih, b_ih + b_hh)          # custom activation: our own step, as UnrolledRNN
        for xp_t in xp.unbind(0):
            h = activate(torch.addmm(xp_t, h, w_hh.t()), net.activation, net.slope, p["prelu"])
            hs.append(h)
        return hs, cs
    step = {"lstm": torch.lstm_cell, "gru": torch.gru_cell,
            "rnn": torch.rnn_tanh_cell if net.activation == "tanh" else torch.rnn_relu_cell}[net.cell]
    for x_t in x.unbind(0):
        if net.cell == "lstm":
            h, c = step(x_t, (h, c), w_ih, w_hh, b_ih, b_hh)
            cs.append(c)
        else:
            h = step(x_t, h, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    return hs, cs


@torch.no_grad()
def _trace(net: RecurrentNet, k: int, x: torch.Tensor, h: torch.Tensor) -> LayerTrace:
    """Pre-activations and gate values of layer k, recomputed for all steps at once from its inputs
    x (T, B, in) and states h (T, B, H)."""
    p = net.layer_params(k)
    h_prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
    gi = F.linear(x, p["w_ih"], p["b_ih"])
    gh = F.linear(h_prev, p["w_hh"], p["b_hh"])
    if net.cell == "rnn":
        return LayerTrace(h=h, z=gi + gh)
    if net.cell == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        gates = {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "g": torch.tanh(g), "o": torch.sigmoid(o)}
    else:  # GRU as PyTorch computes it: r multiplies (W_hn h + b_hn)
        xr, xz, xn = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        gates = {"r": r, "z": torch.sigmoid(xz + hz), "n": torch.tanh(xn + r * hn)}
    return LayerTrace(h=h, gates=gates)


def unrolled_forward(net: RecurrentNet, x: torch.Tensor):
    """The network step by step: (head output, per-layer [h_t], per-layer [c_t], per-layer inputs)."""
    x = x.to(net.head.weight.dtype)
    hs_all, cs_all, inputs = [], [], []
    for k in range(net.num_layers):
        inputs.append(x)
        hs, cs = _layer_steps(net, k, x)
        hs_all.append(hs)
        cs_all.append(cs)
        x = torch.stack(hs)
    return net.head(x[-1] if net.output_mode == "last" else x), hs_all, cs_all, inputs


def _norms(grads: list[torch.Tensor | None], like: list[torch.Tensor]) -> torch.Tensor:
    """‖g_t‖: the L2 norm over batch × hidden of each step's gradient (float64), as a (T,) tensor."""
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]
    return torch.stack(grads).flatten(1).double().norm(dim=1)


def run_probe(net: RecurrentNet, task: Task, batch: Batch) -> ProbeResult:
    """The exact per-timestep gradient profile of every layer on ``batch`` (L = the task's mean loss)."""
    params = [p for _, p in net.named_params()]
    every = task.output_mode == "every"
    with torch.enable_grad():
        out, hs_all, cs_all, inputs = unrolled_forward(net, batch.x)
        loss = task.loss(out, batch.y)
        states = [s for hs, cs in zip(hs_all, cs_all) for s in hs + cs]
        grads = torch.autograd.grad(loss, states + params, retain_graph=every, allow_unused=True)
        last = None
        if every:  # the final step's loss alone, for the decay measures (docs/metrics.md)
            flat_h = [h for hs in hs_all for h in hs]
            last = torch.autograd.grad(task.last_step_loss(out, batch.y), flat_h, allow_unused=True)
    layers, i, j = [], 0, 0
    for k, (hs, cs) in enumerate(zip(hs_all, cs_all)):
        trace = _trace(net, k, inputs[k].detach(), torch.stack(hs).detach())
        trace.grad_h = _norms(grads[i:i + len(hs)], hs)
        i += len(hs)
        if cs:
            trace.grad_c = _norms(grads[i:i + len(cs)], cs)
            i += len(cs)
        trace.grad_h_last = _norms(last[j:j + len(hs)], hs) if last is not None else trace.grad_h
        j += len(hs)
        layers.append(trace)
    param_grads = [torch.zeros_like(p) if g is None else g.detach() for g, p in zip(grads[i:], params)]
    return ProbeResult(float(loss.detach()), layers, param_grads)
