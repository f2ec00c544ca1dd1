"""Plotly figures of rnnlab's diagnostics, built from the DataFrames of db.queries (pure functions:
no Streamlit, no database). Every figure colours a run the same way (``colors``)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from rnnlab.records import HIST_BIN_WIDTH, HIST_EDGES

PALETTE = qualitative.Plotly + qualitative.D3
GL_THRESHOLD = 5_000  # points per figure above which traces use WebGL (Scattergl)

# --- options of every time-series chart ----------------------------------------------------------
# x axes: the epoch, the optimizer step (cumulative optimizer steps) or the time (cumulative training
# + diagnostics seconds); the page adds the 'step' and 'seconds' columns (db.queries.epoch_clock).
X_AXES = {"epoch": "epoch", "step": "optimizer step", "seconds": "time (s, training + diagnostics)"}
MAX_SMOOTHING = 0.99
RAW_OPACITY = 0.25  # the raw series under a smoothed one


@dataclass(frozen=True)
class ChartOptions:
    """What the options row above the time-series charts chose: the EMA weight (0 = off) and the x axis."""

    smoothing: float = 0.0
    x: str = "epoch"

    def __post_init__(self):
        if self.x not in X_AXES:
            raise ValueError(f"x axis: {self.x!r} is not one of {', '.join(X_AXES)}")
        if not (isinstance(self.smoothing, (int, float)) and 0 <= self.smoothing <= MAX_SMOOTHING):
            raise ValueError(f"smoothing: {self.smoothing!r} is not a weight between 0 and {MAX_SMOOTHING}")


def ema(y, weight: float, *, log: bool = False) -> np.ndarray:
    """Exponential moving average of the drawable points of ``y``, in order:
    s_1 = y_1 and s_i = w·s_{i−1} + (1 − w)·y_i (pandas ``ewm(alpha=1 − w, adjust=False)``; the state
    starts at the first value, not at 0, so there is no start-up bias to correct). On a log axis the
    average is taken of log10 y (a geometric average) and returned as 10^s.
    Points the axis cannot draw (NaN, ±inf, and y ≤ 0 on a log axis) are not averaged in: they get NaN
    (a gap in the smoothed line; the chart marks them at the floor or ceiling) and the state passes
    over them unchanged, so a NaN never spreads into its neighbours."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing: {weight!r} is not a weight in [0, 1)")
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0) if log else np.isfinite(y)
    out = np.full(len(y), np.nan)
    with np.errstate(all="ignore"):
        u = np.log10(y) if log else y
    s = None
    for i in np.flatnonzero(ok):
        s = u[i] if s is None else weight * s + (1 - weight) * u[i]
        out[i] = s
    return np.power(10.0, out) if log else out


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


def _isolated(drawable: np.ndarray) -> bool:
    """True if some drawable point has no drawable neighbour (a line through it draws nothing)."""
    d = np.asarray(drawable, dtype=bool)
    left = np.r_[False, d[:-1]]
    right = np.r_[d[1:], False]
    return bool((d & ~left & ~right).any())


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
                                      "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 11}})
    return layout


def x_title(x: str) -> str:
    return X_AXES.get(x, x)


def _unit(v: float) -> float:
    return min(1.0, max(0.0, round(v, 6)))


def _hline(y: float, axis: int = 0, text: str | None = None, *, log: bool = False) -> tuple[dict, dict | None]:
    """A dotted horizontal line at ``y`` with an optional label. Shapes take data values on a log axis,
    annotations take log10 of them (Plotly's convention), so the label sits on its line."""
    xa, ya = _axes(axis)
    shape = {"type": "line", "xref": f"{xa} domain", "yref": ya, "x0": 0, "x1": 1, "y0": y, "y1": y,
             "line": {"dash": "dot", "color": "gray"}}
    note = None if text is None else {"text": text, "xref": f"{xa} domain", "yref": ya, "x": 0,
                                      "y": math.log10(y) if log else y, "xanchor": "left", "yanchor": "bottom",
                                      "showarrow": False, "font": {"size": 10, "color": "gray"}}
    return shape, note


# --- values an axis cannot draw -----------------------------------------------------------------
# Plotly silently drops NaN and ±inf, and on a log axis also 0 and negatives. Here each such point
# is drawn as a marker in its run's colour at the floor (0, negatives, −inf) or at the ceiling
# (+inf, NaN) of the axis, and a note on the chart says what the symbols mean.

SYMBOL = {"floor": "triangle-down", "inf": "triangle-up", "nan": "x"}


def _special_kinds(y: np.ndarray, log: bool) -> np.ndarray:
    """Per point: '' (drawable), 'floor', 'inf' or 'nan'."""
    y = np.asarray(y, dtype=float)
    out = np.full(len(y), "", dtype=object)
    out[np.isnan(y)] = "nan"
    out[np.isposinf(y)] = "inf"
    out[np.isneginf(y) | (np.isfinite(y) & (y <= 0) if log else np.isneginf(y))] = "floor"
    return out


def _special_note(axes: list[ValueAxis]) -> dict | None:
    """One note for the whole figure, top right above any subplot titles, saying what the markers mean."""
    kinds = set().union(*(a.specials for a in axes)) if axes else set()
    if not kinds:
        return None
    floor = "0, negative or −inf (no log)" if any(a.log and "floor" in a.specials for a in axes) else "−inf"
    parts = {"floor": f"▼ {floor}: at the floor", "inf": "▲ +inf: at the ceiling", "nan": "✕ NaN: at the ceiling"}
    text = " · ".join(parts[k] for k in ("floor", "inf", "nan") if k in kinds)
    return _corner_note(text)


def _corner_note(text: str) -> dict:
    """A note above the plot area's top-right corner (and above any subplot titles); _figure makes room."""
    return {"name": "corner", "text": text, "xref": "paper", "yref": "paper", "x": 1, "y": 1, "xanchor": "right",
            "yanchor": "bottom", "yshift": 18, "showarrow": False, "font": {"size": 10, "color": "#555"}}


class ValueAxis:
    """The range, ticks, floor and ceiling of one y axis, from every value drawn on it."""

    def __init__(self, values: list, log: bool, extra: list[float] = ()):
        ys = [np.asarray(v, dtype=float) for v in values] + [np.asarray(list(extra), dtype=float)]
        y = np.concatenate(ys) if ys else np.zeros(0)
        ok = y[np.isfinite(y) & (y > 0)] if log else y[np.isfinite(y)]
        self.log = log
        self.specials: set[str] = set()
        if ok.size:
            u = np.log10(ok) if log else ok
            lo, hi = float(u.min()), float(u.max())
        else:
            lo, hi = (-1.0, 1.0) if log else (0.0, 1.0)
        span = hi - lo
        pad = max(0.06 * span, 0.15) if log else max(0.06 * span, 0.05 * abs(hi), 1e-9)
        self.range = [lo - 2 * pad, hi + 2 * pad]
        self.floor_u, self.ceil_u = lo - pad, hi + pad

    def value(self, u: float) -> float:
        return 10 ** u if self.log else u

    def series(self, kind: str, x, y, name: str, color: str | None, *, axis: int = 0, markers: bool = False,
               group: Any = None, legend: bool = True, recorded_only: bool = True, smooth: float = 0.0,
               **kw: Any) -> list[dict]:
        """The run's line (breaking at undrawable points) plus, if any, its floor/ceiling markers.
        With ``recorded_only``, NaN before the run's first recorded value means "not recorded" (NULL
        in the database, e.g. the clip fraction at epoch 0) and is left out, as is a series with no
        value at all (a quantity that does not apply to the run, e.g. γ·σ_max of a gated cell).
        With ``smooth`` > 0 the line is the EMA of the drawable points (``ema``, in log space on a log
        axis) and the raw line is drawn faintly under it; the markers always show the raw values."""
        x, y = np.asarray(x), np.asarray(y, dtype=float)
        if recorded_only:
            first = np.flatnonzero(~np.isnan(y))
            if not first.size:
                return []
            x, y = x[first[0]:], y[first[0]:]
        drawable = np.isfinite(y) & (y > 0) if self.log else np.isfinite(y)
        out = []
        if smooth > 0:
            # A line needs two neighbouring drawable points: a one-point series, or a point between
            # undrawable ones, would vanish from a line-only trace, so both traces then get markers.
            alone = _isolated(drawable)
            raw_kw = {k: v for k, v in kw.items() if k != "line"}
            out.append(_line(kind, x, np.where(drawable, y, np.nan), f"{name} (raw)", color, axis=axis, group=group,
                             markers=alone or not drawable.all(), legend=False, opacity=RAW_OPACITY, **raw_kw))
            out.append(_line(kind, x, ema(y, smooth, log=self.log), name, color, axis=axis, group=group,
                             markers=markers or alone, legend=legend, **kw))
            if drawable.all():
                return out
        elif drawable.all():  # the common case: nothing to mark
            return [_line(kind, x, y, name, color, axis=axis, markers=markers, group=group, legend=legend, **kw)]
        sk = _special_kinds(y, self.log)
        bad = ~drawable
        line = np.where(bad, np.nan, y)
        if not out:
            out = [_line(kind, x, line, name, color, axis=axis, markers=True, group=group, legend=legend, **kw)]
        self.specials |= set(sk[bad])
        xa, ya = _axes(axis)
        pos = np.where(sk[bad] == "floor", self.value(self.floor_u), self.value(self.ceil_u))
        raw = [_fmt(v) for v in y[bad]]
        out.append(dict(type="scatter", x=x[bad], y=pos, mode="markers", name=f"{name}: not drawable",
                        marker=dict(color=color, size=9, symbol=[SYMBOL[k] for k in sk[bad]],
                                    line=dict(width=1, color=color)),
                        legendgroup=str(group), showlegend=False, xaxis=xa, yaxis=ya, customdata=raw,
                        hovertemplate=f"{name}<br>%{{x}}: %{{customdata}}<extra></extra>"))
        return out

    def layout(self, title: str | None = None) -> dict:
        ax: dict = {"type": "log" if self.log else "linear"}
        if title is not None:
            ax["title"] = {"text": title}
        if self.log:
            vals, text, minor = log_ticks(*self.range)
            ax.update(range=list(self.range), tickmode="array", tickvals=vals, ticktext=text,
                      minor={"tickvals": minor, "ticks": "inside", "ticklen": 3, "showgrid": False})
        elif self.specials:
            ax["range"] = list(self.range)
        return ax


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+inf" if v > 0 else "−inf"
    return f"{v:.4g}"


def _pow10(mantissa: int, k: int) -> str:
    exp = f"<sup>{'−' if k < 0 else ''}{abs(k)}</sup>"
    return f"10{exp}" if mantissa == 1 else f"{mantissa}×10{exp}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str], list[float]]:
    """Major ticks (values and 'm×10^k' labels) and unlabelled minor ticks for a log axis whose range
    is [lo, hi] in log10 units: whole decades when the range spans two or more, else 1-2-5 (or
    1-2-3-5-7) times a power of ten. Every label is a power of ten: no bare digits, no SI prefixes."""
    span = hi - lo
    k0, k1 = math.floor(lo), math.ceil(hi)
    inside = [k for k in range(k0, k1 + 1) if lo <= k <= hi]
    if span >= 2 and inside:
        step = max(1, math.ceil(span / 8))
        majors = [(1, k) for k in inside if k % step == 0] or [(1, inside[0])]
        minor = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in range(2, 10)
                 if step == 1 and span <= 5 and lo <= k + math.log10(m) <= hi]
    else:
        mants = (1, 2, 5) if span >= 1 else (1, 2, 3, 5, 7)
        majors = [(m, k) for k in range(k0, k1 + 1) for m in mants if lo <= k + math.log10(m) <= hi]
        minor = []
    return [m * 10.0 ** k for m, k in majors], [_pow10(m, k) for m, k in majors], minor


# --- legends -------------------------------------------------------------------------------------
# The legend sits below the plot in a block of its own: a fixed number of columns (each a fixed
# fraction of the width), so the number of rows is known here, and the figure grows by that many
# rows. The plot area keeps its height whatever the number of runs, and nothing overlaps.
LEGEND_ROW_PX = 19
LEGEND_FONT = 10
X_TITLE_PX = 52  # below the plot: tick labels and the x-axis title


def legend_columns(names: list[str]) -> int:
    """3 columns for short labels, 2 for medium, 1 for long ones, so that a label fits its column on a
    half-width chart (~500 px with the sidebar open; ~6 px per character at size 10)."""
    longest = max((len(html.unescape(n)) for n in names), default=0)
    return 3 if longest <= 18 else 2 if longest <= 30 else 1


def _legend_names(traces: list[dict]) -> list[str]:
    return [str(t.get("name", "")) for t in traces if t.get("showlegend", True) and t.get("name")
            and t.get("type") not in ("heatmap",)]


def legend_block(traces: list[dict]) -> tuple[dict, int]:
    """The legend layout and the pixels it needs below the plot (0 when there is no legend)."""
    names = _legend_names(traces)
    if not names:
        return {"visible": False}, 0
    cols = legend_columns(names)
    rows = math.ceil(len(names) / cols)
    px = rows * LEGEND_ROW_PX + 8
    return dict(font=dict(size=LEGEND_FONT), orientation="h", xref="container", x=0, xanchor="left",
                yref="container", y=0, yanchor="bottom", entrywidthmode="fraction", entrywidth=round(1 / cols, 4),
                tracegroupgap=0, valign="middle"), px


def _figure(traces: list[dict], title: str, height: int = 380, layout: dict | None = None,
            shapes: list | None = None, notes: list | None = None) -> go.Figure:
    """``height`` is the plot area plus 60 px (title and x axis); the legend's rows are added below."""
    lay = dict(layout or {})
    corner = any(n and n.get("name") == "corner" for n in notes or ())
    top = 80 if corner else 50  # the title on its own line above a corner note
    legend, legend_px = legend_block(traces)
    bottom = (X_TITLE_PX + legend_px) if legend_px else 10
    plot = height - 60
    lay.update(title={"text": title, "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 12}},
               height=plot + top + bottom, margin=dict(l=10, r=10, t=top, b=bottom), hovermode="closest",
               legend=legend, showlegend=bool(legend_px))
    lay["shapes"] = list(lay.get("shapes", [])) + list(shapes or [])
    lay["annotations"] = list(lay.get("annotations", [])) + [n for n in (notes or []) if n]
    return go.Figure(data=traces, layout=lay, _validate=False)


def empty(title: str, note: str = "no data yet") -> go.Figure:
    return _figure([], title, 220, {"xaxis": {"visible": False}, "yaxis": {"visible": False}},
                   notes=[{"text": note, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}])


# Epoch columns the engine records at every epoch, epoch 0 included (rnnlab.records.EpochRecord: val_loss
# and val_metric are plain floats, never None): a NaN there is the run's NaN, even from its first epoch,
# and is marked ✕ at the ceiling, never taken for "not recorded" (ValueAxis.series' recorded_only).
ALWAYS_RECORDED = frozenset({"val_loss", "val_metric"})


def curves(df: pd.DataFrame, y: str, labels: dict[int, str], title: str, *, log: bool = False,
           baselines: dict[int, float | None] | None = None, x: str = "epoch", ytitle: str | None = None,
           smooth: float = 0.0, kinds: dict | None = None) -> go.Figure:
    """One line per run of column ``y`` against ``x``; ``baselines`` ({run id: the trivial predictor's
    value}) as ``baseline_marks`` with ``kinds``: a dotted line per distinct baseline, a shaded band
    from min to max where held-out baselines of one task configuration differ slightly (held-out sets
    drawn from different seeds).
    Undrawable values (NaN, ±inf, and ≤ 0 on a log axis) are markers at the floor or ceiling; in a
    column of ALWAYS_RECORDED that holds for a leading NaN too (a run NaN from its first epoch)."""
    d = df if y in df else df.iloc[0:0]
    if d.empty:
        return empty(title)
    col = colors(list(labels))
    kind = _kind(len(d))
    marks = baseline_marks(baselines, log=log, runs=list(labels), kinds=kinds)
    ax = ValueAxis([d[y]], log, marks.values)
    traces = [t for rid, g in d.groupby("run_id", sort=False)
              for t in ax.series(kind, g[x], g[y], labels.get(rid, str(rid)), col.get(rid), markers=len(g) < 40,
                                 group=rid, smooth=smooth, recorded_only=y not in ALWAYS_RECORDED)]
    return _figure(traces, title, 420, {"xaxis": {"title": {"text": x_title(x)}}, "yaxis": ax.layout(ytitle or y)},
                   marks.shapes, [_special_note([ax])] + marks.notes)


# --- baselines: lines and bands ------------------------------------------------------------------
# Each run stores the trivial predictor's loss on its own held-out set, and held-out sets depend on
# the seed: ten seeds of one adding-task setup give ten baselines within ~2% of 1/6 (0.1655, 0.1662,
# 0.1671, …). Ten dotted lines a hair apart, each with a label, say nothing; one band from their min to
# their max says it all. But a band must only join what is one baseline measured on different draws:
# the held-out baselines of one task configuration (``kinds``: the same key, e.g. reads.heldout_keys:
# the task's spec without the seed). Analytic baselines (a run that stored no held-out one) are exact
# and are one line per distinct value: the copy task's 10·ln 8/(T + 20) is 0.09902 at T = 190 and
# 0.09452 at T = 200, within 5% but two baselines. Within one configuration: sort the values; a value
# joins the current cluster while it is at most BASELINE_CLUSTER_RATIO × the cluster's smallest value
# (5%: over twice the seed-to-seed spread).
BASELINE_CLUSTER_RATIO = 1.05
BASELINE_SAME = 1e-9     # values closer than this (relative) are one baseline: a line, not a band
BASELINE_LISTED_RUNS = 6  # a mark that does not cover every run names up to this many run ids, else counts them
BASELINE_BAND_OPACITY = 0.18


@dataclass(frozen=True)
class BaselineCluster:
    lo: float
    hi: float
    runs: tuple  # the run ids whose baseline lies in [lo, hi]

    @property
    def is_band(self) -> bool:
        return self.hi > self.lo * (1 + BASELINE_SAME) if self.lo > 0 else self.hi > self.lo


@dataclass(frozen=True)
class BaselineMarks:
    clusters: list[BaselineCluster]
    shapes: list[dict]
    notes: list[dict]
    values: list[float]  # what the value axis must include (every mark's ends)


def _same(v: float, lo: float) -> bool:
    return v == lo or (lo > 0 and v <= lo * (1 + BASELINE_SAME))


def _cluster(vals: list, joins) -> list[list]:
    """Sorted (value, run id) pairs in runs: a value joins the current run while joins(value, its smallest)."""
    out: list[list] = []
    for v, rid in sorted(vals, key=lambda p: p[0]):
        if out and joins(v, out[-1][0][0]):
            out[-1].append((v, rid))
        else:
            out.append([(v, rid)])
    return out


def baseline_clusters(baselines: dict | None, *, log: bool = False, kinds: dict | None = None) -> list[BaselineCluster]:
    """The finite baselines of ``baselines`` ({run id: value}; None and NaN ignored, and on a log axis
    values ≤ 0, which it cannot draw) in clusters, smallest first. ``kinds`` ({run id: key or None})
    says which values are held-out baselines (a key: the task configuration they were measured on);
    a run that is missing or None there (and every run when ``kinds`` is None) has an analytic
    baseline. Held-out baselines cluster whatever their configuration (a T sweep of the adding task
    measures ≈ 1/6 at every T: one band, not three stacked bands with unreadable labels): sorted, a
    value joins the current cluster while it is ≤ BASELINE_CLUSTER_RATIO × the cluster's smallest
    value. An analytic value is never part of a band: it is a line of its own distinct value (the
    copy task's 10·ln 8/(T + 20) at T = 190 and 200 are two lines), and lines of the same value are
    one line, whatever their kind."""
    kinds = kinds or {}
    pools: dict[bool, list] = {False: [], True: []}
    for rid, v in (baselines or {}).items():
        if v is None or pd.isna(v) or not math.isfinite(float(v)) or (log and float(v) <= 0):
            continue
        pools[kinds.get(rid) is not None].append((float(v), rid))
    groups = _cluster(pools[False], _same)
    groups += _cluster(pools[True], lambda v, lo: v == lo or (lo > 0 and v <= BASELINE_CLUSTER_RATIO * lo))
    clusters = [BaselineCluster(g[0][0], g[-1][0], tuple(r for _, r in g)) for g in groups]
    bands = [c for c in clusters if c.is_band]
    lines = _cluster([(c.lo, c.runs) for c in clusters if not c.is_band], _same)  # one line per value
    clusters = bands + [BaselineCluster(g[0][0], g[-1][0], tuple(r for _, rs in g for r in rs)) for g in lines]
    return sorted((BaselineCluster(c.lo, c.hi, tuple(_sorted_ids(c.runs))) for c in clusters),
                  key=lambda c: (c.lo, c.hi))


def _sorted_ids(ids) -> list:
    ids = list(ids)
    try:
        return sorted(ids)
    except TypeError:
        return ids


def _range_text(lo: float, hi: float) -> str:
    """'0.1655–0.1671': 4 significant digits, more when 4 would print both ends alike."""
    for p in range(4, 11):
        a, b = f"{lo:.{p}g}", f"{hi:.{p}g}"
        if a != b:
            return f"{a}–{b}"
    return f"{lo:.10g}–{hi:.10g}"


def _which_runs(rids: tuple) -> str:
    if len(rids) <= BASELINE_LISTED_RUNS:
        return f"runs {', '.join(map(str, rids))}"
    return f"{len(rids)} runs"


def baseline_marks(baselines: dict | None, *, log: bool = False, runs=None, axis: int = 0,
                   kinds: dict | None = None) -> BaselineMarks:
    """The chart's marks of ``baselines`` ({run id: the trivial predictor's value}), one per cluster
    (``baseline_clusters`` with ``kinds``: {run id: the held-out set's task configuration, or None for
    an analytic baseline}): one distinct value is a dotted line labelled 'baseline 0.1667'; held-out
    baselines of one configuration that differ are a grey band from their min to their max with dotted
    edges, labelled 'baseline 0.1655–0.1671 (each run's held-out set)'. A mark that does not cover
    every run of the chart (``runs``, by default the keys of ``baselines``) names its runs: '(runs 1,
    2, 3)', or '(12 runs)' past BASELINE_LISTED_RUNS. Labels sit at the top of their mark (log10 of it
    on a log axis: Plotly's convention for annotations; shapes take data values)."""
    clusters = baseline_clusters(baselines, log=log, kinds=kinds)
    every = set((baselines or {}) if runs is None else runs)
    shapes, notes, values = [], [], []
    xa, ya = _axes(axis)
    for c in clusters:
        covers = every <= set(c.runs)
        if c.is_band:
            extra = ["each run's held-out set"] + ([] if covers else [_which_runs(c.runs)])
            text = f"baseline {_range_text(c.lo, c.hi)} ({'; '.join(extra)})"
            shapes.append({"type": "rect", "xref": f"{xa} domain", "yref": ya, "x0": 0, "x1": 1, "y0": c.lo,
                           "y1": c.hi, "fillcolor": "gray", "opacity": BASELINE_BAND_OPACITY,
                           "line": {"width": 0}, "layer": "below"})
            for y in (c.lo, c.hi):   # dotted edges: the band stays visible however thin it is on the axis
                shapes.append(_hline(y, axis, log=log)[0])
            notes.append(_hline(c.hi, axis, text, log=log)[1])
            values += [c.lo, c.hi]
        else:
            text = f"baseline {c.lo:.4g}" + ("" if covers else f" ({_which_runs(c.runs)})")
            sh, note = _hline(c.lo, axis, text, log=log)
            shapes.append(sh)
            notes.append(note)
            values.append(c.lo)
    return BaselineMarks(clusters, shapes, notes, values)


def facets(df: pd.DataFrame, y: str, facet: str, labels: dict[int, str], title: str, *, log: bool = True,
           wrap: int = 3, x: str = "epoch", smooth: float = 0.0) -> go.Figure:
    """Small multiples of ``y`` per value of ``facet`` (e.g. per parameter), runs coloured alike."""
    d = df if y in df else df.iloc[0:0]
    if d.empty:
        return empty(title)
    keys = list(dict.fromkeys(d[facet]))
    cols = min(wrap, len(keys))
    layout = _grid(len(keys), cols, [str(k) for k in keys])
    col = colors(list(labels))
    kind = _kind(len(d))
    traces, axes = [], []
    for i, (k, part) in enumerate(d.groupby(facet, sort=False)):
        j = keys.index(k)
        ax = ValueAxis([part[y]], log)
        for rid, g in part.groupby("run_id", sort=False):
            traces += ax.series(kind, g[x], g[y], labels.get(rid, str(rid)), col.get(rid), axis=j,
                                group=rid, legend=i == 0, line={"width": 1.5}, smooth=smooth)
        layout["yaxis" + _axes(j)[1][1:]].update(ax.layout())
        if j >= len(keys) - cols:  # the bottom row names the x axis
            layout["xaxis" + _axes(j)[0][1:]]["title"] = {"text": x_title(x)}
        axes.append(ax)
    return _figure(traces, title, max(300, 230 * math.ceil(len(keys) / cols)), layout, notes=[_special_note(axes)])


def two_panel(df: pd.DataFrame, panels: list[tuple[str, str, bool]], labels: dict[int, str], title: str,
              *, x: str = "epoch", hlines: dict[str, float] | None = None, smooth: float = 0.0) -> go.Figure:
    """Side-by-side panels of several columns (name, title, log y), runs coloured alike."""
    present = [(c, t, lg) for c, t, lg in panels if c in df and df[c].notna().any()]
    if not present:
        return empty(title)
    layout = _grid(len(present), len(present), [t for _, t, _ in present])
    col = colors(list(labels))
    kind = _kind(len(df) * len(present))
    traces, shapes, axes, shown = [], [], [], set()
    for j, (c, _, lg) in enumerate(present):
        ax = ValueAxis([df[c]], lg, [hlines[c]] if hlines and c in hlines else [])
        layout["xaxis" + _axes(j)[0][1:]]["title"] = {"text": x_title(x)}
        for rid, g in df.groupby("run_id", sort=False):
            new = ax.series(kind, g[x], g[c], labels.get(rid, str(rid)), col.get(rid), axis=j,
                            markers=len(g) < 40, group=rid, legend=rid not in shown, smooth=smooth)
            shown |= {rid} if new else set()
            traces += new
        layout["yaxis" + _axes(j)[1][1:]].update(ax.layout())
        axes.append(ax)
        if hlines and c in hlines:
            shapes.append(_hline(hlines[c], j)[0])
    return _figure(traces, title, 380, layout, shapes, [_special_note(axes)])


def profile(prof: pd.DataFrame, labels: dict[int, str], title: str,
            bounds: dict[int, tuple[float, float]] | None = None, *, log: bool = True,
            ytitle: str = "‖∂L/∂h_t‖") -> go.Figure:
    """‖∂L/∂h_t‖ against t, all runs overlaid (zeros and non-finite norms as floor/ceiling markers).
    ``bounds`` maps a vanilla run to (‖g_T‖, γ·σ_max): its bound ‖g_T‖·(γ·σ_max)^(T−t) is drawn
    dashed in the run's colour."""
    if prof.empty:
        return empty(title, "no per-timestep profile for this epoch")
    col = colors(list(labels))
    kind = _kind(len(prof) * 2)
    ax = ValueAxis([prof["norm"]], log)
    traces = []
    for rid, g in prof.groupby("run_id", sort=False):
        ep = int(g["epoch"].iloc[0])
        traces += ax.series(kind, g["t"], g["norm"], f"{labels.get(rid, rid)} (epoch {ep})", col.get(rid), group=rid,
                            recorded_only=False)  # a stored profile has no NULLs: NaN is NaN
        if bounds and rid in bounds:
            g_T, rate = bounds[rid]
            with np.errstate(all="ignore"):
                b = g_T * np.power(rate, g["k"].to_numpy(dtype=float))
            traces.append(_line(kind, g["t"], b, f"bound ‖g_T‖·(γσ_max)^k, γσ_max={rate:.3g}", col.get(rid),
                                group=rid, line={"dash": "dash", "width": 1}))
    return _figure(traces, title, 420, {
        "yaxis": ax.layout(ytitle),
        "xaxis": {"title": {"text": "time step t (loss at t = T; k = T − t steps back)"}}}, notes=[_special_note([ax])])


# A norm of 0 (log10 −∞: vanished) and one of +∞ or NaN (exploded, or no value) are what this tool is
# for telling apart: in the t × epoch heatmaps each has its own colour outside the Viridis scale, named
# in the chart's note, instead of one grey for both.
# The smallest norms take Viridis's darkest colour, so a vanished cell must stand out against it:
# white (contrast 13:1 with #440154; black was 1.4:1, the vanishing boundary unreadable); red
# (4.5:1 with the yellow top) for +∞ and NaN.
VANISHED_COLOR, VANISHED_NAME = "#ffffff", "white"   # ‖g_t‖ = 0: log10 is −∞
EXPLODED_COLOR, EXPLODED_NAME = "#d62728", "red"     # ‖g_t‖ = +∞ or NaN: exploded, or no value
HEATMAP_QUANTITY = "‖∂L/∂h_t‖"   # the default quantity; the page passes the one shown (‖∂L/∂c_t‖, ‖∂ℓ_T/∂h_t‖)


def heatmap_clip_title(quantity: str = HEATMAP_QUANTITY) -> str:
    """The colour bar's title: log10 of the quantity the heatmaps show, and the clipping."""
    return f"log10{quantity}<br>(clipped: 1st–99th pct)"


HEATMAP_CLIP_TITLE = heatmap_clip_title()
GAP_GREY = "#b0b0b0"
CLIP_NOTE = "colour clipped to the 1st–99th percentile: values beyond take the end colours"


def _mark_cells(x, y, mask: np.ndarray, color: str, what: str, axis: int) -> dict:
    """A heatmap trace that paints the cells of ``mask`` in one colour (the others are gaps)."""
    xa, ya = _axes(axis)
    return dict(type="heatmap", x=x, y=y, z=np.where(mask, 1.0, np.nan).astype(np.float32), zmin=0, zmax=1,
                colorscale=[[0, color], [1, color]], showscale=False, hoverongaps=False, xaxis=xa, yaxis=ya,
                name=what, hovertemplate=f"t=%{{x:.0f}}<br>epoch=%{{y}}<br>{what}<extra></extra>")


def heatmaps(mats: list[tuple[str, dict]], title: str, wrap: int = 3, *, quantity: str = HEATMAP_QUANTITY
             ) -> go.Figure:
    """Small multiples of t × epoch heatmaps of log10 ``quantity`` (‖∂L/∂h_t‖, ‖∂L/∂c_t‖ or ‖∂ℓ_T/∂h_t‖,
    named on the colour bar and on hover) sharing one colour scale, from the 1st
    to the 99th percentile of the finite values (beyond: the end colours, as the note says). Cells
    whose norm is 0 (log10 −∞: vanished) are VANISHED_COLOR, cells whose norm is +∞ or NaN (exploded,
    or no value) EXPLODED_COLOR; the note names both colours when there are such cells."""
    mats = [(lbl, m) for lbl, m in mats if len(m.get("epochs", []))]
    if not mats:
        return empty(title, "no per-timestep profiles yet")
    finite = np.concatenate([m["z"][np.isfinite(m["z"])].ravel() for _, m in mats])
    zmin, zmax = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) if finite.size else (0.0, 1.0)
    cols = min(wrap, len(mats))
    layout = _grid(len(mats), cols, [lbl for lbl, _ in mats], hspace=0.04)
    traces, vanished, exploded = [], False, False
    for i, (_, m) in enumerate(mats):
        xa, ya = _axes(i)
        z = np.asarray(m["z"], dtype=float)
        x, y = np.asarray(m["t"]), np.asarray(m["epochs"])
        traces.append(dict(type="heatmap", x=x, y=y,
                           # half the bytes; finer than the colour scale. Non-finite cells are gaps here,
                           # painted by the traces below
                           z=np.where(np.isfinite(z), z, np.nan).astype(np.float32),
                           coloraxis="coloraxis", xaxis=xa, yaxis=ya, hoverongaps=False,
                           hovertemplate=f"t=%{{x:.0f}}<br>epoch=%{{y}}<br>log10{quantity}=%{{z:.2f}}<extra></extra>"))
        neg, pos, nan = np.isneginf(z), np.isposinf(z), np.isnan(z)
        if neg.any():
            traces.append(_mark_cells(x, y, neg, VANISHED_COLOR, "‖g_t‖ = 0 (vanished)", i))
        if pos.any():
            traces.append(_mark_cells(x, y, pos, EXPLODED_COLOR, "‖g_t‖ = +∞ (exploded)", i))
        if nan.any():
            traces.append(_mark_cells(x, y, nan, EXPLODED_COLOR, "‖g_t‖ = NaN (no value)", i))
        vanished, exploded = vanished or neg.any(), exploded or pos.any() or nan.any()
        layout["xaxis" + xa[1:]]["title"] = {"text": "t"}
        if i % cols == 0:
            layout["yaxis" + ya[1:]]["title"] = {"text": "epoch"}
    layout["coloraxis"] = dict(colorscale="Viridis", cmin=zmin, cmax=zmax,
                               colorbar=dict(title=dict(text=heatmap_clip_title(quantity))))
    parts = ([f"{VANISHED_NAME} cells: ‖g_t‖ = 0 (vanished)"] if vanished else []) + \
        ([f"{EXPLODED_NAME} cells: ‖g_t‖ = +∞ or NaN (exploded or no value)"] if exploded else [])
    notes = [_corner_note("<br>".join(p for p in ("; ".join(parts), CLIP_NOTE) if p))]
    return _figure(traces, title, max(320, 260 * math.ceil(len(mats) / cols)), layout, notes=notes)


# Δ < 0 (A smaller) → blue, Δ > 0 (A larger) → red; an explicit scale, because Plotly's named
# "RdBu" runs red→blue in Python but blue→red in the browser's plotly.js.
DIFF_SCALE = [[0.0, "rgb(33,102,172)"], [0.25, "rgb(103,169,207)"], [0.5, "rgb(247,247,247)"],
              [0.75, "rgb(239,138,98)"], [1.0, "rgb(178,24,43)"]]


def diff_heatmap(a: tuple[str, dict], b: tuple[str, dict], title: str, *, why: dict[str, str] | None = None
                 ) -> go.Figure:
    """log10‖g_t‖(A) − log10‖g_t‖(B) on the epochs and time steps the two runs share; the colour range
    is ±the 99th percentile of |Δ| (beyond: the end colours, as the note says). A cell where either
    norm is 0 or not finite has no Δ: grey, 'no value' (not Δ = 0, which is the scale's white).
    Where A or B has no profile, the chart says which, with ``why`` ({label: reason}) if given."""
    (la, ma), (lb, mb) = a, b
    lacking = [lbl for lbl, m in ((la, ma), (lb, mb)) if not len(m["epochs"])]
    if lacking:
        why = why or {}
        names = list(dict.fromkeys(lacking))
        return empty(title, "no difference map: " + "; ".join(
            f"{html.escape(lbl, quote=False)} has no per-timestep profile here"
            + (f" ({html.escape(why[lbl], quote=False)})" if lbl in why else "") for lbl in names))
    if ma["seq_len"] != mb["seq_len"]:
        return empty(title, f"different sequence lengths (T={ma['seq_len']} vs T={mb['seq_len']}): no difference map")
    common = sorted(set(ma["epochs"]) & set(mb["epochs"]))
    if not common:
        return empty(title, "the runs share no probed epoch")
    ia = [ma["epochs"].index(e) for e in common]
    ib = [mb["epochs"].index(e) for e in common]
    za, zb = np.asarray(ma["z"], dtype=float)[ia], np.asarray(mb["z"], dtype=float)[ib]
    with np.errstate(invalid="ignore"):
        z = za - zb
    z = np.where(np.isfinite(za) & np.isfinite(zb), z, np.nan)   # −∞ − x is no Δ to colour either
    finite = z[np.isfinite(z)]
    m = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    m = m if m > 0 else 1.0
    trace = dict(type="heatmap", x=np.asarray(ma["t"]), y=np.asarray(common), z=np.round(z, 2), colorscale=DIFF_SCALE,
                 zmid=0, zmin=-m, zmax=m, hoverongaps=False,
                 colorbar=dict(title=dict(text="Δ log10<br>(clipped: 99th pct of |Δ|)")),
                 hovertemplate="t=%{x:.0f}<br>epoch=%{y}<br>Δ=%{z:.2f}<extra></extra>")
    layout: dict = {"xaxis": {"title": {"text": "t"}}, "yaxis": {"title": {"text": "epoch"}}}
    clip = "colour clipped to ±the 99th percentile of |Δ|: values beyond take the end colours"
    parts = [clip]
    if not np.isfinite(z).all():
        layout["plot_bgcolor"] = GAP_GREY
        parts.insert(0, "grey cells: no value (a norm is 0 or not finite in A or B)")
    return _figure([trace], f"{title}: {la} minus {lb} (blue: A smaller, red: A larger)", 380, layout,
                   notes=[_corner_note("<br>".join(parts))])


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
    layout = {"yaxis": {"tickvals": list(range(len(order)))[::-1], "ticktext": [f"#{r}" for r in order],
                        "showgrid": False},
              "xaxis": {"title": {"text": "log10 |∂L/∂θ| (edge bins: underflow < 1e-10, overflow ≥ 1e2)"}}}
    return _figure(traces, title, max(300, 60 * len(order) + 160), layout)


def band(df: pd.DataFrame, x: str, title: str, ytitle: str, *, log: bool = False,
         baselines: dict | None = None, smooth: float = 0.0, kinds: dict | None = None,
         group_colors: dict | None = None) -> go.Figure:
    """Group means with a shaded band: ``df`` has columns group, x, mean, lo, hi, n. ``baselines``
    ({run id: the trivial predictor's value} of the runs behind the groups) are drawn as
    ``baseline_marks`` with ``kinds``: a dotted line, or a grey band where held-out baselines of one task
    configuration differ slightly. ``group_colors`` ({group: colour}, ``colors`` of every group on the
    page) keeps a group's colour the same on every chart, whichever groups a chart lacks; without it
    the colours follow the groups present here."""
    if df.empty:
        return empty(title)
    present = list(dict.fromkeys(df["group"]))
    fixed = group_colors or {}
    extra = [g for g in present if g not in fixed]   # a group the page's map lacks: the next free colours
    col = {**fixed, **{g: PALETTE[(len(fixed) + i) % len(PALETTE)] for i, g in enumerate(extra)}}
    kind = _kind(len(df) * 3)
    marks = baseline_marks(baselines, log=log, kinds=kinds)
    ax = ValueAxis([df["mean"], df["lo"], df["hi"]], log, marks.values)
    traces = []
    for grp, g in df.groupby("group", sort=False):
        c = col[grp]
        traces.append(_line(kind, g[x], g["hi"], "", c, group=grp, legend=False, hoverinfo="skip", line={"width": 0}))
        traces.append(_line(kind, g[x], g["lo"], "", c, group=grp, legend=False, hoverinfo="skip", line={"width": 0},
                            fill="tonexty", fillcolor=_alpha(c, 0.2)))
        name = f"{html.escape(str(grp), quote=False)} (n={int(g['n'].max())})"  # group values may be user text
        traces += ax.series(kind, g[x], g["mean"], name, c, group=grp, line={"width": 2}, smooth=smooth)
    return _figure(traces, title, 380, {"xaxis": {"title": {"text": x}}, "yaxis": ax.layout(ytitle)},
                   marks.shapes, [_special_note([ax])] + marks.notes)


def _alpha(color: str, a: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"


HIST_VALUES = {"fraction": "fraction of the epoch's entries", "count": "count"}


def hist_matrix(df: pd.DataFrame) -> dict:
    """One run's stored histograms of one parameter (rows run_id, epoch, counts, zeros, nonfinite) as
    {"epochs", "counts" (epochs × bins), "zeros", "nonfinite"}."""
    df = df.sort_values("epoch")
    counts = np.array([np.asarray(c, dtype=float) for c in df["counts"]]).reshape(len(df), -1)
    return {"epochs": [int(e) for e in df["epoch"]], "counts": counts,
            "zeros": df["zeros"].to_numpy(dtype=float), "nonfinite": df["nonfinite"].to_numpy(dtype=float)}


def hist_heatmap(mats: list[tuple[str, dict]], title: str, *, value: str = "fraction", wrap: int = 3) -> go.Figure:
    """The log10|g| histogram of one parameter across epochs: epochs × bins, one panel per run, one
    colour scale. ``value`` 'count' colours the stored counts; 'fraction' divides each epoch's counts
    by all of its entries (exact zeros and non-finite values included, so a row sums to less than 1
    when there are any). The outermost bins hold underflow (< 1e-10) and overflow (≥ 1e2)."""
    if value not in HIST_VALUES:
        raise ValueError(f"value: {value!r} is not one of {', '.join(HIST_VALUES)}")
    mats = [(lbl, m) for lbl, m in mats if len(m.get("epochs", []))]
    if not mats:
        return empty(title, "no gradient histograms")
    x = _bin_centres()
    cols = min(wrap, len(mats))
    layout = _grid(len(mats), cols, [lbl for lbl, _ in mats], hspace=0.04)
    traces, zs = [], []
    for i, (_, m) in enumerate(mats):
        c = np.asarray(m["counts"], dtype=float)
        total = c.sum(axis=1) + np.asarray(m["zeros"], dtype=float) + np.asarray(m["nonfinite"], dtype=float)
        with np.errstate(all="ignore"):
            z = c if value == "count" else np.where(total[:, None] > 0, c / total[:, None], 0.0)
        zs.append(z)
        xa, ya = _axes(i)
        extra = np.stack([c, np.broadcast_to(m["zeros"], c.T.shape).T, np.broadcast_to(m["nonfinite"], c.T.shape).T],
                         axis=-1)
        traces.append(dict(type="heatmap", x=x, y=np.asarray(m["epochs"]), z=z, coloraxis="coloraxis", xaxis=xa,
                           yaxis=ya, customdata=extra,
                           hovertemplate=("log10|g|=%{x:.2f}<br>epoch=%{y}<br>count=%{customdata[0]:.0f}"
                                          "<br>" + HIST_VALUES[value] + "=%{z:.3g}<br>zeros=%{customdata[1]:.0f}, "
                                          "non-finite=%{customdata[2]:.0f}<extra></extra>")))
        layout["xaxis" + xa[1:]]["title"] = {"text": "log10 |∂L/∂θ|"}
        if i % cols == 0:
            layout["yaxis" + ya[1:]]["title"] = {"text": "epoch"}
    zmax = max(float(np.nanmax(z)) if z.size else 0.0 for z in zs)
    layout["coloraxis"] = dict(colorscale="Viridis", cmin=0, cmax=zmax if zmax > 0 else 1,
                               colorbar=dict(title=dict(text=HIST_VALUES[value])))
    notes = [_corner_note("edge bins: underflow |g| < 1e-10, overflow |g| ≥ 1e2; zeros and non-finite on hover")]
    return _figure(traces, title, max(320, 260 * math.ceil(len(mats) / cols)), layout, notes=notes)
