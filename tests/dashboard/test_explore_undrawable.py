"""The Explorer's figures leave no run out and colour an outcome the same way on every tab
(dashboard/explore_charts.py): a run whose value an axis cannot draw (NaN, ±inf, ≤ 0 on a log axis)
is drawn at the floor or ceiling with a symbol the note explains; loss ÷ baseline is coloured by its
log10 on the diverging scale centred at 1 (blue better) on the scatter and parallel coordinates as on
the phase diagram; a run without a colour value is marked and counted; an axis without any value is
named. Expected positions and colours are worked out here from the inputs, not read off the code."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dashboard import explore_charts
from tests.dashboard.conftest import decode_plotly
from tests.dashboard.test_charts import colour_of, hue

NAN, INF = math.nan, math.inf
LOSS = "loss ÷ baseline"
SYMBOLS = {"nan": "x", "inf": "triangle-up", "floor": "triangle-down", "ok": "circle"}


def _sent(fig) -> dict:
    """The figure as the browser receives it."""
    return decode_plotly(json.loads(fig.to_json()))


def _runs(table_rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(table_rows, columns=["id", *columns])


def _points(fig: dict) -> dict[int, dict]:
    """run id → its x, y, symbol and the trace it is in."""
    out = {}
    for t in fig["data"]:
        sym = t["marker"]["symbol"]
        for k, rid in enumerate(np.asarray(t["customdata"]).tolist()):
            assert rid not in out, f"run {rid} drawn twice"
            out[rid] = {"x": float(np.asarray(t["x"])[k]), "y": float(np.asarray(t["y"])[k]),
                        "symbol": sym if isinstance(sym, str) else list(sym)[k], "trace": t}
    return out


def _note(fig: dict) -> str:
    return " ".join(a["text"] for a in fig["layout"].get("annotations", []))


# --- 1. the scatter draws every run -------------------------------------------------------------

def test_a_diverged_run_and_off_axis_values_are_drawn_at_the_edges_on_a_log_axis():
    # run 3 diverged (no loss), run 4 +inf, run 5 exactly 0 (log10 has no value), 1, 2 and 6 ordinary
    t = _runs([(1, 0.5, 0.4), (2, 1.0, 2.0), (3, 2.0, NAN), (4, 3.0, INF), (5, 4.0, 0.0), (6, 5.0, 0.1)],
              ["init.spectral_radius", LOSS])
    fig = _sent(explore_charts.scatter(t, "init.spectral_radius", LOSS, None, log_y=True))
    pts = _points(fig)
    assert sorted(pts) == [1, 2, 3, 4, 5, 6]                    # every run, once
    assert all(np.isfinite([p["x"], p["y"]]).all() for p in pts.values())   # nothing Plotly would drop
    finite = [0.4, 2.0, 0.1]
    assert [pts[i]["y"] for i in (1, 2, 6)] == finite and [pts[i]["x"] for i in (3, 4, 5)] == [2.0, 3.0, 4.0]
    # NaN and +inf above every value, 0 below, all inside the axis's range (log10 units on a log axis)
    assert pts[3]["y"] > max(finite) and pts[4]["y"] > max(finite) and 0 < pts[5]["y"] < min(finite)
    lo, hi = fig["layout"]["yaxis"]["range"]
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert all(lo < math.log10(p["y"]) < hi for p in pts.values())
    assert [pts[i]["symbol"] for i in (1, 3, 4, 5)] == [SYMBOLS[k] for k in ("ok", "nan", "inf", "floor")]
    note = _note(fig)
    assert f"✕ {LOSS} NaN: at the top (1 run)" in note and f"▲ {LOSS} +inf: at the top (1 run)" in note
    assert f"▼ {LOSS} 0, negative or −inf (log axis): at the bottom (1 run)" in note


def test_a_failed_run_without_a_result_is_not_counted_as_diverged():
    """Both have no loss ÷ baseline (NaN), but only the diverged run's NaN is an outcome: the note
    names them apart, so a run that failed before its first epoch does not read as a divergence."""
    t = _runs([(1, 1.0, 0.3), (2, 2.0, NAN), (3, 3.0, NAN), (4, 4.0, NAN)], ["horizon", LOSS])
    t["status"] = ["succeeded", "diverged", "failed", "failed"]
    note = _note(_sent(explore_charts.scatter(t, "horizon", LOSS, None)))
    assert f"✕ {LOSS} left out (diverged: its last record is of the epoch training stopped): at the top (1 run)" in note
    assert f"✕ {LOSS} left out (died: its last record is of wherever it stopped): at the top (2 runs)" in note
    assert f"{LOSS} NaN:" not in note


def test_off_axis_x_values_and_counts_on_linear_axes():
    t = _runs([(1, 1.0, 0.3), (2, NAN, 0.5), (3, NAN, 0.7), (4, -INF, 0.2), (5, 4.0, NAN)], ["horizon", LOSS])
    fig = _sent(explore_charts.scatter(t, "horizon", LOSS, None))
    pts = _points(fig)
    assert sorted(pts) == [1, 2, 3, 4, 5]
    assert pts[2]["x"] > 4.0 and pts[3]["x"] > 4.0 and pts[4]["x"] < 1.0      # right edge, left edge
    assert (pts[2]["y"], pts[3]["y"], pts[4]["y"]) == (0.5, 0.7, 0.2)          # y kept where it is drawable
    assert pts[5]["y"] > 0.7 and pts[5]["x"] == 4.0
    note = _note(fig)
    assert "✕ horizon NaN: at the right edge (2 runs)" in note and "▼ horizon −inf: at the left edge (1 run)" in note
    assert f"✕ {LOSS} NaN: at the top (1 run)" in note
    lo, hi = fig["layout"]["xaxis"]["range"]
    assert all(lo < p["x"] < hi for p in pts.values())


def test_a_scatter_with_nothing_off_axis_has_no_note():
    t = _runs([(1, 1.0, 0.3), (2, 2.0, 0.5)], ["horizon", LOSS])
    fig = _sent(explore_charts.scatter(t, "horizon", LOSS, None))
    assert _note(fig) == "" and [p["symbol"] for p in _points(fig).values()] == ["circle", "circle"]


# --- 2. the colour of loss ÷ baseline: log10, diverging, centred at 1, on every tab -------------------

def _colours(pts: dict[int, dict]) -> dict[int, float]:
    """run id → its value on the colour axis (runs drawn with a colour of the scale only)."""
    out = {}
    for rid, p in pts.items():
        t = p["trace"]
        if t["marker"].get("coloraxis") == "coloraxis":
            out[rid] = float(np.asarray(t["marker"]["color"])[list(np.asarray(t["customdata"])).index(rid)])
    return out


def _scale_of(spec: dict) -> dict:
    """A cmin/cmax colour spec in the form test_charts.colour_of reads (zmin/zmax)."""
    return {"colorscale": spec["colorscale"], "zmin": spec["cmin"], "zmax": spec["cmax"]}


def test_the_scatter_colours_loss_over_baseline_by_log10_blue_better_and_marks_a_run_without_one():
    # 20× better than the baseline, at it, 10⁴× worse, diverged (no value)
    t = _runs([(1, 1.0, 0.05), (2, 2.0, 1.0), (3, 3.0, 1e4), (4, 4.0, NAN)], ["horizon", LOSS])
    fig = _sent(explore_charts.scatter(t, "horizon", "horizon", LOSS))
    axis = fig["layout"]["coloraxis"]
    scale = _scale_of(axis)
    assert all(isinstance(c, str) for _, c in axis["colorscale"])      # explicit colours, not a name
    pts = _points(fig)
    colour = _colours(pts)
    assert colour[1] == pytest.approx(math.log10(0.05)) and colour[3] == pytest.approx(4.0)
    assert colour[2] == pytest.approx(0.0) == pytest.approx((scale["zmin"] + scale["zmax"]) / 2)   # 1: the middle
    good, mid, bad = (colour_of(scale, colour[i]) for i in (1, 2, 3))
    assert hue(good) == "blue" and hue(bad) == "red" and hue(mid) == "neither"
    assert np.linalg.norm(good - np.array([247.0, 247.0, 247.0])) > 60      # not washed out by the 1e4 run
    title = axis["colorbar"]["title"]["text"]
    assert "log10" in title and "blue < 1: beats the baseline (better)" in title and "red > 1: worse" in title
    ticks = dict(zip(axis["colorbar"]["tickvals"], axis["colorbar"]["ticktext"]))
    assert all(float(text) == pytest.approx(10.0 ** v) for v, text in ticks.items())
    note = _note(fig)
    # the diverged run: drawn, not in Plotly's unexplained grey, in a trace of its own that says why
    assert 4 not in colour
    lone = pts[4]["trace"]
    assert lone["marker"]["color"] == "#ffffff" and lone["showlegend"] and f"no {LOSS} value (1 run)" in lone["name"]
    assert f"hollow black: no {LOSS} value (1 run)" in note


def test_a_loss_of_exactly_zero_takes_the_bottom_colour_and_the_note_says_so():
    t = _runs([(1, 1.0, 0.5), (2, 2.0, 2.0), (3, 3.0, 0.0)], ["horizon", LOSS])
    fig = _sent(explore_charts.scatter(t, "horizon", "horizon", LOSS))
    scale, colour = _scale_of(fig["layout"]["coloraxis"]), _colours(_points(fig))
    # log10 0 = −∞: the bottom of the scale, which the finite runs do not reach; blue (better)
    assert colour[3] == pytest.approx(scale["zmin"]) and colour[3] < colour[1] == pytest.approx(math.log10(0.5))
    assert hue(colour_of(scale, colour[3])) == "blue"
    assert f"colour {LOSS} 0 or −inf: the bottom colour of the scale (1 run)" in _note(fig)


def test_parallel_coordinates_colour_like_the_scatter_and_mark_a_line_without_a_colour():
    t = _runs([(1, 1.0, 0.05), (2, 2.0, 1.0), (3, 3.0, 1e4), (4, 4.0, NAN)], ["horizon", LOSS])
    fig = _sent(explore_charts.parallel(t, ["horizon", LOSS], LOSS))
    line = fig["data"][0]["line"]
    scale = _scale_of(line)
    c = np.asarray(line["color"], dtype=float)
    assert c[:3] == pytest.approx([math.log10(0.05), 0.0, 4.0])
    assert [hue(colour_of(scale, v)) for v in c[:3]] == ["blue", "neither", "red"]
    assert "log10" in line["colorbar"]["title"]["text"]
    # the diverged run's line: below the finite scale, in black, with a 'no value' tick on the colour bar
    assert np.isfinite(c[3]) and c[3] < c[:3].min()
    assert np.allclose(colour_of(scale, c[3]), [17, 17, 17])
    ticks = dict(zip(line["colorbar"]["ticktext"], line["colorbar"]["tickvals"]))
    assert c[3] < ticks["no value"] < c[:3].min() and np.allclose(colour_of(scale, ticks["no value"]), [17, 17, 17])
    assert f"black lines: no {LOSS} value (1 run)" in _note(fig)


def test_parallel_coordinates_do_not_put_a_diverged_run_at_zero_and_name_an_axis_left_out():
    """plotly.js draws a NaN value at 0: on the loss axis that is the best end."""
    t = _runs([(1, 0.3, NAN), (2, 0.6, NAN), (3, NAN, NAN)], [LOSS, "σ_max"])
    t["horizon"] = [1.0, INF, -INF]
    fig = _sent(explore_charts.parallel(t, [LOSS, "σ_max", "horizon"], None))
    dims = {d["label"]: d for d in fig["data"][0]["dimensions"]}
    assert set(dims) == {LOSS, "horizon"}
    assert "axis σ_max left out: no run has a value" in _note(fig)
    loss = dims[LOSS]
    v = np.asarray(loss["values"], dtype=float)
    assert v[:2].tolist() == [0.3, 0.6] and v[2] > 0.6
    assert dict(zip(loss["ticktext"], loss["tickvals"]))["no value"] == pytest.approx(v[2])
    assert loss["range"][0] < 0.3 and loss["range"][1] > v[2]
    h = np.asarray(dims["horizon"]["values"], dtype=float)
    ticks = dict(zip(dims["horizon"]["ticktext"], dims["horizon"]["tickvals"]))
    assert h[0] == 1.0 and ticks["+inf"] == pytest.approx(h[1]) and ticks["−inf"] == pytest.approx(h[2])
    assert h[2] < 1.0 < h[1]
    note = _note(fig)
    assert f"{LOSS}: NaN (1 run)" in note and "horizon: +inf (1 run)" in note and "horizon: −inf (1 run)" in note
