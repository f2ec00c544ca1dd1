"""Thresholds that say when a network has exploded, saturated, died or lost its long-range gradient.

One torch-free place shared by the engine's one-line diagnosis (``models.diagnose``) and the
strategy verdicts (``rnnlab.strategies``, the Strategies page and ``rnnlab compare``), so the two
always agree. docs/metrics.md explains each one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

EXPLODE_NORM = 1e3         # a global pre-clip gradient norm at or above this has exploded
SPIKE_FACTOR = 100.0       # an epoch's largest step norm ≥ 100× the mean of its other steps: a spike
RHO_GROWTH = 100.0         # ρ(W_hh) grown ≥ 100× since initialization: the weights exploded
EXPLODE_LOG_RATIO = 3.0    # ‖g_1‖/‖g_T‖ above 1e3: gradients grow going back in time
SATURATED_FRAC = 0.99      # ≥ 99 % of units saturated (tanh |h| > 0.99, sigmoid h < 0.01 or > 0.99)
DEAD_FRAC = 0.99           # ≥ 99 % of ReLU units never active on the probe batch
VANISH_LOG_RATIO = -3.0    # ‖g_1‖/‖g_T‖ below 1e-3: gradients vanish
SOLVED_FRACTION = 0.1      # a run "solves" the task when its final val loss ≤ 10% of the trivial baseline

# Per-run problems, worst first: a run or group with any of the first four is never ranked first.
BROKEN = ("non-finite", "exploding", "saturated", "dead")


def finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt(x: float | None) -> str:
    """Up to 3 significant digits, trailing zeros dropped (1e-09, 1.5e+07, 1.26e+03, 0.315): a value next
    to a threshold keeps the digits that put it on one side (9.87e-04 vanishes, 1.02e-03 does not; with
    one significant digit both read 1e-03, and a norm of 1265 read 1e+03). The numbers of both verdicts:
    models.diagnose and the Strategies flags (rnnlab.strategies)."""
    if x is None or not math.isfinite(x):
        return str(x)
    if 1e-2 <= abs(x) < 1e3 or x == 0:
        return f"{x:.3g}"
    mantissa, exp = f"{x:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exp}"


def spike_factor(norm_mean: float | None, norm_max: float | None, steps: int | None) -> float:
    """How many times the epoch's largest step norm exceeds the mean of its other steps (NaN when
    the epoch has fewer than two steps or the other steps' mean is not positive)."""
    if not (finite(norm_mean) and finite(norm_max) and steps and steps >= 2):
        return math.nan
    rest = (norm_mean * steps - norm_max) / (steps - 1)
    return norm_max / rest if rest > 0 else math.nan


def rho_growth(rho_now: float | None, rho_initial: float | None) -> float:
    """ρ(W_hh) now ÷ at initialization (NaN when either is missing or the initial one is 0)."""
    if not (finite(rho_now) and finite(rho_initial)) or rho_initial <= 0:
        return math.nan
    return rho_now / rho_initial


def is_exploding(norm_max: float | None = None, spike: float | None = None, growth: float | None = None,
                 log_ratio: float | None = None) -> bool:
    """Any of: gradient norm ≥ EXPLODE_NORM, a spike ≥ SPIKE_FACTOR, ρ growth ≥ RHO_GROWTH,
    ‖g_1‖/‖g_T‖ above 10^EXPLODE_LOG_RATIO. Missing values count as no evidence. ``norm_max`` must be
    a norm that counts (norm_explodes): a training epoch's, or one at initialization that it does not
    excuse."""
    return ((finite(norm_max) and norm_max >= EXPLODE_NORM) or (finite(spike) and spike >= SPIKE_FACTOR)
            or (finite(growth) and growth >= RHO_GROWTH)
            or (log_ratio is not None and not math.isnan(log_ratio) and log_ratio > EXPLODE_LOG_RATIO))


def shrinks_back(log_ratios: Iterable[float | None]) -> bool:
    """Whether the gradient shrinks going back in time in every layer: each layer's log10 ‖g_1‖/‖g_T‖
    is known (not None, not NaN) and ≤ 0. False without a layer (nothing measured says it shrinks)."""
    ratios = list(log_ratios)
    return bool(ratios) and all(r is not None and not math.isnan(r) and r <= 0 for r in ratios)


def norm_explodes(norm: float | None, at_init: bool, log_ratios: Iterable[float | None] = ()) -> bool:
    """Whether an epoch's largest gradient norm is an explosion: ≥ EXPLODE_NORM, except at
    initialization (epoch 0, no training step: the norm is the probe batch's own gradient, on the
    weights the profile measures) when the gradient shrinks going back in every layer (shrinks_back of
    the epoch's per-layer log_ratio): the growth P13 ties to explosion is absent, and the large norm
    comes with a large loss. In a training epoch the norm is some step's pre-clip norm, on weights the
    end-of-epoch probe did not see: it always counts. The rule of both verdicts: models.diagnose
    ('large gradients: … at initialization' vs 'gradients explode') and the Strategies flag."""
    return finite(norm) and norm >= EXPLODE_NORM and not (at_init and shrinks_back(log_ratios))


def baseline_of(heldout: float | None, analytic: float | None) -> float:
    """The trivial baseline a run's loss is compared with: on its own held-out set when stored, else the
    analytic one (NaN when neither is known)."""
    return float(heldout) if finite(heldout) else float(analytic) if finite(analytic) else math.nan


def solved(loss: float | None, baseline: float) -> bool:
    """Whether a final loss is at most SOLVED_FRACTION of ``baseline`` (False when either is unknown)."""
    return finite(loss) and math.isfinite(baseline) and baseline > 0 and loss <= SOLVED_FRACTION * baseline


def no_gradient_is_dead(loss: float | None, baseline: float) -> bool:
    """Whether a run (or epoch) with no gradient at any step (every ‖g_t‖² < 1e-20, steps_in_past = 0,
    in some layer) is dead: yes unless it solved the task. A network that solved it has converged, and
    its gradient is ~0 because its loss is; one whose loss is still above that has no gradient to learn
    from in that layer. The one rule of both verdicts: rnnlab.strategies and models.diagnose."""
    return not solved(loss, baseline)
