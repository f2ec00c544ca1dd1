"""A rough run-time estimate for specs before they are submitted.

Model (docs/dashboard.md): one optimizer step of an unrolled cell costs about
``T·L·(a + b·G·H·(H + 1)·B)`` seconds, G = 1 (rnn), 3 (gru), 4 (lstm): a per-time-step overhead ``a``
(Python and kernel launches) plus the matrix work. The default a, b were measured on a 2-core CPU;
when the database has finished runs, the estimate is rescaled by the median ratio of their measured
seconds per step (training + diagnostics) to this model.

Wall time: a run is trained by one worker, so more workers never make one run faster. The runs
start in the order they are submitted (the queue's order), each on the first worker to be free; the
estimate is when the last one ends: never less than the longest run, never less than the total
divided by the workers, and ⌈runs / workers⌉ runs' time when the runs are alike. Count only the
runs that will be submitted (duplicates that the submission skips are not work;
``dashboard.sweeps.to_submit``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import pandas as pd

from rnnlab.spec import JobSpec

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
A_STEP = 6e-5      # seconds per time step per layer (overhead)
B_FLOP = 2.5e-10   # seconds per multiply-add of the recurrent matrices (forward + backward)
PROBE_FACTOR = 1.15  # the per-epoch probe and diagnostics


def _model(cell: str, hidden: int, seq_len: int, layers: int, batch: int) -> float:
    return seq_len * layers * (A_STEP + B_FLOP * GATES.get(cell, 1) * hidden * (hidden + 1) * batch)


def calibration(samples: pd.DataFrame) -> tuple[float, int]:
    """(scale, n): the median measured/model ratio of past runs' seconds per step, and how many."""
    if samples is None or samples.empty:
        return 1.0, 0
    ratios = []
    for r in samples.itertuples():
        if r.steps and r.seconds and r.steps > 0:
            m = _model(r.cell, r.hidden_size, r.seq_len, r.num_layers, r.batch_size)
            if m > 0:
                ratios.append((r.seconds / r.steps) / m)
    if not ratios:
        return 1.0, 0
    return float(pd.Series(ratios).median()), len(ratios)


def seconds(spec: JobSpec, scale: float = 1.0) -> float:
    per_step = _model(spec.cell, spec.hidden_size, spec.task.seq_len, spec.num_layers, spec.batch_size)
    return per_step * scale * spec.steps_per_epoch * spec.epochs * PROBE_FACTOR


def fmt(s: float) -> str:
    """'45 s', '12 min', '3.5 h'."""
    if not math.isfinite(s):
        return "unknown"
    if s < 90:
        return f"{max(1, round(s)) if s > 0 else 0} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def wall_seconds(times: Sequence[float], workers: int) -> float:
    """When the last of these runs ends on ``workers`` identical workers, one run per worker at a time,
    taken in this order (the submission's) by the first worker to be free."""
    loads = [0.0] * max(1, min(int(workers), len(times)))
    for t in times:
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads) if times else 0.0


def describe(total_s: float, n_workers: int, wall_s: float | None = None) -> str:
    """'about 12 min of compute (≈ 6 min on 2 workers)'. ``wall_s`` is wall_seconds of the runs; without
    it the compute is taken to be one run, which more workers cannot shorten."""
    if not math.isfinite(total_s):
        return "unknown"
    text = f"about {fmt(total_s)} of compute"
    if n_workers > 1:
        wall = total_s if wall_s is None else wall_s
        text += f" (≈ {fmt(wall)} on {n_workers} workers)"
    return text
