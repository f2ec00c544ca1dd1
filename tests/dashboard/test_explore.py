"""The Explorer's logic (dashboard/explore.py, dashboard/explore_charts.py) and its read
(db.queries.explore_runs) against hand-computed answers and the records the runs were seeded with."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard import explore, explore_charts
from db import queries as q
from tests.dashboard.seed import records, seed_run, spec

NAN = math.nan


def _table(rows: list[tuple]) -> pd.DataFrame:
    """(id, status, seed, radius, T, loss ÷ baseline) rows as an outcomes table."""
    return pd.DataFrame(rows, columns=["id", "status", "seed", "init.spectral_radius", "task.seq_len",
                                       "loss ÷ baseline"])


# Cells (radius, T): (0.5, 10) two seeds 0.2 and 0.4; (1.0, 10) three seeds 0.1, 0.2, 0.6;
# (2.0, 10) every run diverged; (0.5, 50) one succeeded at 0.9 and one failed (died) without a value;
# (1.0, 50) empty; (2.0, 50) one at 0.5 and one diverged. Rows deliberately out of order.
GRID = _table([
    (1, "diverged", 0, 2.0, 10, NAN), (2, "succeeded", 0, 0.5, 10, 0.2), (3, "succeeded", 1, 0.5, 10, 0.4),
    (4, "succeeded", 0, 1.0, 10, 0.1), (5, "succeeded", 1, 1.0, 10, 0.2), (6, "succeeded", 2, 1.0, 10, 0.6),
    (7, "diverged", 1, 2.0, 10, NAN), (8, "succeeded", 0, 0.5, 50, 0.9), (9, "failed", 1, 0.5, 50, NAN),
    (10, "succeeded", 0, 2.0, 50, 0.5), (11, "diverged", 1, 2.0, 50, NAN),
])


def _cell(cells: pd.DataFrame, radius: float, T: int) -> dict:
    hit = cells[(cells["init.spectral_radius"] == radius) & (cells["task.seq_len"] == T)]
    assert len(hit) == 1
    return hit.iloc[0].to_dict()


def test_phase_grid_means_counts_and_marks_by_hand():
    cells = explore.phase_grid(GRID, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    assert len(cells) == 6  # 3 radii × 2 lengths, the empty cell included
    assert cells["init.spectral_radius"].tolist()[:3] == [0.5, 1.0, 2.0]
    assert cells["task.seq_len"].tolist()[::3] == [10, 50]
    expect = {  # (radius, T): (mean, n, runs, seeds, diverged, died, mark, ids)
        (0.5, 10): (0.3, 2, 2, 2, 0, 0, "", [2, 3]),
        (1.0, 10): (0.3, 3, 3, 3, 0, 0, "", [4, 5, 6]),
        (2.0, 10): (NAN, 0, 2, 2, 2, 0, "all diverged", [1, 7]),
        (0.5, 50): (0.9, 1, 2, 2, 0, 1, "died", [8, 9]),
        (1.0, 50): (NAN, 0, 0, 0, 0, 0, "", []),
        (2.0, 50): (0.5, 1, 2, 2, 1, 0, "some diverged", [10, 11]),
    }
    for (radius, T), (mean, n, runs, seeds, div, died, mark, ids) in expect.items():
        c = _cell(cells, radius, T)
        assert (math.isnan(c["mean"]) if math.isnan(mean) else c["mean"] == pytest.approx(mean)), (radius, T)
        assert (c["n"], c["runs"], c["seeds"], c["diverged"], c["died"], c["mark"], c["ids"]) == \
            (n, runs, seeds, div, died, mark, ids), (radius, T)


def test_cell_text_shows_mean_and_seed_count():
    cells = explore.phase_grid(GRID, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    assert explore.cell_text(_cell(cells, 0.5, 10)) == "0.3<br>n=2"
    assert explore.cell_text(_cell(cells, 2.0, 10)) == "—<br>n=0/2"
    assert explore.cell_text(_cell(cells, 0.5, 50)) == "0.9<br>n=1/2"
    assert explore.cell_text(_cell(cells, 1.0, 50)) == ""


def test_a_cell_with_a_died_and_a_diverged_run_says_both():
    """'died' hid the diverged seed beside it: the mark is 'died + diverged' (its own legend entry);
    a cell whose every run diverged is still 'all diverged'."""
    t = _table([(1, "failed", 0, 1.0, 10, NAN), (2, "diverged", 1, 1.0, 10, NAN), (3, "succeeded", 2, 1.0, 10, 0.4),
                (4, "diverged", 0, 2.0, 10, NAN), (5, "diverged", 1, 2.0, 10, NAN)])
    cells = explore.phase_grid(t, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    assert cells["mark"].tolist() == ["died + diverged", "all diverged"]
    fig = explore_charts.phase(cells, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    assert "a run died (failed), another diverged" in {t.name for t in fig.data if t.showlegend}
    assert cells["mean"].iloc[0] == pytest.approx(0.4) and cells["n"].tolist() == [1, 0]


def test_phase_figure_puts_values_marks_and_clickable_cells_in_place():
    cells = explore.phase_grid(GRID, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    fig = explore_charts.phase(cells, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    heat, centres, *marks = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (2, 3)
    # the colour value of a ratio is its log10 (the text keeps the ratio itself)
    np.testing.assert_allclose(z[0, :2], np.log10([0.3, 0.3]))
    np.testing.assert_allclose(z[1, [0, 2]], np.log10([0.9, 0.5]))
    assert math.isnan(z[0, 2]) and math.isnan(z[1, 1])  # all diverged; empty
    assert np.asarray(heat.text)[0, 0] == "0.3<br>n=2"
    assert np.asarray(heat.customdata).tolist() == [[0, 1, 2], [3, -1, 5]]  # a click names the cell; -1: empty
    by_name = {m.name: m for m in marks}
    every = by_name["every run diverged"]
    assert list(every.x) == [2 + 0.32] and list(every.y) == [0 + 0.3]
    assert list(by_name["some runs diverged"].customdata) == [5]
    assert list(by_name["a run died (failed)"].customdata) == [3]
    assert sorted(centres.customdata) == [0, 1, 2, 3, 5]  # no clickable marker on the empty cell
    assert list(fig.layout.xaxis.ticktext) == ["0.5", "1", "2"] and list(fig.layout.yaxis.ticktext) == ["10", "50"]


def test_selection_maps_points_and_cells_to_run_ids():
    pts = [{"customdata": [7]}, {"customdata": 3}, {"customdata": [7]}, {"x": 1}]
    assert explore.selected_ids(pts) == [7, 3]
    cells = explore.phase_grid(GRID, "init.spectral_radius", "task.seq_len", "loss ÷ baseline")
    assert explore.selected_ids([{"customdata": 2}, {"customdata": [0]}, {"customdata": 99}], cells) == [1, 7, 2, 3]
    assert explore.compare_query(list(range(1, 20))) == {"runs": ",".join(map(str, range(1, 13)))}


def test_flat_specs_keeps_numbers_numeric_and_names_missing_text():
    df = explore.flat_specs([{"cell": "rnn", "activation": "tanh", "init": {"spectral_radius": 0.5}, "x": True},
                             {"cell": "lstm", "activation": None, "init": {"spectral_radius": None}, "x": False}])
    assert df["activation"].tolist() == ["tanh", "—"] and df["x"].tolist() == [True, False]
    assert df["init.spectral_radius"].dtype.kind == "f" and math.isnan(df["init.spectral_radius"].iloc[1])


def test_explore_runs_and_outcomes_match_the_seeded_records(db_url):
    made = {}
    for radius in (0.5, 2.0):
        for T in (20, 40):
            s = spec("rnn", seq_len=T, seed=0, init={"recurrent": "orthogonal", "spectral_radius": radius})
            made[seed_run(db_url, s, status="diverged" if radius == 2.0 and T == 40 else "succeeded")] = s
    queued_spec = spec("rnn", seq_len=20, seed=9, name='"seed": 7',  # the seed key, not text that looks like it
                       init={"recurrent": "orthogonal", "spectral_radius": 0.5})
    queued = seed_run(db_url, queued_spec, status="queued")
    runs, total = q.explore_runs({}, engine=q.engine_for(db_url))
    assert total == 5 and runs["id"].tolist() == sorted([*made, queued])
    for rid, s in {**made, queued: queued_spec}.items():  # the spec as stored, its seed in a column of its own
        row = runs[runs["id"] == rid].iloc[0]
        assert row["spec"] == {**s.to_dict(), "seed": 0} and row["seed"] == s.seed
    table = explore.outcomes_table(runs)
    assert table.set_index("id")["seed"].to_dict() == {r: s.seed for r, s in {**made, queued: queued_spec}.items()}
    assert sorted(explore.varied_fields(table)) == ["init.spectral_radius", "task.seq_len"]  # not seed or name
    for rid, s in made.items():
        row = table[table["id"] == rid].iloc[0]
        recs = records(s, diverge_at=2 if row["status"] == "diverged" else None)
        last, l0 = recs[-1], recs[-1].layers[0]
        if row["status"] == "diverged":   # its last epoch is where training stopped: no outcome but 'diverged'
            assert row["diverged"] == 1.0
            assert all(math.isnan(row[o]) for o in explore.OUTCOMES if o != "diverged")
        else:
            assert row["ρ"] == pytest.approx(l0.rho) and row["σ_max"] == pytest.approx(l0.sigma_max)
            assert row["saturation"] == pytest.approx(l0.saturated_frac)
            assert row["log10 ‖g_1‖/‖g_T‖"] == pytest.approx(l0.log_ratio)
            assert row["horizon"] == pytest.approx(l0.horizon)
            assert row["diverged"] == 0.0 and row["loss ÷ baseline"] == pytest.approx(last.val_loss * 6)
    q_row = table[table["id"] == queued].iloc[0]
    assert math.isnan(q_row["diverged"]) and math.isnan(q_row["ρ"])
    only, n = q.explore_runs({"spec": {"init.spectral_radius": 2.0}}, engine=q.engine_for(db_url))
    assert n == 2 and sorted(only["id"]) == sorted(r for r, s in made.items() if s.init.spectral_radius == 2.0)
