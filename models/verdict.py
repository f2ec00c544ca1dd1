"""``diagnose``: one plain-language line about an epoch's gradients (order and thresholds in docs/metrics.md).

Checked worst first, so one sign of trouble can never hide behind a milder one: non-finite values,
explosions (gradient norm, spikes, ρ growth, growing profile), saturated or dead units and all-zero
gradients, vanishing, and only then healthy.
"""

from __future__ import annotations

import math

from rnnlab import health
from rnnlab.health import (
    DEAD_FRAC,
    EXPLODE_LOG_RATIO,
    EXPLODE_NORM,
    RHO_GROWTH,
    SATURATED_FRAC,
    SOLVED_FRACTION,
    SPIKE_FACTOR,
    VANISH_LOG_RATIO,
    baseline_of,
    no_gradient_is_dead,
)
from rnnlab.records import EpochRecord, LayerStat, RunInfo

from .diagnostics import STEPS_IN_PAST_EPS

_fmt = health.fmt   # up to 3 significant digits (1e-09, 1.5e+07, 9.87e-04), as the Strategies verdicts print


def _baseline(info: RunInfo | None) -> float:
    """The baseline a loss is compared with (rnnlab.health.baseline_of: held-out when stored, else the
    analytic one); NaN without ``info``."""
    return baseline_of(info.baseline_heldout_loss, info.baseline_loss) if info is not None else math.nan


def _horizon(layer: LayerStat) -> str:
    T = len(layer.grad_h)
    if not math.isfinite(layer.horizon):
        return "horizon undefined"
    if layer.horizon >= T - 1:
        return f"horizon {T - 1} steps (the whole sequence)"
    return f"horizon {layer.horizon:.0f} steps"


def _ratio(layer: LayerStat) -> str:
    r = layer.log_ratio
    if math.isnan(r):   # ‖g_1‖ = ‖g_T‖ = 0: 0/0 is no ratio (it was printed as "inf")
        return "‖g_1‖/‖g_T‖ undefined (‖g_1‖ = ‖g_T‖ = 0)"
    return f"‖g_1‖/‖g_T‖ = {_fmt(10 ** r) if math.isfinite(r) else ('0' if r < 0 else 'inf')}"


def _where(record: EpochRecord, layer: LayerStat) -> str:
    return f" (layer {layer.layer})" if len(record.layers) > 1 else ""


def _nonfinite(record: EpochRecord) -> str | None:
    gmax = record.grad_norm_max
    if record.nonfinite_steps or (gmax is not None and not math.isfinite(gmax)):
        return f"gradients explode: non-finite gradient in {record.nonfinite_steps} step(s) of epoch {record.epoch}"
    for ly in record.layers:
        for profile, name in ((ly.grad_h, "‖∂L/∂h_t‖"), (ly.grad_h_last or [], "‖∂ℓ_T/∂h_t‖")):
            if not all(math.isfinite(g) for g in profile):
                return f"gradients explode: {name} is non-finite in layer {ly.layer} at epoch {record.epoch}"
    return None


def _excused_at_init(record: EpochRecord) -> LayerStat | None:
    """At initialization (no training step: the epoch's gradient norm is the probe batch's own), when
    rnnlab.health.norm_explodes excuses the epoch's large norm because the gradient shrinks going back
    in every layer (health.shrinks_back, the rule the Strategies flag applies too): the layer whose
    ‖g_1‖/‖g_T‖ is largest, for the line. None otherwise: in a training epoch the largest norm came from
    some step's weights, which the end-of-epoch probe did not see, so it says nothing about that step."""
    ratios = [ly.log_ratio for ly in record.layers]
    if not health.shrinks_back(ratios) or health.norm_explodes(record.grad_norm_max, at_init=not record.steps,
                                                                log_ratios=ratios):
        return None
    return max(record.layers, key=lambda ly: ly.log_ratio)


def _norm_explosion(record: EpochRecord, info: RunInfo | None = None) -> str | None:
    gmax, gmean = record.grad_norm_max, record.grad_norm_mean
    if gmax is not None and gmax >= EXPLODE_NORM:
        top = _excused_at_init(record)
        if top is not None:   # a large norm, but no explosion through time: P13's growth is absent
            base = _baseline(info)
            loss = (f"; val loss {_fmt(record.val_loss / base)}× the baseline"
                    if record.val_loss is not None and math.isfinite(base) and base > 0 else "")
            return (f"large gradients{_where(record, top)}: gradient norm {_fmt(gmax)} at initialization, but "
                    f"{_ratio(top)}: the gradient shrinks going back in time, so it does not explode through "
                    f"time{loss}")
        mean = f" (mean {_fmt(gmean)})" if record.steps else ""
        return f"gradients explode: gradient norm reached {_fmt(gmax)} in epoch {record.epoch}{mean}"
    spike = health.spike_factor(gmean, gmax, record.steps)
    if math.isfinite(spike) and spike >= SPIKE_FACTOR:
        return (f"gradients explode: a gradient-norm spike of {_fmt(gmax)} in epoch {record.epoch}, "
                f"{spike:.0f}× the mean of the other steps")
    return None


def _layer_explosion(record: EpochRecord, initial: EpochRecord | None) -> str | None:
    start = {ly.layer: ly.rho for ly in initial.layers} if initial is not None else {}
    for ly in record.layers:
        growth = health.rho_growth(ly.rho, start.get(ly.layer))
        if math.isfinite(growth) and growth >= RHO_GROWTH:
            return (f"weights explode{_where(record, ly)}: ρ(W_hh) grew {growth:.2g}× since initialization "
                    f"({_fmt(start[ly.layer])} → {_fmt(ly.rho)})")
    top = max(record.layers, key=lambda ly: ly.log_ratio if not math.isnan(ly.log_ratio) else -math.inf)
    if top.log_ratio > EXPLODE_LOG_RATIO:
        return f"gradients explode{_where(record, top)}: {_ratio(top)}, gradient norm max {_fmt(record.grad_norm_max)}"
    return None


def _decay(layer: LayerStat) -> tuple[list[float], str]:
    """The layer's decay profile d_t and its name: ``grad_h_last`` (‖∂ℓ_T/∂h_t‖) on every-step tasks,
    ``grad_h`` (‖∂L/∂h_t‖) otherwise — the profile the stored log_ratio, horizon and steps_in_past
    come from (models/report.py ``layer_stats``), so the line and the stored numbers agree."""
    if layer.grad_h_last is not None:
        return layer.grad_h_last, "‖∂ℓ_T/∂h_t‖"
    return layer.grad_h, "‖∂L/∂h_t‖"


def _zero_steps(layer: LayerStat) -> str:
    d, name = _decay(layer)
    zeros = sum(1 for g in d if g == 0)
    return f"; {name} = 0 at {zeros} of {len(d)} steps" if zeros else ""


def _no_gradient(layer: LayerStat) -> bool:
    """Every d_t² below STEPS_IN_PAST_EPS (1e-20): the stored steps_in_past = 0, the Strategies
    verdict's test (d_t: the decay profile, ``_decay``)."""
    d, _ = _decay(layer)
    return bool(d) and all(g * g < STEPS_IN_PAST_EPS for g in d)


def _zero_gradients(record: EpochRecord, info: RunInfo | None) -> str | None:
    """Some layer has no gradient at any step: 'gradients are zero' unless the epoch's loss solves the
    task (rnnlab.health.no_gradient_is_dead, the rule the Strategies verdict applies), when it
    converged: 'healthy: converged …'. Without ``info`` the baseline is unknown: no such exemption."""
    flat = next((ly for ly in record.layers if _no_gradient(ly)), None)
    if flat is None:
        return None
    base = _baseline(info)
    d, name = _decay(flat)
    size = "= 0" if max(d) == 0 else "< 1e-10"
    if no_gradient_is_dead(record.val_loss, base):
        return f"gradients are zero{_where(record, flat)}: {name} {size} at every step"
    return (f"healthy{_where(record, flat)}: converged (loss {_fmt(record.val_loss)} ≤ {SOLVED_FRACTION:.0%} of the "
            f"baseline {_fmt(base)}), {name} {size} at every step")


def _dead(record: EpochRecord) -> str | None:
    for ly in record.layers:
        if ly.saturated_frac is not None and ly.saturated_frac >= SATURATED_FRAC:
            return f"saturated{_where(record, ly)}: {ly.saturated_frac:.0%} of units saturated{_zero_steps(ly)}"
    for ly in record.layers:
        if ly.dead_frac is not None and ly.dead_frac >= DEAD_FRAC:
            return f"dead units{_where(record, ly)}: {ly.dead_frac:.0%} of units never active{_zero_steps(ly)}"
    return None


def diagnose(record: EpochRecord, info: RunInfo | None, initial: EpochRecord | None = None) -> str:
    """One line about ``record``: 'gradients explode: …', 'weights explode: …', 'saturated: …',
    'dead units: …', 'gradients are zero: …', 'gradients vanish: …', 'healthy: …' or 'not probed …'.

    ``initial``: the run's epoch-0 record (at initialization), when the caller has it; with it a
    spectral radius that grew RHO_GROWTH-fold or more reads as an explosion. ``info``: its baselines
    tell a converged network (no gradient because its loss is ~0) from a dead one."""
    found = _nonfinite(record) or _norm_explosion(record, info)
    if found:
        return found
    if not record.layers:
        return (f"not probed this epoch: gradient norm mean {_fmt(record.grad_norm_mean)}, "
                f"max {_fmt(record.grad_norm_max)}")
    return _layers_verdict(record, info, initial)


def _layers_verdict(record: EpochRecord, info: RunInfo | None, initial: EpochRecord | None) -> str:
    """The verdict of a probed epoch whose norms are finite and bounded: explosions and dead or saturated
    units first (both named when both hold), then no gradient at any step (dead, or converged), then
    vanishing, then healthy."""
    exploded, dead = _layer_explosion(record, initial), _dead(record)
    zero = _zero_gradients(record, info)
    if zero and zero.startswith("gradients are zero") and not dead:
        dead = zero
    if exploded and dead:   # each keeps its own "(layer k)": the two can be about different layers
        return f"{exploded}; {dead}"
    if exploded or dead:
        return exploded or dead
    if zero:
        return zero
    worst = min(record.layers, key=lambda ly: ly.log_ratio if not math.isnan(ly.log_ratio) else math.inf)
    if worst.log_ratio < VANISH_LOG_RATIO:
        return f"gradients vanish{_where(record, worst)}: {_ratio(worst)}, {_horizon(worst)}"
    if math.isnan(worst.log_ratio):   # every layer's ratio is 0/0: nothing says the gradient is healthy
        return f"no gradient verdict{_where(record, worst)}: {_ratio(worst)}, {_horizon(worst)}"
    return f"healthy{_where(record, worst)}: {_ratio(worst)}, {_horizon(worst)}{_not_learned(record, info)}"


def _not_learned(record: EpochRecord, info: RunInfo | None) -> str:
    """'; but val loss 1.36× the baseline (no better than the trivial predictor)' after a training epoch
    whose loss is at or above the baseline: "healthy" speaks of the gradient, and a reader should not
    take it for a net that learned. '' otherwise, and without ``info`` (no baseline)."""
    base = _baseline(info)
    loss = record.val_loss
    if not record.steps or loss is None or not (math.isfinite(base) and base > 0) or not loss >= base:
        return ""
    return f"; but val loss {_fmt(loss / base)}× the baseline (no better than the trivial predictor)"
