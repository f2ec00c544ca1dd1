"""The options of every time-series chart (dashboard/charts.py): the EMA smoothing against pandas and a
hand computation, the raw series drawn faintly, non-finite points kept out of the average and still
marked, the x axis, the legend block of 12 runs, and the histogram-over-time heatmap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard import charts

INF, NAN = math.inf, math.nan


def _pandas_ema(y, w: float, log: bool = False) -> np.ndarray:
    """The independent computation: pandas' EWM without adjustment, missing values skipped."""
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0) if log else np.isfinite(y)
    with np.errstate(all="ignore"):
        u = np.where(ok, np.log10(np.where(ok, y, 1.0)) if log else y, np.nan)
    s = pd.Series(u).ewm(alpha=1 - w, adjust=False, ignore_na=True).mean().to_numpy()
    s = np.where(ok, s, np.nan)
    return 10 ** s if log else s


# --- the EMA ------------------------------------------------------------------------------------------

def test_ema_by_hand():
    # s1 = 1; s2 = .5·1 + .5·3 = 2; s3 = .5·2 + .5·6 = 4
    np.testing.assert_allclose(charts.ema([1, 3, 6], 0.5), [1, 2, 4])
    np.testing.assert_allclose(charts.ema([1, 3, 6], 0.0), [1, 3, 6])
    # log axis: the geometric average, 10^(.5·0 + .5·2) = 10
    np.testing.assert_allclose(charts.ema([1, 100], 0.5, log=True), [1, 10])


@pytest.mark.parametrize("w", [0.3, 0.6, 0.9, 0.99])
def test_ema_equals_pandas_ewm_without_adjustment(w):
    y = np.random.default_rng(7).lognormal(0, 1.5, 300)
    np.testing.assert_allclose(charts.ema(y, w), pd.Series(y).ewm(alpha=1 - w, adjust=False).mean(), rtol=1e-12)
    np.testing.assert_allclose(charts.ema(y, w, log=True), _pandas_ema(y, w, log=True), rtol=1e-12)


@pytest.mark.parametrize("log", [False, True])
def test_nonfinite_points_are_not_averaged_into_their_neighbours(log):
    y = np.array([1.0, 2.0, NAN, 4.0, INF, 8.0, -INF, 0.0, 16.0, -3.0, 32.0])
    s = charts.ema(y, 0.7, log=log)
    np.testing.assert_allclose(s, _pandas_ema(y, 0.7, log), rtol=1e-12)
    undrawable = ~(np.isfinite(y) & (y > 0)) if log else ~np.isfinite(y)
    assert np.isnan(s[undrawable]).all() and np.isfinite(s[~undrawable]).all()
    # the point after a NaN is averaged with the last finite state, as if the NaN were not there
    clean = y[~undrawable]
    np.testing.assert_allclose(s[~undrawable], charts.ema(clean, 0.7, log=log), rtol=1e-12)


def test_smoothing_out_of_range_names_the_field():
    with pytest.raises(ValueError, match="smoothing"):
        charts.ema([1, 2], 1.0)
    with pytest.raises(ValueError, match="smoothing"):
        charts.ChartOptions(smoothing=1.5)
    with pytest.raises(ValueError, match="x axis"):
        charts.ChartOptions(x="wall")


# --- smoothed charts ----------------------------------------------------------------------------------

def _df(values: dict[int, list[float]], col: str = "val_loss") -> pd.DataFrame:
    rows = [{"run_id": rid, "epoch": e, "step": 20 * e, "seconds": 0.5 * e, col: v}
            for rid, vs in values.items() for e, v in enumerate(vs)]
    return pd.DataFrame(rows)


def _traces(fig) -> list[dict]:
    return [t.to_plotly_json() for t in fig.data]


@pytest.mark.parametrize("log", [False, True])
def test_smoothed_curve_draws_the_raw_faintly_and_marks_nonfinite_values(log):
    y = [0.9, 0.7, NAN, 0.5, INF, 0.3, 0.2]
    fig = charts.curves(_df({1: y}), "val_loss", {1: "#1"}, "loss", log=log, smooth=0.6)
    tr = _traces(fig)
    raw = [t for t in tr if t["name"] == "#1 (raw)"]
    smooth = [t for t in tr if t["name"] == "#1"]
    marks = [t for t in tr if t["name"] == "#1: not drawable"]
    assert len(raw) == len(smooth) == len(marks) == 1
    raw, smooth, marks = raw[0], smooth[0], marks[0]
    assert raw["opacity"] == charts.RAW_OPACITY and raw["showlegend"] is False and smooth["showlegend"] is True
    assert raw["line"]["color"] == smooth["line"]["color"] == marks["marker"]["color"]
    np.testing.assert_allclose(np.asarray(raw["y"], dtype=float), np.where(np.isfinite(y), y, np.nan))
    np.testing.assert_allclose(np.asarray(smooth["y"], dtype=float), _pandas_ema(y, 0.6, log), rtol=1e-12)
    # NaN and +inf keep their markers at the ceiling, at their own epochs
    assert list(marks["x"]) == [2, 4] and marks["marker"]["symbol"] == ["x", "triangle-up"]


def test_no_smoothing_draws_one_line_per_run():
    fig = charts.curves(_df({1: [1, 2, 3], 2: [3, 2, 1]}), "val_loss", {1: "a", 2: "b"}, "t")
    assert [t["name"] for t in _traces(fig)] == ["a", "b"]


def test_panels_facets_and_bands_smooth_too():
    df = _df({1: [1.0, 4.0, 2.0, 8.0]}, "grad_norm_mean").assign(param="w")
    fig = charts.two_panel(df, [("grad_norm_mean", "g", True)], {1: "a"}, "t", smooth=0.5)
    (sm,) = [t for t in _traces(fig) if t["name"] == "a"]
    np.testing.assert_allclose(np.asarray(sm["y"], dtype=float), _pandas_ema([1, 4, 2, 8], 0.5, log=True))
    fig = charts.facets(df, "grad_norm_mean", "param", {1: "a"}, "t", log=False, smooth=0.5)
    (sm,) = [t for t in _traces(fig) if t["name"] == "a"]
    np.testing.assert_allclose(np.asarray(sm["y"], dtype=float), _pandas_ema([1, 4, 2, 8], 0.5))
    band = pd.DataFrame({"group": "g", "epoch": range(4), "mean": [1.0, 4, 2, 8], "lo": 0.5, "hi": 9.0, "n": 2})
    fig = charts.band(band, "epoch", "t", "y", smooth=0.5)
    (sm,) = [t for t in _traces(fig) if t["name"] == "g (n=2)"]
    np.testing.assert_allclose(np.asarray(sm["y"], dtype=float), _pandas_ema([1, 4, 2, 8], 0.5))


@pytest.mark.parametrize(("x", "factor", "title"), [("epoch", 1, "epoch"), ("step", 20, "optimizer step"),
                                                    ("seconds", 0.5, "time (s, training + diagnostics)")])
def test_the_x_axis_is_epoch_step_or_time(x, factor, title):
    df = _df({1: [1, 2, 3]}).assign(grad_norm_mean=1.0, param="w")
    for fig in (charts.curves(df, "val_loss", {1: "a"}, "t", x=x),
                charts.two_panel(df, [("grad_norm_mean", "g", True)], {1: "a"}, "t", x=x),
                charts.facets(df, "grad_norm_mean", "param", {1: "a"}, "t", x=x)):
        (tr,) = _traces(fig)
        np.testing.assert_allclose(np.asarray(tr["x"], dtype=float), np.arange(3) * factor)
        assert fig.layout.xaxis.title.text == title


# --- legends of 12 runs -------------------------------------------------------------------------------

LABEL_PX_PER_CHAR = 6.2   # Plotly's default font at size 10 is at most ~6 px per character
SYMBOL_PX = 40            # the line sample and its padding in front of each legend label
HALF_WIDTH_PX = 500       # a chart in one of two columns of a 1,400 px wide page with the sidebar open


def _labels(n: int, long: str) -> dict[int, str]:
    tail = {"short": "", "medium": " lstm adding T=100 L2", "long": " lstm adding T=100 L2 · clip={\"mode\":\"norm\"}"}
    return {i: f"#{100 + i} s{i}{tail[long]}" for i in range(n)}


def _twelve(kind: str, long: bool):
    labels = _labels(12, long)
    df = pd.DataFrame([{"run_id": i, "epoch": e, "val_loss": 1 / (e + 1 + i), "grad_norm_mean": 1.0 + e,
                        "grad_norm_max": 2.0 + e, "param": "weight_hh_l0"} for i in labels for e in range(5)])
    if kind == "curves":
        return charts.curves(df, "val_loss", labels, "loss", log=True)
    if kind == "panels":
        return charts.two_panel(df, [("grad_norm_mean", "mean", True), ("grad_norm_max", "max", True)], labels, "g")
    return charts.facets(df, "grad_norm_mean", "param", labels, "p")


@pytest.mark.parametrize("kind", ["curves", "panels", "facets"])
@pytest.mark.parametrize("long", ["short", "medium", "long"])
def test_twelve_runs_keep_the_plot_area_and_the_legend_fits_below_it(kind, long):
    few = _twelve(kind, long).layout
    names = [t.name for t in _twelve(kind, long).data if t.showlegend is not False and t.name]
    assert len(names) == 12
    lay = few.to_plotly_json()
    m = lay["margin"]
    plot_h = lay["height"] - m["t"] - m["b"]
    assert plot_h >= 240, plot_h  # the old legend sat inside this height and Plotly took ~250 px of it (~110 left)
    leg = lay["legend"]
    assert leg["orientation"] == "h" and leg["yref"] == "container" and leg["y"] == 0 and leg["yanchor"] == "bottom"
    cols = round(1 / leg["entrywidth"])
    rows = math.ceil(12 / cols)
    assert m["b"] >= rows * charts.LEGEND_ROW_PX + charts.X_TITLE_PX  # the legend's rows and the x axis both fit
    assert cols == {"short": 3, "medium": 2, "long": 1}[long]
    # no label is wider than its slot on a half-width chart, so entries do not overlap side by side
    widest = max(len(n) for n in names) * LABEL_PX_PER_CHAR + SYMBOL_PX
    assert widest <= HALF_WIDTH_PX * leg["entrywidth"], (widest, leg["entrywidth"])


def test_the_legend_grows_the_figure_not_the_plot_area():
    small = charts.curves(_df({1: [1, 2]}), "val_loss", {1: "a"}, "t").layout
    big = _twelve("curves", "long").layout
    plot = [lay.height - lay.margin.t - lay.margin.b for lay in (small, big)]
    assert plot[0] == plot[1] and big.height > small.height


# --- the histogram over time --------------------------------------------------------------------------

def _hist_rows(run_id: int, epochs: list[int], seed: int = 0) -> pd.DataFrame:
    from rnnlab.records import HIST_LEN

    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"run_id": run_id, "epoch": e, "counts": rng.integers(0, 50, HIST_LEN).tolist(),
                          "zeros": int(rng.integers(0, 5)), "nonfinite": int(e == epochs[-1])} for e in epochs])


@pytest.mark.parametrize("value", ["count", "fraction"])
def test_histogram_heatmap_cells_are_the_stored_counts(value):
    rows = {1: _hist_rows(1, [0, 3, 6, 9], 1), 2: _hist_rows(2, [0, 5], 2)}
    fig = charts.hist_heatmap([(f"#{r}", charts.hist_matrix(df)) for r, df in rows.items()], "h", value=value)
    heat = [t for t in _traces(fig) if t["type"] == "heatmap"]
    assert len(heat) == 2
    for tr, df in zip(heat, rows.values()):
        counts = np.array(df["counts"].tolist(), dtype=float)
        total = counts.sum(axis=1) + df["zeros"].to_numpy() + df["nonfinite"].to_numpy()
        want = counts if value == "count" else counts / total[:, None]
        np.testing.assert_allclose(np.asarray(tr["z"], dtype=float), want)
        assert list(tr["y"]) == df["epoch"].tolist()
        assert len(tr["x"]) == counts.shape[1]
        np.testing.assert_allclose(np.asarray(tr["customdata"])[..., 0], counts)  # the count on hover
    key = fig.layout.coloraxis
    assert key.colorbar.title.text == charts.HIST_VALUES[value] and key.cmin == 0
    assert key.cmax == pytest.approx(max(float(np.max(t["z"])) for t in heat))


def test_histogram_heatmap_bins_are_the_records_bins():
    from rnnlab.records import HIST_BIN_WIDTH, HIST_EDGES

    fig = charts.hist_heatmap([("#1", charts.hist_matrix(_hist_rows(1, [0, 1])))], "h")
    x = np.asarray(fig.data[0].x, dtype=float)
    np.testing.assert_allclose(x[1:-1], (np.asarray(HIST_EDGES[:-1]) + np.asarray(HIST_EDGES[1:])) / 2)
    assert x[0] == pytest.approx(HIST_EDGES[0] - HIST_BIN_WIDTH / 2)
    with pytest.raises(ValueError, match="value"):
        charts.hist_heatmap([], "h", value="density")


def _seen(trace: dict) -> set:
    """The x of the points a trace actually draws: every finite y with markers on, else only a finite y
    with a finite neighbour (a line needs two points)."""
    y = np.asarray(trace["y"], dtype=float)
    ok = np.isfinite(y)
    if "markers" in trace.get("mode", ""):
        return set(np.asarray(trace["x"])[ok].tolist())
    near = np.r_[False, ok[:-1]] | np.r_[ok[1:], False]
    return set(np.asarray(trace["x"])[ok & near].tolist())


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("y", [[0.5], [0.9, NAN, 0.5, INF, 0.3, 0.2], [NAN, 0.4, NAN],
                               [0.5] * 20 + [NAN, 0.3, NAN] + [0.2] * 30])
def test_smoothing_never_hides_a_lone_point(y, log):
    """A one-point series, or a point between NaN/inf, has no line segment: with smoothing on it was
    drawn by line-only traces and vanished. Every drawable epoch is drawn, by the smoothed trace at
    full colour and by the raw one."""
    fig = charts.curves(_df({1: y}), "val_loss", {1: "#1"}, "loss", log=log, smooth=0.6)
    tr = {t["name"]: t for t in _traces(fig)}
    want = {e for e, v in enumerate(y) if math.isfinite(v)}
    assert _seen(tr["#1"]) == want
    assert _seen(tr["#1 (raw)"]) == want


def test_smoothing_keeps_plain_lines_when_every_point_has_a_neighbour():
    """A long series (40 epochs or more: no markers) with no lone point stays lines only."""
    fig = charts.curves(_df({1: list(np.linspace(1, 0.1, 50))}), "val_loss", {1: "#1"}, "loss", smooth=0.6)
    assert {t["name"]: t["mode"] for t in _traces(fig)} == {"#1 (raw)": "lines", "#1": "lines"}
