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


def aggregate(df: pd.DataFrame, groups: dict[int, str], x: str, y: str, band: str = "min–max",
              log: bool = False) -> pd.DataFrame:
    """Mean and band of ``y`` per group and ``x`` (in log10 space when ``log``, returned in linear units)."""
    if df.empty or y not in df:
        return pd.DataFrame(columns=["group", x, "mean", "lo", "hi", "n"])
    d = df.assign(group=df["run_id"].map(groups)).dropna(subset=["group"])
    vals = d[y].astype(float)
    if log:
        vals = np.log10(vals.where(vals > 0))
    d = d.assign(_v=vals)
    rows = []
    for (grp, xv), g in d.groupby(["group", x], sort=False):
        m, lo, hi = stats(g["_v"].to_numpy(dtype=float), band)
        rows.append({"group": grp, x: xv, "mean": m, "lo": lo, "hi": hi, "n": int(g["run_id"].nunique())})
    out = pd.DataFrame(rows).sort_values(["group", x])
    if log:
        out[["mean", "lo", "hi"]] = np.power(10.0, out[["mean", "lo", "hi"]])
    return out
