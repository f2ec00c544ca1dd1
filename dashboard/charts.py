"""Plotly figures of rnnlab's diagnostics, built from the DataFrames of db.queries (pure functions:
no Streamlit, no database). Every figure colours a run the same way (``colors``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from rnnlab.records import HIST_BIN_WIDTH, HIST_EDGES

PALETTE = qualitative.Plotly + qualitative.D3
GL_THRESHOLD = 5_000  # points per figure above which traces use WebGL (Scattergl)


def colors(ids: list[Any]) -> dict[Any, str]:
    return {rid: PALETTE[i % len(PALETTE)] for i, rid in enumerate(ids)}


def _scatter(n_points: int):
    return go.Scattergl if n_points > GL_THRESHOLD else go.Scatter


def _layout(fig: go.Figure, title: str, height: int = 380, **kw: Any) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), hovermode="closest",
                      legend=dict(font=dict(size=10), orientation="h", yanchor="top", y=-0.3, x=0), **kw)
    return fig


def empty(title: str, note: str = "no data yet") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=220)


def curves(df: pd.DataFrame, y: str, labels: dict[int, str], title: str, *, log: bool = False,
           baselines: dict[int, float | None] | None = None, x: str = "epoch", ytitle: str | None = None) -> go.Figure:
    """One line per run of column ``y`` against ``x``; each run's task baseline as a dotted line."""
    d = df.dropna(subset=[y]) if y in df else df.iloc[0:0]
    if d.empty:
        return empty(title)
    col = colors(list(labels))
    Sc = _scatter(len(d))
    fig = go.Figure()
    for rid, g in d.groupby("run_id", sort=False):
        fig.add_trace(Sc(x=g[x], y=g[y], mode="lines+markers" if len(g) < 40 else "lines",
                         name=labels.get(rid, str(rid)), line=dict(color=col.get(rid)), legendgroup=str(rid)))
    for value, rids in _group_baselines(baselines or {}).items():
        fig.add_hline(y=value, line=dict(dash="dot", color="gray"),
                      annotation_text=f"baseline {value:.4g}" + ("" if len(rids) == len(labels) else f" (runs {', '.join(map(str, rids))})"),
                      annotation_position="top left")
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=ytitle or y, type="log" if log else "linear")
    if log:
        vals = [v for v in d[y] if v > 0 and math.isfinite(v)] + list(_group_baselines(baselines or {}))
        if vals:
            fig.update_yaxes(range=[math.log10(min(vals)) - 0.2, math.log10(max(vals)) + 0.2])
    return _layout(fig, title, height=420)


def _group_baselines(baselines: dict[int, float | None]) -> dict[float, list[int]]:
    out: dict[float, list[int]] = {}
    for rid, v in baselines.items():
        if v is not None and not pd.isna(v) and math.isfinite(v):
            out.setdefault(round(float(v), 10), []).append(rid)
    return out


def facets(df: pd.DataFrame, y: str, facet: str, labels: dict[int, str], title: str, *, log: bool = True,
           wrap: int = 3, x: str = "epoch") -> go.Figure:
    """Small multiples of ``y`` per value of ``facet`` (e.g. per parameter), runs coloured alike."""
    d = df.dropna(subset=[y]) if y in df else df.iloc[0:0]
    if d.empty:
        return empty(title)
    keys = list(dict.fromkeys(d[facet]))
    rows = math.ceil(len(keys) / wrap)
    fig = make_subplots(rows=rows, cols=min(wrap, len(keys)), subplot_titles=[str(k) for k in keys],
                        shared_xaxes=True, vertical_spacing=0.12 / max(1, rows - 1) if rows > 1 else 0.1)
    col = colors(list(labels))
    Sc = _scatter(len(d))
    for i, k in enumerate(keys):
        for rid, g in d[d[facet] == k].groupby("run_id", sort=False):
            fig.add_trace(Sc(x=g[x], y=g[y], mode="lines", name=labels.get(rid, str(rid)), legendgroup=str(rid),
                             showlegend=i == 0, line=dict(color=col.get(rid), width=1.5)),
                          row=i // wrap + 1, col=i % wrap + 1)
    fig.update_yaxes(type="log" if log else "linear")
    fig.update_annotations(font_size=11)
    return _layout(fig, title, height=max(300, 230 * rows))


def two_panel(df: pd.DataFrame, panels: list[tuple[str, str, bool]], labels: dict[int, str], title: str,
              *, x: str = "epoch", hlines: dict[str, float] | None = None) -> go.Figure:
    """Side-by-side panels of several columns (name, title, log y), runs coloured alike."""
    present = [(c, t, lg) for c, t, lg in panels if c in df and df[c].notna().any()]
    if not present:
        return empty(title)
    fig = make_subplots(rows=1, cols=len(present), subplot_titles=[t for _, t, _ in present])
    col = colors(list(labels))
    Sc = _scatter(len(df) * len(present))
    for j, (c, _, lg) in enumerate(present, start=1):
        d = df.dropna(subset=[c])
        for rid, g in d.groupby("run_id", sort=False):
            fig.add_trace(Sc(x=g[x], y=g[c], mode="lines+markers" if len(g) < 40 else "lines",
                             name=labels.get(rid, str(rid)), legendgroup=str(rid), showlegend=j == 1,
                             line=dict(color=col.get(rid))), row=1, col=j)
        if lg:
            fig.update_yaxes(type="log", row=1, col=j)
        if hlines and c in hlines:
            fig.add_hline(y=hlines[c], line=dict(dash="dot", color="gray"), row=1, col=j)
    fig.update_xaxes(title=x)
    return _layout(fig, title)


def profile(prof: pd.DataFrame, labels: dict[int, str], title: str,
            bounds: dict[int, tuple[float, float]] | None = None) -> go.Figure:
    """‖∂L/∂h_t‖ against t on a log axis, all runs overlaid. ``bounds`` maps a vanilla run to
    (‖g_T‖, γ·σ_max): its bound ‖g_T‖·(γ·σ_max)^(T−t) is drawn dashed in the run's colour."""
    d = prof[(prof["norm"] > 0) & np.isfinite(prof["norm"])] if len(prof) else prof
    if d.empty:
        return empty(title, "no per-timestep profile for this epoch")
    col = colors(list(labels))
    Sc = _scatter(len(prof) * 2)
    fig = go.Figure()
    for rid, g in d.groupby("run_id", sort=False):
        ep = int(g["epoch"].iloc[0])
        fig.add_trace(Sc(x=g["t"], y=g["norm"], mode="lines", name=f"{labels.get(rid, rid)} (epoch {ep})",
                         line=dict(color=col.get(rid)), legendgroup=str(rid)))
        if bounds and rid in bounds:
            g_T, rate = bounds[rid]
            full = prof[prof["run_id"] == rid]
            with np.errstate(all="ignore"):
                b = g_T * np.power(rate, full["k"].to_numpy(dtype=float))
            fig.add_trace(Sc(x=full["t"], y=b, mode="lines", name=f"bound ‖g_T‖·(γσ_max)^k, γσ_max={rate:.3g}",
                             line=dict(color=col.get(rid), dash="dash", width=1), legendgroup=str(rid)))
    lo, hi = np.log10(d["norm"].min()), np.log10(d["norm"].max())
    fig.update_yaxes(type="log", title="‖∂L/∂h_t‖", range=[lo - 0.5, hi + 0.5])
    fig.update_xaxes(title="time step t (loss at t = T; k = T − t steps back)")
    return _layout(fig, title, height=420)


def heatmaps(mats: list[tuple[str, dict]], title: str, wrap: int = 3) -> go.Figure:
    """Small multiples of t × epoch heatmaps of log10‖∂L/∂h_t‖ sharing one colour scale."""
    mats = [(lbl, m) for lbl, m in mats if len(m.get("epochs", []))]
    if not mats:
        return empty(title, "no per-timestep profiles yet")
    finite = np.concatenate([m["z"][np.isfinite(m["z"])].ravel() for _, m in mats] or [np.zeros(1)])
    zmin, zmax = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) if finite.size else (0, 1)
    rows = math.ceil(len(mats) / wrap)
    cols = min(wrap, len(mats))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[lbl for lbl, _ in mats],
                        horizontal_spacing=0.04, vertical_spacing=0.14 / max(1, rows - 1) if rows > 1 else 0.1)
    for i, (_, m) in enumerate(mats):
        fig.add_trace(go.Heatmap(x=m["t"], y=m["epochs"], z=m["z"], coloraxis="coloraxis",
                                 hovertemplate="t=%{x:.0f}<br>epoch=%{y}<br>log10‖g‖=%{z:.2f}<extra></extra>"),
                      row=i // wrap + 1, col=i % wrap + 1)
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=zmin, cmax=zmax,
                                     colorbar=dict(title="log10‖∂L/∂h_t‖")))
    fig.update_xaxes(title_text="t")
    fig.update_yaxes(title_text="epoch", col=1)
    fig.update_annotations(font_size=11)
    return _layout(fig, title, height=max(320, 260 * rows))


def diff_heatmap(a: tuple[str, dict], b: tuple[str, dict], title: str) -> go.Figure:
    """log10‖g_t‖(A) − log10‖g_t‖(B) on the epochs and time steps the two runs share."""
    (la, ma), (lb, mb) = a, b
    if not len(ma["epochs"]) or not len(mb["epochs"]):
        return empty(title, "both runs need per-timestep profiles")
    if ma["seq_len"] != mb["seq_len"]:
        return empty(title, f"different sequence lengths (T={ma['seq_len']} vs T={mb['seq_len']}): no difference map")
    common = sorted(set(ma["epochs"]) & set(mb["epochs"]))
    if not common:
        return empty(title, "the runs share no probed epoch")
    ia = [ma["epochs"].index(e) for e in common]
    ib = [mb["epochs"].index(e) for e in common]
    z = np.asarray(ma["z"])[ia] - np.asarray(mb["z"])[ib]
    finite = z[np.isfinite(z)]
    m = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    fig = go.Figure(go.Heatmap(x=ma["t"], y=common, z=z, colorscale="RdBu", zmid=0, zmin=-m, zmax=m,
                               colorbar=dict(title="Δ log10"),
                               hovertemplate="t=%{x:.0f}<br>epoch=%{y}<br>Δ=%{z:.2f}<extra></extra>"))
    fig.update_xaxes(title="t")
    fig.update_yaxes(title="epoch")
    return _layout(fig, f"{title}: {la} minus {lb} (red: A has larger gradients)", height=380)


def _bin_centres() -> np.ndarray:
    inner = [(HIST_EDGES[i] + HIST_EDGES[i + 1]) / 2 for i in range(len(HIST_EDGES) - 1)]
    return np.array([HIST_EDGES[0] - HIST_BIN_WIDTH / 2, *inner, HIST_EDGES[-1] + HIST_BIN_WIDTH / 2])


def ridgelines(hist: pd.DataFrame, labels: dict[int, str], title: str) -> go.Figure:
    """Gradient histograms on the shared log10|g| bins, one ridge per run (each normalised to its
    own peak); the outermost bins hold |g| < 1e-10 and |g| ≥ 1e2. Exact zeros are listed in the legend."""
    if hist.empty:
        return empty(title, "no gradient histograms")
    x = _bin_centres()
    col = colors(list(labels))
    fig = go.Figure()
    agg = hist.groupby("run_id", sort=False).agg(
        counts=("counts", lambda s: np.sum([np.asarray(c, dtype=float) for c in s], axis=0)),
        zeros=("zeros", "sum"), nonfinite=("nonfinite", "sum"), epoch=("epoch", "first"))
    order = [r for r in labels if r in agg.index]
    for i, rid in enumerate(order):
        c = agg.loc[rid, "counts"]
        total = c.sum() + agg.loc[rid, "zeros"] + agg.loc[rid, "nonfinite"]
        y = c / c.max() * 0.9 if c.max() > 0 else c
        off = len(order) - 1 - i
        name = (f"{labels[rid]} (epoch {agg.loc[rid, 'epoch']}; zeros {agg.loc[rid, 'zeros'] / max(total, 1):.1%},"
                f" non-finite {int(agg.loc[rid, 'nonfinite'])})")
        fig.add_trace(go.Scatter(x=x, y=np.full_like(x, off), mode="lines", line=dict(width=0), showlegend=False,
                                 hoverinfo="skip", legendgroup=str(rid)))
        fig.add_trace(go.Scatter(x=x, y=y + off, mode="lines", fill="tonexty", name=name, line=dict(color=col[rid]),
                                 legendgroup=str(rid), customdata=c,
                                 hovertemplate="log10|g|=%{x:.2f}<br>count=%{customdata:.0f}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(order)))[::-1], ticktext=[f"#{r}" for r in order], showgrid=False)
    fig.update_xaxes(title="log10 |∂L/∂θ| (edge bins: underflow < 1e-10, overflow ≥ 1e2)")
    return _layout(fig, title, height=max(300, 60 * len(order) + 160))


def band(df: pd.DataFrame, x: str, title: str, ytitle: str, *, log: bool = False,
         baseline: float | None = None) -> go.Figure:
    """Group means with a shaded band: ``df`` has columns group, x, mean, lo, hi, n."""
    if df.empty:
        return empty(title)
    fig = go.Figure()
    col = colors(list(dict.fromkeys(df["group"])))
    Sc = _scatter(len(df) * 3)
    for grp, g in df.groupby("group", sort=False):
        c = col[grp]
        fig.add_trace(Sc(x=g[x], y=g["hi"], mode="lines", line=dict(width=0), showlegend=False,
                         legendgroup=str(grp), hoverinfo="skip"))
        fig.add_trace(Sc(x=g[x], y=g["lo"], mode="lines", line=dict(width=0), fill="tonexty",
                         fillcolor=_alpha(c, 0.2), showlegend=False, legendgroup=str(grp), hoverinfo="skip"))
        fig.add_trace(Sc(x=g[x], y=g["mean"], mode="lines", name=f"{grp} (n={int(g['n'].max())})",
                         line=dict(color=c, width=2), legendgroup=str(grp)))
    if baseline is not None and math.isfinite(baseline):
        fig.add_hline(y=baseline, line=dict(dash="dot", color="gray"), annotation_text=f"baseline {baseline:.4g}")
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=ytitle, type="log" if log else "linear")
    return _layout(fig, title)


def _alpha(color: str, a: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"
