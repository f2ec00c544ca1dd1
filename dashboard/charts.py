"""Plotly figures of rnnlab's diagnostics, built from the DataFrames of db.queries (pure functions:
no Streamlit, no database). Every figure colours a run the same way (``colors``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from rnnlab.records import HIST_BIN_WIDTH, HIST_EDGES

PALETTE = qualitative.Plotly + qualitative.D3
GL_THRESHOLD = 5_000  # points per figure above which traces use WebGL (Scattergl)


def colors(ids: list[Any]) -> dict[Any, str]:
    return {rid: PALETTE[i % len(PALETTE)] for i, rid in enumerate(ids)}


def _kind(n_points: int) -> str:
    return "scattergl" if n_points > GL_THRESHOLD else "scatter"


def _line(kind: str, x, y, name: str, color: str | None, *, axis: int = 0, markers: bool = False,
          group: Any = None, legend: bool = True, **kw: Any) -> dict:
    """A line trace as a plain dict (figures are assembled without Plotly's per-property validation,
    which costs ~20 ms per trace: the data are ours and already clean)."""
    xa, ya = _axes(axis)
    return dict(type=kind, x=np.asarray(x), y=np.asarray(y), mode="lines+markers" if markers else "lines", name=name,
                line=dict(color=color, **kw.pop("line", {})), legendgroup=str(group), showlegend=legend,
                xaxis=xa, yaxis=ya, **kw)


def _axes(i: int) -> tuple[str, str]:
    k = "" if i == 0 else str(i + 1)
    return f"x{k}", f"y{k}"


def _grid(n: int, cols: int, titles: list[str], hspace: float = 0.06, vspace: float = 0.14) -> dict:
    """Layout of n subplots in a grid (what make_subplots does, without its validation cost)."""
    rows = math.ceil(n / cols)
    vspace = vspace if rows > 1 else 0
    w, h = (1 - hspace * (cols - 1)) / cols, (1 - vspace * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y1 = c * (w + hspace), 1 - r * (h + vspace)
        xa, ya = _axes(i)
        layout["xaxis" + xa[1:]] = {"domain": [_unit(x0), _unit(x0 + w)], "anchor": ya}
        layout["yaxis" + ya[1:]] = {"domain": [_unit(y1 - h), _unit(y1)], "anchor": xa}
        layout["annotations"].append({"text": titles[i], "x": x0 + w / 2, "y": y1, "xref": "paper", "yref": "paper",
                                      "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 11}})
    return layout


def _unit(v: float) -> float:
    return min(1.0, max(0.0, round(v, 6)))


def _hline(y: float, axis: int = 0, text: str | None = None) -> tuple[dict, dict | None]:
    xa, ya = _axes(axis)
    shape = {"type": "line", "xref": f"{xa} domain", "yref": ya, "x0": 0, "x1": 1, "y0": y, "y1": y,
             "line": {"dash": "dot", "color": "gray"}}
    note = None if text is None else {"text": text, "xref": f"{xa} domain", "yref": ya, "x": 0, "y": y,
                                      "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 10, "color": "gray"}}
    return shape, note


def _figure(traces: list[dict], title: str, height: int = 380, layout: dict | None = None,
            shapes: list | None = None, notes: list | None = None) -> go.Figure:
    lay = dict(layout or {})
    lay.update(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), hovermode="closest",
               legend=dict(font=dict(size=10), orientation="h", yanchor="top", y=-0.3, x=0))
    lay["shapes"] = list(lay.get("shapes", [])) + list(shapes or [])
    lay["annotations"] = list(lay.get("annotations", [])) + [n for n in (notes or []) if n]
    return go.Figure(data=traces, layout=lay, _validate=False)


def empty(title: str, note: str = "no data yet") -> go.Figure:
    return _figure([], title, 220, {"xaxis": {"visible": False}, "yaxis": {"visible": False}},
                   notes=[{"text": note, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}])


def curves(df: pd.DataFrame, y: str, labels: dict[int, str], title: str, *, log: bool = False,
           baselines: dict[int, float | None] | None = None, x: str = "epoch", ytitle: str | None = None) -> go.Figure:
    """One line per run of column ``y`` against ``x``; each run's task baseline as a dotted line."""
    d = df.dropna(subset=[y]) if y in df else df.iloc[0:0]
    if log and len(d):
        d = d[d[y] > 0]
    if d.empty:
        return empty(title)
    col = colors(list(labels))
    kind = _kind(len(d))
    traces = [_line(kind, g[x], g[y], labels.get(rid, str(rid)), col.get(rid), markers=len(g) < 40, group=rid)
              for rid, g in d.groupby("run_id", sort=False)]
    shapes, notes = [], []
    groups = _group_baselines(baselines or {})
    for value, rids in groups.items():
        text = f"baseline {value:.4g}" + ("" if len(rids) == len(labels) else f" (runs {', '.join(map(str, rids))})")
        sh, note = _hline(value, 0, text)
        shapes.append(sh)
        notes.append(note)
    yaxis: dict = {"title": {"text": ytitle or y}, "type": "log" if log else "linear"}
    if log:
        vals = [v for v in d[y] if math.isfinite(v)] + [v for v in groups if v > 0]
        yaxis["range"] = [math.log10(min(vals)) - 0.2, math.log10(max(vals)) + 0.2]
    return _figure(traces, title, 420, {"xaxis": {"title": {"text": x}}, "yaxis": yaxis}, shapes, notes)


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
    if log and len(d):
        d = d[d[y] > 0]
    if d.empty:
        return empty(title)
    keys = list(dict.fromkeys(d[facet]))
    cols = min(wrap, len(keys))
    layout = _grid(len(keys), cols, [str(k) for k in keys])
    for i in range(len(keys)):
        layout["yaxis" + _axes(i)[1][1:]]["type"] = "log" if log else "linear"
    col = colors(list(labels))
    kind = _kind(len(d))
    traces = []
    for i, (k, part) in enumerate(d.groupby(facet, sort=False)):
        for rid, g in part.groupby("run_id", sort=False):
            traces.append(_line(kind, g[x], g[y], labels.get(rid, str(rid)), col.get(rid), axis=keys.index(k),
                                group=rid, legend=i == 0, line={"width": 1.5}))
    return _figure(traces, title, max(300, 230 * math.ceil(len(keys) / cols)), layout)


def two_panel(df: pd.DataFrame, panels: list[tuple[str, str, bool]], labels: dict[int, str], title: str,
              *, x: str = "epoch", hlines: dict[str, float] | None = None) -> go.Figure:
    """Side-by-side panels of several columns (name, title, log y), runs coloured alike."""
    present = [(c, t, lg) for c, t, lg in panels if c in df and df[c].notna().any()]
    if not present:
        return empty(title)
    layout = _grid(len(present), len(present), [t for _, t, _ in present])
    col = colors(list(labels))
    kind = _kind(len(df) * len(present))
    traces, shapes = [], []
    for j, (c, _, lg) in enumerate(present):
        d = df.dropna(subset=[c])
        if lg:
            d = d[d[c] > 0]
            layout["yaxis" + _axes(j)[1][1:]]["type"] = "log"
        layout["xaxis" + _axes(j)[0][1:]]["title"] = {"text": x}
        for rid, g in d.groupby("run_id", sort=False):
            traces.append(_line(kind, g[x], g[c], labels.get(rid, str(rid)), col.get(rid), axis=j,
                                markers=len(g) < 40, group=rid, legend=j == 0))
        if hlines and c in hlines:
            shapes.append(_hline(hlines[c], j)[0])
    return _figure(traces, title, 380, layout, shapes)


def profile(prof: pd.DataFrame, labels: dict[int, str], title: str,
            bounds: dict[int, tuple[float, float]] | None = None) -> go.Figure:
    """‖∂L/∂h_t‖ against t on a log axis, all runs overlaid. ``bounds`` maps a vanilla run to
    (‖g_T‖, γ·σ_max): its bound ‖g_T‖·(γ·σ_max)^(T−t) is drawn dashed in the run's colour."""
    d = prof[(prof["norm"] > 0) & np.isfinite(prof["norm"])] if len(prof) else prof
    if d.empty:
        return empty(title, "no per-timestep profile for this epoch")
    col = colors(list(labels))
    kind = _kind(len(prof) * 2)
    traces = []
    for rid, g in d.groupby("run_id", sort=False):
        ep = int(g["epoch"].iloc[0])
        traces.append(_line(kind, g["t"], g["norm"], f"{labels.get(rid, rid)} (epoch {ep})", col.get(rid), group=rid))
        if bounds and rid in bounds:
            g_T, rate = bounds[rid]
            full = prof[prof["run_id"] == rid]
            with np.errstate(all="ignore"):
                b = g_T * np.power(rate, full["k"].to_numpy(dtype=float))
            traces.append(_line(kind, full["t"], b, f"bound ‖g_T‖·(γσ_max)^k, γσ_max={rate:.3g}", col.get(rid),
                                group=rid, line={"dash": "dash", "width": 1}))
    lo, hi = np.log10(d["norm"].min()), np.log10(d["norm"].max())
    return _figure(traces, title, 420, {
        "yaxis": {"type": "log", "title": {"text": "‖∂L/∂h_t‖"}, "range": [lo - 0.5, hi + 0.5]},
        "xaxis": {"title": {"text": "time step t (loss at t = T; k = T − t steps back)"}}})


def heatmaps(mats: list[tuple[str, dict]], title: str, wrap: int = 3) -> go.Figure:
    """Small multiples of t × epoch heatmaps of log10‖∂L/∂h_t‖ sharing one colour scale."""
    mats = [(lbl, m) for lbl, m in mats if len(m.get("epochs", []))]
    if not mats:
        return empty(title, "no per-timestep profiles yet")
    finite = np.concatenate([m["z"][np.isfinite(m["z"])].ravel() for _, m in mats])
    zmin, zmax = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) if finite.size else (0.0, 1.0)
    cols = min(wrap, len(mats))
    layout = _grid(len(mats), cols, [lbl for lbl, _ in mats], hspace=0.04)
    traces = []
    for i, (_, m) in enumerate(mats):
        xa, ya = _axes(i)
        traces.append(dict(type="heatmap", x=np.asarray(m["t"]), y=np.asarray(m["epochs"]),
                           z=np.asarray(m["z"], dtype=np.float32),  # half the bytes; finer than the colour scale
                           coloraxis="coloraxis", xaxis=xa, yaxis=ya,
                           hovertemplate="t=%{x:.0f}<br>epoch=%{y}<br>log10‖g‖=%{z:.2f}<extra></extra>"))
        layout["xaxis" + xa[1:]]["title"] = {"text": "t"}
        if i % cols == 0:
            layout["yaxis" + ya[1:]]["title"] = {"text": "epoch"}
    layout["coloraxis"] = dict(colorscale="Viridis", cmin=zmin, cmax=zmax, colorbar=dict(title=dict(text="log10‖∂L/∂h_t‖")))
    return _figure(traces, title, max(320, 260 * math.ceil(len(mats) / cols)), layout)


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
    trace = dict(type="heatmap", x=np.asarray(ma["t"]), y=np.asarray(common), z=np.round(z, 2), colorscale="RdBu", reversescale=True, zmid=0,
                 zmin=-m, zmax=m, colorbar=dict(title=dict(text="Δ log10")),
                 hovertemplate="t=%{x:.0f}<br>epoch=%{y}<br>Δ=%{z:.2f}<extra></extra>")
    return _figure([trace], f"{title}: {la} minus {lb} (red: A has larger gradients)", 380,
                   {"xaxis": {"title": {"text": "t"}}, "yaxis": {"title": {"text": "epoch"}}})


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
    agg = hist.groupby("run_id", sort=False).agg(
        counts=("counts", lambda s: np.sum([np.asarray(c, dtype=float) for c in s], axis=0)),
        zeros=("zeros", "sum"), nonfinite=("nonfinite", "sum"), epoch=("epoch", "first"))
    order = [r for r in labels if r in agg.index]
    traces = []
    for i, rid in enumerate(order):
        c = agg.loc[rid, "counts"]
        total = c.sum() + agg.loc[rid, "zeros"] + agg.loc[rid, "nonfinite"]
        y = c / c.max() * 0.9 if c.max() > 0 else c
        off = len(order) - 1 - i
        name = (f"{labels[rid]} (epoch {agg.loc[rid, 'epoch']}; zeros {agg.loc[rid, 'zeros'] / max(total, 1):.1%},"
                f" non-finite {int(agg.loc[rid, 'nonfinite'])})")
        traces.append(dict(type="scatter", x=x, y=np.full_like(x, off), mode="lines", line=dict(width=0),
                           showlegend=False, hoverinfo="skip", legendgroup=str(rid)))
        traces.append(dict(type="scatter", x=x, y=y + off, mode="lines", fill="tonexty", name=name,
                           line=dict(color=col[rid]), legendgroup=str(rid), customdata=c,
                           hovertemplate="log10|g|=%{x:.2f}<br>count=%{customdata:.0f}<extra></extra>"))
    layout = {"yaxis": {"tickvals": list(range(len(order)))[::-1], "ticktext": [f"#{r}" for r in order], "showgrid": False},
              "xaxis": {"title": {"text": "log10 |∂L/∂θ| (edge bins: underflow < 1e-10, overflow ≥ 1e2)"}}}
    return _figure(traces, title, max(300, 60 * len(order) + 160), layout)


def band(df: pd.DataFrame, x: str, title: str, ytitle: str, *, log: bool = False,
         baseline: float | None = None) -> go.Figure:
    """Group means with a shaded band: ``df`` has columns group, x, mean, lo, hi, n."""
    if df.empty:
        return empty(title)
    col = colors(list(dict.fromkeys(df["group"])))
    kind = _kind(len(df) * 3)
    traces = []
    for grp, g in df.groupby("group", sort=False):
        c = col[grp]
        traces.append(_line(kind, g[x], g["hi"], "", c, group=grp, legend=False, hoverinfo="skip", line={"width": 0}))
        traces.append(_line(kind, g[x], g["lo"], "", c, group=grp, legend=False, hoverinfo="skip", line={"width": 0},
                            fill="tonexty", fillcolor=_alpha(c, 0.2)))
        traces.append(_line(kind, g[x], g["mean"], f"{grp} (n={int(g['n'].max())})", c, group=grp, line={"width": 2}))
    shapes, notes = [], []
    if baseline is not None and math.isfinite(baseline):
        sh, note = _hline(baseline, 0, f"baseline {baseline:.4g}")
        shapes, notes = [sh], [note]
    return _figure(traces, title, 380, {"xaxis": {"title": {"text": x}},
                                        "yaxis": {"title": {"text": ytitle}, "type": "log" if log else "linear"}},
                   shapes, notes)


def _alpha(color: str, a: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"
