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
    head = ("Diagnostics took " + ("— (nothing trained yet)" if not math.isfinite(total) else f"{100 * total:.1f}%")
            + f" of training time; {probed} of {len(table)} epochs probed")
    if budget is None:
        return head + " (no probe.budget: the probe follows probe.every)."
    verdict = "" if not math.isfinite(total) else (" — within it" if total <= budget else " — over it")
    return head + f"; probe.budget {100 * budget:g}%{verdict}."


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

    ep = reads.epochs([run_id])
    if ep.empty:
        st.caption("No epochs recorded yet.")
        return
    t = overhead_table(ep)
    budget = budget_of(spec)
    st.caption(overhead_summary(t, budget))
    chart(overhead_figure(t, budget), f"run{run_id}_overhead", key=f"run{run_id}_overhead_chart")
    table(t, f"run{run_id}_overhead", key=f"run{run_id}_overhead_table")
