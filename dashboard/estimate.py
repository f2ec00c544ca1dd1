"""A rough run-time estimate for specs before they are submitted (docs/dashboard.md, "Time estimate").

A run's time is three parts, each modelled and calibrated on its own:

- training: ``steps_per_epoch · epochs`` optimizer steps, each ``T·L·(a + b·G·H·(H + 1)·B)`` seconds
  (T the unrolled steps, L layers, G = 1 (rnn), 3 (gru), 4 (lstm), H hidden units, B the batch): a
  per-time-step overhead ``a`` (Python and kernel launches) plus the matrix work;
- diagnostics, in each of the N + 1 diagnosed epochs (epoch 0 is diagnosed too): the held-out
  evaluation (forward only, about a third of a step's work, over the task's held-out set,
  ``HELDOUT``) and the probe or the probe-batch gradients (forward and backward on
  ``probe.batch_size`` sequences), ``T·L·(a_d + b·G·H·(H + 1)·(held-out / 3 + probe batch))``; a probed
  epoch (0, N and every ``probe.every``-th) unrolls the cells in Python, so its ``a_d`` is larger;
- a fixed cost per run: building the task and the model, recording the results.

The defaults were measured on a 2-core CPU. When the database has succeeded runs, each part is
rescaled by its own median measured/model ratio over them (``calibrate``): training on the per-epoch
``train_seconds / steps`` of epochs ≥ 1, diagnostics on ``diag_seconds``, the fixed cost on the run's
time outside both. Runs with fewer than ``MIN_STEPS`` optimizer steps are left out: their seconds are
mostly start-up and diagnostics, and a study of 1-step runs (a ratio of ≈ 13 to the training model)
would otherwise inflate every estimate.

``SPREAD``: the range shown around the estimate, the measured/estimated ratios seen in the
measurements of docs/dashboard.md.

Wall time: a run is trained by one worker slot, so more slots never make one run faster. The runs
start in the order they are submitted (the queue's order), each on the first slot to be free; the
estimate is when the last one ends: never less than the longest run, never less than the total
divided by the slots, and ⌈runs / slots⌉ runs' time when the runs are alike. Only the live workers
that consume a run's queue count (``serving_slots``). Count only the runs that will be submitted
(duplicates that the submission skips are not work; ``dashboard.sweeps.to_submit``).

Torch-free: nothing from models/ is imported (``HELDOUT`` is checked against models.tasks by a test).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence

import pandas as pd

from rnnlab.spec import JobSpec

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
A_STEP = 6e-5      # seconds per time step per layer of a training step (overhead)
B_FLOP = 2.5e-10   # seconds per multiply-add of the recurrent matrices (forward + backward)
A_PROBE = 3e-4     # per time step per layer of a probed epoch's diagnostics (the unrolled probe, layer statistics)
A_PLAIN = 1.2e-4   # per time step per layer of an unprobed epoch's diagnostics (fused evaluation and gradients)
FORWARD = 1 / 3    # a forward pass's share of a training step's matrix work
FIXED_S = 1.0      # per run: building the task and the model, writing the records
MIN_STEPS = 20     # runs with fewer optimizer steps do not calibrate
SPREAD = (0.5, 2.5)  # measured / estimated, the range shown (docs/dashboard.md, "Time estimate")

# held-out sequences evaluated each diagnosed epoch (models.tasks: heldout_size; digits: 20% of the
# 1,797 scikit-learn digits; tests/dashboard/test_estimate_calibration.py checks them against the engine)
HELDOUT = {"adding": 512, "copy": 256, "temporal_order": 256, "forecast": 256, "digits": 359, "charlm": 64}


def _model(cell: str, hidden: int, seq_len: int, layers: int, batch: int) -> float:
    """Seconds of one training step by the default model."""
    return seq_len * layers * (A_STEP + B_FLOP * GATES.get(cell, 1) * hidden * (hidden + 1) * batch)


def _diag_model(cell: str, hidden: int, seq_len: int, layers: int, heldout: int, probe_batch: int,
                probed: bool) -> float:
    """Seconds of one diagnosed epoch by the default model."""
    work = B_FLOP * GATES.get(cell, 1) * hidden * (hidden + 1) * (heldout * FORWARD + probe_batch)
    return seq_len * layers * ((A_PROBE if probed else A_PLAIN) + work)


class Calibration(float):
    """Measured/model scales of the three parts and how many runs they come from (0: the defaults).
    Its value as a number is the training scale, so ``scale, n = calibration(samples)`` and
    ``seconds(spec, scale)`` keep the whole calibration."""

    def __new__(cls, train: float = 1.0, diag: float = 1.0, fixed_s: float = FIXED_S, n: int = 0):
        self = super().__new__(cls, train)
        self.diag, self.fixed_s, self.n = float(diag), float(fixed_s), int(n)
        return self

    @property
    def train(self) -> float:
        return float(self)

    def __repr__(self) -> str:
        return f"Calibration(train={self.train:.3g}, diag={self.diag:.3g}, fixed_s={self.fixed_s:.3g}, n={self.n})"


def _probed_epochs(spec: JobSpec, train_s: float, probed_s: float) -> int:
    """How many of the epochs 0…N are probed: 0, N and every ``probe.every``-th; with ``probe.budget``,
    as many as the budget's share of the training time pays for (at least 0 and N)."""
    n = spec.epochs
    budget = getattr(spec.probe, "budget", None)
    if budget is not None:
        extra = int(budget * train_s / probed_s) - 2 if probed_s > 0 else n - 1
        return 2 + max(0, min(n - 1, extra))
    every = max(1, spec.probe.every)
    return len({0, n} | set(range(every, n, every)))


def _parts(spec: JobSpec, cal: Calibration) -> tuple[float, float, float]:
    """(training, diagnostics, fixed) seconds of one run."""
    t, h, layers = spec.steps, spec.hidden_size, spec.num_layers
    train = _model(spec.cell, h, t, layers, spec.batch_size) * spec.steps_per_epoch * spec.epochs * cal.train
    held = HELDOUT.get(spec.task.name, 256)
    probed_s = _diag_model(spec.cell, h, t, layers, held, spec.probe.batch_size, True) * cal.diag
    plain_s = _diag_model(spec.cell, h, t, layers, held, spec.probe.batch_size, False) * cal.diag
    k = _probed_epochs(spec, train, probed_s)
    return train, k * probed_s + (spec.epochs + 1 - k) * plain_s, cal.fixed_s


def _spec_of(row) -> JobSpec | None:
    try:
        return JobSpec(**row.spec) if isinstance(getattr(row, "spec", None), dict) else None
    except Exception:  # noqa: BLE001 - a spec this version cannot read does not calibrate
        return None


def calibrate(samples: pd.DataFrame | None) -> Calibration:
    """The three scales from db.reads.timing_samples rows: the median over runs with at least
    ``MIN_STEPS`` optimizer steps of measured/model training seconds per step, of measured/model
    diagnostics seconds, and of the seconds outside both (the fixed cost)."""
    if samples is None or samples.empty:
        return Calibration()
    train, diag, fixed = [], [], []
    for r in samples.itertuples():
        steps = getattr(r, "steps", None)
        secs = getattr(r, "train_seconds", None)
        if secs is None:   # an older sample: the run's seconds, training and diagnostics together
            secs = getattr(r, "seconds", None)
        if not steps or not secs or steps < MIN_STEPS or not (secs > 0):
            continue
        spec = _spec_of(r)
        t = spec.steps if spec else r.seq_len
        m = _model(r.cell, r.hidden_size, t, r.num_layers, r.batch_size)
        if m <= 0:
            continue
        train.append(secs / steps / m)
        d = getattr(r, "diag_seconds", None)
        if spec is not None and d is not None and d > 0 and getattr(r, "diag_epochs", 0):
            held = HELDOUT.get(spec.task.name, 256)
            k = int(r.probed_epochs)
            md = (k * _diag_model(r.cell, r.hidden_size, t, r.num_layers, held, spec.probe.batch_size, True)
                  + (int(r.diag_epochs) - k)
                  * _diag_model(r.cell, r.hidden_size, t, r.num_layers, held, spec.probe.batch_size, False))
            if md > 0:
                diag.append(d / md)
            run_s = getattr(r, "run_seconds", None)
            if run_s is not None and not pd.isna(run_s):
                fixed.append(max(0.0, run_s - secs - d))
    if not train:
        return Calibration()

    def median(xs, default):
        return float(pd.Series(xs).median()) if xs else default

    return Calibration(median(train, 1.0), median(diag, 1.0), median(fixed, FIXED_S), len(train))


def calibration(samples: pd.DataFrame | None) -> tuple[Calibration, int]:
    """(calibrate(samples), how many runs it comes from)."""
    c = calibrate(samples)
    return c, c.n


def seconds(spec: JobSpec, cal: Calibration | float | None = None) -> float:
    """One run's estimated seconds: training + diagnostics + the fixed cost. ``cal``: a Calibration,
    or a training scale alone (the other parts at their defaults)."""
    if cal is None:
        cal = Calibration()
    elif not isinstance(cal, Calibration):
        cal = Calibration(train=float(cal))
    return sum(_parts(spec, cal))


def span(s: float) -> tuple[float, float]:
    """The range the measurements support around an estimate ``s``."""
    return s * SPREAD[0], s * SPREAD[1]


def fmt(s: float) -> str:
    """'45 s', '12 min', '3.5 h'."""
    if not math.isfinite(s):
        return "unknown"
    if s < 90:
        return f"{max(1, round(s)) if s > 0 else 0} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def fmt_span(s: float) -> str:
    """'10–40 s', '2–8 min', '45 s–3 min'."""
    lo, hi = span(s)
    a, b = fmt(lo), fmt(hi)
    ua, ub = a.split(" ")[-1], b.split(" ")[-1]
    return f"{a.rsplit(' ', 1)[0]}–{b}" if ua == ub else f"{a}–{b}"


def wall_seconds(times: Sequence[float], workers: int) -> float:
    """When the last of these runs ends on ``workers`` identical worker slots, one run per slot at a
    time, taken in this order (the submission's) by the first slot to be free."""
    loads = [0.0] * max(1, min(int(workers), len(times)))
    for t in times:
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads) if times else 0.0


def serving_slots(workers: pd.DataFrame, queues: Iterable[str]) -> int:
    """The run slots of the live workers that consume any of ``queues`` (a worker's ``queues`` are
    logical names, comma-separated, as db.liveness.unserved_queues reads them): its ``slots`` where the
    worker reported them (workers.slots), else 1."""
    want = {str(q) for q in queues}
    return sum(1 for served in _slots_of(workers) if served & want)


def _slots_of(workers: pd.DataFrame) -> list[set[str]]:
    """One entry per run slot of the live workers: the queues that slot's worker consumes."""
    out: list[set[str]] = []
    if workers is None or workers.empty:
        return out
    for w in workers.to_dict("records"):
        if not w.get("alive"):
            continue
        slots = w.get("slots")
        n = int(slots) if slots is not None and not pd.isna(slots) and int(slots) > 0 else 1
        out += [set(str(w.get("queues") or "").split(","))] * n
    return out


def wall_by_queue(times: Sequence[float], queues: Sequence[str], workers: pd.DataFrame) -> tuple[float, int]:
    """(wall seconds, slots): the runs, in submission order, each on the first free slot of a live worker
    that consumes its queue; a worker's slots are shared by every queue it serves (a cpu,gpu worker with
    2 slots is 2 slots, not 2 for each queue). A queue that no live worker serves gets one slot of its
    own (its runs are counted as if a worker started). ``slots``: the live slots that serve any of these
    queues (0 when none does)."""
    pool = _slots_of(workers)
    loads = [0.0] * len(pool)
    extra: dict[str, float] = {}      # queues no live worker serves: one imagined slot each
    for t, q in zip(times, queues):
        eligible = [i for i, served in enumerate(pool) if str(q) in served]
        if not eligible:
            extra[str(q)] = extra.get(str(q), 0.0) + t
            continue
        i = min(eligible, key=lambda k: (loads[k], k))
        loads[i] += t
    return max([*loads, *extra.values(), 0.0]), serving_slots(workers, queues)


def describe(total_s: float, n_workers: int, wall_s: float | None = None, ranged: bool = False) -> str:
    """'about 12 min of compute (≈ 6 min on 2 run slots)'. ``wall_s`` is wall_seconds of the runs; without
    it the compute is taken to be one run, which more workers cannot shorten. ``ranged``: each figure
    followed by the range the measurements support ('about 12 min of compute, 6–24 min')."""
    if not math.isfinite(total_s):
        return "unknown"
    text = f"about {fmt(total_s)} of compute" + (f", {fmt_span(total_s)}" if ranged else "")
    if n_workers > 1:
        wall = total_s if wall_s is None else wall_s
        text += f" (≈ {fmt(wall)}" + (f", {fmt_span(wall)}," if ranged else "") + f" on {n_workers} run slots)"
    return text
