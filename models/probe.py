"""The probe pass: re-run the model one step at a time over its own weights, with the cell equations
written out, and take the total derivatives ∂L/∂h_t (and ∂L/∂c_t) with ``torch.autograd.grad``."""

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
    grad_h_last: torch.Tensor | None = None          # (T,) ‖∂ℓ_T/∂h_t‖, final step's loss (every-step tasks)


@dataclass
class ProbeResult:
    loss: float
    layers: list[LayerTrace]
    param_grads: list[torch.Tensor]                  # ∂L/∂θ on the probe batch, in named_params order


def _layer_steps(net: RecurrentNet, k: int, x: torch.Tensor, keep: dict[str, list] | None = None
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layer k over the whole sequence, its cell equations written out over the module's own weights
    (linear maps, then the gate equations), so the autograd graph is the same on every device; returns
    the per-step states h_t (and c_t for LSTM) as graph nodes. With ``keep``, the per-step gate values
    (gated cells) or pre-activations ``z`` (vanilla cells) are appended to it, detached: the very
    values of this pass, at no extra cost.

    ATen's fused cells are avoided on purpose: on CUDA ``torch.lstm_cell`` is one node
    (``_thnn_fused_lstm_cell``) that outputs h_t and c_t together, so ∂L/∂c_t taken at its output
    would miss the path c_t → h_t (and be exactly 0 at t = T)."""
    p = net.layer_params(k)
    w_hh_t = p["w_hh"].t()
    h = x.new_zeros(x.shape[1], net.hidden_size)
    c = torch.zeros_like(h)
    hs, cs = [], []
    if net.cell == "gru":  # PyTorch's GRU: r multiplies (W_hn h + b_hn), so b_hh stays in the loop
        for gi_t in F.linear(x, p["w_ih"], p["b_ih"]).unbind(0):
            h = _gru_step(gi_t, torch.addmm(p["b_hh"], h, w_hh_t), h, keep)
            hs.append(h)
        return hs, cs
    # the input projection of every step in one matmul; only h @ W_hhᵀ stays in the loop
    for xp_t in F.linear(x, p["w_ih"], p["b_ih"] + p["b_hh"]).unbind(0):
        a = torch.addmm(xp_t, h, w_hh_t)
        if net.cell == "lstm":
            h, c = _lstm_step(a, c, keep)
            cs.append(c)
        else:
            if keep is not None:
                keep.setdefault("z", []).append(a.detach())
            h = activate(a, net.activation, net.slope, p["prelu"])
        hs.append(h)
    return hs, cs


def _keep(keep: dict[str, list] | None, **values: torch.Tensor) -> None:
    if keep is not None:
        for name, v in values.items():
            keep.setdefault(name, []).append(v.detach())


def _lstm_step(a: torch.Tensor, c: torch.Tensor, keep: dict[str, list] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM gates (i, f, g, o stacked as in weight_hh) from pre-activations a: c_t = f⊙c + i⊙g,
    h_t = o⊙tanh(c_t)."""
    i, f, g, o = a.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    _keep(keep, i=i, f=f, g=g, o=o)
    c = f * c + i * g
    return o * torch.tanh(c), c


def _gru_step(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, keep: dict[str, list] | None = None
              ) -> torch.Tensor:
    """GRU as PyTorch computes it: r, z from gi + gh, n = tanh(gi_n + r⊙gh_n), h_t = (1−z)⊙n + z⊙h."""
    xr, xz, xn = gi.chunk(3, dim=1)
    hr, hz, hn = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    _keep(keep, r=r, z=z, n=n)
    return n + z * (h - n)


def _trace(net: RecurrentNet, h: torch.Tensor, keep: dict[str, list]) -> LayerTrace:
    """The layer's trace from its states h (T, B, H) and the per-step values its pass kept."""
    kept = {name: torch.stack(vs) for name, vs in keep.items()}
    if net.cell == "rnn":
        return LayerTrace(h=h, z=kept["z"])
    return LayerTrace(h=h, gates=kept)


def unrolled_forward(net: RecurrentNet, x: torch.Tensor, keep: list[dict[str, list]] | None = None):
    """The network step by step: (head output, per-layer [h_t], per-layer [c_t], per-layer inputs).
    With ``keep`` (a list), one dict of the per-step gate values / pre-activations per layer is appended."""
    x = x.to(net.head.weight.dtype)
    hs_all, cs_all, inputs = [], [], []
    for k in range(net.num_layers):
        inputs.append(x)
        kept: dict[str, list] | None = None
        if keep is not None:
            kept = {}
            keep.append(kept)
        hs, cs = _layer_steps(net, k, x, kept)
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
        kept: list[dict[str, list]] = []
        out, hs_all, cs_all, inputs = unrolled_forward(net, batch.x, kept)
        loss = task.loss(out, batch.y)
        states = [s for hs, cs in zip(hs_all, cs_all) for s in hs + cs]
        grads = torch.autograd.grad(loss, states + params, retain_graph=every, allow_unused=True)
        last = None
        if every:  # the final step's loss alone, for the decay measures (docs/metrics.md)
            flat_h = [h for hs in hs_all for h in hs]
            last = torch.autograd.grad(task.last_step_loss(out, batch.y), flat_h, allow_unused=True)
    layers, i, j = [], 0, 0
    for k, (hs, cs) in enumerate(zip(hs_all, cs_all)):
        trace = _trace(net, torch.stack(hs).detach(), kept[k])
        trace.grad_h = _norms(grads[i:i + len(hs)], hs)
        i += len(hs)
        if cs:
            trace.grad_c = _norms(grads[i:i + len(cs)], cs)
            i += len(cs)
        trace.grad_h_last = _norms(last[j:j + len(hs)], hs) if last is not None else None
        j += len(hs)
        layers.append(trace)
    param_grads = [torch.zeros_like(p) if g is None else g.detach() for g, p in zip(grads[i:], params)]
    return ProbeResult(float(loss.detach()), layers, param_grads)
