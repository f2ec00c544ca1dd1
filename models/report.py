"""Turn probe traces, step statistics and weights into the epoch's ParamStat and LayerStat records."""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.records import LayerStat, ParamStat

from . import diagnostics as D
from .cells import CANDIDATE, GATES, RecurrentNet, gamma
from .probe import ProbeResult


def param_stats(names: list[str], grad_mean: list[float], grad_max: list[float], ratios: list[float],
                weight_norms: list[float], probe_grads: list[torch.Tensor]) -> list[ParamStat]:
    out = []
    for i, name in enumerate(names):
        hist, zeros, nonfinite = D.histogram(probe_grads[i])
        out.append(ParamStat(name, grad_mean[i], grad_max[i], ratios[i], weight_norms[i], hist, zeros, nonfinite))
    return out


def layer_gamma(net: RecurrentNet, k: int) -> float | None:
    if net.cell != "rnn":
        return None
    a = net.layer_params(k)["prelu"]
    return gamma(net.activation, net.slope, float(a.detach()) if a is not None else None)


def layer_stats(net: RecurrentNet, probe: ProbeResult) -> list[LayerStat]:
    H, out = net.hidden_size, []
    for k, trace in enumerate(probe.layers):
        w_hh = net.layer_params(k)["w_hh"]
        blocks = dict(zip(GATES[net.cell], D.block_spectra(w_hh, H)))
        rho, sigma = blocks[CANDIDATE[net.cell]]
        g = layer_gamma(net, k)
        gate_spectra = {} if net.cell == "rnn" else {n: {"rho": r, "sigma_max": s} for n, (r, s) in blocks.items()}
        if net.cell == "rnn":
            sat = D.saturated_fraction(trace.h, net.activation)
            dead = D.dead_fraction(trace.z) if net.activation in ("relu", "leaky_relu", "prelu") else None
            gate_mean, gate_sat = {}, {}
        else:  # saturation of the tanh candidate (LSTM g, GRU n)
            sat = D.saturated_fraction(trace.gates[CANDIDATE[net.cell]], "tanh")
            dead = None
            gate_mean, gate_sat = D.gate_health(trace.gates)
        grad_h = trace.grad_h.double().cpu().numpy()
        last = None if trace.grad_h_last is None else trace.grad_h_last.double().cpu().numpy()
        decay = grad_h if last is None else last  # the decay profile: the final step's loss alone
        out.append(LayerStat(
            layer=k, rho=rho, sigma_max=sigma, gamma_sigma_max=None if g is None else g * sigma,
            gate_spectra=gate_spectra, saturated_frac=sat, dead_frac=dead,
            gate_mean=gate_mean, gate_saturated=gate_sat,
            grad_h=grad_h.tolist(),
            grad_c=None if trace.grad_c is None else trace.grad_c.double().cpu().tolist(),
            log_ratio=D.log_ratio(decay), decay_per_step=D.decay_per_step(decay),
            horizon=D.horizon(decay), steps_in_past=D.steps_in_past(decay),
            grad_h_last=None if last is None else last.tolist(),
        ))
    return out


def global_norm(norms: list[float]) -> float:
    """‖(n_1, …, n_P)‖₂: the global norm from per-parameter norms (NaN/inf propagate)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(norms, dtype=np.float64)))))
