"""What a study is: a named, versioned sweep (grid × seeds, at two scales), the claim it tests with
its source, and the analysis that decides the claim from the stored runs.

Torch-free and database-free: the analysis is a function of a ``StudyData`` (pandas frames read
through ``db.queries``, see ``studies.data``), so the CLI, the dashboard and the report share it.

Verdicts (``decide``), from the per-seed checks of the runs of one scale:

- ``pending``: some runs of the study are still queued or running (or none were submitted);
- ``inconclusive (add seeds)``: fewer than ``MIN_SEEDS`` seeds give evidence, or the claim holds on
  some seeds and not on others, or it holds on every seed that gives evidence while other seeds give
  none;
- ``reproduced``: every check holds on every seed of the scale (at least ``MIN_SEEDS`` of them);
- ``not reproduced``: on every seed that gives evidence (at least ``MIN_SEEDS`` of them) a check fails.

A seed gives evidence when every grid point has a finished run (a failed or cancelled run is no
evidence) and, on it, some check fails or every check has a value: a check whose value on a seed is
``None`` (e.g. the run it reads diverged, see ``Check``) is no evidence either way, so a seed where
no check fails and some check has no value counts neither for nor against the claim, like a seed with
a failed run, and the verdict's reason says why it has none.

One run per seed and grid point: when a point has several finished runs on a seed (a re-run tagged with
the study's tag), the analysis reads the latest (the highest id, ``chosen_runs``) and the outcome's
``notes`` name the runs it superseded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rnnlab.spec import JobSpec, SweepSpec, expand_sweep, grid_cells, sweep_size
from rnnlab.stats import t95

MIN_SEEDS = 3
SCALES = ("cpu", "paper")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, PENDING = ("reproduced", "not reproduced", "inconclusive (add seeds)",
                                                     "pending")
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, PENDING)
PROFILE_COLUMNS = ("run_id", "layer", "epoch", "t", "k", "norm")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Scale:
    """One size of a study: the base spec, the grid and the seeds, and how it differs from the paper."""

    base: dict[str, Any]
    vary: dict[str, list[Any]]
    seeds: tuple[int, ...] = (0, 1, 2)
    points: tuple[dict[str, Any], ...] = ()   # settings that go together (rnnlab.spec.SweepSpec.points)
    differs: str = ""          # what differs from the paper's setup, in one or two sentences
    budget: str = ""           # the expected wall time, e.g. "≈1 min on 2 cores"


@dataclass
class Number:
    """One measured quantity for one group, per seed, with the SQL that re-derives its values."""

    label: str
    group: str
    per_seed: dict[int, float]
    sql: str
    fmt: str = ".3g"

    def values(self) -> np.ndarray:
        return np.array([self.per_seed[s] for s in sorted(self.per_seed)], dtype=float)

    def summary(self) -> dict[str, float]:
        """mean, the 95% t interval of the mean (lo, hi), min and max over the seeds. Infinite values
        are kept: the mean of values holding -inf is -inf, and its interval is (-inf, max); +inf likewise;
        values holding both -inf and +inf have no mean (NaN)."""
        v = self.values()
        v = v[~np.isnan(v)]
        if v.size == 0:
            return dict.fromkeys(("mean", "lo", "hi", "min", "max"), math.nan)
        lo_, hi_ = float(v.min()), float(v.max())
        if not np.isfinite(v).all():
            # +∞ together with −∞ has no mean (NaN); −∞ with finite values is −∞, +∞ with them +∞
            m = math.nan if np.isposinf(v).any() and np.isneginf(v).any() else float(v.mean())
            return {"mean": m, "lo": lo_, "hi": hi_, "min": lo_, "max": hi_}
        m = float(v.mean())
        h = t95(v.size) * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size >= 2 else math.nan
        return {"mean": m, "lo": m - h, "hi": m + h, "min": lo_, "max": hi_}

    def text(self) -> str:
        s = self.summary()
        if math.isnan(s["mean"]) and math.isnan(s["min"]):
            return "NaN on every seed (no finite value)"
        n_nan = int(np.isnan(self.values()).sum())
        nan = f" ({n_nan} seed{'s' if n_nan > 1 else ''} NaN, left out)" if n_nan else ""
        if not math.isfinite(s["lo"]) or not math.isfinite(s["hi"]) or math.isnan(s["lo"]):
            return f"{fmt(s['mean'], self.fmt)} (seeds {fmt(s['min'], self.fmt)} … {fmt(s['max'], self.fmt)}){nan}"
        return (f"{fmt(s['mean'], self.fmt)} [95% CI {fmt(s['lo'], self.fmt)}, {fmt(s['hi'], self.fmt)}; "
                f"seeds {fmt(s['min'], self.fmt)} … {fmt(s['max'], self.fmt)}]{nan}")


def fmt(x: float, spec: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    if math.isinf(x):
        return "−∞" if x < 0 else "∞"
    return format(x, spec).replace("-", "−")


NO_EVIDENCE = "no evidence either way"


@dataclass
class Check:
    """One statement of the claim, decided on each seed on its own: True (it holds), False (it fails)
    or None (no evidence either way on that seed, e.g. the run it reads diverged): ``why`` says why,
    for each seed whose value is None. ``decide`` counts such a seed like a seed with a failed run."""

    text: str
    per_seed: dict[int, bool | None]
    why: dict[int, str] = field(default_factory=dict)

    def mark(self, seed: int) -> str:
        """'holds', 'fails' or 'no evidence' (a seed the check has no value for); a seed it was not
        decided on fails, as ``decide`` counts it."""
        v = self.per_seed.get(seed, False)
        return "no evidence" if v is None else ("holds" if v else "fails")

    def reason(self, seed: int) -> str:
        """Why the check has no value on ``seed`` ('' when it has one)."""
        if self.per_seed.get(seed, False) is not None:
            return ""
        return self.why.get(seed) or f"the check '{self.text}' has no value"


@dataclass
class Series:
    name: str
    x: list[Any]
    y: list[float]
    mode: str = "markers"      # "markers" (one point per seed) or "lines"
    group: str = ""


@dataclass
class Figure:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    log_y: bool = False
    categorical_x: bool = True
    hline: tuple[float, str] | None = None   # a reference line (value, label), e.g. the task's baseline


@dataclass
class Outcome:
    """What the analysis of one scale found."""

    study: str
    version: int
    scale: str
    tag: str
    verdict: str
    reason: str
    counts: dict[str, int]                    # runs by status
    expected_runs: int
    seeds_complete: list[int]
    code_versions: list[str] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # e.g. the runs a later run of the same point superseded

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> Any:
            return x if x is None or math.isfinite(x) else ("NaN" if math.isnan(x) else ("Infinity" if x > 0
                                                                                          else "-Infinity"))
        return {
            "study": self.study, "version": self.version, "scale": self.scale, "tag": self.tag,
            "verdict": self.verdict, "reason": self.reason, "counts": self.counts,
            "expected_runs": self.expected_runs, "seeds_complete": self.seeds_complete,
            "code_versions": self.code_versions, "notes": list(self.notes),
            "checks": [{"text": c.text, "per_seed": {str(k): None if v is None else bool(v)
                                                     for k, v in c.per_seed.items()},
                        "no_evidence": {str(k): c.reason(k) for k, v in c.per_seed.items() if v is None}}
                       for c in self.checks],
            "numbers": [{"label": n.label, "group": n.group,
                         "per_seed": {str(k): num(v) for k, v in n.per_seed.items()},
                         **{k: num(v) for k, v in n.summary().items()}, "sql": n.sql} for n in self.numbers],
        }


@dataclass
class StudyData:
    """The stored results of one study at one scale, as read by ``studies.data.load``.

    ``runs``: one row per run: id, status, seed, point (the grid point's label), one column per
    varied field (named by its dotted path, values as JSON text for dicts), baseline_loss,
    val_loss/val_metric of the last epoch, and layer 0's rho/sigma_max/log_ratio/horizon at epoch 0
    (``*0``) and at the last probe (``*_last``), plus the spec.
    ``epochs``: db.queries.epochs of those runs; ``layers``: db.queries.layer_stats.
    ``profiles``: only for a study whose ``profiles_at`` names epochs (empty otherwise): every layer's
    profile ‖∂L/∂h_t^(k)‖ at those epochs, long format (run_id, layer, epoch, t, k = T − t, norm), every
    step t = 1..T, as db.queries.profiles(ids, epoch=e, layer=k, kind="h") reads it; layer 0 is the first.
    """

    tag: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    layers: pd.DataFrame
    code_versions: list[str] = field(default_factory=list)   # of the code that created the runs
    profiles: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PROFILE_COLUMNS)))

    def of_runs(self, run_ids) -> StudyData:
        """The same data restricted to the runs whose id is in ``run_ids``."""
        keep = {int(i) for i in run_ids}

        def only(frame: pd.DataFrame, col: str = "run_id") -> pd.DataFrame:
            return frame[frame[col].isin(keep)] if len(frame) else frame

        return StudyData(tag=self.tag, runs=only(self.runs, "id"), epochs=only(self.epochs),
                         layers=only(self.layers), code_versions=list(self.code_versions),
                         profiles=only(self.profiles))


@dataclass(frozen=True)
class Study:
    name: str
    version: int
    title: str
    claim: str                     # one sentence
    source: str                    # paper, figure or section
    scales: dict[str, Scale]
    analyse: Callable[[Study, StudyData], tuple[list[Check], list[Number], list[Figure]]]
    group_by: str                  # the varied field whose value names a group (a dotted spec path)
    notes: str = ""                # setup notes shown with the result
    profiles_at: tuple[int, ...] = ()   # epochs whose per-layer profiles the analysis reads (StudyData.profiles)

    def __post_init__(self):
        if not NAME_RE.match(self.name):
            raise ValueError(f"study name: got {self.name!r}; use 1-40 lowercase letters, digits and '-'")
        for s in self.scales:
            if s not in SCALES:
                raise ValueError(f"study {self.name}: scale {s!r}; allowed: {', '.join(SCALES)}")
        for s, sc in self.scales.items():
            if len(sc.seeds) < MIN_SEEDS:
                raise ValueError(f"study {self.name}, scale {s}: {len(sc.seeds)} seeds; a study needs at least "
                                 f"{MIN_SEEDS}")

    def tag(self, scale: str) -> str:
        self.scale(scale)
        return f"study:{self.name}@v{self.version}:{scale}"

    def scale(self, scale: str) -> Scale:
        if scale not in self.scales:
            raise ValueError(f"scale: got {scale!r}; study {self.name} has {', '.join(self.scales)}")
        return self.scales[scale]

    def sweep(self, scale: str) -> SweepSpec:
        sc = self.scale(scale)
        return SweepSpec(name=f"study {self.name} v{self.version} ({scale})", base=json.loads(json.dumps(sc.base)),
                         vary={k: list(v) for k, v in sc.vary.items()},
                         points=[json.loads(json.dumps(p)) for p in sc.points], seeds=list(sc.seeds))

    def specs(self, scale: str, limits=None) -> list[JobSpec]:
        return expand_sweep(self.sweep(scale), limits)

    def n_runs(self, scale: str) -> int:
        sc = self.scale(scale)
        return sweep_size(sc.vary, len(sc.seeds), len(sc.points))

    def grid(self, scale: str) -> list[tuple[list[str], tuple]]:
        """The grid points as (dotted paths, values), in grid order, without the seeds."""
        return [(keys, values) for _, keys, values in grid_cells(self.sweep(scale))]

    def varied(self, scale: str) -> list[str]:
        """Every path a grid point sets: the explicit points' paths, then vary's."""
        return list(dict.fromkeys(k for keys, _ in self.grid(scale) for k in keys))

    def points(self, scale: str) -> list[str]:
        """The grid points' labels, in grid order."""
        return [point_label(keys, values) for keys, values in self.grid(scale)]

    def decide(self, data: StudyData, scale: str) -> Outcome:
        return decide(self, data, scale)


def value_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))


def point_label(keys: list[str], values: tuple) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in zip(keys, values))


FINISHED = ("succeeded", "diverged")


def chosen_runs(runs: pd.DataFrame, seeds: list[int], points: list[str]) -> tuple[list[int], list[str]]:
    """The runs the analysis reads: of each complete seed in ``seeds`` and each grid point in ``points``,
    exactly one run, the latest finished one (the highest id among the succeeded and diverged runs: a
    re-run tagged with the study's tag replaces the run before it). Returns their ids and a note for each
    (seed, point) with more than one finished run, naming the run used and the ones superseded, e.g.
    'seed 1, point cell=rnn: run 7 used, run 4 superseded'. The numbers, checks, figures and the SQL
    (studies.sql.runs_used) all read these runs."""
    fin = runs[runs["seed"].isin(seeds) & runs["status"].isin(FINISHED) & runs["point"].isin(points)]
    used, notes = [], []
    order = {p: i for i, p in enumerate(points)}
    for (seed, point), g in sorted(fin.groupby(["seed", "point"]), key=lambda kv: (int(kv[0][0]), order[kv[0][1]])):
        ids = sorted((int(i) for i in g["id"]), reverse=True)
        used.append(ids[0])
        if len(ids) > 1:
            old = ids[1:]
            where = f"point {point}" if point else "the point"
            notes.append(f"seed {int(seed)}, {where}: run {ids[0]} used, run{'s' if len(old) > 1 else ''} "
                         f"{', '.join(map(str, old))} superseded")
    return sorted(used), notes


def decide(study: Study, data: StudyData, scale: str) -> Outcome:
    """Run the study's analysis on the complete seeds and turn its per-seed checks into a verdict."""
    sc = study.scale(scale)
    runs = data.runs
    counts = {str(k): int(v) for k, v in runs["status"].value_counts().items()} if len(runs) else {}
    expected = study.n_runs(scale)
    base = dict(study=study.name, version=study.version, scale=scale, tag=data.tag, counts=counts,
                expected_runs=expected, code_versions=list(data.code_versions))
    if runs.empty:
        return Outcome(**base, verdict=PENDING, reason="no runs of this study at this scale yet", seeds_complete=[])
    open_ = runs[runs["status"].isin(["queued", "running"])]
    points = study.points(scale)
    complete = []
    for seed in sc.seeds:
        mine = runs[(runs["seed"] == seed) & runs["status"].isin(FINISHED)]
        if set(points) <= set(mine["point"]):
            complete.append(int(seed))
    used, notes = chosen_runs(runs, complete, points)
    sub = data.of_runs(used)
    checks, numbers, figures = study.analyse(study, sub) if complete else ([], [], [])
    out = Outcome(**base, verdict=PENDING, reason="", seeds_complete=complete, numbers=numbers, checks=checks,
                  figures=figures, notes=notes)
    if len(open_):
        out.reason = f"{len(open_)} of {len(runs)} runs are still queued or running"
        return out
    def state(s: int) -> bool | None:
        """False: some check fails on the seed; None: none fails and some has no value; True: all hold."""
        vals = [c.per_seed.get(s, False) for c in checks]
        if any(v is not None and not v for v in vals):
            return False
        return None if any(v is None for v in vals) else True

    passed = [s for s in complete if state(s) is True]
    failed_any = [s for s in complete if state(s) is False]
    unknown = [s for s in complete if state(s) is None]
    evidence = len(passed) + len(failed_any)
    missing = len(sc.seeds) - len(complete)
    lost = f"; {missing} seed(s) lack a finished run at some grid point (failed or cancelled)" if missing else ""
    why = "".join(f"; seed {s}: {' and '.join(dict.fromkeys(c.reason(s) for c in checks if c.reason(s)))}: "
                  f"{NO_EVIDENCE}" for s in unknown)
    if evidence < MIN_SEEDS:
        out.verdict = INCONCLUSIVE
        have = (f"only {evidence} of the {len(complete)} complete seeds give evidence" if unknown
                else f"only {len(complete)} complete seed(s)")
        out.reason = f"{have}, at least {MIN_SEEDS} are needed{lost}{why}"
    elif not failed_any and (missing or unknown):
        out.verdict = INCONCLUSIVE   # a failed, cancelled or evidence-less seed is not evidence for the claim
        lack = []
        if missing:
            lack.append(f"{missing} of the {len(sc.seeds)} seeds lack a finished run at some grid point (failed "
                        f"or cancelled): re-run them, or delete those runs and add seeds")
        if unknown:
            lack.append(f"{len(unknown)} of the {len(sc.seeds)} seeds give no evidence either way (add seeds)")
        where = "complete seeds" if not unknown else "seeds that give evidence"
        out.reason = f"every check holds on the {len(passed)} {where}, but {'; and '.join(lack)}{why}"
    elif not failed_any:
        out.verdict = REPRODUCED
        out.reason = f"every check holds on all {len(complete)} seeds"
    elif not passed:
        out.verdict = NOT_REPRODUCED
        which = f"{len(complete)} seeds" if not unknown else f"{evidence} seeds that give evidence"
        out.reason = f"on each of the {which} at least one check fails{lost}{why}"
    else:
        out.verdict = INCONCLUSIVE
        out.reason = (f"the claim holds on seeds {', '.join(map(str, passed))} and fails on "
                      f"{', '.join(map(str, failed_any))}{lost}{why}")
    return out
