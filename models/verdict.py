"""``diagnose``: one plain-language line about an epoch's gradients (thresholds in docs/metrics.md)."""

from __future__ import annotations

import math

from rnnlab.records import EpochRecord, LayerStat, RunInfo

VANISH_LOG_RATIO = -3.0   # ‖g_1‖/‖g_T‖ below 1e-3: vanishing
EXPLODE_LOG_RATIO = 3.0   # ‖g_1‖/‖g_T‖ above 1e3: exploding
EXPLODE_NORM = 1e3        # or a global gradient norm above this


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return str(x)
    return f"{x:.2g}" if 1e-2 <= abs(x) < 1e3 or x == 0 else f"{x:.0e}"


def _horizon(layer: LayerStat) -> str:
    T = len(layer.grad_h)
    if not math.isfinite(layer.horizon):
        return "horizon undefined"
    if layer.horizon >= T - 1:
        return f"horizon {T - 1} steps (the whole sequence)"
    return f"horizon {layer.horizon:.0f} steps"


def diagnose(record: EpochRecord, info: RunInfo) -> str:
    """'gradients vanish: …', 'gradients explode: …', 'gradients are zero: …' or 'healthy: …'."""
    gmax = record.grad_norm_max
    if record.nonfinite_steps or (gmax is not None and not math.isfinite(gmax)):
        return f"gradients explode: non-finite gradient in {record.nonfinite_steps} step(s) of epoch {record.epoch}"
    if not record.layers:
        return f"not probed this epoch: gradient norm mean {_fmt(record.grad_norm_mean)}, max {_fmt(gmax)}"
    bad = [l.layer for l in record.layers if not all(math.isfinite(g) for g in l.grad_h)]
    if bad:
        return f"gradients explode: ‖∂L/∂h_t‖ is non-finite in layer {bad[0]} at epoch {record.epoch}"
    worst = min(record.layers, key=lambda l: l.log_ratio if not math.isnan(l.log_ratio) else math.inf)
    where = f" (layer {worst.layer})" if len(record.layers) > 1 else ""
    ratio = f"‖g_1‖/‖g_T‖ = {_fmt(10 ** worst.log_ratio) if math.isfinite(worst.log_ratio) else ('0' if worst.log_ratio < 0 else 'inf')}"
    if all(l.grad_h and max(l.grad_h) == 0 for l in record.layers):
        return "gradients are zero: ‖∂L/∂h_t‖ = 0 at every step (e.g. an all-zero init)"
    if worst.log_ratio < VANISH_LOG_RATIO:
        return f"gradients vanish{where}: {ratio}, {_horizon(worst)}"
    top = max(record.layers, key=lambda l: l.log_ratio if not math.isnan(l.log_ratio) else -math.inf)
    if top.log_ratio > EXPLODE_LOG_RATIO or (gmax is not None and gmax > EXPLODE_NORM):
        return (f"gradients explode: ‖g_1‖/‖g_T‖ = {_fmt(10 ** top.log_ratio)}, "
                f"gradient norm max {_fmt(gmax)}")
    return f"healthy{where}: {ratio}, {_horizon(worst)}"
