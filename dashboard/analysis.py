"""Strategy comparison for the Strategies page: group runs by one factor (cell, activation, init, clipping,
depth, T), aggregate their seeds for the charts (mean with a min–max or 95% confidence band), and the
verdicts of rnnlab.strategies (shared with `rnnlab compare`): which group is best, which are broken or
confounded. Pure pandas/numpy: no Streamlit, no database."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnnlab.strategies import (  # noqa: F401  (the page's and the tests' names)
    FACTORS,
    NO_SE_MARGIN,
    SOLVED_FRACTION,
    groups_of,
    overall,
    problems,
    run_flags,
    stats,
    summary,
    t95,
    varying_factor,
    verdict,
)

_stats = stats


def _log_stats(u: np.ndarray, band: str) -> tuple[float, float, float]:
    """Mean and band of log10 values that may hold −inf (a zero) and +inf. A geometric mean over
    seeds with a zero is 0 ((∏ v)^(1/n)), so one −inf makes the mean and the lower end −inf and the
    upper end the largest value (no interval of the mean exists); +inf likewise makes the mean and
    the upper end +inf. With both the mean is NaN. NaN values (no value) are left out."""
    u = u[~np.isnan(u)]
    neg, pos = np.isneginf(u), np.isposinf(u)
    if not (neg.any() or pos.any()):
        return stats(u, band)
    if u.size == 0:
        return (np.nan,) * 3
    mean = np.nan if neg.any() and pos.any() else (-np.inf if neg.any() else np.inf)
    return mean, float(u.min()), float(u.max())


def aggregate(df: pd.DataFrame, groups: dict[int, str], x: str, y: str, band: str = "min–max",
              log: bool = False) -> pd.DataFrame:
    """Mean and band of ``y`` per group and ``x`` (in log10 space when ``log``, returned in linear units),
    with ``n`` the group's runs at that x and ``zeros`` those whose value is 0 or negative.

    On ``log`` a zero (or negative) value is −inf in log10 space: it pulls the geometric mean (and
    the band's lower end) to 0 instead of being dropped, so seeds (0, 0, 1e-2) average to 0, not
    1e-2 (see _log_stats). A log axis draws such a 0 as a ▼ marker at its floor (charts.ValueAxis)."""
    if df.empty or y not in df:
        return pd.DataFrame(columns=["group", x, "mean", "lo", "hi", "n", "zeros"])
    d = df.assign(group=df["run_id"].map(groups)).dropna(subset=["group"])
    vals = d[y].astype(float)
    zeros = vals <= 0
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = np.log10(vals.where(~zeros, 0.0))   # log10(0) = −inf; NaN stays NaN
    d = d.assign(_v=vals, _zero=zeros)
    rows = []
    for (grp, xv), g in d.groupby(["group", x], sort=False):
        v = g["_v"].to_numpy(dtype=float)
        m, lo, hi = _log_stats(v, band) if log else stats(v, band)
        rows.append({"group": grp, x: xv, "mean": m, "lo": lo, "hi": hi, "n": int(g["run_id"].nunique()),
                     "zeros": int(g.loc[g["_zero"], "run_id"].nunique())})
    out = pd.DataFrame(rows).sort_values(["group", x])
    if log:
        out[["mean", "lo", "hi"]] = np.power(10.0, out[["mean", "lo", "hi"]])
    return out
