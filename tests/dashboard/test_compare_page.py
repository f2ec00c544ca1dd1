"""The Compare and Strategies pages by AppTest on a real seeded SQLite database: the context that comes
back after another page, the URL checked when read back, live updates while a run trains, the runs'
notes, the chart options (smoothing, x axis) and the histogram over time."""

from __future__ import annotations

import numpy as np
import pytest

from db import store
from tests.dashboard.conftest import figures, no_errors
from tests.dashboard.seed import records, seed_run, spec


@pytest.fixture
def open_page(lab):
    """Like conftest's open_page, but the query is set after the app's first run (on the Runs page,
    which rewrites the URL with its own filters), as a link to the page would give it."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP

    def open_(page: str, **query: str):
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        return go(at, page, **query)

    return open_


def go(at, page: str, **query: str):
    """Open another page from the sidebar: the browser's URL then holds only that page (no query)."""
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.clear()
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def qp(at, key: str):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


@pytest.fixture
def auto_reruns(monkeypatch):
    """The auto-rerun requests (fragment id, interval) that the page sends the browser (st.fragment's
    run_every), recorded from Streamlit's outgoing message queue."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    seen: list[tuple[str, float]] = []
    original = ForwardMsgQueue.enqueue

    def enqueue(self, msg):
        if msg.WhichOneof("type") == "auto_rerun":
            seen.append((msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        return original(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", enqueue)
    return seen


# --- context across pages -------------------------------------------------------------------------------

def test_the_selection_tab_and_options_come_back_after_another_page(lab, open_page):
    _, ids = lab
    sel = ",".join(map(str, ids["cells"][:3]))
    at = open_page("compare", runs=sel, view="Heatmaps", smooth="0.4", x="step")
    no_errors(at)
    go(at, "runs")
    no_errors(at)
    go(at, "compare")
    no_errors(at)
    assert at.text_input(key="cmp_ids").value == sel
    assert qp(at, "runs") == sel and qp(at, "view") == "Heatmaps"
    assert qp(at, "smooth") == "0.4" and qp(at, "x") == "step"
    # a link with its own selection wins over the remembered one
    go(at, "compare", runs=",".join(map(str, ids["cells"][3:5])))
    assert qp(at, "runs") == ",".join(map(str, ids["cells"][3:5]))


def test_ids_in_the_url_are_checked_with_a_clear_message(lab, open_page):
    _, ids = lab
    a, b = ids["cells"][:2]
    at = open_page("compare", runs=f"{a},abc,{b},-4,1e9,99999999999999999999")
    no_errors(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "'abc'" in warnings and "'-4'" in warnings and "'1e9'" in warnings and "not run ids" in warnings
    assert "'99999999999999999999'" in warnings
    assert qp(at, "runs") == f"{a},{b}" and len(figures(at)) == 4
    at = open_page("compare", runs=",".join(["7"] * 300))  # longer than the page reads
    no_errors(at)
    assert any("longer than 400 characters" in w.value for w in at.warning)


def test_bad_chart_options_in_the_url_are_named(lab, open_page):
    _, ids = lab
    sel = ",".join(map(str, ids["cells"][:2]))
    for query, word in (({"smooth": "2"}, "smooth"), ({"smooth": "nan"}, "smooth"), ({"x": "wall"}, "x")):
        at = open_page("compare", runs=sel, **query)
        no_errors(at)
        assert any(w.value.startswith(f"{word}:") for w in at.warning), [w.value for w in at.warning]


# --- notes, live updates ----------------------------------------------------------------------------------

def test_notes_of_the_selected_runs_are_shown_as_plain_text(lab, open_page):
    url, ids = lab
    a, b = ids["cells"][:2]
    store.set_notes(a, "**lr** <b>too</b> high", url=url)
    at = open_page("compare", runs=f"{a},{b}")
    no_errors(at)
    assert [t.value for t in at.text] == ["**lr** <b>too</b> high"]
    assert any(e.label.startswith("Notes (1 of 2 runs)") for e in at.expander)
    store.set_notes(b, "second thoughts", url=url)  # notes change without a new epoch
    at.run()
    assert [t.value for t in at.text] == ["**lr** <b>too</b> high", "second thoughts"]


def test_compare_refreshes_while_a_selected_run_is_running(lab, open_page, auto_reruns):
    url, ids = lab
    running = ids["running"][0]
    at = open_page("compare", runs=f"{ids['cells'][0]},{running}")
    no_errors(at)
    auto_reruns.clear()  # (opening the app ran the Runs page, with its own live table, first)
    at.run()
    assert [iv for _, iv in auto_reruns] == [5.0]
    # a new epoch reaches the page on its next redraw
    s = spec("lstm", seed=5, epochs=8)
    store.record_epoch(running, records(s)[4], attempt=1, url=url)
    import streamlit as st

    st.cache_data.clear()  # what the 3 s TTL of the live reads does between two redraws
    at.run()
    summary = next(d.value for d in at.dataframe if "epochs_done" in d.value.columns)
    assert summary.set_index("id").loc[running, "epochs_done"] == 4
    # off by the switch, and never for finished runs
    auto_reruns.clear()
    at.toggle(key="cmp_live").set_value(False).run()
    assert auto_reruns == []
    at = open_page("compare", runs=",".join(map(str, ids["cells"][:2])))
    auto_reruns.clear()
    at.run()
    assert auto_reruns == [] and not [t for t in at.toggle if t.key == "cmp_live"]


# --- chart options ------------------------------------------------------------------------------------

def test_smoothing_and_the_step_axis_reach_every_time_series_chart(lab, open_page):
    import pandas as pd

    _, ids = lab
    a, b = ids["cells"][:2]
    at = open_page("compare", runs=f"{a},{b}", smooth="0.5", x="step")
    no_errors(at)
    loss = figures(at)[0]
    val = [r.val_loss for r in records(spec("rnn", seed=0))]
    raw = next(t for t in loss["data"] if t.get("name", "").endswith("(raw)") and t["legendgroup"] == str(a))
    smooth = next(t for t in loss["data"] if t.get("legendgroup") == str(a) and not t["name"].endswith("(raw)"))
    np.testing.assert_allclose(raw["y"], val, rtol=1e-6)
    want = pd.Series(np.log10(val)).ewm(alpha=0.5, adjust=False).mean().to_numpy()  # log axis: geometric EMA
    np.testing.assert_allclose(np.log10(np.asarray(smooth["y"], dtype=float)), want, rtol=1e-6)
    np.testing.assert_allclose(smooth["x"], [20 * e for e in range(6)])   # steps_per_epoch 20, epoch 0 at step 0
    for fig in figures(at):
        assert fig["layout"]["xaxis"]["title"]["text"] == "optimizer step"
    at = open_page("compare", runs=f"{a},{b}", view="Spectra & health", x="seconds")
    no_errors(at)
    assert all(f["layout"]["xaxis"]["title"]["text"].startswith("time (s") for f in figures(at))


def test_every_time_series_chart_has_a_log_toggle(lab, open_page):
    _, ids = lab
    sel = ",".join(map(str, ids["cells"][:2]))
    at = open_page("compare", runs=sel)
    keys = {t.key for t in at.toggle}
    assert {"cmp_log", "cmp_metric_log", "cmp_global_log", "cmp_params_log"} <= keys
    assert figures(at)[1]["layout"]["yaxis"]["type"] == "linear"
    at.toggle(key="cmp_metric_log").set_value(True).run()
    assert figures(at)[1]["layout"]["yaxis"]["type"] == "log"
    at = open_page("compare", runs=sel, view="Spectra & health")
    assert {"cmp_spec_log", "cmp_health_log", "cmp_flow_log"} <= {t.key for t in at.toggle}
    at.toggle(key="cmp_flow_log").set_value(True).run()
    flow = figures(at)[2]
    assert flow["layout"]["yaxis"]["type"] == "log" and flow["layout"]["yaxis2"]["type"] == "linear"


def test_histograms_over_time_show_the_stored_counts(lab, open_page):
    _, ids = lab
    a, b = ids["cells"][:2]
    at = open_page("compare", runs=f"{a},{b}", view="Histograms over time")
    no_errors(at)
    at.selectbox(key="cmp_hparam").set_value("weight_hh_l0").run()
    at.radio(key="cmp_hvalue").set_value("count").run()
    no_errors(at)
    (fig,) = figures(at)
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    assert len(heat) == 2
    for tr, seed in zip(heat, (0, 1)):
        recs = records(spec("rnn", seed=seed))
        want = [next(p.hist for p in r.params if p.name == "weight_hh_l0") for r in recs]
        np.testing.assert_array_equal(np.asarray(tr["z"], dtype=float), np.asarray(want, dtype=float))
        assert list(tr["y"]) == [r.epoch for r in recs]
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "count"


# --- Strategies -----------------------------------------------------------------------------------------

def test_strategies_source_and_factor_come_back_and_bad_ones_are_named(lab, open_page):
    _, ids = lab
    at = open_page("strategies", tag="seed1", factor="cell")
    no_errors(at)
    assert at.selectbox(key="st_tag").value == "seed1"
    go(at, "runs")
    go(at, "strategies")
    no_errors(at)
    assert at.segmented_control(key="st_src").value == "Tag" and at.selectbox(key="st_tag").value == "seed1"
    assert qp(at, "factor") == "cell" and "sweep" not in at.query_params
    for query, word in (({"tag": "nope"}, "tag"), ({"runs": "1,x", "factor": "colour"}, "factor"),
                        ({"runs": "1,x"}, "Run ids"), ({"sweep": "abc"}, "sweep"),
                        ({"runs": "1,2", "smooth": "-1"}, "smooth")):
        at = open_page("strategies", **query)
        no_errors(at)
        assert any(w.value.startswith(f"{word}:") for w in at.warning), (query, [w.value for w in at.warning])


def test_strategies_smooths_the_group_means(lab, open_page):
    import pandas as pd

    _, ids = lab
    at = open_page("strategies", runs=",".join(map(str, ids["cells"])), factor="cell", smooth="0.5")
    no_errors(at)
    loss = figures(at)[0]
    raw = next(t for t in loss["data"] if t.get("name", "").endswith("(raw)"))
    smooth = next(t for t in loss["data"] if t.get("name") == raw["name"][:-len(" (raw)")])
    y = np.asarray(raw["y"], dtype=float)
    want = pd.Series(np.log10(y)).ewm(alpha=0.5, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(np.log10(np.asarray(smooth["y"], dtype=float)), want, rtol=1e-6)
    assert qp(at, "smooth") == "0.5"


def test_a_sweep_in_the_url_comes_back_and_a_missing_one_is_named(lab, open_page):
    from rnnlab.spec import SweepSpec

    url, _ = lab
    sweep = SweepSpec(name="cells", base={}, vary={"cell": ["rnn", "gru"]}, seeds=[0])
    for cell in ("rnn", "gru"):
        seed_run(url, spec(cell, seed=60), sweep=sweep)
    sid = int(store.get_run(seed_run(url, spec("lstm", seed=61), sweep=sweep), url=url)["sweep_id"])
    at = open_page("strategies", sweep=str(sid), factor="cell")
    no_errors(at)
    assert at.selectbox(key="st_sweep").value == sid
    go(at, "compare")
    go(at, "strategies")
    assert at.selectbox(key="st_sweep").value == sid and qp(at, "factor") == "cell"
    at = open_page("strategies", sweep=str(sid + 50))
    assert any(w.value.startswith(f"sweep: there is no sweep #{sid + 50}") for w in at.warning)


# --- saved views ----------------------------------------------------------------------------------------

def test_compare_and_strategies_save_their_view(lab, open_page):
    from db import saved_views as sv

    url, ids = lab
    sel = ",".join(map(str, ids["cells"][:3]))
    at = open_page("compare", runs=sel, view="Heatmaps")
    at.text_input(key="sv_compare_name").set_value("three cells")  # a form: sent with its button
    at.button(key="sv_compare_save").click().run()
    no_errors(at)
    (view,) = sv.list_views("compare", url=url)
    assert view["name"] == "three cells" and f"runs={sel.replace(',', '%2C')}" in view["query"]
    assert "view=Heatmaps" in view["query"]
    at = open_page("strategies", tag="seed1", factor="cell")
    at.text_input(key="sv_strategies_name").set_value("seed 1 by cell")
    at.button(key="sv_strategies_save").click().run()
    no_errors(at)
    (view,) = sv.list_views("strategies", url=url)
    assert "tag=seed1" in view["query"] and "factor=cell" in view["query"]


def test_a_link_without_a_selection_keeps_its_own_options_and_gets_the_remembered_runs(lab, open_page):
    """?smooth=0.7 alone: the remembered selection comes back, but the remembered smoothing (0.4) does not
    override the link's."""
    _, ids = lab
    sel = ",".join(map(str, ids["cells"][:3]))
    at = open_page("compare", runs=sel, smooth="0.4", x="step")
    go(at, "runs")
    go(at, "compare", smooth="0.7")
    no_errors(at)
    assert qp(at, "runs") == sel and qp(at, "x") == "step"
    assert qp(at, "smooth") == "0.7"


def test_the_summary_shows_a_diverged_runs_nan_and_inf_loss(page_db, monkeypatch):
    """The summary's last_val_loss was the runs row's, where a NaN loss is NULL: a diverged run's cell
    was blank, like a run with no epoch. It is db.queries.last_val_losses: +inf shows as inf, a NaN
    one is marked in the status ('loss NaN'), the CSV writes NaN and inf and full-precision floats,
    and 'loss ÷ baseline' keeps a small ratio's digits (%.3f read 6e-5 as 0.000)."""
    import csv
    import io
    import json
    import math

    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP, offered_csv
    from tests.dashboard.seed import records, spec
    from tests.dashboard.test_runs_page import seed_non_finite

    ids = seed_non_finite(page_db)
    got = offered_csv(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    order = [ids[k] for k in ("nan", "inf", "finite", "queued")]
    at = go(at, "compare", runs=",".join(map(str, order)))
    assert not at.exception, [e.value for e in at.exception]
    (grid,) = [d for d in at.dataframe if "last_val_loss" in d.value.columns]     # the summary
    shown = grid.value.set_index("id")
    want = records(spec("gru", seed=0))[-1].val_loss
    loss = shown["last_val_loss"]
    assert loss.dtype == np.float64
    assert loss[ids["inf"]] == math.inf and loss[ids["finite"]] == want
    assert math.isnan(loss[ids["nan"]]) and shown.loc[ids["nan"], "status"] == "diverged · loss NaN"
    assert math.isnan(loss[ids["queued"]]) and shown.loc[ids["queued"], "status"] == "queued"
    fmt = json.loads(grid.proto.columns)["loss ÷ baseline"]["type_config"]["format"]
    assert fmt % 6e-5 != fmt % 0.0
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(got["compare_runs.csv"]))}
    assert rows[ids["nan"]]["last_val_loss"] == "NaN" and rows[ids["inf"]]["last_val_loss"] == "inf"
    assert float(rows[ids["finite"]]["last_val_loss"]) == want and rows[ids["queued"]]["last_val_loss"] == ""
    assert rows[ids["nan"]]["status"] == "diverged"


def test_the_summary_and_its_csv_keep_a_diverged_runs_nan_metric(page_db, monkeypatch):
    """compare_runs.csv wrote a diverged run's NaN metric (the runs row keeps NULL) as an empty cell, the
    same as a queued run's with no epoch; it is NaN, and the grid reads it from the last epoch."""
    import csv
    import io
    import math

    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP, offered_csv
    from tests.dashboard.seed import records, spec
    from tests.dashboard.test_runs_page import seed_nan_metric

    div, queued, done = seed_nan_metric(page_db)
    got = offered_csv(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at = go(at, "compare", runs=f"{div},{queued},{done}")
    assert not at.exception, [e.value for e in at.exception]
    (grid,) = [d for d in at.dataframe if "last_val_loss" in d.value.columns]
    metric = grid.value.set_index("id")["last_val_metric"]
    assert math.isnan(metric[div]) and math.isnan(metric[queued])
    status = grid.value.set_index("id")["status"]   # the grid shows both NaNs empty: the status tells them apart
    assert (status[div], status[queued], status[done]) == ("diverged · loss NaN · metric NaN", "queued", "succeeded")
    assert metric[done] == records(spec("gru", seed=5))[-1].val_metric
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(got["compare_runs.csv"]))}
    assert (rows[div]["last_val_metric"], rows[queued]["last_val_metric"]) == ("NaN", "")
    assert float(rows[done]["last_val_metric"]) == records(spec("gru", seed=5))[-1].val_metric
