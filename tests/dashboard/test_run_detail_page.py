"""The Run detail page by AppTest on a real seeded SQLite database: the run id that comes back after
another page, the id checked when read back from the URL, live updates while the run trains, the chart
options and the histogram over time."""

# ruff: noqa: F811
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.actions import tags_key
from db import store
from tests.dashboard.conftest import no_errors
from tests.dashboard.seed import records, spec

# the fixtures open_page and auto_reruns are shared with the Compare page's tests (test arguments re-bind them)
from tests.dashboard.test_compare_page import auto_reruns, figures, go, open_page, qp  # noqa: F401


def test_the_run_and_its_tab_come_back_after_another_page(lab, open_page):
    _, ids = lab
    rid = ids["cells"][2]
    at = open_page("run_detail", run=str(rid), view="Heatmap")
    no_errors(at)
    go(at, "compare")
    go(at, "run_detail")
    no_errors(at)
    assert at.number_input(key="detail_id").value == rid
    assert qp(at, "run") == str(rid) and qp(at, "view") == "Heatmap"
    assert "lstm adding T=50" in at.title[0].value


def test_a_bad_run_id_in_the_url_is_named(lab, open_page):
    for bad in ("abc", "-3", "0", "1.5", "99999999999999999999999"):
        at = open_page("run_detail", run=bad)
        no_errors(at)
        assert any(w.value.startswith(f"run: '{bad}' is not a run id") for w in at.warning), bad
        assert any("Enter a run id" in i.value for i in at.info)


def test_run_detail_refreshes_while_the_run_is_running(lab, open_page, auto_reruns):
    import streamlit as st

    url, ids = lab
    rid = ids["running"][0]
    at = open_page("run_detail", run=str(rid))
    no_errors(at)
    auto_reruns.clear()
    at.run()
    assert [iv for _, iv in auto_reruns] == [5.0, 5.0]  # the status header and the charts
    assert {m.label: m.value for m in at.metric}["Epoch"] == "3/8"
    store.record_epoch(rid, records(spec("lstm", seed=5, epochs=8))[4], attempt=1, url=url)
    st.cache_data.clear()  # what the 3 s TTL of the live reads does between two redraws
    at.run()
    assert {m.label: m.value for m in at.metric}["Epoch"] == "4/8"
    (fig,) = [f for f in figures(at) if "Validation loss" in f["layout"]["title"]["text"]]
    assert len(next(t for t in fig["data"] if t.get("legendgroup") == str(rid))["x"]) == 5
    # finished: no more polling
    store.finish_run(rid, "succeeded", "done", attempt=1, url=url)
    st.cache_data.clear()
    auto_reruns.clear()
    at.run()
    no_errors(at)
    assert auto_reruns == [] and not [t for t in at.toggle if t.key == "det_live"]


def test_smoothing_slider_and_time_axis_on_run_detail(lab, open_page):
    _, ids = lab
    rid = ids["cells"][0]
    at = open_page("run_detail", run=str(rid))
    at.slider(key="det_smooth").set_value(0.8).run()
    at.radio(key="det_x").set_value("seconds").run()
    no_errors(at)
    assert qp(at, "smooth") == "0.8" and qp(at, "x") == "seconds"
    recs = records(spec("rnn", seed=0))
    loss = figures(at)[0]
    smooth = next(t for t in loss["data"] if t.get("name", "").startswith(f"#{rid}") and "(raw)" not in t["name"])
    want = 10 ** pd.Series(np.log10([r.val_loss for r in recs])).ewm(alpha=0.2, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(np.asarray(smooth["y"], dtype=float), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(smooth["x"], dtype=float),
                               np.cumsum([r.train_seconds + r.diag_seconds for r in recs]), rtol=1e-9)


def test_histograms_over_time_as_fractions_of_each_epoch(lab, open_page):
    _, ids = lab
    rid = ids["cells"][4]  # gru, seed 0
    at = open_page("run_detail", run=str(rid), view="Histograms over time")
    no_errors(at)
    param = at.selectbox(key="det_hparam").value
    (fig,) = figures(at)
    (heat,) = [t for t in fig["data"] if t["type"] == "heatmap"]
    hists = [next(p for p in r.params if p.name == param) for r in records(spec("gru", seed=0))]
    counts = np.array([h.hist for h in hists], dtype=float)
    total = counts.sum(axis=1) + [h.hist_zeros + h.hist_nonfinite for h in hists]
    np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), counts / total[:, None], rtol=1e-12)
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "fraction of the epoch's entries"


def test_the_diagnostics_overhead_tab(lab, open_page):
    _, ids = lab
    rid = ids["cells"][0]
    at = open_page("run_detail", run=str(rid), view="Diagnostics overhead")
    no_errors(at)
    assert len(figures(at)) == 1 and any(f"run{rid}_overhead" in (d.key or "") for d in at.get("download_button"))


def test_notes_and_tags_are_bounded_and_a_refusal_is_shown(lab, open_page):
    url, ids = lab
    rid = ids["cells"][2]
    at = open_page("run_detail", run=str(rid))
    no_errors(at)
    assert at.text_area(key=f"detail_notes_{rid}").proto.max_chars == store.MAX_NOTES
    assert at.text_input(key=tags_key("detail_act", [rid])).proto.max_chars == store.MAX_TAGS_TEXT
    at.text_area(key=f"detail_notes_{rid}").set_value("x" * (store.MAX_NOTES + 1))   # the field keeps MAX_NOTES
    at.button(key="detail_save_notes").click().run()
    no_errors(at)
    assert store.get_run(rid, url=url)["notes"] == "x" * store.MAX_NOTES
    before = store.get_run(rid, url=url)
    # more tags than a run may have fit in the field: the store refuses them, and the page says so
    at.text_input(key=tags_key("detail_act", [rid])).set_value(",".join(f"t{i}" for i in range(store.MAX_TAGS + 10)))
    at.button(key="detail_act_tag_add").click().run()
    no_errors(at)
    assert any(f"at most {store.MAX_TAGS} per run" in w.value for w in at.warning), [w.value for w in at.warning]
    after = store.get_run(rid, url=url)
    assert (after["notes"], after["tags"]) == (before["notes"], before["tags"])


def test_a_diverged_runs_loss_reads_nan_or_inf_not_a_dash(page_db):
    """The header's val loss showed '—' (no loss) for a run whose last loss was NaN; it reads NaN,
    inf stays inf, and only a run with no epoch has the dash."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP
    from tests.dashboard.test_runs_page import seed_non_finite

    ids = seed_non_finite(page_db)
    # the ratio to the baseline is read from the same restored loss: inf for the inf run (the runs row
    # keeps NULL, which hid it), none for a NaN loss or a run with no epoch
    for run, want, ratio in (("nan", "NaN", None), ("inf", "inf", "inf × baseline"), ("queued", "—", None)):
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        at = go(at, "run_detail", run=str(ids[run]))
        no_errors(at)
        (m,) = [m for m in at.metric if m.label == "Val loss (baseline)"]
        assert (m.value, m.proto.delta or None) == (want, ratio), run


def test_a_solved_runs_small_loss_ratio_keeps_its_digits(page_db):
    """The header's ratio was '0.00 × baseline' for a run at 6e-5 of its baseline: it keeps 3
    significant digits, as a non-zero number (and the loss itself is read by db.queries)."""
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP
    from tests.dashboard.seed import info_for, records, spec

    s = spec("gru", seed=3)
    (rid,) = store.create_runs([s], url=page_db)
    store.claim_run(rid, "w", url=page_db)
    store.record_info(rid, info_for(s), attempt=1, url=page_db)   # analytic baseline 1/6
    recs = records(s)
    recs[-1].val_loss = 1e-5
    for rec in recs:
        store.record_epoch(rid, rec, attempt=1, url=page_db)
    store.finish_run(rid, "succeeded", "done", attempt=1, url=page_db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at = go(at, "run_detail", run=str(rid))
    no_errors(at)
    (m,) = [m for m in at.metric if m.label == "Val loss (baseline)"]
    assert m.value == "1e-05"
    ratio = float(m.delta.split(" ×")[0])
    assert ratio == pytest.approx(6e-5, rel=1e-3)


def test_switching_runs_shows_that_runs_notes_and_tags_and_saves_only_there(lab, open_page):
    """The Notes box and the tags field had one key for every run: after switching the Run id from run 1
    to run 2 they still showed run 1's text, and 'Save notes' wrote run 1's typed notes over run 2's."""
    url, ids = lab
    one, two = ids["cells"][0], ids["cells"][1]
    store.set_notes(one, "N1", url=url)
    store.set_notes(two, "N2", url=url)
    store.set_tags(two, ["t2"], url=url)
    at = open_page("run_detail", run=str(one))
    no_errors(at)
    at.text_area(key=f"detail_notes_{one}").set_value("typed for run 1, not saved").run()
    at.number_input(key="detail_id").set_value(two).run()
    no_errors(at)
    assert at.text_area(key=f"detail_notes_{two}").value == "N2"
    assert at.text_input(key=tags_key("detail_act", [two])).value == "t2"
    at.button(key="detail_save_notes").click().run()
    assert store.get_run(two, url=url)["notes"] == "N2" and store.get_run(one, url=url)["notes"] == "N1"
