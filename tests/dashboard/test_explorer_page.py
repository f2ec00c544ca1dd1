"""The Explorer page, run by Streamlit's AppTest against a real seeded SQLite database: the scatter,
the sources, parallel coordinates and the phase diagram (values checked against the seeded records)."""

from __future__ import annotations

from urllib.parse import parse_qs

import numpy as np
import pytest

from tests.dashboard.conftest import figures, no_errors
from tests.dashboard.seed import records, seed_run, spec

PHASE = {"src": "Tag", "tag": "phase", "tab": "Phase diagram", "fx": "init.spectral_radius", "fy": "task.seq_len",
         "out": "loss ÷ baseline"}


def _phase_lab(url: str) -> dict[tuple, list]:
    """radius 0.5/1/2 × T 20/40 with two seeds; (2, 40) all diverged, (1, 40) empty, (0.5, 20) one
    more run that failed. Returns (radius, T) → [(run id, spec, status)]."""
    out: dict[tuple, list] = {}
    for radius, T, seeds, status in [(0.5, 20, (0, 1), "succeeded"), (0.5, 20, (2,), "failed"),
                                     (1.0, 20, (0, 1), "succeeded"), (2.0, 20, (0, 1), "succeeded"),
                                     (0.5, 40, (0, 1), "succeeded"), (2.0, 40, (0, 1), "diverged")]:
        for seed in seeds:
            s = spec("rnn", seq_len=T, seed=seed, init={"recurrent": "orthogonal", "spectral_radius": radius})
            out.setdefault((radius, T), []).append((seed_run(url, s, status=status, tags=("phase",)), s, status))
    return out


def test_scatter_of_all_finished_runs_carries_their_ids(lab, open_page):
    _, ids = lab
    at = open_page("explorer")
    no_errors(at)
    finished = sorted(ids["cells"] + ids["diverged"])
    assert f"{len(finished)} runs" in at.caption[1].value and "cell" in at.caption[1].value
    (fig,) = figures(at)
    shown = sorted(int(i) for t in fig["data"] for i in t["customdata"])
    assert shown == finished
    at.toggle(key="done").set_value(False).run()
    (fig,) = figures(at)
    assert len([i for t in fig["data"] for i in t["customdata"]]) == 9
    no_errors(at)


def test_filter_source_and_axis_choices_come_from_the_url(lab, open_page):
    _, ids = lab
    at = open_page("explorer", src="Filter", path="cell", value="lstm", x="seed", y="ρ", color="horizon")
    no_errors(at)
    (fig,) = figures(at)
    assert fig["layout"]["xaxis"]["title"]["text"] == "seed" and fig["layout"]["yaxis"]["title"]["text"] == "ρ"
    lstm_done = sorted(ids["cells"][2:4])
    assert sorted(int(i) for i in fig["data"][0]["customdata"]) == lstm_done
    assert fig["data"][0]["marker"]["coloraxis"] == "coloraxis" and "colorbar" in fig["layout"]["coloraxis"]


def test_parallel_coordinates_over_varied_fields_and_outcomes(lab, open_page):
    at = open_page("explorer", tab="Parallel coordinates")
    no_errors(at)
    (fig,) = figures(at)
    dims = {d["label"]: d for d in fig["data"][0]["dimensions"]}
    assert {"cell", "loss ÷ baseline", "horizon"} <= set(dims)
    assert dims["cell"]["ticktext"] == ["gru", "lstm", "rnn"] and len(dims["cell"]["values"]) == 7


def test_phase_diagram_cells_match_the_seeded_runs(lab, open_page):
    url, _ = lab
    grid = _phase_lab(url)
    at = open_page("explorer", **PHASE)
    no_errors(at)
    cells = next(d.value for d in at.dataframe if "mark" in d.value.columns)
    assert len(cells) == 6  # 3 radii × 2 lengths, the empty (1.0, 40) included
    for _, c in cells.iterrows():
        runs = grid.get((c["init.spectral_radius"], c["task.seq_len"]), [])
        assert c["runs"] == len(runs) and c["ids"] == ", ".join(str(r) for r, _, _ in runs)
        losses = [records(s)[-1].val_loss * 6 for _, s, st in runs if st not in ("diverged", "failed")]
        if losses:
            assert c["mean"] == pytest.approx(np.mean(losses)) and c["n"] == len(losses)
        else:
            assert np.isnan(c["mean"]) and c["n"] == 0
    marks = dict(zip(zip(cells["init.spectral_radius"], cells["task.seq_len"]), cells["mark"]))
    assert marks == {(0.5, 20): "died", (1.0, 20): "", (2.0, 20): "", (0.5, 40): "", (1.0, 40): "",
                     (2.0, 40): "all diverged"}
    (fig,) = figures(at)
    legend = {t.get("name") for t in fig["data"] if t.get("showlegend")}
    assert {"every run diverged", "a run died (failed)"} <= legend


def test_picking_a_cell_links_its_runs_to_compare(lab, open_page):
    url, _ = lab
    grid = _phase_lab(url)
    at = open_page("explorer", **PHASE)
    box = at.selectbox(key="ex_cell")
    pick = next(o for o in box.options if o.startswith("init.spectral_radius = 0.5, task.seq_len = 20"))
    box.select_index(box.options.index(pick)).run()
    no_errors(at)
    (link,) = at.get("page_link")
    assert "compare" in link.proto.page
    want = [str(r) for r, _, _ in grid[(0.5, 20)]]
    assert parse_qs(link.proto.query_string)["runs"] == [",".join(want)]


def test_phase_diagram_needs_two_factors(lab, open_page):
    at = open_page("explorer", src="Filter", path="cell", value="gru", tab="Phase diagram")
    no_errors(at)
    assert "needs two swept factors" in at.info[0].value


def test_an_empty_database_and_a_broken_one_give_messages(sqlite_url, tmp_path, monkeypatch, open_page):
    import streamlit as st

    from rnnlab.settings import get_settings

    def use(url: str) -> None:
        monkeypatch.setenv("RNNLAB_DATABASE_URL", url)
        monkeypatch.setenv("RNNLAB_HOME", str(tmp_path))
        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()

    use(sqlite_url)  # migrated, no runs
    at = open_page("explorer")
    no_errors(at)
    assert at.info[0].value == "No runs match."
    junk = tmp_path / "not-a-db.db"
    junk.write_text("this is not a database" * 100)
    use(f"sqlite:///{junk}")
    at = open_page("explorer", tab="Phase diagram")
    assert not at.exception and any("Explorer hit an error" in e.value for e in at.error)
    get_settings.cache_clear()


def test_a_saved_explorer_view_reopens_the_same_points(lab, open_page, monkeypatch):
    from dashboard import auth
    from db import saved_views as sv

    url, ids = lab
    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name="ada", role="member"))
    at = open_page("explorer", src="Filter", path="cell", value="lstm", x="seed", y="ρ")
    at.sidebar.text_input(key="sv_explorer_name").set_value("lstm rho")
    at.button(key="sv_explorer_save").click().run()
    no_errors(at)
    (v,) = sv.list_views("explorer", url=url)
    assert v["name"] == "lstm rho"
    query = {k: vs[0] for k, vs in parse_qs(v["query"]).items()}
    assert {k: query.get(k) for k in ("src", "path", "value", "x", "y")} == {
        "src": "Filter", "path": "cell", "value": "lstm", "x": "seed", "y": "ρ"}
    fresh = open_page("explorer", **query)
    no_errors(fresh)
    (fig,) = figures(fresh)
    assert sorted(int(i) for i in fig["data"][0]["customdata"]) == sorted(ids["cells"][2:4])


def test_a_diverged_run_is_drawn_and_named_on_the_scatter_and_parallel_coordinates(lab, open_page):
    """Its loss ÷ baseline is left out (NaN: its last epoch is where training stopped): Plotly would
    drop the point (the default y axis) and
    draw its parallel-coordinates line at 0, the best end; it is drawn at the top with ✕ and counted."""
    _, ids = lab
    (diverged,) = ids["diverged"]
    at = open_page("explorer")
    no_errors(at)
    (fig,) = figures(at)
    assert fig["layout"]["yaxis"]["title"]["text"] == "loss ÷ baseline"
    at_y = {int(i): (float(y), s) for t in fig["data"]
            for i, y, s in zip(t["customdata"], t["y"], t["marker"]["symbol"])}
    others = [y for i, (y, _) in at_y.items() if i != diverged]
    y, symbol = at_y[diverged]
    assert np.isfinite(others).all() and np.isfinite(y) and y > max(others) and symbol == "x"
    note = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert ("✕ loss ÷ baseline left out (diverged: its last record is of the epoch training stopped): "
            "at the top (1 run)") in note
    at = open_page("explorer", tab="Parallel coordinates")
    no_errors(at)
    (fig,) = figures(at)
    (trace,) = fig["data"]
    loss = next(d for d in trace["dimensions"] if d["label"] == "loss ÷ baseline")
    order = sorted(ids["cells"] + ids["diverged"])   # the table's rows, by run id
    v = np.asarray(loss["values"], dtype=float)
    mine = v[order.index(diverged)]
    assert np.isfinite(v).all() and mine > np.delete(v, order.index(diverged)).max()
    assert dict(zip(loss["ticktext"], loss["tickvals"]))["no value"] == pytest.approx(mine)


def test_the_phase_diagram_holds_the_other_swept_factors_at_one_value(lab, open_page):
    """radius × T swept for a tanh RNN that stays at the baseline and an LSTM that solves it: each cell
    averaged the two (0.5, 'beats the baseline'). The other factor (cell) is held at one value, chosen
    on the page; pooling them is a choice that says what it mixes."""
    url, _ = lab
    runs = {}
    for radius in (0.5, 2.0):
        for T in (20, 40):
            for cell in ("lstm", "rnn"):
                for seed in (0, 1):
                    s = spec(cell, seq_len=T, seed=seed, init={"recurrent": "orthogonal", "spectral_radius": radius})
                    runs.setdefault(cell, []).append((seed_run(url, s, tags=("pool",)), s))
    at = open_page("explorer", src="Tag", tag="pool", tab="Phase diagram", fx="init.spectral_radius",
                   fy="task.seq_len", out="loss ÷ baseline")
    no_errors(at)

    def cells():
        return next(d.value for d in at.dataframe if "mark" in d.value.columns)

    def want(cell):   # each (radius, T) cell's mean over its two seeds, from the seeded records
        out = {}
        for _, s in runs[cell]:
            out.setdefault((s.init.spectral_radius, s.task.seq_len), []).append(records(s)[-1].val_loss * 6)
        return {k: np.mean(v) for k, v in out.items()}

    held = at.selectbox(key="hold_cell")
    assert held.value == "lstm" and not at.warning        # the first value, alphabetically
    got = {(r["init.spectral_radius"], r["task.seq_len"]): r["mean"] for _, r in cells().iterrows()}
    assert got == pytest.approx(want("lstm")) and set(cells()["n"]) == {2}
    held.select("rnn").run()
    got = {(r["init.spectral_radius"], r["task.seq_len"]): r["mean"] for _, r in cells().iterrows()}
    assert got == pytest.approx(want("rnn"))
    at.selectbox(key="hold_cell").select("all (pooled)").run()
    no_errors(at)
    assert set(cells()["n"]) == {4} and any("pools runs that differ in cell" in w.value for w in at.warning)
