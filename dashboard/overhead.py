"""What the diagnostics cost a run: per epoch and cumulative, diag_seconds / train_seconds, from
the epoch rows the run page already reads, next to the run's ``probe.budget`` when it has one.

The engine's ``diag_seconds`` covers held-out evaluation, the probe, spectra, histograms and packing
the checkpoint; ``train_seconds`` the epoch's optimizer steps (both wall clock). Epoch 0 has no
training, so its share is undefined, but its diagnostics count in the cumulative share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

COLUMNS = ("train_seconds", "diag_seconds", "probed")   # what the shares are computed from
CHART_EPOCHS = 2000   # the chart's bars at most; the summary and the table use every epoch


def overhead_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """One run's epochs (columns epoch, train_seconds, diag_seconds, probed) →
    epoch, probed, train_s, diag_s, share (diag/train; NaN without training) and cumulative
    (Σ diag / Σ train up to that epoch; NaN while nothing has trained), sorted by epoch."""
    df = epochs.sort_values("epoch")
    train = df["train_seconds"].astype(float).to_numpy()
    diag = df["diag_seconds"].astype(float).to_numpy()
    cum_t, cum_d = np.cumsum(train), np.cumsum(diag)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(train > 0, diag / train, np.nan)
        cumulative = np.where(cum_t > 0, cum_d / cum_t, np.nan)
    return pd.DataFrame({
        "epoch": df["epoch"].astype(int).to_numpy(), "probed": df["probed"].astype(bool).to_numpy(),
        "train_s": train, "diag_s": diag, "share": share, "cumulative": cumulative,
    })


def overhead_summary(table: pd.DataFrame, budget: float | None = None) -> str:
    """One line: the run's diagnostics share so far, against its budget when it has one."""
    if table.empty:
        return "No epochs recorded yet."
    total = table["cumulative"].iloc[-1]
    probed = int(table["probed"].sum())
    share, limit = _percentages(total, budget)
    head = ("Diagnostics took " + ("— (nothing trained yet)" if not math.isfinite(total) else f"{share}%")
            + f" of training time; {probed} of {len(table)} epochs probed")
    if budget is None:
        return head + " (no probe.budget: the probe follows probe.every)."
    verdict = "" if not math.isfinite(total) else (" — within it" if total <= budget else " — over it")
    return head + f"; probe.budget {limit}%{verdict}."


def _percentages(total: float, budget: float | None) -> tuple[str, str]:
    """The share and the budget in percent, to three significant figures, or more where fewer would
    print them in another order than their values (0.05004 against 0.05: '5.004' and '5', not '5' and '5')."""
    if budget is None or not math.isfinite(total):
        return f"{100 * total:.3g}", "" if budget is None else f"{100 * budget:g}"

    def order(a: float, b: float) -> int:
        return int(a > b) - int(a < b)

    want = order(total, budget)
    for digits in range(3, 18):
        share, limit = f"{100 * total:.{digits}g}", f"{100 * budget:.{max(digits, 6)}g}"
        if order(float(share), float(limit)) == want:
            return share, limit
    return share, limit


def overhead_figure(table: pd.DataFrame, budget: float | None = None) -> go.Figure:
    """Per-epoch share as bars (probed epochs darker), the cumulative share as a line, the budget dashed."""
    fig = go.Figure()
    for probed, color, name in ((True, "#1f77b4", "probed epoch"), (False, "#aec7e8", "unprobed epoch")):
        t = table[table["probed"] == probed]
        fig.add_bar(x=t["epoch"], y=100 * t["share"], name=name, marker_color=color,
                    hovertemplate="epoch %{x}: %{y:.2f}% of its training time<extra></extra>")
    fig.add_scatter(x=table["epoch"], y=100 * table["cumulative"], mode="lines+markers", name="cumulative",
                    line={"color": "#d62728"}, hovertemplate="up to epoch %{x}: %{y:.2f}%<extra></extra>")
    if budget is not None:
        fig.add_hline(y=100 * budget, line_dash="dash", line_color="#555",
                      annotation_text=f"probe.budget {100 * budget:g}%")
    fig.update_layout(xaxis_title="epoch", yaxis_title="diagnostics, % of training time", barmode="overlay",
                      height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    return fig


def budget_of(spec: dict | None) -> float | None:
    """probe.budget from a stored spec dict (None when unset)."""
    probe = (spec or {}).get("probe") or {}
    b = probe.get("budget")
    return float(b) if b is not None else None


def section(run_id: int, spec: dict | None) -> None:
    """The run page's overhead view: a one-line summary, the chart and the numbers."""
    import streamlit as st

    from dashboard import reads
    from dashboard.components import chart, table

    # every epoch (the charts' series are thinned), and only the columns the shares need
    ep = reads.epochs([run_id], max_epochs=None, columns=COLUMNS)
    if ep.empty:
        st.caption("No epochs recorded yet.")
        return
    t = overhead_table(ep)
    budget = budget_of(spec)
    st.caption(overhead_summary(t, budget))
    shown = t.iloc[_evenly(len(t), CHART_EPOCHS)]
    if len(shown) < len(t):
        st.caption(f"The chart draws {len(shown)} of the {len(t)} epochs, evenly spaced (the cumulative share "
                   "of each is over every epoch before it); the summary and the table hold every epoch.")
    chart(overhead_figure(shown, budget), f"run{run_id}_overhead", key=f"run{run_id}_overhead_chart")
    table(t, f"run{run_id}_overhead", key=f"run{run_id}_overhead_table")


def _evenly(n: int, most: int) -> np.ndarray:
    """At most ``most`` positions of 0…n−1, evenly spaced, the first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))
