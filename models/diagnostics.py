"""Diagnostics: per-step gradient statistics, profile summaries, spectra, activation health, histograms."""

from __future__ import annotations

import math

import numpy as np
import torch

from rnnlab.records import HIST_EDGES, HIST_LEN

from . import foreach

HORIZON_FRACTION = 1e-3      # horizon: steps back from T while ‖g_t‖ ≥ this · ‖g_T‖
STEPS_IN_PAST_EPS = 1e-20    # P13: step t counts when ‖g_t‖² ≥ this
TANH_SAT, SIGMOID_SAT = 0.99, 0.01
GATE_LOW, GATE_HIGH = 0.1, 0.9


class StepStats:
    """Accumulates per-step gradient statistics on the device (no host sync per parameter)."""

    def __init__(self, n_params: int, device: torch.device):
        z = lambda: torch.zeros(n_params, dtype=torch.float64, device=device)  # noqa: E731
        self.param_sum, self.param_max = z(), z()
        self.scalars = torch.zeros(5, dtype=torch.float64, device=device)  # loss, norm, norm_max, clipped, nonfinite
        self.steps = 0

    def add(self, loss: torch.Tensor, param_norms: torch.Tensor, total: torch.Tensor, clipped: torch.Tensor) -> None:
        pn = param_norms.double()
        self.param_sum += pn
        torch.maximum(self.param_max, pn, out=self.param_max)  # torch.maximum propagates NaN
        t, lv = total.double(), loss.double()
        s = self.scalars
        s[0] += lv
        s[1] += t
        s[2] = torch.maximum(s[2], t)
        s[3] += clipped.double()
        s[4] += (~(torch.isfinite(t) & torch.isfinite(lv))).double()
        self.steps += 1

    def summary(self) -> dict:
        n = max(self.steps, 1)
        s = self.scalars.tolist()
        return {
            "train_loss": s[0] / n, "grad_norm_mean": s[1] / n, "grad_norm_max": s[2],
            "clip_fraction": s[3] / n, "nonfinite_steps": int(s[4]),
            "param_mean": (self.param_sum / n).tolist(), "param_max": self.param_max.tolist(),
        }


# -- the per-timestep profile --------------------------------------------------------------------

def log_ratio(g: np.ndarray) -> float:
    """log10(‖g_1‖ / ‖g_T‖) (−inf when g_1 = 0, nan when both are 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log10(np.float64(g[0]) / np.float64(g[-1])))


def decay_per_step(g: np.ndarray) -> float:
    """Least-squares slope of log10‖g_t‖ against k = T − t (steps back), over finite positive points."""
    g = np.asarray(g, dtype=np.float64)
    k = np.arange(len(g))[::-1].astype(np.float64)
    ok = np.isfinite(g) & (g > 0)
    if ok.sum() < 2:
        return math.nan
    kk, yy = k[ok], np.log10(g[ok])
    kc = kk - kk.mean()
    return float((kc * (yy - yy.mean())).sum() / (kc * kc).sum())


def horizon(g: np.ndarray, fraction: float = HORIZON_FRACTION) -> float:
    """Steps back from T for which ‖g_{T−j}‖ ≥ fraction·‖g_T‖ holds for every j = 1..k (T−1 if always)."""
    g = np.asarray(g, dtype=np.float64)
    gT = g[-1]
    if not (math.isfinite(gT) and gT > 0):
        return math.nan
    below = ~(g[:-1][::-1] >= fraction * gT)          # j = 1..T−1; NaN counts as below
    return float(np.argmax(below)) if below.any() else float(len(g) - 1)


def steps_in_past(g: np.ndarray) -> float:
    """P13's measure: mean over t of 1[‖g_t‖² ≥ 1e-20]."""
    g = np.asarray(g, dtype=np.float64)
    return float(np.mean(g * g >= STEPS_IN_PAST_EPS))


# -- spectra -------------------------------------------------------------------------------------

def block_spectra(w: torch.Tensor, H: int) -> list[tuple[float, float]]:
    """(ρ, σ_max) of every H×H block stacked in w (G·H × H), in float64, in one batched call each;
    (nan, nan) for a block with non-finite entries."""
    blocks = w.detach().double().cpu().reshape(-1, H, H)
    ok = torch.isfinite(blocks).flatten(1).all(dim=1)
    safe = torch.where(ok[:, None, None], blocks, torch.zeros_like(blocks))
    rho = torch.linalg.eigvals(safe).abs().amax(dim=1)
    sigma = torch.linalg.svdvals(safe)[:, 0]
    nan = torch.full_like(rho, math.nan)
    return list(zip(torch.where(ok, rho, nan).tolist(), torch.where(ok, sigma, nan).tolist()))


# -- activation health ---------------------------------------------------------------------------

def saturated_fraction(h: torch.Tensor, act: str) -> float | None:
    """tanh: fraction of |h| > 0.99; sigmoid: of h < 0.01 or > 0.99; None for the ReLU family."""
    if act == "tanh":
        return float((h.abs() > TANH_SAT).double().mean())
    if act == "sigmoid":
        return float(((h < SIGMOID_SAT) | (h > 1 - SIGMOID_SAT)).double().mean())
    return None


def dead_fraction(z: torch.Tensor) -> float:
    """Fraction of units whose pre-activation z ≤ 0 at every step for every probe example."""
    return float((z <= 0).flatten(0, 1).all(dim=0).double().mean())


def gate_health(gates: dict[str, torch.Tensor]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and saturated fraction (< 0.1 or > 0.9) of every sigmoid gate."""
    means, sat = {}, {}
    for name, v in gates.items():
        if name in ("g", "n"):  # tanh candidates, not gates
            continue
        means[name] = float(v.double().mean())
        sat[name] = float(((v < GATE_LOW) | (v > GATE_HIGH)).double().mean())
    return means, sat


# -- gradient histograms and updates -------------------------------------------------------------

_EDGES: dict[torch.device, torch.Tensor] = {}


def histogram(g: torch.Tensor) -> tuple[list[int], int, int]:
    """Counts of log10|g| on the fixed bins (underflow, 48 bins, overflow), zeros, non-finite."""
    g = g.detach().double().flatten()
    edges = _EDGES.get(g.device)
    if edges is None:
        edges = _EDGES[g.device] = torch.tensor(HIST_EDGES, dtype=torch.float64, device=g.device)
    finite = torch.isfinite(g)
    zero = g == 0
    vals = g[finite & ~zero].abs().log10()
    idx = torch.bucketize(vals, edges, right=True)  # 0: below edges[0]; len(edges): ≥ edges[-1]
    counts = torch.bincount(idx, minlength=HIST_LEN)
    return counts.tolist(), int(zero.sum()), int((~finite).sum())


def update_ratios(start: list[torch.Tensor], end: list[torch.Tensor]) -> tuple[list[float], list[float]]:
    """(‖θ_end − θ_start‖ / ‖θ_start‖ per parameter, ‖θ_end‖ per parameter)."""
    num = foreach.norms(foreach.sub(end, start)).double()
    den = foreach.norms(start).double()
    ratio = torch.where(den > 0, num / den, torch.full_like(num, math.nan))
    return ratio.tolist(), foreach.norms(end).double().tolist()
