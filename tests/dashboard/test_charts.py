"""The chart figures themselves (dashboard/charts.py): colours against their titles, values a log axis
cannot draw, tick labels, baseline labels and label escaping, checked on the Plotly figure objects.
Colours of named scales are resolved the way the browser does, from the plotly.js that Streamlit ships."""

from __future__ import annotations

import html
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit

from dashboard import charts

INF = math.inf
NAN = math.nan


# --- helpers: read a figure as the browser would ---------------------------------------------------

@lru_cache
def _plotly_js_scale(name: str) -> list:
    """A named colour scale as plotly.js (Streamlit's bundle) defines it: figures sent without
    validation reach the browser with the bare name."""
    static = Path(streamlit.__file__).parent / "static"
    for js in static.rglob("*.js"):
        m = re.search(name + r':(\[\[0,"rgb\([^]]*\](?:,\[[^]]*\])*\])', js.read_text(errors="ignore"))
        if m:
            pairs = re.findall(r'\[(\.?[\d.]+),"(rgb\([^)]*\))"\]', m.group(1))
            return [[float(p), c] for p, c in pairs]
    raise AssertionError(f"colour scale {name} not found in Streamlit's plotly.js")


def _rgb(c: str) -> np.ndarray:
    if c.startswith("#"):
        return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return np.array([float(v) for v in re.findall(r"[\d.]+", c)[:3]])


def colour_of(trace: dict, z: float) -> np.ndarray:
    """The RGB colour a heatmap trace gives the value z (zmin/zmax, reversescale, named scales)."""
    scale = trace["colorscale"]
    scale = _plotly_js_scale(scale) if isinstance(scale, str) else [[float(p), c] for p, c in scale]
    if trace.get("reversescale"):
        scale = [[1 - p, c] for p, c in reversed(scale)]
    f = min(1.0, max(0.0, (z - trace["zmin"]) / (trace["zmax"] - trace["zmin"])))
    for (p0, c0), (p1, c1) in zip(scale, scale[1:]):
        if p0 <= f <= p1:
            w = 0.0 if p1 == p0 else (f - p0) / (p1 - p0)
            return (1 - w) * _rgb(c0) + w * _rgb(c1)
    raise AssertionError(f"{f} outside the colour scale")


def hue(rgb: np.ndarray) -> str:
    r, _, b = rgb
    return "red" if r > b + 60 else "blue" if b > r + 60 else "neither"


def _title(fig) -> str:
    t = fig.to_plotly_json()["layout"]["title"]
    return t if isinstance(t, str) else t["text"]


def _traces(fig) -> list[dict]:
    return [t.to_plotly_json() for t in fig.data]


def _axis(fig, trace: dict) -> dict:
    return fig.layout[f"yaxis{trace.get('yaxis', 'y')[1:]}"].to_plotly_json()


def _in_view(fig, trace: dict) -> np.ndarray:
    """Which y values of the trace the axis can draw inside its range."""
    ax = _axis(fig, trace)
    y = np.asarray(trace["y"], dtype=float)
    with np.errstate(all="ignore"):
        u = np.log10(y) if ax.get("type") == "log" else y
    ok = np.isfinite(u)
    if "range" in ax:
        lo, hi = ax["range"]
        ok &= (u >= lo) & (u <= hi)
    return ok


def _drawn_x(fig, group: str) -> set:
    """The x positions at which a run (legend group) has something visible."""
    out = set()
    for t in _traces(fig):
        if t.get("legendgroup") == group:
            out |= {float(x) for x, ok in zip(t["x"], _in_view(fig, t)) if ok}
    return out


def _series(values: dict[int, list[float]], col: str = "val_loss") -> pd.DataFrame:
    rows = [{"run_id": rid, "epoch": e, col: v} for rid, vs in values.items() for e, v in enumerate(vs)]
    return pd.DataFrame(rows)


# --- 1. the difference map's colours match its title ------------------------------------------------

def _mat(z: list[list[float]]) -> dict:
    z = np.asarray(z, dtype=float)
    return {"epochs": list(range(z.shape[0])), "t": list(range(1, z.shape[1] + 1)), "z": z, "seq_len": z.shape[1]}


def test_difference_map_gives_a_negative_delta_the_colour_its_title_names_for_a_smaller():
    a = _mat([[-9.0, -3.0, -1.0, 0.5]])
    b = _mat([[-1.7, -3.0, -3.0, -1.5]])  # Δ = −7.3, 0, +2, +2
    fig = charts.diff_heatmap(("#1", a), ("#2", b), "Difference")
    title = _title(fig)
    smaller = re.search(r"(red|blue)[^,;)]*?:\s*A (?:has )?smaller", title)
    larger = re.search(r"(red|blue)[^,;)]*?:\s*A (?:has )?larger", title)
    assert smaller and larger, f"the title must name the colour of both signs: {title!r}"
    (trace,) = _traces(fig)
    assert hue(colour_of(trace, -7.3)) == smaller.group(1)
    assert hue(colour_of(trace, 2.0)) == larger.group(1)
    assert hue(colour_of(trace, 0.0)) == "neither"


# --- 2. zero, ±inf and NaN are drawn, never dropped ---------------------------------------------------

MIXED = [0.5, 0.0, -INF, INF, NAN, 0.1, 0.2]
NOTHING_DRAWABLE = [0.0, NAN, 0.0, -INF]


def _check_every_point_drawn(fig, values: dict[int, list[float]], xs: dict[int, list[float]], log: bool = True):
    for rid in values:
        assert _drawn_x(fig, str(rid)) == {float(x) for x in xs[rid]}, f"run {rid}: a point is missing"
    finite = [v for vs in values.values() for v in vs if math.isfinite(v) and (v > 0 or not log)]
    lo, hi = min(finite), max(finite)
    for t in _traces(fig):
        y = np.asarray(t["y"], dtype=float)
        marks = t.get("mode") == "markers"
        if marks:  # the floor/ceiling markers: below or above every drawable value, in the run's colour
            groups = {str(r): vs for r, vs in values.items()}
            raw = dict(zip(xs[int(t["legendgroup"])], groups[t["legendgroup"]]))
            for x, yy in zip(t["x"], y):
                v = raw[x]
                assert (yy < lo) if (v == -INF or (log and v <= 0)) else (yy > hi), (x, v, yy)
    notes = " ".join(a.text for a in fig.layout.annotations)
    every = [v for vs in values.values() for v in vs]
    floor = any(v == -INF or (log and v <= 0) for v in every)
    expect = {"NaN": any(math.isnan(v) for v in every), "+inf": INF in every, "−inf": floor, "0,": log and floor}
    for word, present in expect.items():
        assert (word in notes) == present, (word, notes)


def test_curves_on_a_log_axis_draw_zero_inf_and_nan_at_the_floor_or_ceiling():
    values = {1: MIXED, 2: NOTHING_DRAWABLE}
    fig = charts.curves(_series(values), "val_loss", {1: "run one", 2: "run two"}, "loss", log=True)
    _check_every_point_drawn(fig, values, {r: list(range(len(v))) for r, v in values.items()})
    legend = [t for t in _traces(fig) if t.get("showlegend", True) and t.get("name")]
    for t in legend:  # a run in the legend always has visible points
        assert _drawn_x(fig, t["legendgroup"]), t["name"]
    assert {t["name"] for t in legend} >= {"run one", "run two"}


def test_curves_on_a_linear_axis_draw_inf_and_nan_too():
    values = {1: [0.5, INF, 0.25, NAN, -0.1, -INF]}
    fig = charts.curves(_series(values), "val_loss", {1: "r"}, "loss", log=False)
    _check_every_point_drawn(fig, values, {1: list(range(6))}, log=False)


def test_profile_draws_dead_zero_and_nonfinite_norms():
    values = {1: [0.0, 0.0, 1e-30, NAN, 1e-3, INF, 1e-2], 3: [0.0] * 7}
    prof = pd.DataFrame([{"run_id": r, "epoch": 4, "t": t + 1, "k": 6 - t, "norm": v}
                         for r, vs in values.items() for t, v in enumerate(vs)])
    fig = charts.profile(prof, {1: "alive", 3: "dead"}, "profile")
    _check_every_point_drawn(fig, values, {r: list(range(1, 8)) for r in values})


def test_panels_and_facets_draw_zero_on_their_log_axes():
    df = _series({1: [1.0, 0.0, 3.0], 2: [2.0, 5.0, INF]}, "grad_norm_mean")
    fig = charts.two_panel(df, [("grad_norm_mean", "norm", True)], {1: "a", 2: "b"}, "panels")
    _check_every_point_drawn(fig, {1: [1.0, 0.0, 3.0], 2: [2.0, 5.0, INF]}, {1: [0, 1, 2], 2: [0, 1, 2]})
    df["param"] = "weight_hh_l0"
    fig = charts.facets(df, "grad_norm_mean", "param", {1: "a", 2: "b"}, "facets")
    assert _drawn_x(fig, "1") == {0.0, 1.0, 2.0} and _drawn_x(fig, "2") == {0.0, 1.0, 2.0}


def test_values_not_recorded_are_not_drawn_as_nan():
    """NULL in the database (the clip fraction at epoch 0; γ·σ_max of a gated cell) arrives as NaN, leading
    the series or filling it: that is 'not recorded', not a NaN of the model."""
    df = _series({1: [NAN, 0.2, 0.1, NAN], 2: [NAN, NAN, NAN, NAN]}, "clip_fraction")
    fig = charts.two_panel(df, [("clip_fraction", "clipped", False)], {1: "a", 2: "b"}, "panels")
    assert _drawn_x(fig, "1") == {1.0, 2.0, 3.0}  # the trailing NaN is a real one: drawn at the ceiling
    assert not [t for t in _traces(fig) if t.get("legendgroup") == "2"]


# --- 3. log axes read as powers of ten ---------------------------------------------------------------

POW = re.compile(r"^(?:(\d)×)?10<sup>(−?)(\d+)</sup>$")


@pytest.mark.parametrize("values", [[1e-9, 1e-5, 0.1], [0.12, 0.15, 0.18], [3.0, 40.0, 9000.0], [0.56, 0.96],
                                    [1e-30, 1.0]])
def test_log_axes_label_every_tick_as_a_power_of_ten(values):
    fig = charts.curves(_series({1: values}), "val_loss", {1: "r"}, "loss", log=True)
    ax = fig.layout.yaxis
    assert ax.type == "log" and ax.tickmode == "array" and len(ax.ticktext) >= 2
    lo, hi = ax.range
    for val, text in zip(ax.tickvals, ax.ticktext):
        m = POW.match(text)
        assert m, f"{text!r} is not m×10^k"
        parsed = int(m.group(1) or 1) * 10.0 ** (-int(m.group(3)) if m.group(2) else int(m.group(3)))
        assert math.isclose(parsed, val, rel_tol=1e-9) and lo <= math.log10(val) <= hi
    assert all(lo <= math.log10(v) <= hi for v in ax.minor.tickvals)


def test_every_log_chart_uses_power_of_ten_ticks():
    df = _series({1: [1e-3, 1e-1, 2.0]}, "x")
    figs = [charts.two_panel(df, [("x", "x", True)], {1: "r"}, "t"),
            charts.facets(df.assign(param="p"), "x", "param", {1: "r"}, "f"),
            charts.band(pd.DataFrame({"group": "g", "epoch": [0, 1], "mean": [0.1, 0.01], "lo": [0.05, 0.005],
                                      "hi": [0.2, 0.02], "n": 3}), "epoch", "b", "loss", log=True),
            charts.profile(pd.DataFrame({"run_id": 1, "epoch": 0, "t": [1, 2, 3], "k": [2, 1, 0],
                                         "norm": [1e-6, 1e-3, 1.0]}), {1: "r"}, "p")]
    for fig in figs:
        axes = [v for k, v in fig.layout.to_plotly_json().items() if k.startswith("yaxis") and v.get("type") == "log"]
        assert axes, _title(fig)
        for ax in axes:
            assert ax["ticktext"] and all(POW.match(t) for t in ax["ticktext"]), ax


# --- 5. baseline labels on log axes ------------------------------------------------------------------

@pytest.mark.parametrize("log", [True, False])
def test_baseline_label_sits_on_its_line(log):
    fig = charts.curves(_series({1: [0.3, 0.1, 0.01]}), "val_loss", {1: "r"}, "loss", log=log,
                        baselines={1: 1 / 6})
    (line,) = fig.layout.shapes
    (note,) = [a for a in fig.layout.annotations if a.text.startswith("baseline")]
    assert line.y0 == pytest.approx(1 / 6)  # shapes take data values on every axis type
    assert note.y == pytest.approx(math.log10(1 / 6) if log else 1 / 6)  # annotations take log10 on a log axis
    band = charts.band(pd.DataFrame({"group": "g", "epoch": [0, 1], "mean": [0.3, 0.01], "lo": [0.2, 0.005],
                                     "hi": [0.4, 0.02], "n": 2}), "epoch", "b", "loss", log=log, baselines={1: 1 / 6})
    (note,) = [a for a in band.layout.annotations if a.text.startswith("baseline")]
    assert note.y == pytest.approx(math.log10(1 / 6) if log else 1 / 6)


# --- 6. labels are escaped once ------------------------------------------------------------------------

PLOTLY_ENTITIES = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "×", "plusmn": "±",
                   "deg": "°"}  # the only named entities plotly.js decodes (svg_text_utils)


def plotly_text(s: str) -> str:
    """What plotly.js shows for a label's text (entities decoded as it decodes them; tags aside)."""
    def one(m: re.Match) -> str:
        e = m.group(1)
        if e.startswith("#x"):
            return chr(int(e[2:], 16))
        if e.startswith("#"):
            return chr(int(e[1:]))
        return PLOTLY_ENTITIES.get(e, m.group(0))
    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, s)


def test_sweep_labels_show_their_quotes_and_stay_inert():
    from dashboard.components import run_label
    from dashboard.views import labels_of

    names = ['clip-sweep · clip={"mode":"norm","max_norm":1.0}', "it's <b>bold</b> & more"]
    runs = pd.DataFrame([{"id": i + 1, "cell": "rnn", "activation": "tanh", "task": "adding", "seq_len": 50,
                          "hidden_size": 32, "num_layers": 1, "seed": 0, "name": n} for i, n in enumerate(names)])
    labels = labels_of(runs)
    for (_, row), label in zip(runs.iterrows(), labels.values()):
        assert plotly_text(label) == run_label(row), label
        assert "<" not in label and "&quot;" not in label
    assert html.unescape(labels[2]) == run_label(runs.iloc[1])


def test_a_run_without_a_name_has_no_name_in_its_label():
    from dashboard.components import run_label
    from dashboard.views import labels_of

    runs = pd.DataFrame([{"id": 1, "cell": "lstm", "activation": None, "task": "adding", "seq_len": 50,
                          "hidden_size": 32, "num_layers": 1, "seed": 0, "name": None},
                         {"id": 2, "cell": "lstm", "activation": None, "task": "adding", "seq_len": 50,
                          "hidden_size": 32, "num_layers": 1, "seed": 0, "name": "named"}])
    runs.loc[0, "name"] = np.nan  # what a mixed column from the database holds
    assert labels_of(runs) == {1: "#1 lstm adding T=50 h32x1 s0", 2: "#2 lstm adding T=50 h32x1 s0 · named"}
    assert run_label(runs.iloc[0]) == "#1 lstm adding T=50 h32x1 s0"


def test_band_legend_names_are_escaped_once():
    df = pd.DataFrame({"group": 'tag <b>x</b> & clip={"mode":"norm"}', "epoch": [0, 1], "mean": [0.3, 0.1],
                       "lo": [0.2, 0.05], "hi": [0.4, 0.2], "n": 2})
    fig = charts.band(df, "epoch", "b", "loss", log=True)
    (name,) = [t["name"] for t in _traces(fig) if t.get("showlegend", True) and t.get("name")]
    assert "<" not in name and plotly_text(name) == 'tag <b>x</b> & clip={"mode":"norm"} (n=2)'
