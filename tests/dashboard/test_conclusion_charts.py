"""Charts whose picture is a conclusion: the Explorer's phase diagram (its colours against its colour
bar, cells with a −∞ or +∞ seed), the Strategies page's geometric means of ‖∂L/∂h_t‖ when some seeds
have a zero gradient, and the Studies result page's figures against the HTML report's drawing
(studies/svg.py) of the same values."""

from __future__ import annotations

import base64
import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from dashboard import analysis, charts, explore, explore_charts
from tests.dashboard.conftest import figures
from tests.dashboard.test_charts import _rgb, colour_of, hue

INF = math.inf
NAN = math.nan
RATIO = "log10 ‖g_1‖/‖g_T‖"
LOSS = "loss ÷ baseline"


def _grid(outcome: str, cells: dict[tuple[float, int], list[float]]) -> pd.DataFrame:
    """An outcomes table: one run per value, seeds 0, 1, … within each (radius, T) cell."""
    rows, i = [], 0
    for (radius, T), values in cells.items():
        for seed, v in enumerate(values):
            i += 1
            rows.append({"id": i, "status": "succeeded", "seed": seed, "init.spectral_radius": radius,
                         "task.seq_len": T, outcome: v})
    return pd.DataFrame(rows)


def _phase(outcome: str, cells: dict) -> tuple[pd.DataFrame, dict, dict]:
    """The phase grid, the heatmap trace as built and the heatmap as the browser receives it (JSON)."""
    grid = explore.phase_grid(_grid(outcome, cells), "init.spectral_radius", "task.seq_len", outcome)
    fig = explore_charts.phase(grid, "init.spectral_radius", "task.seq_len", outcome)
    sent = json.loads(fig.to_json())["data"][0]
    return grid, fig.data[0].to_plotly_json(), sent


def _z(sent: dict) -> np.ndarray:
    z = sent["z"]
    if isinstance(z, dict):  # plotly's binary array encoding
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"])).reshape(
            [int(n) for n in str(z["shape"]).split(",")])
    return np.array([[NAN if v is None else v for v in row] for row in z], dtype=float)


def _cell(grid: pd.DataFrame, radius: float, T: int) -> dict:
    hit = grid[(grid["init.spectral_radius"] == radius) & (grid["task.seq_len"] == T)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


# --- 1. the phase diagram's colours say what its colour bar says -----------------------------------

@pytest.mark.parametrize("outcome, values, centre", [
    (LOSS, [0.05, 1.0, 14.0], 1.0),
    (RATIO, [-8.0, 0.0, 2.0], 0.0),
])
def test_the_phase_diagram_sends_an_explicit_scale_centred_where_its_colour_bar_says(outcome, values, centre):
    _, trace, sent = _phase(outcome, {(0.5, 50): [values[0]], (1.0, 50): [values[1]], (1.5, 50): [values[2]]})
    # The browser gets a list of colours, not a name that plotly.js may not know
    assert isinstance(sent["colorscale"], list) and all(isinstance(c, str) for _, c in sent["colorscale"])
    # where each value sits on the colour scale: a ratio by its log10, by hand
    at = (lambda v: math.log10(v)) if outcome == LOSS else (lambda v: v)
    assert explore_charts.colour_value(outcome, values[0]) == pytest.approx(at(values[0]))
    values, centre = [at(v) for v in values], at(centre)
    assert trace["zmin"] < centre < trace["zmax"]
    assert (trace["zmin"] + trace["zmax"]) / 2 == pytest.approx(centre)
    assert trace["zmin"] <= min(values) + 1e-12 and trace["zmax"] >= max(values) - 1e-12
    assert hue(colour_of(trace, centre)) == "neither"
    title = trace["colorbar"]["title"]["text"]
    if outcome == LOSS:   # the colour bar names the colour that beats the baseline (below 1)
        better = re.search(r"(blue|red) < 1: beats the baseline", title)
        worse = re.search(r"(blue|red) > 1: worse", title)
    else:                 # and the colour of vanishing (below 0) and of exploding (above 0) gradients
        better = re.search(r"(blue|red) < 0: vanishing", title)
        worse = re.search(r"(blue|red) > 0: exploding", title)
    assert better and worse, title
    below, above = centre - 0.6 * (centre - trace["zmin"]), centre + 0.6 * (trace["zmax"] - centre)
    assert hue(colour_of(trace, below)) == better.group(1) == "blue"
    assert hue(colour_of(trace, above)) == worse.group(1) == "red"
    assert hue(colour_of(trace, values[0])) == "blue" and hue(colour_of(trace, values[2])) == "red"


def test_one_diverged_cell_does_not_wash_out_the_cells_that_beat_the_baseline():
    """On a linear range symmetric about 1, a cell at 1e4 × the baseline made the range −1e4 … 1e4 and
    a cell at 0.05 × the baseline (20× better) nearly white. Coloured by log10 it stays clearly blue,
    and the colour bar is labelled in the ratio itself."""
    _, trace, _ = _phase(LOSS, {(0.5, 50): [0.05], (1.0, 50): [1.0], (1.5, 50): [1e4]})
    good, mid, bad = (colour_of(trace, explore_charts.colour_value(LOSS, v)) for v in (0.05, 1.0, 1e4))
    assert hue(good) == "blue" and hue(bad) == "red" and hue(mid) == "neither"
    white = np.array([247.0, 247.0, 247.0])
    assert np.linalg.norm(good - white) > 60, good          # far from the white middle
    ticks = dict(zip(trace["colorbar"]["tickvals"], trace["colorbar"]["ticktext"]))
    assert ticks[0] == "1" and ticks[4] == "10000" and ticks[-4] == "0.0001"
    assert all(float(t) == pytest.approx(10.0 ** v) for v, t in ticks.items())


def test_outcomes_without_a_middle_keep_a_sequential_scale():
    _, trace, sent = _phase("horizon", {(0.5, 50): [3.0], (1.0, 50): [10.0]})
    assert isinstance(sent["colorscale"], list)
    assert trace["zmin"] == pytest.approx(3.0) and trace["zmax"] == pytest.approx(10.0)
    assert not np.allclose(colour_of(trace, 3.0), colour_of(trace, 10.0))


# --- 2. a cell with a −∞ seed does not look better than it is -----------------------------------------

def test_a_cell_whose_gradient_vanished_on_some_seeds_is_minus_infinity_at_the_floor_colour():
    cells = {(0.5, 50): [-INF, -INF, -2.0],     # vanished entirely on 2 of 3 seeds
             (1.0, 50): [-2.5, -2.5, -2.5],     # finite, small
             (1.5, 50): [0.5, INF, 1.0]}        # exploded to +inf on one seed
    grid, trace, sent = _phase(RATIO, cells)
    gone, finite, blown = _cell(grid, 0.5, 50), _cell(grid, 1.0, 50), _cell(grid, 1.5, 50)
    assert gone["mean"] == -INF and gone["n"] == 3 and gone["neginf"] == 2
    assert finite["mean"] == pytest.approx(-2.5) and finite["neginf"] == 0
    assert blown["mean"] == INF and blown["posinf"] == 1 and blown["n"] == 3
    assert explore.cell_text(gone) == "−∞ (2/3 seeds)"
    assert explore.cell_text(blown) == "+∞ (1/3 seeds)"
    assert explore.cell_text(finite) == "-2.5<br>n=3"
    # Drawn: the −∞ cell at the bottom of the colour range (bluer than the −2.5 cell), +∞ at the top
    z = _z(sent)
    assert np.isfinite(z[0]).all()          # a non-finite z reaches the browser as null: a blank cell
    assert z[0, 0] == pytest.approx(trace["zmin"]) and z[0, 2] == pytest.approx(trace["zmax"])
    assert z[0, 0] < z[0, 1]
    assert hue(colour_of(trace, z[0, 0])) == "blue" and hue(colour_of(trace, z[0, 2])) == "red"
    floor, cell = colour_of(trace, z[0, 0]), colour_of(trace, z[0, 1])
    assert floor[2] - floor[0] >= cell[2] - cell[0]   # at least as blue as the finite cell
    assert np.asarray(trace["text"])[0, 0] == "−∞ (2/3 seeds)"
    # Marked like the diverged cells: a legend entry and a marker on the cell
    fig = explore_charts.phase(grid, "init.spectral_radius", "task.seq_len", RATIO)
    marks = {t.name: t for t in fig.data[2:]}
    low = next(t for name, t in marks.items() if "−∞" in name)
    high = next(t for name, t in marks.items() if "+∞" in name)
    assert list(low.customdata) == [grid.index[grid["neginf"] > 0][0]]
    assert list(high.customdata) == [grid.index[grid["posinf"] > 0][0]]


def test_a_cell_with_both_infinities_has_no_mean():
    grid, trace, sent = _phase(RATIO, {(0.5, 50): [-INF, INF], (1.0, 50): [1.0, 2.0]})
    c = _cell(grid, 0.5, 50)
    assert math.isnan(c["mean"]) and c["neginf"] == 1 and c["posinf"] == 1
    assert explore.cell_text(c) == "−∞ and +∞ (1 and 1 of 2 seeds)"


def test_the_phase_grid_still_averages_finite_cells():
    grid, _, _ = _phase(LOSS, {(0.5, 10): [0.2, 0.4], (1.0, 10): [0.1, NAN]})
    assert _cell(grid, 0.5, 10)["mean"] == pytest.approx(0.3)
    c = _cell(grid, 1.0, 10)
    assert c["mean"] == pytest.approx(0.1) and c["n"] == 1 and explore.cell_text(c) == "0.1<br>n=1/2"


# --- 3. zeros pull a geometric mean down ---------------------------------------------------------------

def _profiles(values: dict[str, list[float]], k: int = 5) -> tuple[pd.DataFrame, dict[int, str]]:
    rows, groups, rid = [], {}, 0
    for grp, vs in values.items():
        for v in vs:
            rid += 1
            groups[rid] = grp
            rows.append({"run_id": rid, "k": k, "norm": v})
    return pd.DataFrame(rows), groups


@pytest.mark.parametrize("band", ["min–max", "95% CI"])
def test_a_group_whose_gradient_vanished_on_some_seeds_is_drawn_below_one_that_did_not(band):
    prof, groups = _profiles({"rnn": [0.0, 0.0, 1e-2], "lstm": [1e-4, 1e-4, 1e-4]})
    agg = analysis.aggregate(prof, groups, "k", "norm", band, log=True).set_index("group")
    # The geometric mean (∏ v)^(1/n) of (0, 0, 1e-2) is 0; of three 1e-4, 1e-4
    assert agg.at["rnn", "mean"] == 0.0 and agg.at["rnn", "n"] == 3 and agg.at["rnn", "zeros"] == 2
    assert agg.at["lstm", "mean"] == pytest.approx(1e-4) and agg.at["lstm", "zeros"] == 0
    assert agg.at["rnn", "mean"] < agg.at["lstm", "mean"]
    assert agg.at["rnn", "lo"] == 0.0 and agg.at["rnn", "hi"] == pytest.approx(1e-2)
    # On the log axis the rnn's mean is a floor marker in its colour, below the lstm's line
    fig = charts.band(agg.reset_index(), "k", "profile", "‖∂L/∂h_t‖", log=True)
    traces = [t.to_plotly_json() for t in fig.data]
    floor = [t for t in traces if t["name"].startswith("rnn") and t["name"].endswith("not drawable")]
    assert len(floor) == 1 and list(floor[0]["marker"]["symbol"]) == ["triangle-down"]
    lstm = next(t for t in traces if t["name"].startswith("lstm (n=3)"))
    assert floor[0]["y"][0] < np.nanmin(np.asarray(lstm["y"], dtype=float))
    rnn = next(t for t in traces if t["name"] == "rnn (n=3)")
    assert floor[0]["marker"]["color"] == rnn["line"]["color"] != lstm["line"]["color"]
    assert "0, negative or −inf" in fig.layout.annotations[0].text


def test_the_geometric_mean_without_zeros_is_unchanged():
    prof, groups = _profiles({"a": [1e-2, 1e-4], "b": [2.0, 8.0, NAN]})
    agg = analysis.aggregate(prof, groups, "k", "norm", "min–max", log=True).set_index("group")
    assert agg.at["a", "mean"] == pytest.approx(1e-3) and agg.at["a", "lo"] == pytest.approx(1e-4)
    assert agg.at["b", "mean"] == pytest.approx(4.0) and agg.at["b", "hi"] == pytest.approx(8.0)
    assert agg.at["b", "zeros"] == 0
    ci = analysis.aggregate(prof, groups, "k", "norm", "95% CI", log=True).set_index("group")
    u = np.log10([1e-2, 1e-4])
    h = analysis.t95(2) * u.std(ddof=1) / math.sqrt(2)
    assert ci.at["a", "lo"] == pytest.approx(10 ** (u.mean() - h)) and ci.at["a", "hi"] == pytest.approx(
        10 ** (u.mean() + h))


def test_an_infinite_value_pulls_a_geometric_mean_up():
    prof, groups = _profiles({"a": [1.0, INF]})
    agg = analysis.aggregate(prof, groups, "k", "norm", "min–max", log=True)
    assert agg["mean"].iloc[0] == INF and agg["hi"].iloc[0] == INF and agg["lo"].iloc[0] == pytest.approx(1.0)


# --- 4. the Studies page draws what the report draws --------------------------------------------------

@pytest.fixture
def planted_study(sqlite_url, tmp_path, monkeypatch):
    """The adding study's result page whose outcome carries the figures below (the page's figure code
    is what is tested; the verdict logic has its own tests in tests/studies)."""
    import streamlit as st

    import studies
    from rnnlab.settings import get_settings
    from studies import service
    from studies.core import Figure, Outcome, Series

    figs = [
        Figure("log axis", "seed", "‖g_1‖", [
            Series("rnn", [0, 1, 2, 3], [1e-3, -INF, 0.0, 1e-1], group="rnn"),
            Series("lstm", [0, 1, 2, 3], [1e-2, INF, NAN, 1e-2], group="lstm")], log_y=True),
        Figure("linear axis", "seed", "log10 ratio", [
            Series("rnn", [0, 1, 2], [-3.0, -INF, -2.0], group="rnn"),
            Series("gru", [0, 1, 2], [0.5, INF, 0.0], group="gru")], log_y=False, hline=(0.0, "zero")),
    ]
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    st.cache_data.clear()
    monkeypatch.setattr(service, "outcome", lambda study, scale, url=None: Outcome(
        study=study.name, version=study.version, scale=scale, tag="t", verdict=studies.INCONCLUSIVE,
        reason="planted", counts={"succeeded": 3}, expected_runs=3, seeds_complete=[0, 1, 2], figures=figs))
    yield figs
    get_settings.cache_clear()
    st.cache_data.clear()


def _svg_marks(fig, colours=None) -> dict[tuple[str, str], str]:
    """(series name, '−∞' | '∞' | '0') → fill colour of the report's edge triangles (``colours``: the
    outcome's group colours, as the report passes them)."""
    from studies import svg

    root = ET.fromstring(svg.render(fig, colours=colours))
    out = {}
    for p in root.iter("{http://www.w3.org/2000/svg}path"):
        t = p.find("{http://www.w3.org/2000/svg}title")
        if t is not None and p.get("fill") not in (None, "none"):
            name, what = t.text.rsplit(": ", 1)
            out[(name, what)] = p.get("fill")
    return out


def test_the_studies_page_marks_infinities_and_log_zeros_at_the_edges_like_the_report(planted_study):
    from streamlit.testing.v1 import AppTest

    from studies import svg
    from tests.conftest import REPO
    from tests.dashboard.conftest import no_errors

    at = AppTest.from_file(str(REPO / "dashboard" / "app_pages" / "studies.py"), default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = "adding", "cpu"
    at.run()
    no_errors(at)
    shown = figures(at)
    assert len(shown) == len(planted_study)
    for fig, spec in zip(planted_study, shown):
        log = fig.log_y
        axis = spec["layout"]["yaxis"]
        lo, hi = axis["range"]
        u = (lambda v: math.log10(v)) if log else (lambda v: v)  # noqa: E731  (plotly's axis units)
        drawable = [u(y) for s in fig.series for y in s.y if math.isfinite(y) and (y > 0 or not log)]
        report = _svg_marks(fig, svg.group_colours(planted_study))
        for s in fig.series:
            line = next(t for t in spec["data"] if t["name"] == s.name)
            colour = line["marker"]["color"]
            for x, y in zip(s.x, s.y):
                if math.isnan(y) or (math.isfinite(y) and (y > 0 or not log)):
                    continue
                low = y == -INF or y == 0
                mark = next(t for t in spec["data"] if t.get("legendgroup") == line["legendgroup"]
                            and t is not line and x in list(t["x"]))
                pos = u(list(mark["y"])[list(mark["x"]).index(x)])
                assert lo < pos < hi, (fig.title, s.name, y)          # inside the plot, not cut off
                if low:
                    assert pos < min(drawable), (fig.title, s.name, y)  # below every drawn value
                else:
                    assert pos > max(drawable), (fig.title, s.name, y)
                assert mark["marker"]["color"] == colour, (fig.title, s.name)   # the group's colour
                what = "−∞" if y == -INF else "0" if y == 0 else "∞"
                assert np.allclose(_rgb(report[(s.name, what)]), _rgb(colour)), (s.name, what)  # as in the report
        colours = [next(t for t in spec["data"] if t["name"] == s.name)["marker"]["color"] for s in fig.series]
        assert len(set(colours)) == len(fig.series)   # one colour per group
