"""The Explorer's logic: one row per run with its flattened spec and its outcomes, the spec fields a
set of runs varies, the phase-diagram grid (mean over seeds per cell, seed counts, diverged and
died marks) and the run ids behind a chart selection. Pure pandas/numpy: no Streamlit, no database."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# Outcome label → how it is computed from a row of db.queries.explore_runs
OUTCOMES = ("loss ÷ baseline", "metric", "horizon", "log10 ‖g_1‖/‖g_T‖", "ρ", "σ_max", "saturation", "diverged")
DIED = ("failed",)             # the run stopped without a result (engine error, lost too often)
FINISHED = ("succeeded", "diverged", "failed")
META = ("id", "status", "name")
NOT_FACTORS = ("seed", "name")  # spec fields that never count as a swept factor
# A run that broke off: diverged (its last probe was taken on the epoch where training stopped, on
# non-finite gradients or weights) or died (failed wherever it was)
BROKE_OFF = ("diverged", *DIED)
# Outcomes that measure the configuration at the end of training (every one but 'diverged'): a run
# that broke off has no value of them (NaN), since its last epoch, probe and spectra are of where
# training stopped; every chart and phase cell draws or marks it, never averages it with finished runs
AT_END = tuple(o for o in OUTCOMES if o != "diverged")
COMPARE_MAX = 12


def _flatten(d: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        else:
            out[key] = str(v) if isinstance(v, (list, tuple)) else v


def flat_specs(specs: list[dict]) -> pd.DataFrame:
    """Spec dicts → one column per dotted field. Text fields get '—' for None; numbers keep NaN.
    A dict object that appears many times (explore_runs shares them) is flattened once."""
    first: dict[int, int] = {}
    rows, codes = [], []
    for s in specs:
        k = first.setdefault(id(s), len(rows))
        if k == len(rows):
            row: dict[str, Any] = {}
            _flatten(s or {}, "", row)
            rows.append(row)
        codes.append(k)
    return _typed(pd.DataFrame.from_records(rows)).iloc[codes].reset_index(drop=True)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        if col.notna().any() and not col.map(lambda v: isinstance(v, (bool, str))).any():
            df[c] = pd.to_numeric(col, errors="coerce")  # numbers with None
        else:
            df[c] = col.map(lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else
                            str(v).lower() if isinstance(v, bool) else v).astype(object)
    return df


def outcomes_of(runs: pd.DataFrame) -> pd.DataFrame:
    """The outcome columns (OUTCOMES) of explore_runs rows. Loss ÷ baseline divides by the trivial
    predictor's loss on the run's own held-out set when stored, else the task baseline; 'diverged'
    is 1 for a diverged run, 0 for any other finished run and NaN while a run is unfinished. Every
    other outcome is NaN for a run that broke off (BROKE_OFF: diverged or failed): its last epoch is
    where training stopped, not the trained configuration, so its loss, metric, probe and spectra
    would stand in a cell's mean for a result it never reached ('diverged' and the marks say what
    happened to it)."""
    num = lambda c: pd.to_numeric(runs[c], errors="coerce").astype(float)  # noqa: E731  (None → NaN)
    held, task = num("baseline_heldout_loss"), num("baseline_loss")
    base = held.where(held > 0, task)
    loss = num("last_val_loss")
    finished = runs["status"].isin(FINISHED)
    at_end = lambda c: c.mask(runs["status"].isin(BROKE_OFF))  # noqa: E731
    return pd.DataFrame({
        "loss ÷ baseline": at_end(loss / base.where(base > 0)),
        "metric": at_end(num("last_val_metric")),
        "horizon": at_end(num("last_horizon")),
        "log10 ‖g_1‖/‖g_T‖": at_end(num("last_log_ratio")),
        "ρ": at_end(num("rho")),
        "σ_max": at_end(num("sigma_max")),
        "saturation": at_end(num("saturated_frac")),
        "diverged": np.where(finished, (runs["status"] == "diverged").astype(float), np.nan),
    }, index=runs.index)


def outcomes_table(runs: pd.DataFrame) -> pd.DataFrame:
    """explore_runs rows → id, status, name, every spec field (dotted) and every outcome."""
    if runs.empty:
        return pd.DataFrame(columns=[*META, *OUTCOMES])
    meta = runs[list(META)].reset_index(drop=True)
    meta["name"] = meta["name"].fillna("")
    spec = flat_specs(list(runs["spec"]))
    spec = spec.drop(columns=[c for c in spec.columns if c in META or c in OUTCOMES])
    if "seed" in runs:  # explore_runs keeps it out of the spec, in its own column
        spec["seed"] = runs["seed"].to_numpy()
    return pd.concat([meta, spec, outcomes_of(runs).reset_index(drop=True)], axis=1)


def spec_fields(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in META and c not in OUTCOMES]


def varied_fields(table: pd.DataFrame) -> list[str]:
    """Spec fields with more than one value among the runs (the seed and the name excluded)."""
    return [c for c in spec_fields(table)
            if c not in NOT_FACTORS and table[c].nunique(dropna=False) > 1]


POOLED = "all (pooled)"   # the phase diagram's choice for another swept factor: not held at one value


def ordered_values(values: pd.Series) -> list:
    """The distinct values of a factor in the order the phase diagram lists them (numbers ascending,
    NaN last; text alphabetical)."""
    return _ordered(values)


def equal_to(values: pd.Series, value) -> pd.Series:
    """Which of ``values`` equal ``value`` (NaN equal to NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return values.isna()
    return values.map(lambda v: v == value if not (isinstance(v, float) and math.isnan(v)) else False).astype(bool)


def _ordered(values: pd.Series) -> list:
    """Distinct values, numbers ascending (NaN last), text in alphabetical order."""
    uniq = pd.unique(values)
    if pd.api.types.is_numeric_dtype(values):
        return sorted(v for v in uniq if not pd.isna(v)) + ([np.nan] if pd.isna(uniq).any() else [])
    return sorted(uniq, key=str)


def _codes(values: pd.Series, order: list) -> np.ndarray:
    """Position of each value in ``order`` (NaN → the NaN slot at the end, when there is one)."""
    known = [v for v in order if not pd.isna(v)]
    codes = pd.Categorical(values, categories=known).codes.astype(np.int64)
    return np.where(codes < 0, len(order) - 1, codes)


_EMPTY = {"s": 0.0, "n": 0, "runs": 0, "seeds": 0, "diverged": 0, "died": 0, "neginf": 0, "posinf": 0,
          "left_diverged": 0, "left_died": 0, "ids": []}


def _mark(diverged: int, died: int, runs: int) -> str:
    if runs and diverged == runs:
        return "all diverged"
    if died and diverged:   # both: "died" alone hid that a seed diverged
        return "died + diverged"
    if died:
        return "died"
    return "some diverged" if diverged else ""


def _cell_mean(total: float, finite: int, neginf: int, posinf: int) -> float:
    """The mean over a cell's values: −inf when a value is −inf (one seed whose gradient vanished
    entirely pulls the mean all the way down; dropping it would show the cell better than it is),
    +inf when one is +inf, NaN when there are both or no value at all."""
    if neginf and posinf:
        return math.nan
    if neginf or posinf:
        return -math.inf if neginf else math.inf
    return total / finite if finite else math.nan


def phase_grid(table: pd.DataFrame, x: str, y: str, outcome: str) -> pd.DataFrame:
    """One row per cell of the x × y grid (every pair of values seen, empty cells included):
    ``mean`` of the outcome over the cell's runs with a value (−inf if one of them is −inf, +inf if
    one is +inf, NaN with both: see _cell_mean), ``n`` those runs, ``neginf``/``posinf`` those
    whose value is −inf/+inf, ``runs`` all its runs, ``seeds`` its distinct seeds, ``diverged`` and
    ``died`` counts, ``left_diverged``/``left_died`` those of them without a value (left out of the
    mean: a diverged run's NaN loss, or any AT_END outcome of a run that broke off), ``mark`` ('all
    diverged', 'died + diverged', 'died', 'some diverged' or '') and the run ``ids``; ``xi``/``yi``
    index the axes."""
    xs, ys = _ordered(table[x]), _ordered(table[y])
    v = table[outcome].to_numpy(dtype=float)
    ok = np.isfinite(v)
    is_div, is_died = (table["status"] == "diverged").to_numpy(), table["status"].isin(DIED).to_numpy()
    none = np.isnan(v)   # no value: left out of the mean (±inf are values: see _cell_mean)
    d = pd.DataFrame({"xi": _codes(table[x], xs), "yi": _codes(table[y], ys), "v": np.where(ok, v, 0.0), "ok": ok,
                      "neg": np.isneginf(v), "pos": np.isposinf(v),
                      "div": is_div, "died": is_died, "ldiv": is_div & none, "ldied": is_died & none,
                      "seed": table["seed"].to_numpy() if "seed" in table else table["id"].to_numpy(),
                      "id": table["id"].to_numpy(dtype=np.int64)})
    g = d.groupby(["yi", "xi"], sort=False)
    agg = pd.DataFrame({"s": g["v"].sum(), "n": g["ok"].sum(), "neginf": g["neg"].sum(), "posinf": g["pos"].sum(),
                        "runs": g.size(), "seeds": g["seed"].nunique(),
                        "diverged": g["div"].sum(), "died": g["died"].sum(),
                        "left_diverged": g["ldiv"].sum(), "left_died": g["ldied"].sum(),
                        "ids": g["id"].agg(list)})
    rows = []
    for yi, yv in enumerate(ys):
        for xi, xv in enumerate(xs):
            a = agg.loc[(yi, xi)] if (yi, xi) in agg.index else _EMPTY
            finite, neg, pos, runs, div, died, left_div, left_died = (int(a[k]) for k in (
                "n", "neginf", "posinf", "runs", "diverged", "died", "left_diverged", "left_died"))
            rows.append({"xi": xi, "yi": yi, x: xv, y: yv, "mean": _cell_mean(float(a["s"]), finite, neg, pos),
                         "n": finite + neg + pos, "neginf": neg, "posinf": pos, "runs": runs,
                         "seeds": int(a["seeds"]), "diverged": div, "died": died, "left_diverged": left_div,
                         "left_died": left_died, "mark": _mark(div, died, runs), "ids": [int(i) for i in a["ids"]]})
    cols = ["xi", "yi", x, y, "mean", "n", "neginf", "posinf", "runs", "seeds", "diverged", "died", "left_diverged",
            "left_died", "mark", "ids"]
    return pd.DataFrame(rows, columns=cols)


def left_out(row: dict) -> str:
    """What a phase cell's (or, summed, a grid's) runs without a value are: '2 diverged, 1 died,
    1 without a value' ('' when every run has one)."""
    div, died = int(row.get("left_diverged", 0)), int(row.get("left_died", 0))
    other = int(row["runs"]) - int(row["n"]) - div - died
    parts = [f"{div} diverged" if div else "", f"{died} died" if died else "",
             f"{other} without a value" if other > 0 else ""]
    return ", ".join(p for p in parts if p)


def cell_text(row: dict) -> str:
    """'0.42<br>n=3' (or 'n=2/3' when some runs have no value; '—' for the mean when none has).
    A cell with infinite values says how many: '−∞ (2/3 seeds)', '+∞ (1/3 seeds)', or with both
    '−∞ and +∞ (1 and 1 of 2 seeds)'."""
    if not row["runs"]:
        return ""
    neg, pos, runs = int(row.get("neginf", 0)), int(row.get("posinf", 0)), row["runs"]
    n = "" if row["n"] == runs else f"<br>n={row['n']}/{runs}"
    if neg and pos:
        return f"−∞ and +∞ ({neg} and {pos} of {runs} seeds){n}"
    if neg or pos:
        return f"{'−∞' if neg else '+∞'} ({neg or pos}/{runs} seeds){n}"
    mean = "—" if math.isnan(row["mean"]) else f"{row['mean']:.3g}"
    return f"{mean}<br>n={row['n']}" if not n else f"{mean}{n}"


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, (list, tuple)) and v else v


def selected_ids(points: list[dict], cells: pd.DataFrame | None = None) -> list[int]:
    """Run ids behind selected Plotly points: a point's customdata is a run id, or with ``cells``
    (a phase_grid) the row number of a cell, whose runs are all taken. Order kept, no duplicates."""
    out: list[int] = []
    for p in points or ():
        v = _first(p.get("customdata"))
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if cells is None:
            out.append(int(v))
        elif 0 <= int(v) < len(cells):  # -1: an empty cell
            out.extend(cells["ids"].iloc[int(v)])
    return list(dict.fromkeys(out))


def compare_query(ids: list[int]) -> dict[str, str]:
    """Query parameters that open the first COMPARE_MAX of these runs on the Compare page."""
    return {"runs": ",".join(str(int(i)) for i in ids[:COMPARE_MAX])}
