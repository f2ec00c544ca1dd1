"""Plotly figures of the Explorer: a scatter of any field or outcome against another coloured by a
third, parallel coordinates, and the phase diagram. Figures are assembled from plain dicts (no
per-property validation) so that 10,000 runs draw fast. Pure: no Streamlit, no database."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import make_colorscale, sequential

from dashboard.charts import DIFF_SCALE, SYMBOL, ValueAxis, _fmt, _special_kinds
from dashboard.explore import AT_END, BROKE_OFF, DIED, cell_text, left_out

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
                  "loss ÷ baseline": "blue < 1: beats the baseline (better) · red > 1: worse"}
MARKS = {  # phase-diagram cell mark → (legend text, marker symbol, colour, size)
    "all diverged": ("every run diverged", "x", "#d62728", 16),
    "some diverged": ("some runs diverged", "x-open", "#d62728", 12),
    "died": ("a run died (failed)", "diamond-open", "#111111", 12),
    "died + diverged": ("a run died (failed), another diverged", "diamond-x-open", "#d62728", 12),
}
# Cells with a −inf (+inf) value: their mean is −inf (+inf), coloured as the bottom (top) of the scale
INF_MARKS = {"neginf": ("−∞ on some seed (bottom colour)", "triangle-down", "#08306b"),
             "posinf": ("+∞ on some seed (top colour)", "triangle-up", "#67000d")}


def _layout(title: str, height: int, **kw) -> dict:
    # the title as {text}, never a bare string: plotly.js 3 dropped string titles (the figures are
    # not validated, so plotly.py would not convert it), and the browser's is v4
    return {"title": {"text": title}, "height": height, "margin": dict(l=10, r=10, t=50, b=10), "hovermode": "closest",
            "legend": dict(font=dict(size=10)), **kw}


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


# A run the scatter cannot place (NaN, ±inf, or ≤ 0 on a log axis) is drawn at the floor or ceiling
# of that axis with the line charts' symbols (charts.SYMBOL: ▼ floor, ▲ +inf, ✕ NaN) and counted in a
# note; on the x axis the floor is the left edge and the ceiling the right one.
POINT = "circle"
EDGE = {"y": {"floor": "at the bottom", "inf": "at the top", "nan": "at the top"},
        "x": {"floor": "at the left edge", "inf": "at the right edge", "nan": "at the right edge"}}
GLYPH = {"floor": "▼", "inf": "▲", "nan": "✕"}
NO_COLOUR = dict(color="#ffffff", line=dict(color="#111111", width=1.5))  # a run without a colour value


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def _text(v) -> str:
    if isinstance(v, (float, np.floating)):
        return _fmt(float(v)) if not np.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def _place(s: pd.Series, log: bool) -> tuple[ValueAxis | None, np.ndarray, np.ndarray]:
    """One scatter axis: its ValueAxis (None for a text field), where each run sits on it (a value
    the axis cannot draw at its floor or ceiling) and each run's kind ('' drawable, 'floor', 'inf',
    'nan': charts._special_kinds)."""
    if not _numeric(s):
        return None, s.to_numpy(), np.full(len(s), "", dtype=object)
    v = s.to_numpy(dtype=float)
    ax = ValueAxis([v], log)
    kinds = _special_kinds(v, log)
    ax.specials |= set(kinds[kinds != ""])
    pos = np.where(kinds == "floor", ax.value(ax.floor_u), np.where(kinds == "", v, ax.value(ax.ceil_u)))
    return ax, pos, kinds


# An AT_END outcome (any but 'diverged') of a run that broke off is left out (NaN): the note says so
LEFT_OUT = {"diverged": "left out (diverged: its last record is of the epoch training stopped)",
            "died": "left out (died: its last record is of wherever it stopped)"}


def _why_none(name: str, mask: np.ndarray, status) -> list[tuple[np.ndarray, str]]:
    """The runs of ``mask`` (no value of ``name``) split by why, each with its words: a diverged run's
    NaN; for an AT_END outcome, a diverged or died run left out; a run with no value at all (failed
    before recording a result), which is not a diverged outcome. Without ``status``: 'NaN'."""
    if status is None:
        return [(mask, "NaN")]
    st = np.asarray(status, dtype=object)
    diverged, died = st == "diverged", np.isin(st, DIED)
    if name in AT_END:
        return [(mask & diverged, LEFT_OUT["diverged"]), (mask & died, LEFT_OUT["died"]),
                (mask & ~diverged & ~died, "no value (none recorded)")]
    return [(mask & diverged, "NaN (diverged)"), (mask & ~diverged, "no value (no result recorded)")]


def _broke_off(name: str, mask: np.ndarray, status) -> str:
    """', k of them diverged or died: left out …' for the runs of ``mask`` without a value of an
    AT_END outcome because they broke off ('' when none)."""
    if name not in AT_END or status is None:
        return ""
    k = int((mask & np.isin(np.asarray(status, dtype=object), BROKE_OFF)).sum())
    return f", {k} of them diverged or died: left out, their last record is of the epoch training stopped" if k else ""


def _off_axis_note(name: str, which: str, kinds: np.ndarray, log: bool, status=None) -> list[str]:
    """The note's lines for the runs an axis cannot place. With ``status``, a NaN is split by why
    (_why_none)."""
    out = []
    for k in ("floor", "inf", "nan"):
        mask = kinds == k
        what = {"floor": "0, negative or −inf (log axis)" if log else "−inf", "inf": "+inf", "nan": "NaN"}[k]
        parts = _why_none(name, mask, status) if k == "nan" else [(mask, what)]
        for m, text in parts:
            n = int(m.sum())
            if n:
                out.append(f"{GLYPH[k]} {name} {text}: {EDGE[which][k]} ({_runs(n)})")
    return out


def colour_scale(name: str, values) -> tuple[np.ndarray, dict, list[str]]:
    """The colour of a numeric field or outcome, the same on every Explorer chart: where each run sits
    on the scale (colour_value: log10 of a ratio; ±inf at the ends of a range stretched so that no
    finite value shares them; NaN stays NaN for the caller to mark), the scale (cmin, cmax,
    colorscale, colorbar: _scale, as on the phase diagram) and the note's words for ±inf values."""
    raw = np.asarray(values, dtype=float)
    c = np.asarray(colour_value(name, raw), dtype=float)
    sc = _scale(name, c)
    notes = []
    low = "0 or −inf" if name in LOG_COLOUR else "−inf"
    for mask, what, end in ((np.isneginf(c), low, "the bottom colour"), (np.isposinf(c), "+inf", "the top colour")):
        if mask.any():
            notes.append(f"colour {name} {what}: {end} of the scale ({_runs(int(mask.sum()))})")
    c = np.where(np.isneginf(c), sc["zmin"], np.where(np.isposinf(c), sc["zmax"], c))
    ticks = _log_ticks(sc["zmin"], sc["zmax"]) if name in LOG_COLOUR else {}
    scale = dict(colorscale=sc["colorscale"], cmin=sc["zmin"], cmax=sc["zmax"],
                 colorbar=dict(title=dict(text=_colour_title(name), side="right"), **ticks))
    return c, scale, notes


def _note(lines: list[str]) -> dict:
    """The figure's note, above the plot area (the top margin grows by its lines)."""
    return {"name": "note", "text": "<br>".join(lines), "xref": "paper", "yref": "paper", "x": 0, "y": 1,
            "xanchor": "left", "yanchor": "bottom", "yshift": 6, "align": "left", "showarrow": False,
            "font": {"size": 10, "color": "#555"}}


def _with_note(lay: dict, lines: list[str]) -> dict:
    if lines:
        lay["annotations"] = [*lay.get("annotations", []), _note(lines)]
        lay["margin"] = {**lay["margin"], "t": 50 + 15 * len(lines)}
        lay["title"] = {**lay["title"], "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 12}}
    return lay


def scatter(table: pd.DataFrame, x: str, y: str, color: str | None, log_x: bool = False,
            log_y: bool = False) -> go.Figure:
    """One marker per run (customdata: the run id); a numeric colour field gets a colour bar (the
    scale of colour_scale), a text one a trace per value. No run is left out: one the axes cannot
    place is drawn at the floor or ceiling with ▼/▲/✕, a run without a colour value as a hollow
    black marker, and a note above the plot says what each mark means and how many runs it is."""
    kind = "scattergl" if len(table) > GL_THRESHOLD else "scatter"
    xa, px, kx = _place(table[x], log_x)
    ya, py, ky = _place(table[y], log_y)
    symbol = np.where(ky != "", ky, kx)
    sym = np.array([SYMBOL.get(k, POINT) for k in symbol], dtype=object)
    status = table["status"].to_numpy() if "status" in table else None
    said = [f" ({s})" if s != "succeeded" else "" for s in status] if status is not None else [""] * len(table)
    hover = [f"run #{i}{w}<br>{x} = {_text(a)}<br>{y} = {_text(b)}" for i, w, a, b in
             zip(table["id"], said, table[x].to_numpy(), table[y].to_numpy())]
    if color and color not in (x, y):
        hover = [f"{h}<br>{color} = {_text(c)}" for h, c in zip(hover, table[color].to_numpy())]
    pts = pd.DataFrame({"id": table["id"].to_numpy(), "px": px, "py": py, "sym": sym,
                        "hover": np.asarray(hover, dtype=object)})
    lines = [*_off_axis_note(y, "y", ky, log_y, status), *_off_axis_note(x, "x", kx, log_x, status)]
    if ((kx != "") & (ky != "")).any():
        lines.append(f"a run off both axes: at that corner, with the symbol of its {y}")

    def points(d: pd.DataFrame, name: str, marker: dict, legend: bool) -> dict:
        return dict(type=kind, mode="markers", x=d["px"].to_numpy(), y=d["py"].to_numpy(), name=name,
                    marker={**marker, "symbol": d["sym"].to_numpy()}, customdata=d["id"].to_numpy(),
                    showlegend=legend, hovertext=d["hover"].to_numpy(),
                    hovertemplate=f"%{{hovertext}}<extra>{name}</extra>")

    traces, extra = [], {}
    if color and _numeric(table[color]):
        c, scale, notes = colour_scale(color, table[color])
        has = ~np.isnan(c)
        pts["c"] = c
        extra["coloraxis"] = {**scale, "colorbar": {**scale["colorbar"]}}
        traces.append(points(pts[has], "runs", dict(size=7, color=c[has], coloraxis="coloraxis"), False))
        if (~has).any():
            n = int((~has).sum())
            traces.append(points(pts[~has], f"no {color} value ({_runs(n)})", dict(size=8, **NO_COLOUR), True))
            notes.append(f"hollow black: no {color} value ({_runs(n)}){_broke_off(color, ~has, status)}")
        lines += notes
    elif color and table[color].nunique(dropna=False) <= MAX_COLOR_GROUPS:
        pts["g"] = table[color].to_numpy()
        for value, d in pts.groupby("g", sort=True, dropna=False):
            traces.append(points(d, f"{color} = {value}", dict(size=7), True))
    else:
        traces.append(points(pts, "runs", dict(size=7), False))

    def axis(name: str, ax: ValueAxis | None) -> dict:
        return {**(ax.layout(name) if ax else {"title": {"text": name}, "type": "-"}), "zeroline": False}

    lay = _layout(f"{y} against {x}" + (f", coloured by {color}" if color else ""), 480,
                  xaxis=axis(x, xa), yaxis=axis(y, ya), **extra)
    return go.Figure(data=traces, layout=_with_note(lay, lines), _validate=False)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """About five round tick values in [lo, hi] (1, 2 or 5 × a power of ten apart)."""
    span = hi - lo if hi > lo else 1.0
    raw = span / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [round(k * step, 12) for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _dimension(s: pd.Series, status=None) -> tuple[dict, list[str]]:
    """A parcoords axis and the note's words about it. plotly.js draws a NaN value at 0 (a diverged
    run's loss ÷ baseline would sit at the best end) and cannot draw ±inf: such values sit on ticks
    of their own past the finite range, '−inf' below, '+inf' and 'NaN' above ('no value' for an
    AT_END outcome, which a run that broke off has none of). With ``status`` the note says why a
    run has no value (_why_none)."""
    if not _numeric(s):
        labels = sorted(s.astype(str).unique())
        code = {v: k for k, v in enumerate(labels)}
        return dict(label=s.name, values=s.astype(str).map(code).to_numpy(dtype=float),
                    tickvals=list(range(len(labels))), ticktext=labels), []
    v = s.to_numpy(dtype=float)
    if np.isfinite(v).all():
        return dict(label=s.name, values=v), []
    fin = v[np.isfinite(v)]
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    step = (hi - lo) / 8 if hi > lo else max(abs(hi), 1.0) / 8
    vals = _nice_ticks(lo, hi) if fin.size else []
    text = [f"{t:g}" for t in vals]
    notes, out = [], v.copy()
    top = hi
    for mask, label, below in ((np.isneginf(v), "−inf", True), (np.isposinf(v), "+inf", False),
                               (np.isnan(v), "no value" if s.name in AT_END else "NaN", False)):
        if not mask.any():
            continue
        at = lo - step if below else top + step
        top = top if below else at
        out[mask] = at
        vals.append(at)
        text.append(label)
        parts = _why_none(s.name, mask, status) if label in ("NaN", "no value") else [(mask, label)]
        notes += [f"{s.name}: {words} ({_runs(int(m.sum()))}) on its own tick {'below' if below else 'above'} "
                  "the values" for m, words in parts if m.any()]
    bottom = min(vals + [lo]) - step / 2
    return dict(label=s.name, values=out, range=[bottom, top + step / 2], tickvals=vals, ticktext=text), notes


# Parallel coordinates colour a line by a number only: a run without a colour value gets a value
# below the scale, where a black band is added, labelled "no value" on the colour bar.
NO_VALUE_BAND = 0.08   # the band's share of the colour bar


def parallel(table: pd.DataFrame, fields: list[str], color: str | None) -> go.Figure:
    """Parallel coordinates over ``fields`` (text fields on coded axes), lines coloured by a numeric
    ``color`` on the same scale as the scatter and the phase diagram; drag along an axis to brush.
    A field no run has a value of is left out and the note says so."""
    notes = [f"axis {f} left out: no run has a value" for f in fields if not table[f].notna().any()]
    status = table["status"].to_numpy() if "status" in table else None
    dims = []
    for f in fields:
        if table[f].notna().any():
            dim, words = _dimension(table[f], status)
            dims.append(dim)
            notes += words
    line = {}
    if color and _numeric(table[color]):
        c, scale, words = colour_scale(color, table[color])
        notes += words
        missing = np.isnan(c)
        if missing.any():
            lo, hi = scale["cmin"], scale["cmax"]
            below = lo - (hi - lo) * NO_VALUE_BAND / (1 - NO_VALUE_BAND)
            c = np.where(missing, below, c)
            shrink = [[NO_VALUE_BAND + (1 - NO_VALUE_BAND) * float(p), col] for p, col in scale["colorscale"]]
            bar = dict(scale["colorbar"])
            tv, tt = list(bar.get("tickvals", [])), list(bar.get("ticktext", []))
            if not tv:  # the colour bar's own ticks would be lost once one is given: give the finite ones
                tv = _nice_ticks(lo, hi)
                tt = [f"{t:g}" for t in tv]
            bar.update(tickvals=[(below + lo) / 2, *tv], ticktext=["no value", *tt])
            scale = {**scale, "cmin": below, "colorbar": bar,
                     "colorscale": [[0.0, "#111111"], [NO_VALUE_BAND, "#111111"], *shrink]}
            notes.append(f"black lines: no {color} value ({_runs(int(missing.sum()))})"
                         f"{_broke_off(color, missing, status)}")
        line = dict(color=c, showscale=True, **scale)
    trace = dict(type="parcoords", dimensions=dims, line=line)
    lay = _layout("Parallel coordinates (drag along an axis to brush)", 460)
    return go.Figure(data=[trace], layout=_with_note(lay, notes), _validate=False)


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
    name = f"{outcome} (log10 scale, ticks in the ratio)" if outcome in LOG_COLOUR else outcome
    return f"{name}<br>{meaning}" if meaning else name


def _cell_value(r: dict, outcome: str) -> str:
    """A phase cell's hover line for its value: the mean, over how many of its runs when some have
    none, and what those are; a cell with no value says why."""
    gone = left_out(r)
    if r["n"] == 0:
        why = "every run diverged" if r.get("left_diverged", 0) == r["runs"] else gone
        if outcome in AT_END and (r.get("left_diverged", 0) or r.get("left_died", 0)):
            why += " (a run that broke off is left out: its last record is of the epoch training stopped)"
        return f"{outcome}: no value, {why}"
    mean = _fmt(float(r["mean"])) if not np.isfinite(r["mean"]) else f"{r['mean']:.4g}"
    return f"{outcome} = {mean}" + (f" over {r['n']} of {r['runs']} runs ({gone} left out)" if gone else "")


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
    hover = [f"{x} = {r[x]}<br>{y} = {r[y]}<br>{_cell_value(r, outcome)}<br>{r['runs']} runs, {r['seeds']} seeds"
             f"{', ' + r['mark'] if r['mark'] else ''}<br>click to open them" for r in filled.to_dict("records")]
    centres = dict(type="scatter", mode="markers", x=filled["xi"].to_numpy(), y=filled["yi"].to_numpy(),
                   customdata=filled.index.to_numpy(), name="cells", showlegend=False, hovertext=hover,
                   hovertemplate="%{hovertext}<extra></extra>",
                   marker=dict(symbol="square", size=40, color="rgba(0,0,0,0)"))
    total = {k: int(filled[k].sum()) for k in ("runs", "n", "left_diverged", "left_died") if k in filled}
    gone = left_out(total) if total.get("runs") else ""
    lay = _layout(f"Phase diagram: {outcome} over {x} × {y} (mean over the cell's runs, n = runs with a value"
                  f"{'; left out: ' + gone if gone else ''})",
                  max(360, 70 * len(ys) + 160), xaxis=_axis(x, xs), yaxis=_axis(y, ys),
                  legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, font=dict(size=11)))
    return go.Figure(data=[heat, centres, *_marks(cells)], layout=lay, _validate=False)
