"""The Explorer's gradient outcomes (horizon, log10 ‖g_1‖/‖g_T‖) of a run that broke off: a diverged
run's last probe was taken on the epoch where training stopped, a failed run's wherever it died, so
neither is the configuration's gradient at the end of training. They were averaged with the finished
runs' (a cell whose every run diverged was marked ✕ and coloured all the same); they are left out
like a diverged run's NaN loss: the cell keeps its marks, has no colour without a usable run, and the
hover, the title, the notes and the cell table say what was left out. Runs are planted in a real
SQLite database through db.store (tests/dashboard/seed.py); the right answers are the seeded records'."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dashboard import explore, explore_charts
from db import queries as q
from tests.dashboard.conftest import decode_plotly, figures, no_errors
from tests.dashboard.seed import records, seed_run, spec

RATIO = "log10 ‖g_1‖/‖g_T‖"
FIELD = {"horizon": "horizon", RATIO: "log_ratio"}
X, Y = "init.spectral_radius", "task.seq_len"


def _plant(url: str, tags: tuple[str, ...] = ()) -> dict[tuple[float, int], list[tuple[int, object, str]]]:
    """(0.5, 20): one succeeded, one diverged; (2.0, 20): two diverged; (0.5, 40): one succeeded,
    one failed after epoch 2; (2.0, 40): one succeeded. (radius, T) → [(run id, spec, status)]."""
    out: dict[tuple[float, int], list] = {}
    for radius, T, seed, status in [(0.5, 20, 0, "succeeded"), (0.5, 20, 1, "diverged"), (2.0, 20, 0, "diverged"),
                                    (2.0, 20, 1, "diverged"), (0.5, 40, 0, "succeeded"), (0.5, 40, 1, "failed"),
                                    (2.0, 40, 0, "succeeded")]:
        s = spec("rnn", seq_len=T, seed=seed, init={"recurrent": "orthogonal", "spectral_radius": radius})
        rid = seed_run(url, s, status=status, tags=tags, epochs_done=2 if status == "failed" else None)
        out.setdefault((radius, T), []).append((rid, s, status))
    return out


def _last(s, status: str, outcome: str) -> float:
    """The outcome of the run's last stored probe, as the seeded records have it."""
    recs = records(s, diverge_at=2 if status == "diverged" else None)
    recs = recs[:3] if status == "failed" else recs
    return getattr(recs[-1].layers[0], FIELD[outcome])


def _sent(fig) -> dict:
    """The figure as the browser receives it."""
    return decode_plotly(json.loads(fig.to_json()))


def _cell(cells, radius: float, T: int) -> dict:
    hit = cells[(cells[X] == radius) & (cells[Y] == T)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


@pytest.mark.parametrize("outcome", ["horizon", RATIO])
def test_a_phase_cell_averages_only_its_finished_runs_gradients(sqlite_url, outcome):
    planted = _plant(sqlite_url)
    (done, s_done, _), (_, s_div, _) = planted[(0.5, 20)]
    assert _last(s_done, "succeeded", outcome) != pytest.approx(_last(s_div, "diverged", outcome))  # tells them apart
    table = explore.outcomes_table(q.explore_runs({}, engine=q.engine_for(sqlite_url))[0])
    cells = explore.phase_grid(table, X, Y, outcome)

    mixed = _cell(cells, 0.5, 20)    # one finished, one diverged: the finished run's value
    assert mixed["mean"] == pytest.approx(_last(s_done, "succeeded", outcome))
    assert (mixed["n"], mixed["runs"], mixed["left_diverged"], mixed["mark"]) == (1, 2, 1, "some diverged")
    gone = _cell(cells, 2.0, 20)     # every run diverged: no value at all, still marked ✕
    assert math.isnan(gone["mean"]) and gone["n"] == 0 and gone["left_diverged"] == 2
    assert gone["mark"] == "all diverged" and explore.cell_text(gone) == "—<br>n=0/2"
    died = _cell(cells, 0.5, 40)     # one finished, one died at epoch 2: the finished run's value
    (_, s40, _), (_, s_failed, _) = planted[(0.5, 40)]
    assert died["mean"] == pytest.approx(_last(s40, "succeeded", outcome))
    assert (died["n"], died["left_died"], died["mark"]) == (1, 1, "died")

    fig = explore_charts.phase(cells, X, Y, outcome)
    heat, centres = fig.data[0], fig.data[1]
    z = np.asarray(heat.z, dtype=float)
    assert math.isnan(z[gone["yi"], gone["xi"]])             # no colour
    assert np.isfinite(z[mixed["yi"], mixed["xi"]]) and np.isfinite(z[died["yi"], died["xi"]])
    hover = dict(zip(centres.customdata, centres.hovertext))
    row_of = {(r[X], r[Y]): i for i, r in cells.iterrows()}
    assert f"{outcome}: no value, every run diverged" in hover[row_of[(2.0, 20)]]
    assert "over 1 of 2 runs (1 diverged left out)" in hover[row_of[(0.5, 20)]]
    assert "over 1 of 2 runs (1 died left out)" in hover[row_of[(0.5, 40)]]
    assert "left out: 3 diverged, 1 died" in fig.layout.title.text   # {text}: plotly.js 3+ shows no string title
    assert "every run diverged" in {t.name for t in fig.data if t.showlegend}   # the marks stay


def test_the_loss_outcome_leaves_the_same_diverged_runs_out(sqlite_url):
    """The reference: a diverged run's loss is NaN (no final loss), so the loss cell is the finished
    run's; the gradient outcomes now agree with it on which runs count."""
    planted = _plant(sqlite_url)
    table = explore.outcomes_table(q.explore_runs({}, engine=q.engine_for(sqlite_url))[0])
    loss, horizon = (explore.phase_grid(table, X, Y, o) for o in ("loss ÷ baseline", "horizon"))
    for key in [(0.5, 20), (2.0, 20), (2.0, 40)]:
        a, b = _cell(loss, *key), _cell(horizon, *key)
        assert (a["n"], a["left_diverged"]) == (b["n"], b["left_diverged"]), key
    (_, s_done, _), _ = planted[(0.5, 20)]
    assert _cell(loss, 0.5, 20)["mean"] == pytest.approx(records(s_done)[-1].val_loss * 6)


def test_scatter_and_parallel_coordinates_draw_a_diverged_runs_gradient_as_left_out(sqlite_url):
    planted = _plant(sqlite_url)
    table = explore.outcomes_table(q.explore_runs({}, engine=q.engine_for(sqlite_url))[0])
    diverged = sorted(r for runs in planted.values() for r, _, st in runs if st == "diverged")
    failed = [r for runs in planted.values() for r, _, st in runs if st == "failed"]
    h = table.set_index("id")["horizon"]
    assert h[diverged + failed].isna().all()
    for r, s, st in planted[(0.5, 20)][:1] + planted[(2.0, 40)]:
        assert h[r] == pytest.approx(_last(s, st, "horizon"))

    fig = _sent(explore_charts.scatter(table, X, "horizon", None))
    top = max(float(v) for t in fig["data"] for v in t["y"])
    at = {int(i): (float(y), sym) for t in fig["data"]
          for i, y, sym in zip(t["customdata"], t["y"], t["marker"]["symbol"])}
    assert all(at[r] == (top, "x") for r in diverged + failed)   # ✕ at the top, not among the values
    note = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert ("✕ horizon left out (diverged: its last record is of the epoch training stopped): "
            "at the top (3 runs)") in note
    assert "✕ horizon left out (died: its last record is of wherever it stopped): at the top (1 run)" in note
    assert any(f"run #{diverged[0]} (diverged)" in text for t in fig["data"] for text in t["hovertext"])

    par = _sent(explore_charts.parallel(table, [X, "horizon"], "horizon"))
    dim = next(d for d in par["data"][0]["dimensions"] if d["label"] == "horizon")
    ticks = dict(zip(dim["ticktext"], dim["tickvals"]))
    order = table["id"].tolist()
    values = np.asarray(dim["values"], dtype=float)
    assert all(values[order.index(r)] == pytest.approx(ticks["no value"]) for r in diverged + failed)
    pnote = " ".join(a["text"] for a in par["layout"]["annotations"])
    assert "black lines: no horizon value (4 runs), 4 of them diverged or died: left out" in pnote


def test_the_explorer_page_cell_table_and_caption_leave_diverged_gradients_out(lab, open_page):
    """The page's cell table (and its CSV) carries the cell means the chart shows."""
    url, _ = lab
    planted = _plant(url, tags=("broke",))
    at = open_page("explorer", src="Tag", tag="broke", tab="Phase diagram", fx=X, fy=Y, out="horizon")
    no_errors(at)
    cells = next(d.value for d in at.dataframe if "mark" in d.value.columns)
    (_, s_done, _), _ = planted[(0.5, 20)]
    assert _cell(cells, 0.5, 20)["mean"] == pytest.approx(_last(s_done, "succeeded", "horizon"))
    assert math.isnan(_cell(cells, 2.0, 20)["mean"]) and _cell(cells, 2.0, 20)["mark"] == "all diverged"
    assert any("left out of the cell's mean (4 runs here)" in c.value.replace("\\", "") for c in at.caption)
    (fig,) = figures(at)
    assert "left out: 3 diverged, 1 died" in fig["layout"]["title"]["text"]
