"""Plotly figures of the Explorer: a scatter of any field or outcome against another coloured by a
third, parallel coordinates, and the phase diagram. Figures are assembled from plain dicts (no
per-property validation) so that 10,000 runs draw fast. Pure: no Streamlit, no database."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import make_colorscale, sequential

from dashboard.charts import DIFF_SCALE
from dashboard.explore import cell_text

GL_THRESHOLD = 2_000          # points above which the scatter uses WebGL
MAX_COLOR_GROUPS = 20         # a text colour field with more values is drawn in one colour
# Outcomes with a meaningful middle get a diverging scale centred there: 0 between vanishing and
# exploding gradients, 1 for the trivial predictor's loss. The scale is DIFF_SCALE (blue below the
# middle, red above), sent as a list of colours: the figure is not validated, so a plotly.py name
# such as "RdBu_r" would reach plotly.js, which does not know it and falls back to the template's.
MIDPOINTS = {"log10 ‖g_1‖/‖g_T‖": 0.0, "loss ÷ baseline": 1.0}   # in the outcome's own units
# Ratios are coloured by their log10, so that 0.1 and 10 sit equally far from 1 and one diverged cell
# at 1e4 × the baseline does not wash every cell between 0 and 2 out to white (on a linear range
# symmetric about 1 it did); the colour bar is labelled in the ratio itself
LOG_COLOUR = {"loss ÷ baseline"}
VIRIDIS = make_colorscale(sequential.Viridis)   # the other outcomes' scale, as a list for the same reason
# What the colours of an outcome with a middle mean (the colour bar says it under the outcome's name)
COLOUR_MEANING = {"log10 ‖g_1‖/‖g_T‖": "blue < 0: vanishing · red > 0: exploding",
                  "loss ÷ baseline": "blue < 1: beats the baseline (better) · red > 1: worse (log scale)"}
MARKS = {  # phase-diagram cell mark → (legend text, marker symbol, colour, size)
    "all diverged": ("every run diverged", "x", "#d62728", 16),
    "some diverged": ("some runs diverged", "x-open", "#d62728", 12),
    "died": ("a run died (failed)", "diamond-open", "#111111", 12),
}
# Cells with a −inf (+inf) value: their mean is −inf (+inf), coloured as the bottom (top) of the scale
INF_MARKS = {"neginf": ("−∞ on some seed (bottom colour)", "triangle-down", "#08306b"),
             "posinf": ("+∞ on some seed (top colour)", "triangle-up", "#67000d")}


def _layout(title: str, height: int, **kw) -> dict:
    return {"title": title, "height": height, "margin": dict(l=10, r=10, t=50, b=10), "hovermode": "closest",
            "legend": dict(font=dict(size=10)), **kw}


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _points(kind: str, d: pd.DataFrame, x: str, y: str, name: str, marker: dict, legend: bool) -> dict:
    return dict(type=kind, mode="markers", x=d[x].to_numpy(), y=d[y].to_numpy(), name=name, marker=marker,
                customdata=d["id"].to_numpy(), showlegend=legend,
                hovertemplate=f"run #%{{customdata}}<br>{x} = %{{x}}<br>{y} = %{{y}}<extra>{name}</extra>")


def scatter(table: pd.DataFrame, x: str, y: str, color: str | None, log_x: bool = False,
            log_y: bool = False) -> go.Figure:
    """One marker per run (customdata: the run id); a numeric colour field gets a colour bar, a
    text one a trace per value."""
    kind = "scattergl" if len(table) > GL_THRESHOLD else "scatter"
    traces = []
    if color and _numeric(table[color]):
        marker = dict(size=7, color=table[color].to_numpy(), colorscale="Viridis", showscale=True,
                      colorbar=dict(title=dict(text=color, side="right")))
        traces.append(_points(kind, table, x, y, "runs", marker, False))
    elif color and table[color].nunique() <= MAX_COLOR_GROUPS:
        for value, d in table.groupby(color, sort=True, dropna=False):
            traces.append(_points(kind, d, x, y, f"{color} = {value}", dict(size=7), True))
    else:
        traces.append(_points(kind, table, x, y, "runs", dict(size=7), False))
    axis = lambda name, log: dict(title=dict(text=name), type="log" if log else "-", zeroline=False)  # noqa: E731
    lay = _layout(f"{y} against {x}" + (f", coloured by {color}" if color else ""), 480,
                  xaxis=axis(x, log_x), yaxis=axis(y, log_y))
    return go.Figure(data=traces, layout=lay, _validate=False)


def _dimension(s: pd.Series) -> dict:
    if _numeric(s):
        return dict(label=s.name, values=s.to_numpy(dtype=float))
    labels = sorted(s.astype(str).unique())
    code = {v: k for k, v in enumerate(labels)}
    return dict(label=s.name, values=s.astype(str).map(code).to_numpy(dtype=float),
                tickvals=list(range(len(labels))), ticktext=labels)


def parallel(table: pd.DataFrame, fields: list[str], color: str | None) -> go.Figure:
    """Parallel coordinates over ``fields`` (text fields on coded axes), lines coloured by a numeric
    ``color``; drag along an axis to brush."""
    dims = [_dimension(table[f]) for f in fields if table[f].notna().any()]
    line = {}
    if color and _numeric(table[color]):
        line = dict(color=table[color].to_numpy(dtype=float), colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text=color, side="right")))
    trace = dict(type="parcoords", dimensions=dims, line=line)
    return go.Figure(data=[trace], layout=_layout("Parallel coordinates (drag along an axis to brush)", 460),
                     _validate=False)


def _axis(name: str, values: list) -> dict:
    text = ["—" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return dict(title=dict(text=name), tickvals=list(range(len(values))), ticktext=text,
                range=[-0.5, len(values) - 0.5], showgrid=False, zeroline=False)


def _marks(cells: pd.DataFrame) -> list[dict]:
    traces = []
    for mark, (label, symbol, colour, size) in MARKS.items():
        d = cells[cells["mark"] == mark]
        traces.append(dict(type="scatter", mode="markers", x=(d["xi"] + 0.32).to_numpy(), y=(d["yi"] + 0.3).to_numpy(),
                           name=label, customdata=d.index.to_numpy(), hoverinfo="skip", showlegend=True,
                           visible=True if len(d) else "legendonly",
                           marker=dict(symbol=symbol, size=size, color=colour, line=dict(width=2, color=colour))))
    for col, (label, symbol, colour) in INF_MARKS.items():
        d = cells[cells[col] > 0] if col in cells else cells.iloc[:0]
        if len(d):  # rare: no legend entry unless some cell has one
            traces.append(dict(type="scatter", mode="markers", x=(d["xi"] - 0.32).to_numpy(),
                               y=(d["yi"] + 0.3).to_numpy(), name=label, customdata=d.index.to_numpy(),
                               hoverinfo="skip", showlegend=True,
                               marker=dict(symbol=symbol, size=11, color=colour, line=dict(width=1, color="white"))))
    return traces


def colour_value(outcome: str, v):
    """Where a value of ``outcome`` sits on its colour scale: log10 of a ratio (0 → −inf, drawn at the
    bottom), the value itself otherwise."""
    if outcome not in LOG_COLOUR:
        return v
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.asarray(v, dtype=float))


def _log_ticks(zmin: float, zmax: float) -> dict:
    """Colour-bar ticks of a log10-coloured ratio, labelled in the ratio: 0.01, 0.1, 1, 10, …"""
    lo, hi = math.ceil(zmin - 1e-9), math.floor(zmax + 1e-9)
    step = max(1, math.ceil((hi - lo + 1) / 9))
    vals = [k for k in range(lo, hi + 1) if k % step == 0] or [0]
    return {"tickvals": vals, "ticktext": [f"{10.0 ** k:g}" for k in vals]}


def _scale(outcome: str, means: np.ndarray) -> dict:
    """Colour scale and range. An outcome with a middle gets DIFF_SCALE on a range symmetric about
    it (so the middle is white); any other Viridis over its finite means. ±inf cells are drawn at
    zmin/zmax (see phase)."""
    finite = means[np.isfinite(means)]
    # With an infinite cell the range reaches a quarter beyond the finite means, so that the ±inf
    # colour is the end of the scale and no finite cell shares it
    stretch = 1.25 if np.isinf(means).any() else 1.0
    if outcome in MIDPOINTS:
        mid = float(colour_value(outcome, MIDPOINTS[outcome]))
        m = float(np.abs(finite - mid).max()) if finite.size else 1.0
        m = (m if m > 0 else 1.0) * stretch
        return {"colorscale": DIFF_SCALE, "zmin": mid - m, "zmax": mid + m, "zauto": False}
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * (stretch - 1)
    return {"colorscale": VIRIDIS, "zmin": lo - pad, "zmax": hi + pad, "zauto": False}


def _colour_title(outcome: str) -> str:
    meaning = COLOUR_MEANING.get(outcome)
    return f"{outcome}<br>{meaning}" if meaning else outcome


def phase(cells: pd.DataFrame, x: str, y: str, outcome: str) -> go.Figure:
    """Heatmap of a phase_grid: the cell colour is the mean over seeds, the text the mean and the
    seed count; marks for diverged and died cells. Clicking a cell's centre (or boxing several)
    selects invisible markers whose customdata is the cell's row number in ``cells`` (so does the
    heatmap's own customdata, -1 for an empty cell, should a click land on it)."""
    xs = cells.drop_duplicates("xi").sort_values("xi")[x].tolist()
    ys = cells.drop_duplicates("yi").sort_values("yi")[y].tolist()
    z = np.full((len(ys), len(xs)), np.nan)
    text = np.full((len(ys), len(xs)), "", dtype=object)
    row = np.full((len(ys), len(xs)), -1)  # a click on the heatmap carries the cell's row number
    for i, r in enumerate(cells.to_dict("records")):
        z[r["yi"], r["xi"]] = r["mean"]
        text[r["yi"], r["xi"]] = cell_text(r)
        row[r["yi"], r["xi"]] = i if r["runs"] else -1
    z = colour_value(outcome, z)
    scale = _scale(outcome, z)
    # ±inf would reach the browser as null (a blank cell): draw them at the ends of the colour range
    z = np.where(np.isneginf(z), scale["zmin"], np.where(np.isposinf(z), scale["zmax"], z))
    ticks = _log_ticks(scale["zmin"], scale["zmax"]) if outcome in LOG_COLOUR else {}
    heat = dict(type="heatmap", z=z, x=list(range(len(xs))), y=list(range(len(ys))), text=text, customdata=row,
                texttemplate="%{text}", hoverinfo="skip", xgap=2, ygap=2, **scale,
                colorbar=dict(title=dict(text=_colour_title(outcome), side="right"), **ticks))
    filled = cells[cells["runs"] > 0]
    # Clickable (and box-selectable) cell centres: heatmaps cannot be selected in Plotly, markers can
    hover = [f"{x} = {r[x]}<br>{y} = {r[y]}<br>{outcome} = {r['mean']:.4g}<br>{r['runs']} runs, {r['seeds']} seeds"
             f"{', ' + r['mark'] if r['mark'] else ''}<br>click to open them" for r in filled.to_dict("records")]
    centres = dict(type="scatter", mode="markers", x=filled["xi"].to_numpy(), y=filled["yi"].to_numpy(),
                   customdata=filled.index.to_numpy(), name="cells", showlegend=False, hovertext=hover,
                   hovertemplate="%{hovertext}<extra></extra>",
                   marker=dict(symbol="square", size=40, color="rgba(0,0,0,0)"))
    lay = _layout(f"Phase diagram: {outcome} over {x} × {y} (mean over seeds, n = seeds with a value)",
                  max(360, 70 * len(ys) + 160), xaxis=_axis(x, xs), yaxis=_axis(y, ys),
                  legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, font=dict(size=11)))
    return go.Figure(data=[heat, centres, *_marks(cells)], layout=lay, _validate=False)
