"""What the engine reports: plain, torch-free records (one per epoch) and the run's fixed facts.

The engine emits these through its ``on_epoch`` callback; the worker writes them to the database;
``rnnlab train --json`` writes them to a file. ``docs/metrics.md`` defines every number.
Non-finite values (NaN, ±inf) are kept as Python floats, never dropped.

Also defined here, once for every part: the statuses of a run (RUN_STATUSES, FINAL_STATUSES) and its
short human label (run_label).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Gradient histograms use the same fixed bins for every run, so they can be overlaid across runs.
# Bins are on log10|g|: [-10, -9.75), ..., [1.75, 2.0); counts[0] is 0 < |g| < 1e-10 (underflow)
# and counts[-1] is |g| >= 1e2 (overflow). Exact zeros and non-finite values are counted apart.
HIST_LOG10_MIN = -10.0
HIST_LOG10_MAX = 2.0
HIST_BIN_WIDTH = 0.25
HIST_NBINS = int(round((HIST_LOG10_MAX - HIST_LOG10_MIN) / HIST_BIN_WIDTH))  # 48 inner bins
HIST_EDGES = [HIST_LOG10_MIN + i * HIST_BIN_WIDTH for i in range(HIST_NBINS + 1)]
HIST_LEN = HIST_NBINS + 2  # with the underflow and overflow bins

OUTCOMES = ("succeeded", "diverged", "cancelled")
# Every state of a run (the runs.status column), and the final ones: a run in one of these never changes
# again (it is not claimed, reaped or resumed). The one definition, shared by the database, CLI and dashboard.
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "diverged", "cancelled")
FINAL_STATUSES = ("succeeded", "failed", "diverged", "cancelled")


def run_label(run: Any) -> str:
    """The one short human label of a run: '#12 lstm adding T=100 h128x1 s0 · name'.

    ``run`` is a runs row (a dict or a pandas Series: id, cell, activation, task, seq_len,
    hidden_size, num_layers, seed, name) or any mapping with those keys; without an ``id`` (a spec not
    yet submitted) the '#12 ' is left out, without a name the ' · name'. The activation shows for
    vanilla cells only ('rnn/relu'), the cell's one free choice."""
    g = run.get if hasattr(run, "get") else run.__getitem__

    def text(key: str) -> str | None:
        v = g(key)
        return v if isinstance(v, str) and v else None   # None, or NaN where a DataFrame column mixes

    def num(key: str) -> str:
        v = g(key)
        return "?" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))

    cell, act = text("cell") or "?", text("activation")
    run_id = g("id")
    base = (f"{cell}{'/' + act if cell == 'rnn' and act else ''} {text('task') or '?'} T={num('seq_len')} "
            f"h{num('hidden_size')}x{num('num_layers')} s{num('seed')}")
    if run_id is not None and not (isinstance(run_id, float) and math.isnan(run_id)):
        base = f"#{int(run_id)} {base}"
    name = text("name")
    return f"{base} · {name}" if name else base


@dataclass
class RunInfo:
    """Facts about a run that do not change from epoch to epoch."""

    task: str                 # task name, e.g. "adding"
    variant: str              # e.g. "a16", "p13", "permuted", "sine"
    seq_len: int              # T of the probe batch (the length of every grad profile)
    metric_name: str          # "mse", "accuracy", "solve_rate", "bpc", ...
    higher_is_better: bool    # for the metric
    baseline_loss: float      # the trivial predictor's loss (e.g. 1/6 for adding a16)
    baseline_metric: float    # the trivial predictor's metric
    loss_name: str            # "mse" or "cross_entropy" (mean reduction)
    num_params: int
    device: str               # "cpu", "cuda:0", ...
    gamma: float | None       # sup φ' of a vanilla cell's activation; None for gated cells
    param_names: list[str] = field(default_factory=list)
    # the trivial predictor's mean loss on this run's own held-out set (NaN when undefined, e.g. a
    # character the training text never has); compare val_loss with it, paired, on the same sequences
    baseline_heldout_loss: float | None = None


@dataclass
class ParamStat:
    """Per named parameter (``weight_hh_l0``, ``bias_ih_l0``, ``head.weight``, ...), over an epoch."""

    name: str
    grad_norm_mean: float     # mean over the epoch's steps of ‖∂L/∂θ‖₂ (before clipping)
    grad_norm_max: float
    update_ratio: float       # ‖θ_end − θ_start‖ / ‖θ_start‖ over the epoch (nan if ‖θ_start‖ = 0)
    weight_norm: float        # ‖θ‖₂ at the end of the epoch
    hist: list[int]           # HIST_LEN counts of log10|g| of the probe-batch gradient
    hist_zeros: int
    hist_nonfinite: int


@dataclass
class LayerStat:
    """Per recurrent layer k (0-based)."""

    layer: int
    # spectra of W_hh (for gated cells, of the candidate block: LSTM 'g', GRU 'n')
    rho: float
    sigma_max: float
    gamma_sigma_max: float | None          # γ·σ_max, vanilla cells only
    gate_spectra: dict[str, dict[str, float]]  # gated cells: {"i": {"rho":…, "sigma_max":…}, …}
    # activation health on the probe batch
    saturated_frac: float | None           # tanh |h|>0.99, sigmoid h<0.01 or >0.99; None for relu
    dead_frac: float | None                # relu-family: units with z ≤ 0 at every step & example
    gate_mean: dict[str, float]            # gated cells: mean gate value per gate
    gate_saturated: dict[str, float]       # gated cells: fraction of gate values <0.1 or >0.9
    # the exact per-timestep profiles, t = 1..T, on the probe batch (L = the task's mean loss)
    grad_h: list[float]                    # ‖∂L/∂h_t‖ (total derivative)
    grad_c: list[float] | None             # ‖∂L/∂c_t‖ for LSTM (total derivative, through c_{t+1} and h_t)
    # derived from the decay profile d_t (docs/metrics.md): grad_h_last for every-step tasks (copy,
    # charlm, forecast), grad_h for tasks with the loss at the last step (where the two are the same)
    log_ratio: float                       # log10(d_1 / d_T)
    decay_per_step: float                  # fitted slope of log10 d_t per step back from T
    horizon: float                         # steps back from T while d_t ≥ 1e-3·d_T
    steps_in_past: float                   # P13: mean over t of 1[d_t² ≥ 1e-20]
    # ‖∂ℓ_T/∂h_t‖, ℓ_T the loss of the final step alone; every-step tasks only (None otherwise)
    grad_h_last: list[float] | None = None


@dataclass
class EpochRecord:
    """Everything recorded for one epoch. Epoch 0 is at initialization, before any update: its
    train_* fields and step-based fields come from the probe batch (steps = 0)."""

    epoch: int
    steps: int                       # optimizer steps taken in this epoch
    train_loss: float | None         # mean over the epoch's steps (None at epoch 0)
    val_loss: float                  # held-out loss: mean over the held-out sequences of each one's loss
    val_metric: float                # held-out task metric (RunInfo.metric_name)
    grad_norm_mean: float | None     # global pre-clip gradient norm, mean over steps
    grad_norm_max: float | None
    clip_fraction: float | None      # fraction of steps where clipping changed the gradient
    nonfinite_steps: int             # steps whose gradient had NaN/inf
    train_seconds: float
    diag_seconds: float              # time spent on diagnostics in this epoch
    probed: bool                     # whether the per-timestep probe ran this epoch
    params: list[ParamStat] = field(default_factory=list)
    layers: list[LayerStat] = field(default_factory=list)   # empty when probed is False
    # standard error of val_loss: sample std of the per-sequence held-out losses / √N
    val_loss_se: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    outcome: str                     # one of OUTCOMES
    message: str                     # human-readable; for 'diverged' says where and what
    epochs_done: int                 # last completed epoch


def encode_float(x: float | None) -> float | str | None:
    """JSON-safe float: NaN/±inf become the strings 'NaN', 'Infinity', '-Infinity'."""
    if x is None or math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def decode_float(x: float | str | None) -> float | None:
    if isinstance(x, str):
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(x, x))
    return x
