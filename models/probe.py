"""The probe pass: an unrolled forward over the model's own weights with a zero tensor added to every
h_t (and c_t), so that autograd gives the total derivatives ∂L/∂h_t through the recurrence."""

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


def _zero_probe(like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like, requires_grad=True)


def unrolled_forward(net: RecurrentNet, x: torch.Tensor, with_probes: bool = True):
    """Run ``net`` step by step with PyTorch's cell equations. Returns the head output, the per-layer
    traces and the probe tensors [(h probes, c probes)] per layer."""
    T = x.shape[0]
    H = net.hidden_size
    x = x.to(net.head.weight.dtype)
    traces, probes = [], []
    for k in range(net.num_layers):
        p = net.layer_params(k)
        xp = F.linear(x, p["w_ih"], p["b_ih"])          # (T, B, G·H)
        h = x.new_zeros(x.shape[1], H)
        c = torch.zeros_like(h)
        hs, zs, cs = [], [], []
        gate_vals: dict[str, list[torch.Tensor]] = {}
        ph, pc = [], []
        for t in range(T):
            gh = F.linear(h, p["w_hh"], p["b_hh"])
            if net.cell == "rnn":
                z = xp[t] + gh
                h = activate(z, net.activation, net.slope, p["prelu"])
                zs.append(z.detach())
            elif net.cell == "lstm":
                i, f, g, o = (xp[t] + gh).chunk(4, dim=1)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                if with_probes:
                    pc.append(_zero_probe(c))
                    c = c + pc[-1]
                h = o * torch.tanh(c)
                for name, v in (("i", i), ("f", f), ("g", g), ("o", o)):
                    gate_vals.setdefault(name, []).append(v.detach())
            else:  # GRU as PyTorch computes it: r multiplies (W_hn h + b_hn)
                xr, xz, xn = xp[t].chunk(3, dim=1)
                hr, hz, hn = gh.chunk(3, dim=1)
                r, zg = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                h = (1 - zg) * n + zg * h
                for name, v in (("r", r), ("z", zg), ("n", n)):
                    gate_vals.setdefault(name, []).append(v.detach())
            if with_probes:
                ph.append(_zero_probe(h))
                h = h + ph[-1]
            hs.append(h)
        x = torch.stack(hs)
        traces.append(LayerTrace(
            h=x.detach(), z=torch.stack(zs) if zs else None,
            gates={n: torch.stack(v) for n, v in gate_vals.items()},
        ))
        probes.append((ph, pc))
    out = net.head(x[-1] if net.output_mode == "last" else x)
    return out, traces, probes


def _norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """‖g_t‖: the L2 norm over batch × hidden of each step's gradient, as a (T,) tensor."""
    return torch.stack(grads).flatten(1).double().norm(dim=1)


def run_probe(net: RecurrentNet, task: Task, batch: Batch) -> ProbeResult:
    """The exact per-timestep gradient profile of every layer on ``batch`` (L = the task's mean loss)."""
    params = [p for _, p in net.named_params()]
    with torch.enable_grad():
        out, traces, probes = unrolled_forward(net, batch.x)
        y = batch.y
        loss = task.loss(out, y)
        flat = [t for ph, pc in probes for t in ph + pc]
        every = task.output_mode == "every"
        grads = torch.autograd.grad(loss, flat + params, retain_graph=every, allow_unused=True)
        last = None
        if every:  # the final step's loss alone, for the decay measures (docs/metrics.md)
            hs = [t for ph, _ in probes for t in ph]
            last = torch.autograd.grad(task.last_step_loss(out, y), hs, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, flat + params)]
    i = j = 0
    for trace, (ph, pc) in zip(traces, probes):
        trace.grad_h = _norms(grads[i:i + len(ph)]).detach()
        i += len(ph)
        if pc:
            trace.grad_c = _norms(grads[i:i + len(pc)]).detach()
            i += len(pc)
        if last is not None:
            lg = [torch.zeros_like(t) if g is None else g for g, t in zip(last[j:j + len(ph)], ph)]
            trace.grad_h_last = _norms(lg).detach()
            j += len(ph)
        else:
            trace.grad_h_last = trace.grad_h
    return ProbeResult(float(loss.detach()), traces, [g.detach() for g in grads[i:]])
