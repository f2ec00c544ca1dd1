"""Strategy verdicts: group runs by one factor (cell, activation, init, clipping, depth, T), say which
group works best, how sure we can be, and which groups exploded, saturated, died or are confounded.

Pure pandas/numpy and torch-free: the Strategies page (dashboard/analysis.py) and ``rnnlab compare``
share it. The ranking rules are in docs/dashboard.md; the health thresholds in rnnlab/health.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rnnlab import health
from rnnlab.health import SOLVED_FRACTION, baseline_of, no_gradient_is_dead, solved  # noqa: F401  (callers' names)
from rnnlab.records import encode_float
from rnnlab.spec import JobSpec
from rnnlab.stats import t95

NO_SE_MARGIN = 0.25     # one run and no stored standard error: it must be ≥ 25% below the baseline
LOSS_FLOOR = 1e-12      # a final loss of 0 counts as this in log-loss means and intervals (the best possible)
# fields that do not change what is learned: they may vary within and between groups without confounding them
IGNORED_FIELDS = ("seed", "name", "device", "probe")
FINISHED = ("succeeded", "diverged")


def _clip(s: dict) -> str:
    c = s.get("clip") or {}
    return {"norm": f"norm ≤ {c.get('max_norm')}", "value": f"value ±{c.get('clip_value')}"}.get(c.get("mode"), "none")


def _init(s: dict) -> str:
    i = s.get("init") or {}
    name = i.get("recurrent") if i.get("recurrent") == i.get("input") else f"{i.get('recurrent')} / {i.get('input')}"
    return name + (f", ρ={i['spectral_radius']}" if i.get("spectral_radius") else "")


def _all_but_seed(s: dict) -> str:
    act = f"/{s.get('activation') or 'tanh'}" if s["cell"] == "rnn" else ""
    return (f"{s['cell']}{act} {s['task']['name']} T={s['task']['seq_len']} L{s['num_layers']} "
            f"h{s['hidden_size']} init {_init(s)} clip {_clip(s)} {s['optimizer']['name']} lr={s['optimizer']['lr']}")


FACTORS: dict[str, Callable[[dict], Any]] = {
    "cell": lambda s: s["cell"],
    "activation": lambda s: (s.get("activation") or "tanh") if s["cell"] == "rnn" else f"{s['cell']} (gated)",
    "init": _init,
    "clipping": _clip,
    "depth": lambda s: s["num_layers"],
    "T": lambda s: s["task"]["seq_len"],
    "everything but the seed": _all_but_seed,
}


# The spec fields (dotted paths, a prefix covers its sub-fields) each factor compares: groups may differ in
# these and nothing else (besides IGNORED_FIELDS). A cell's activation goes with the cell (an LSTM has
# none); "everything but the seed" compares every field its label names but the task.
FACTOR_FIELDS: dict[str, tuple[str, ...]] = {
    "cell": ("cell", "activation", "leaky_slope"),
    "activation": ("cell", "activation", "leaky_slope"),
    "init": ("init",),
    "clipping": ("clip",),
    "depth": ("num_layers",),
    "T": ("task.seq_len",),
    # not task.name: groups on different tasks are not compared (and the task's own fields follow it)
    "everything but the seed": ("cell", "activation", "leaky_slope", "task.seq_len", "num_layers",
                                "hidden_size", "init", "clip", "optimizer.name", "optimizer.lr"),
}

# Fields that act only when another field has one of these values; elsewhere the spec fixes them (it
# refuses init.forget_bias for a GRU, optimizer.momentum for Adam), so a group whose runs cannot set
# them does not differ in them: the LSTMs' forget bias 3 against the GRUs' none is the cell, not more.
APPLIES_ONLY: dict[str, tuple[str, tuple[str, ...]]] = {
    "init.forget_bias": ("cell", ('"lstm"',)),
    "optimizer.momentum": ("optimizer.name", ('"sgd"', '"rmsprop"')),
}


def varying_factor(runs: pd.DataFrame) -> str:
    """The first factor whose value differs between the runs (what a sweep varied), else 'cell'."""
    for name, fn in FACTORS.items():
        if name != "everything but the seed" and len({str(fn(s)) for s in runs["spec"]}) > 1:
            return name
    return "cell"


def groups_of(runs: pd.DataFrame, factor: str) -> dict[int, str]:
    """run id → its group's label under ``factor``."""
    fn = FACTORS[factor]
    return {int(i): str(fn(s)) for i, s in zip(runs["id"], runs["spec"])}


def stats(values: np.ndarray, band: str) -> tuple[float, float, float]:
    """Mean and band (min–max, or the 95% t interval of the mean) of the finite values."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return (math.nan,) * 3
    m = float(v.mean())
    if band == "min–max" or v.size < 2:
        return m, float(v.min()), float(v.max())
    h = t95(v.size) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - h, m + h


# ------------------------------------------------------------------------------------------------
# Per run: what went wrong
# ------------------------------------------------------------------------------------------------

def _num(r: dict, key: str) -> float:
    v = r.get(key)
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def norm_evidence(r: dict) -> float:
    """The run's largest gradient norm that counts toward 'exploding' (rnnlab.health.norm_explodes, the
    rule of models.diagnose): its training epochs' largest pre-clip step norm (grad_norm_max), and its
    norm at initialization (grad_norm_init) only when that one is an explosion: not when the gradient
    at initialization shrinks going back in every layer (log_ratio_init ≤ 0). NaN when none is known."""
    trained, init = _num(r, "grad_norm_max"), _num(r, "grad_norm_init")
    if not health.norm_explodes(init, at_init=True, log_ratios=[_num(r, "log_ratio_init")]):
        return trained
    return init if math.isnan(trained) else max(trained, init)


def run_flags(r: dict) -> list[str]:
    """The problems of one finished run, worst first: 'non-finite', 'exploding', 'saturated', 'dead',
    'vanishing'. ``r`` holds its status, final val_loss and log_ratio, its baselines (baseline_loss,
    baseline_heldout_loss) and db.queries.run_health's columns (the gradient norms through
    norm_evidence)."""
    out = []
    loss = _num(r, "val_loss")
    if r.get("status") == "diverged" or _num(r, "nonfinite_steps") > 0 or loss in (math.inf, -math.inf):
        out.append("non-finite")
    if health.is_exploding(norm_evidence(r), _num(r, "spike"), _num(r, "rho_growth"), _num(r, "log_ratio_max")):
        out.append("exploding")
    if _num(r, "saturated_frac") >= health.SATURATED_FRAC:
        out.append("saturated")
    no_gradient = _num(r, "steps_in_past_min") == 0 and no_gradient_is_dead(
        loss, baseline_of(_num(r, "baseline_heldout_loss"), _num(r, "baseline_loss")))
    if _num(r, "dead_frac") >= health.DEAD_FRAC or no_gradient:
        out.append("dead")
    if _num(r, "log_ratio") < health.VANISH_LOG_RATIO:
        out.append("vanishing")
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(d, dict):
        return {prefix: json.dumps(d, sort_keys=True)}
    out: dict[str, str] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def canonical(spec: Any) -> dict:
    """The spec's canonical form (rnnlab.spec.JobSpec.canonical: what is trained, equivalent specs equal:
    activation null and 'tanh', init.bias null and the one it resolves to), the stored dict itself when it
    no longer validates. What confounds and confounds_between compare."""
    if not isinstance(spec, dict):
        return {}
    try:
        return JobSpec.model_validate({k: v for k, v in spec.items() if k != "spec_version"}).canonical()
    except Exception:   # an old or hand-edited spec: compared as stored
        return spec


def _flat_canonical(spec: Any) -> dict[str, str | None]:
    """The canonical spec flattened, without IGNORED_FIELDS; None for a field APPLIES_ONLY says this spec
    cannot set (it is compared only between runs that can)."""
    f: dict[str, str | None] = dict(_flatten(canonical(spec)))
    for k, (on, values) in APPLIES_ONLY.items():
        if k in f and f.get(on) not in values:
            f[k] = None
    return {k: v for k, v in f.items() if k.split(".")[0] not in IGNORED_FIELDS}


def confounds(specs: list[dict]) -> dict[str, list[str]]:
    """Spec fields (dotted paths, of the canonical form) whose values differ between ``specs``, ignoring
    IGNORED_FIELDS: {field: its distinct values}. A field missing from some specs shows as '—'."""
    flat = [_flat_canonical(s) for s in specs]
    fields = sorted({k for f in flat for k in f if k.split(".")[0] not in IGNORED_FIELDS})
    out = {}
    for k in fields:
        values = sorted({f.get(k, "—") for f in flat} - {None})
        if len(values) > 1:
            out[k] = values
    return out


def _owned(field: str, owned: tuple[str, ...]) -> bool:
    return any(field == f or field.startswith(f + ".") for f in owned)


def confounds_between(specs: dict[str, list[dict]], factor: str) -> dict[str, dict[str, list[str]]]:
    """Spec fields other than the factor's own (FACTOR_FIELDS) and IGNORED_FIELDS that set groups apart:
    {field: {group: its distinct values}}, over ``specs`` (group → the specs of its runs that count),
    for each field on which two groups share no value (the LSTMs ran the copy task, the GRUs adding;
    one group at T = 10, the other at T = 400): such groups differ in more than the factor. A field
    whose values overlap between the groups but vary inside one (one LSTM seed at another lr) is a
    within-group confound (confounds), named but not this. Specs are compared as confounds compares
    them (canonical form, without IGNORED_FIELDS); a field APPLIES_ONLY says a group's runs cannot set
    (the GRUs' init.forget_bias) is compared between the other groups only."""
    owned = FACTOR_FIELDS[factor]
    flat = {g: [_flat_canonical(x) for x in xs] for g, xs in specs.items() if xs}
    if len(flat) < 2:
        return {}
    fields = sorted({k for fs in flat.values() for f in fs for k in f
                     if k.split(".")[0] not in IGNORED_FIELDS and not _owned(k, owned)})
    out = {}
    for k in fields:
        per = {g: sorted({f.get(k, "—") for f in fs} - {None}) for g, fs in flat.items()}
        per = {g: v for g, v in per.items() if v}   # groups that cannot set the field (APPLIES_ONLY) leave it
        sets = [set(v) for v in per.values()]
        if any(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:]):
            out[k] = per
    if "task.name" in out:   # different tasks: their own fields (n_copy on copy, variant on adding) follow
        out = {k: v for k, v in out.items()
               if not (k.startswith("task.") and k != "task.name" and any("—" in x for x in v.values()))}
    return out


def between_text(between: dict[str, dict[str, list[str]]], max_groups: int = 4) -> str:
    """confounds_between in words: 'task.name: "adding" (gru), "copy" (lstm)', values with their groups."""
    parts = []
    for k, per in between.items():
        by_value: dict[str, list[str]] = {}
        for g, vs in per.items():
            by_value.setdefault(", ".join(vs), []).append(g)
        vals = []
        for v, gs in by_value.items():
            more = f" and {len(gs) - max_groups} more" if len(gs) > max_groups else ""
            vals.append(f"{v} ({', '.join(gs[:max_groups])}{more})")
        parts.append(f"{k}: {'; '.join(vals)}")
    return " · ".join(parts)


# ------------------------------------------------------------------------------------------------
# Per group
# ------------------------------------------------------------------------------------------------

def _baselines(done: pd.DataFrame) -> pd.Series:
    """Each run's baseline (health.baseline_of): its held-out one when stored, else the analytic one. The
    one baseline of a run, for its loss ÷ baseline, its solve rate and whether its group beats it."""
    return pd.Series([baseline_of(h, a) for h, a in zip(done["baseline_heldout_loss"], done["baseline_loss"])],
                     index=done.index, dtype=float)


def _beats(done: pd.DataFrame) -> tuple[float, float, str]:
    """(mean loss ÷ baseline, its upper 95% bound, the basis of that bound) over the finished runs.
    The baseline is the trivial predictor on the run's own held-out set when stored, else the analytic one.
    Bound: with n ≥ 2 runs, the seeds' t interval (its spread already holds each run's held-out noise);
    when every run has a stored standard error (val_loss_se), the wider of that and 1.96·√(ΣSE²)/n (the
    held-out noise alone, a floor for seeds that agree by chance); one run: its SE, else a NO_SE_MARGIN
    margin."""
    base = _baselines(done)
    r = (done["val_loss"].astype(float) / base).to_numpy(dtype=float)
    if r.size == 0 or not np.isfinite(r).all():
        return math.nan, math.inf, "a run's loss or baseline is not finite"
    se = (done["val_loss_se"].astype(float) / base).to_numpy(dtype=float)
    m, n = float(r.mean()), r.size
    by_se = m + 1.96 * math.sqrt(float((se ** 2).sum())) / n if np.isfinite(se).all() else math.nan
    by_seeds = m + t95(n) * float(r.std(ddof=1)) / math.sqrt(n) if n >= 2 else math.nan
    if math.isfinite(by_seeds) and not by_se > by_seeds:
        return m, by_seeds, f"spread over {n} seeds"
    if math.isfinite(by_se):
        return m, by_se, "held-out standard errors"
    return m, m + NO_SE_MARGIN, f"one run, no standard error stored: a {NO_SE_MARGIN:.0%} margin"


def _log_interval(logv: np.ndarray, loss: np.ndarray, se: np.ndarray, base: np.ndarray
                  ) -> tuple[float, float, float, float, float]:
    """(mean, 95% CI low and high, and the interval _order compares: low, high) of per-run log10 values
    ``logv`` (log10 loss, or log10 loss ÷ baseline with ``base`` the divisors; NaN skipped). The interval
    compared is the seeds' 95% CI; with one finite run, ±1.96 SE of its loss, else the point."""
    m, lo, hi = stats(logv, "95% CI")
    ok = np.isfinite(logv)
    if ok.sum() >= 2 and math.isfinite(lo):
        return m, lo, hi, lo, hi
    if ok.sum() == 1:
        i = int(np.flatnonzero(ok)[0])
        x, e, b = float(loss[i]), float(se[i]), float(base[i])
        if math.isfinite(e) and x > 0:
            return m, lo, hi, math.log10(max(x - 1.96 * e, x * 1e-6) / b), math.log10((x + 1.96 * e) / b)
    return m, lo, hi, m, m


def _seeds_text(r: dict) -> str:
    """'3 seeds', or 'one seed: anecdotal', and the runs left out of the group's numbers: those not
    finished (queued, running, failed, cancelled) and finished ones without a final loss."""
    out = "one seed: anecdotal" if r["seeds"] < 2 else f"{r['seeds']} seeds"
    left = r["_left_out"]
    if left:
        n = sum(left.values())
        what = ", ".join(f"{v} {k}" for k, v in left.items())
        out += f" ({n} of its {r['runs']} runs left out: {what})"
    return out


def _group_row(grp: str, g: pd.DataFrame) -> dict[str, Any]:
    done = g[g["status"].isin(FINISHED)]
    # the seeds behind the numbers: finished runs with a result (a final loss, or diverged); a finished
    # run without a final loss is left out of the loss, loss ÷ baseline and solve rate (it made them NaN)
    usable = done[(done["status"] == "diverged") | done["val_loss"].astype(float).notna()]
    # a diverged run did not solve it, whatever its last loss: the engine skips the non-finite step's
    # update, so a run that broke off can end on a finite, even tiny, loss; only its status says so
    base = _baselines(usable)
    solves = [solved(loss, b) and status != "diverged"
              for loss, b, status in zip(usable["val_loss"].astype(float), base, usable["status"])]
    loss = usable["val_loss"].to_numpy(dtype=float)
    se = usable["val_loss_se"].to_numpy(dtype=float)
    # 0 counts as the floor; NaN stays NaN (np.fmax alone would floor it: a diverged seed as the best loss)
    floored = np.where(np.isnan(loss), np.nan, np.fmax(loss, LOSS_FLOOR))
    b = base.to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        logl = np.log10(floored)
        logr = np.log10(floored / np.where(b > 0, b, np.nan))
    m, lo, hi, ilo, ihi = _log_interval(logl, loss, se, np.ones_like(loss))
    rm, rlo, rhi, rilo, rihi = _log_interval(logr, loss, se, b)
    no_base = int(sum(not (math.isfinite(x) and x > 0) for x in base))
    mean_r, upper, basis = _beats(usable) if len(usable) else (
        math.nan, math.inf, "no finished runs" if done.empty else "no final loss")
    flags = {f: sum(f in fl for fl in done["_flags"]) for f in (*health.BROKEN, "vanishing")}
    lr = done["log_ratio"].to_numpy(dtype=float)
    lr = lr[~np.isnan(lr)]
    conf = confounds(list(usable["spec"]))   # the runs that count (a queued one at another lr does not)
    left = {str(k): int(v) for k, v in g[~g["status"].isin(FINISHED)]["status"].value_counts().items()}
    if len(done) > len(usable):
        left["finished without a final loss"] = len(done) - len(usable)
    # the horizon is counted over the probe sequence (RunInfo.seq_len: T + 2·n_copy on copy, up to
    # 1.1T − 1 on adding p13), not the spec's T: each run's reach is its horizon ÷ (its length − 1)
    lens = done["probe_len"] if len(done) else g["probe_len"]
    hz = done[done["horizon"].notna()]
    hfrac = [min(h / max(n - 1, 1), 1.0) for h, n in zip(hz["horizon"].astype(float), hz["probe_len"])]
    return {
        "group": grp, "runs": len(g), "finished": len(done), "seeds": int(usable["seed"].nunique()),
        "diverged": int((done["status"] == "diverged").sum()),
        # a run whose baseline is unknown (no runs.info, or 0) may or may not have solved it: no rate then
        "solve rate": sum(solves) / len(usable) if len(usable) and not no_base else math.nan,
        "final loss": 10 ** m if math.isfinite(m) else math.nan,
        "loss 95% CI": f"{10 ** lo:.3g} – {10 ** hi:.3g}" if math.isfinite(lo) and len(done) > 1 else "",
        "loss ÷ baseline": mean_r, "beats baseline": bool(upper < 1),
        "horizon (steps)": float(done["horizon"].mean()) if done["horizon"].notna().any() else math.nan,
        "‖g_1‖/‖g_T‖": float(10 ** lr.mean()) if lr.size else math.nan,   # geometric mean (0 if one is 0)
        "decay / step": float(done["decay_per_step"].mean()) if done["decay_per_step"].notna().any() else math.nan,
        "non-finite steps": int(pd.to_numeric(done["nonfinite_steps"], errors="coerce").fillna(0).sum()),
        "saturated": float(done["saturated_frac"].max()) if done["saturated_frac"].notna().any() else math.nan,
        "flags": ", ".join(f"{f} {k}/{len(done)}" for f, k in flags.items() if k),
        "confounded": "; ".join(f"{k}: {', '.join(v)}" for k, v in conf.items()),
        "T": int(lens.max()) if len(lens) else 0,
        "_lo": lo, "_hi": hi, "_m": m, "_ilo": ilo, "_ihi": ihi,
        # log10 loss ÷ baseline: what the ranking and the sureness compare (groups on different tasks or T
        # have different baselines; within one task and T it orders as the loss does)
        "_rm": rm, "_rlo": rlo, "_rhi": rhi, "_rilo": rilo, "_rihi": rihi,
        "_upper": upper, "_basis": basis, "_counted": len(usable), "_no_baseline": no_base,
        "_hfrac": float(np.mean(hfrac)) if hfrac else math.nan,
        "_flags": flags, "_confounds": conf, "_log_ratio": float(lr.mean()) if lr.size else math.nan,
        "_broken": [f for f in health.BROKEN if flags[f]], "_left_out": left, "_specs": list(usable["spec"]),
        # the norms that count (norm_evidence): not a large one at initialization whose gradient shrinks going back
        "_grad_norm_max": float(done["_norm"].max()) if done["_norm"].notna().any() else math.nan,
        "_rho_growth": float(done["rho_growth"].max()) if done["rho_growth"].notna().any() else math.nan,
    }


HEALTH_COLUMNS = ("baseline_heldout_loss", "val_loss_se", "nonfinite_steps", "grad_norm_max", "spike", "rho_growth",
                  "saturated_frac", "dead_frac", "log_ratio_max", "steps_in_past_min", "grad_norm_init",
                  "log_ratio_init")


def probe_len(info: Any, spec_T: Any, spec: Any = None) -> int:
    """The length of the sequence a run's horizon is counted over: its RunInfo.seq_len (the probe batch's
    T, stored in runs.info: T + 2·n_copy on copy, a length in [T, 1.1T) on adding p13), else (no info
    stored: an old run) the longest sequence its ``spec`` unrolls (JobSpec.steps: T + 2·n_copy on copy,
    up to 1.1T − 1 on adding p13), else the spec's task.seq_len ``spec_T``."""
    n = info.get("seq_len") if isinstance(info, dict) else None
    if isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) and n >= 1:
        return int(n)
    if isinstance(spec, dict):
        try:
            return JobSpec.model_validate({k: v for k, v in spec.items() if k != "spec_version"}).steps
        except Exception:   # an old or hand-edited spec: its T
            pass
    return int(spec_T)


def per_run(runs: pd.DataFrame, final: pd.DataFrame, groups: dict[int, str],
            health_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: status, seed, baselines, spec, the length its horizon is counted over
    (probe_len), final loss and profile summary, health evidence, its group, the gradient norm that
    counts toward 'exploding' (_norm: norm_evidence) and its flags (run_flags)."""
    d = runs[["id", "status", "seed", "baseline_loss", "seq_len", "spec"]].merge(
        final, left_on="id", right_on="run_id", how="left")
    infos = runs["info"] if "info" in runs else [None] * len(runs)
    d["probe_len"] = [probe_len(i, t, s) for i, t, s in zip(infos, runs["seq_len"], runs["spec"])]
    if health_rows is not None and len(health_rows):
        d = d.drop(columns=[c for c in HEALTH_COLUMNS if c in d]).merge(
            health_rows, left_on="id", right_on="run_id", how="left", suffixes=("", "_h"))
    for c in ("val_loss", "horizon", "decay_per_step", "log_ratio", *HEALTH_COLUMNS):
        if c not in d:
            d[c] = math.nan
    d["group"] = d["id"].map(groups)
    recs = d.to_dict("records")
    d["_norm"] = [norm_evidence(r) for r in recs]
    d["_flags"] = [run_flags(r) for r in recs]
    return d


def _evidence(r: dict) -> tuple[float, float, float]:
    """The tie-break of groups within noise on loss ÷ baseline, smaller first: −horizon ÷ (T − 1), each
    run's over the length of its own probe sequence (RunInfo.seq_len), capped at 1, averaged over the
    group (_hfrac); |log10 ‖g_1‖/‖g_T‖| (closest to 1 either way: shrinking toward vanishing and growing
    toward an explosion are both worse than flat; unknown is worst); −solve rate."""
    hfrac = r["_hfrac"] if math.isfinite(r["_hfrac"]) else -1.0
    lr = abs(r["_log_ratio"]) if not math.isnan(r["_log_ratio"]) else math.inf
    return -hfrac, lr, -r["solve rate"]


def _order(out: pd.DataFrame, mixed: bool = False) -> tuple[list[int], list[int | None]]:
    """(position, rank) of each group. Ranked (1, 2, …) are only the groups that beat the baseline and
    are not broken; those whose loss ÷ baseline is within noise of the lowest one come first, ordered by
    _evidence (horizon ÷ (T − 1), then ‖g_1‖/‖g_T‖ closest to 1, then solve rate), then the others by
    loss ÷ baseline (geometric mean), lowest first. Unranked, in this order, each by loss ÷ baseline:
    healthy groups that did not beat it, broken groups, groups without finished runs. ``mixed``: the
    groups differ in more than the factor (confounds_between): none is ranked, and all are ordered by
    loss ÷ baseline alone, whether they beat their baselines or not (their horizons and baselines are not
    of the same task), an unknown one last."""
    recs = out.to_dict("records")
    tier = [3 if r["finished"] == 0 else 2 if r["_broken"] else 0 if r["beats baseline"] else 1 for r in recs]
    top = [r for r, k in zip(recs, tier) if k == 0]
    best_hi = min(top, key=lambda r: r["_rm"])["_rihi"] if top else math.nan
    keys = []
    for r, k in zip(recs, tier):
        m = r["_rm"] if math.isfinite(r["_rm"]) else math.inf
        if mixed:   # loss ÷ baseline alone, whether a group beats its baseline or not (unknown last)
            keys.append((0, 0, 0.0, 0.0, 0.0, m))
        elif k == 0 and r["_rilo"] <= best_hi:
            keys.append((0, 0, *_evidence(r), m))
        elif k == 0:
            keys.append((0, 1, 0.0, 0.0, 0.0, m))
        else:
            keys.append((k, 0, 0.0, 0.0, 0.0, m))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    pos = [0] * len(keys)
    for p, i in enumerate(order):
        pos[i] = p
    return pos, [pos[i] + 1 if tier[i] == 0 and not mixed else None for i in range(len(keys))]


def summary(runs: pd.DataFrame, final: pd.DataFrame, groups: dict[int, str],
            health_rows: pd.DataFrame | None = None, factor: str | None = None) -> pd.DataFrame:
    """One row per group, best first (``rank`` only for groups that may be called best): runs, solve
    rate, final loss (geometric mean, 95% CI), loss ÷ baseline and whether it beats the baseline with its
    uncertainty, horizon, ‖g_1‖/‖g_T‖, non-finite steps, saturation, flags, confounding fields and a
    verdict. Only finished runs with a result count (seeds; the others are named in the verdict as left
    out). ``factor``: the one ``groups`` was made by (default: the FACTORS entry whose labels they are);
    groups whose finished runs differ in another spec field (confounds_between) are confounded between
    groups: none is ranked and each verdict says so. Columns starting with '_' are for overall() and the
    JSON output."""
    d = per_run(runs, final, groups, health_rows)
    out = pd.DataFrame([_group_row(grp, g) for grp, g in d.groupby("group", sort=False)])
    if out.empty:
        return out
    factor = factor or _factor_of(runs, groups)
    between = confounds_between(dict(zip(out["group"], out["_specs"])), factor) if factor else {}
    out["_between"] = [{k: per[g] for k, per in between.items() if g in per} for g in out["group"]]
    out["confounded"] = [c if not b else "; ".join(x for x in (c, "between groups: " + _fields_text(b)) if x)
                         for c, b in zip(out["confounded"], out["_between"])]
    pos, rank = _order(out, mixed=bool(between))
    out.insert(0, "rank", pd.array(rank, dtype="Int64"))
    out["verdict"] = [verdict(r) for r in out.to_dict("records")]
    return out.assign(_pos=pos).sort_values("_pos").drop(columns="_pos").reset_index(drop=True)


def _factor_of(runs: pd.DataFrame, groups: dict[int, str]) -> str | None:
    """The FACTORS entry whose labels ``groups`` are (groups_of(runs, it) == groups), else None."""
    for name in FACTORS:
        if groups_of(runs, name) == groups:
            return name
    return None


# ------------------------------------------------------------------------------------------------
# Words
# ------------------------------------------------------------------------------------------------

def pct(x: float, sig: int = 3) -> str:
    """``x`` as a percentage with ``sig`` significant digits (0.996 → '99.6%', 2.479 → '248%'; below
    0.1%, two digits in e-notation: 6e-6 → '0.0006%'), never 0% unless it is 0, and never 100% or more
    when x < 1: the digits grow until the text falls below 100, up to sig + 3 of them; past that it
    reads '<100%'. So an upper bound that beats the baseline (< 1) never reads as 100%, a tiny ratio
    never reads as 0%, and a solve rate of 199/200 reads 99.5%, not 100%. NaN reads 'unknown'."""
    p = 100 * x
    if math.isnan(p):
        return "unknown"
    if not math.isfinite(p) or p == 0:
        return f"{p:g}%"
    if abs(p) < 0.1:
        return f"{p:.2g}%"
    first = math.floor(math.log10(abs(p)))
    for digits in range(sig, sig + 4):
        text = f"{p:.{max(digits - 1 - first, 0)}f}"
        if not (p < 100 <= float(text)):
            return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
    return "<100%"


_g = health.fmt   # 3 significant digits, as models.diagnose prints: a norm of 1265 reads 1.26e+03, not 1e+03


def _reach(h: float, T: int, frac: float | None = None) -> str:
    """The horizon ``h`` over a probe sequence of ``T`` steps in words; ``frac`` (the group's _hfrac: each
    run's horizon ÷ its own length − 1, capped at 1) says whether every run reached its whole sequence."""
    whole = frac >= 1 if frac is not None and math.isfinite(frac) else h >= T - 1
    return f"the whole sequence ({T - 1} steps)" if whole else f"≈{h:.0f} of {T} steps"


def problems(r: dict) -> list[str]:
    """The group's flags in words, worst first, e.g. 'exploding in 3/3 runs (gradient norm up to 3.9e+06,
    ρ(W_hh) grew 6.8e+03×)'."""
    fin, f, out = r["finished"], r["_flags"], []
    if f["non-finite"]:
        out.append(f"non-finite in {f['non-finite']}/{fin} runs "
                   f"({r['non-finite steps']} steps, {r['diverged']} diverged)")
    if f["exploding"]:
        big = math.isfinite(r["_grad_norm_max"]) and r["_grad_norm_max"] >= health.EXPLODE_NORM
        why = [f"gradient norm up to {_g(r['_grad_norm_max'])}" if big else "",
               f"ρ(W_hh) grew {_g(r['_rho_growth'])}×" if r["_rho_growth"] >= health.RHO_GROWTH else ""]
        why = [w for w in why if w]
        out.append(f"exploding in {f['exploding']}/{fin} runs" + (f" ({', '.join(why)})" if why else ""))
    if f["saturated"]:
        out.append(f"saturated in {f['saturated']}/{fin} runs (up to {pct(r['saturated'], 2)} of units)")
    if f["dead"]:
        out.append(f"dead in {f['dead']}/{fin} runs (dead units or no gradient at any step)")
    return out


def _unknown_baseline(r: dict) -> str:
    """Why a group with a finite final loss has no loss ÷ baseline: some of its runs have no baseline
    (no runs.info stored, an old run, or a baseline of 0); '' when that is not why."""
    n = r.get("_no_baseline", 0)
    if not n or not math.isfinite(r["final loss"]):
        return ""
    return (f"baseline unknown for {n} of its {r.get('_counted', r['finished'])} counted runs (no stored trivial "
            f"baseline, or one of 0): final loss {r['final loss']:.3g}, not compared with the baseline")


def _learning(r: dict) -> str:
    fin, ratio, upper = r["finished"], r["loss ÷ baseline"], r["_upper"]
    if not math.isfinite(ratio):
        return _unknown_baseline(r) or "no finite final loss"
    bound = f"loss at {pct(ratio)} of the baseline, 95% upper bound {pct(upper)} ({r['_basis']})"
    if not r["beats baseline"]:
        return f"no better than the trivial baseline ({bound})"
    if r["solve rate"] >= 0.8:
        n = r.get("_counted", fin)
        return f"solves the task ({round(r['solve rate'] * n)}/{n} runs); {bound}"
    return f"beats the baseline, partly learns ({bound})"


def verdict(r: dict) -> str:
    """A plain-words verdict for one group: its problems, learning, gradient reach, confounds, seeds."""
    fin = r["finished"]
    if fin == 0:
        left = r.get("_left_out") or {}
        return "no finished runs yet" + (f" ({', '.join(f'{v} {k}' for k, v in left.items())})" if left else "")
    parts = problems(r) + [_learning(r)]
    h, g = r["horizon (steps)"], r["‖g_1‖/‖g_T‖"]
    ratio = f" (‖g_1‖/‖g_T‖ ≈ {_g(g)})" if math.isfinite(g) else ""
    if math.isfinite(h):
        whole = _reach(h, r["T"], r["_hfrac"]).startswith("the whole")
        parts.append(("gradients reach all the way back" if whole
                      else f"gradients reach ≈{h:.0f} of {r['T']} steps back") + ratio)
    if r["_confounds"]:
        parts.append("confounded: " + _fields_text(r["_confounds"]))
    if r.get("_between"):
        parts.append(f"differs from the other groups in more than the factor ({_fields_text(r['_between'])})")
    parts.append(_seeds_text(r))
    return "; ".join(parts)


def _decided_by(best: dict, second: dict) -> str:
    """The tie-break key (_evidence) that put ``best`` before ``second``, in words with both values."""
    a, b = _evidence(best), _evidence(second)
    if a[0] != b[0]:
        return (f"gradient evidence (horizon {_reach(best['horizon (steps)'], best['T'], best['_hfrac'])} vs "
                f"{_reach(second['horizon (steps)'], second['T'], second['_hfrac'])})")
    if a[1] != b[1]:
        return f"gradient evidence (‖g_1‖/‖g_T‖ ≈ {_g(best['‖g_1‖/‖g_T‖'])} vs {_g(second['‖g_1‖/‖g_T‖'])})"
    if a[2] != b[2]:
        return f"solve rate ({pct(best['solve rate'], 2)} vs {pct(second['solve rate'], 2)})"
    return "the order of the groups (every tie-break is equal)"


def _sureness(best: dict, second: dict) -> str:
    """How sure the order of ``best`` and ``second`` is, from the seeds with a result (seeds) and the 95%
    intervals of their mean log10 loss ÷ baseline (_rlo, _rhi), the quantity they are ranked by."""
    if _unknown_baseline(second):
        return (f"{second['group']}'s baseline is unknown, so its loss is not compared with {best['group']}'s "
                f"loss ÷ baseline: nothing is concluded about it.")
    if min(best["seeds"], second["seeds"]) < 2:
        return "With a single seed per group this is a hint, not a result: add seeds."
    if math.isfinite(best["_rhi"]) and math.isfinite(second["_rlo"]) and best["_rhi"] < second["_rlo"]:
        return ("Their 95% intervals of the final loss ÷ baseline (log scale) do not overlap: the difference is "
                "clear with these seeds.")
    if best["solve rate"] == 1 and second["solve rate"] == 0:
        return (f"Every run of {best['group']} solves the task and none of {second['group']} does, but with "
                f"{int(min(best['seeds'], second['seeds']))} seeds the 95% intervals still overlap: consistent, "
                "add seeds to be sure.")
    return "Their 95% intervals overlap: not separable with these seeds; add seeds before concluding."


def _fields_text(fields: dict[str, list[str]], sep: str = "; ") -> str:
    return sep.join(f"{k}: {', '.join(v)}" for k, v in fields.items())


def _tail(t: pd.DataFrame, all_rows: pd.DataFrame | None = None) -> str:
    flagged = [f"**{r['group']}**: {'; '.join(problems(r))}" for r in t.to_dict("records") if r["_broken"]]
    conf = [f"**{r['group']}** ({_fields_text(r['_confounds'])})" for r in t.to_dict("records") if r["_confounds"]]
    rows = (all_rows if all_rows is not None else t).to_dict("records")
    left = [f"{r['group']} {sum(r['_left_out'].values())} ("
            + ", ".join(f"{v} {k}" for k, v in r["_left_out"].items()) + ")" for r in rows if r["_left_out"]]
    out = ""
    if flagged:
        out += " Flagged, never ranked first: " + " · ".join(flagged) + "."
    if conf:
        out += " Confounded (other spec fields vary within the group): " + " · ".join(conf) + "."
    if left:
        out += (" Left out (only finished runs with a result count, seeds included): " + " · ".join(left) + ".")
    return out


def _between_of(t: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """The groups' _between back as confounds_between's {field: {group: values}}."""
    between: dict[str, dict[str, list[str]]] = {}
    for r in t.to_dict("records"):
        for k, v in r["_between"].items():
            between.setdefault(k, {})[r["group"]] = v
    return between


def _mixed(t: pd.DataFrame, factor: str, all_rows: pd.DataFrame) -> str:
    """The conclusion when the groups differ in more than ``factor`` (confounds_between): no best group,
    the fields that set them apart, and the order by loss ÷ baseline, which is all they share."""
    between = _between_of(t)
    order = [f"{r['group']} {pct(r['loss ÷ baseline'])}" for r in t.to_dict("records")
             if math.isfinite(r["loss ÷ baseline"])]
    return (f"No best {factor}: the groups differ in more than the {factor} ({between_text(between)}), so their "
            f"results do not compare the {factor} alone, and none is ranked. Compare groups that differ only in "
            f"the {factor} (one task, one T), or group by another factor."
            + (f" By loss ÷ baseline (each run's own baseline): {', '.join(order)}." if order else "")
            + _tail(t, all_rows))


def overall(table: pd.DataFrame, factor: str) -> str:
    """The conclusion in markdown: the best group (only one that beats the baseline with its uncertainty
    and is not broken, among groups that differ in nothing but ``factor``), how sure we can be, and every
    flagged, confounded or incomplete group by name."""
    t = table[table["finished"] > 0]
    if t.empty:
        return "No finished runs yet: nothing to conclude." + _tail(t, table)
    rows = t.to_dict("records")
    mixed = any(r.get("_between") for r in rows)
    if mixed and any(r["beats baseline"] and not r["_broken"] for r in rows):   # ordered by loss ÷ baseline alone
        return _mixed(t, factor, table)
    best = rows[0] if rows[0]["beats baseline"] and not rows[0]["_broken"] else None
    if best is None:
        if all(r["diverged"] == r["finished"] for r in rows):
            n = sum(r["finished"] for r in rows)
            why = f"every finished run diverged ({n} of {n}: a non-finite loss or gradient ended each)"
        elif all(_unknown_baseline(r) for r in rows):
            why = ("no trivial baseline is known to compare the losses with (the runs have none stored, or one "
                   "of 0)")
        elif any(r["beats baseline"] for r in rows):
            why = "the groups that beat the trivial baseline exploded, saturated or died"
        elif unknown := [r["group"] for r in rows if _unknown_baseline(r)]:
            why = (f"none with a known baseline beats it, with its uncertainty, and {', '.join(map(str, unknown))} "
                   f"{'has' if len(unknown) == 1 else 'have'} no trivial baseline to compare with (no stored one, "
                   "or one of 0), so nothing is concluded about "
                   f"{'it' if len(unknown) == 1 else 'them'}")
        else:
            why = "none beat the trivial baseline, with its uncertainty"
        also = f" The groups also differ in more than the {factor} ({between_text(_between_of(t))})." if mixed else ""
        head = ("No group can be ranked" if why.startswith(("no trivial baseline", "none with a known"))
                else "No group solved the task")
        return f"{head}: {why}.{also}{_tail(t, table)}"
    lead = (f"Best {factor} here: **{best['group']}** (loss at {pct(best['loss ÷ baseline'])} of the baseline, "
            f"solve rate {pct(best['solve rate'], 2)}, final loss {best['final loss']:.3g}")
    h = best["horizon (steps)"]
    lead += f", horizon {_reach(h, best['T'], best['_hfrac'])})." if math.isfinite(h) else ")."
    others = [r for r in rows[1:] if r["seeds"] > 0]   # a group with no run that has a result is not compared
    if not others:
        if len(rows) == 1:
            return f"{lead} Only one {factor} value has finished runs: add the others to compare.{_tail(t, table)}"
        return (f"{lead} No other {factor} value has a finished run with a result to compare with."
                f"{_tail(t, table)}")
    second = others[0]
    if second["_broken"]:
        hint = " One seed per group: a hint, not a result; add seeds." if best["seeds"] < 2 else ""
        return f"{lead} Every other group is flagged or does not beat the baseline.{hint}{_tail(t, table)}"
    if _unknown_baseline(second):
        lead += f" Runner-up {second['group']} (final loss {second['final loss']:.3g}, its baseline unknown)."
    else:
        lead += (f" Runner-up {second['group']} (loss at {pct(second['loss ÷ baseline'])} of the baseline, "
                 f"solve rate {pct(second['solve rate'], 2)}, final loss {second['final loss']:.3g}"
                 + ("" if second["beats baseline"] else ", does not beat the baseline") + ").")
    if second["beats baseline"] and best["_rm"] > second["_rm"]:
        lead += (f" {second['group']}'s loss ÷ baseline is lower but within noise of {best['group']}'s; "
                 f"{best['group']} ranks first on {_decided_by(best, second)}.")
    return f"{lead} {_sureness(best, second)}{_tail(t, table)}"


def public(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The summary as JSON-ready records (for ``rnnlab compare --json``)."""
    out = []
    for r in table.to_dict("records"):
        out.append({
            "rank": None if pd.isna(r["rank"]) else int(r["rank"]), "group": r["group"], "runs": int(r["runs"]),
            "finished": int(r["finished"]),
            "seeds": int(r["seeds"]), "diverged": int(r["diverged"]), "solve_rate": _j(r["solve rate"]),
            "final_loss": _j(r["final loss"]), "loss_over_baseline": _j(r["loss ÷ baseline"]),
            "loss_over_baseline_upper95": _j(r["_upper"]), "uncertainty": r["_basis"],
            "beats_baseline": bool(r["beats baseline"]), "horizon": _j(r["horizon (steps)"]), "T": int(r["T"]),
            "g1_over_gT": _j(r["‖g_1‖/‖g_T‖"]), "nonfinite_steps": int(r["non-finite steps"]),
            "saturated_frac": _j(r["saturated"]), "flags": {k: int(v) for k, v in r["_flags"].items() if v},
            "broken": list(r["_broken"]), "confounded": r["_confounds"],
            "confounded_between_groups": r["_between"], "left_out": r["_left_out"], "verdict": r["verdict"],
        })
    return out


def _j(x: Any) -> Any:
    """JSON-safe number (rnnlab.records.encode_float): NaN and ±inf become 'NaN', 'Infinity', '-Infinity'."""
    return None if x is None else encode_float(float(x))
