"""The Runs page: ticked rows that disappear, the filters in the URL, the column order that keeps the
key columns on screen, and the search over notes (AppTest against a real seeded SQLite database)."""

from __future__ import annotations

import json

import pytest

from dashboard import runs_query
from db import store
from tests.dashboard.conftest import no_errors, offered_csv


def _tick(at, *positions: int):
    """Tick rows of the runs grid as the browser does: the grid's selection state, by position."""
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": list(positions), "columns": []}}
    return at.run()


def _selected_caption(at) -> str:
    return next(c.value for c in at.caption if "selected" in c.value or "Select rows" in c.value)


def _actions_and_workers_shown(at) -> None:
    assert {b.key for b in at.button} >= {"act_cmp", "act_det", "act_cancel", "act_rerun", "act_del"}
    assert at.dataframe[1].value["name"].tolist() == ["seed-worker@lab"]  # the workers panel


def test_a_ticked_row_that_is_gone_after_a_search_is_no_error(lab, open_page):
    url, ids = lab
    at = open_page("runs")
    shown = at.dataframe[0].value["id"].tolist()
    at = _tick(at, 6)
    assert _selected_caption(at) == f"1 selected: {shown[6]}"
    target = next(i for i in shown[:6])  # a run other than the ticked one
    store.set_notes(target, "xylophone tuning run", url=url)
    at.text_input(key="flt_search").set_value("xylophone").run()
    no_errors(at)
    assert at.dataframe[0].value["id"].tolist() == [target]
    assert _selected_caption(at).startswith("Select rows")  # the ticked run is not shown: nothing is selected
    _actions_and_workers_shown(at)


def test_the_ticked_run_stays_ticked_when_the_rows_move(lab, open_page):
    url, ids = lab
    at = open_page("runs")
    shown = at.dataframe[0].value["id"].tolist()
    at = _tick(at, 6)
    store.set_notes(shown[6], "xylophone", url=url)
    at.text_input(key="flt_search").set_value("xylophone").run()
    no_errors(at)
    assert at.dataframe[0].value["id"].tolist() == [shown[6]]
    assert _selected_caption(at) == f"1 selected: {shown[6]}"  # now row 0, still the same run
    assert not at.button(key="act_det").disabled


def test_deleting_the_only_run_of_a_filtered_view_is_no_error(lab, open_page):
    url, ids = lab
    at = open_page("runs")
    at.multiselect(key="flt_status").set_value(["diverged"]).run()
    assert at.dataframe[0].value["id"].tolist() == ids["diverged"]
    at = _tick(at, 0)
    at.button(key="act_del").click().run()
    at.button(key="act_del_yes").click().run()
    no_errors(at)
    assert store.get_run(ids["diverged"][0], url=url) is None
    assert len(at.dataframe[0].value) == 0
    assert _selected_caption(at).startswith("Select rows")
    _actions_and_workers_shown(at)


def test_search_matches_notes_and_is_bounded(lab, open_page):
    url, ids = lab
    a, b = ids["cells"][:2]
    store.set_notes(a, "Clipping at 1.0 rescued this one", url=url)
    store.set_notes(b, "nothing to see", url=url)
    at = open_page("runs")
    at.text_input(key="flt_search").set_value("RESCUED").run()  # case-insensitive, like the other fields
    assert at.dataframe[0].value["id"].tolist() == [a]
    assert at.text_input(key="flt_search").proto.max_chars == runs_query.MAX_TEXT
    no_errors(at)


# --- the filters in the URL -----------------------------------------------------------------

def test_the_url_holds_the_filters_and_a_fresh_load_restores_them(lab, open_page):
    url, ids = lab
    at = open_page("runs")
    at.multiselect(key="flt_status").set_value(["succeeded"]).run()
    at.multiselect(key="flt_cell").set_value(["lstm", "gru"]).run()
    at.selectbox(key="flt_sort").set_value("val_loss").run()
    at.text_input(key="flt_path").set_value("task.seq_len").run()
    at.text_input(key="flt_value").set_value("50").run()
    qp = {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}
    assert qp == {"status": ["succeeded"], "cell": ["lstm", "gru"], "sort": ["val_loss"], "field": ["task.seq_len"],
                  "equals": ["50"]}
    expected = at.dataframe[0].value["id"].tolist()
    assert len(expected) == 4
    fresh = open_page("runs", **qp)  # a reload, or the link opened by someone else
    no_errors(fresh)
    assert fresh.dataframe[0].value["id"].tolist() == expected
    assert fresh.multiselect(key="flt_cell").value == ["lstm", "gru"]
    assert fresh.selectbox(key="flt_sort").value == "val_loss"


def test_integer_filters_and_page_size_come_back_from_the_url(lab, open_page):
    at = open_page("runs", T=["50"], layers=["1"], per=["25"])
    no_errors(at)
    assert at.multiselect(key="flt_seq_len").value == [50] and at.multiselect(key="flt_num_layers").value == [1]
    assert at.selectbox(key="page_size").value == 25
    assert len(at.dataframe[0].value) == 9


def test_bad_url_values_are_dropped_with_a_message_naming_the_field(lab, open_page):
    at = open_page("runs", status=["bogus", "failed"], sort="sideways", q="x" * 300, field="a b", sweep="999")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for field in ("'status'", "'sort'", "'q'", "'field'", "'sweep'"):
        assert field in warnings, field
    assert at.multiselect(key="flt_status").value == ["failed"]
    assert at.selectbox(key="flt_sort").value == "newest" and at.text_input(key="flt_search").value == ""
    assert not at.error


def test_leaving_the_page_and_coming_back_keeps_the_filters(lab, open_page):
    _, ids = lab
    at = open_page("runs")
    at.multiselect(key="flt_status").set_value(["diverged"]).run()
    at.switch_page("app_pages/query.py").run()
    at.query_params.clear()  # the sidebar opens a page without its query
    at.switch_page("app_pages/runs.py").run()
    no_errors(at)
    assert at.multiselect(key="flt_status").value == ["diverged"]
    assert at.dataframe[0].value["id"].tolist() == ids["diverged"]
    assert at.query_params["status"] in ("diverged", ["diverged"])


def test_url_round_trip_and_bounds_of_runs_query():
    opts = {"tags": ["a", "b"], "cell": ["gru", "lstm", "rnn"], "seq_len": [25, 50], "num_layers": [1, 2],
            "sweeps": [{"id": 3}]}
    values = {**runs_query.defaults(), "flt_status": ["failed", "queued"], "flt_tags": ["b"], "flt_seq_len": [50],
              "flt_search": "x & y = z?", "flt_sweep": 3, "flt_sort": "horizon", "page_size": 200,
              "flt_path": "optimizer.lr", "flt_value": "1e-3"}
    params = runs_query.to_params(values)
    assert runs_query.from_params(params, opts) == (values, [])
    assert runs_query.to_params(runs_query.defaults()) == {}
    back, problems = runs_query.from_params({"tag": ["a"] * 51, "T": ["50", "51"], "per": ["1000"]}, opts)
    assert back["flt_tags"] == [] and back["flt_seq_len"] == [50] and back["page_size"] == 50
    assert [p.split(":")[0] for p in problems] == ["URL field 'tag'", "URL field 'T'", "URL field 'per'"]


# --- columns ---------------------------------------------------------------------------------

# The runs grid's width in a 1440 × 900 window (wide layout, sidebar open), as measured by
# test_runs_browser.py in Chromium; the grid's row-selection column takes about 40 px of it.
GRID_AT_1440 = 980
SELECT_COLUMN = 40


def test_key_columns_come_first_and_fit_at_1440_px(lab, open_page):
    at = open_page("runs")
    cols = at.dataframe[0].value.columns.tolist()
    key = ["id", "name", "status", "progress", "loss ÷ baseline", "diagnosis", "tags"]
    assert cols[:len(key)] == key
    config = json.loads(at.dataframe[0].proto.columns)
    widths = [config[c]["width"] for c in key]
    assert all(isinstance(w, int) for w in widths), widths
    assert SELECT_COLUMN + sum(widths) <= GRID_AT_1440, (sum(widths), GRID_AT_1440)


def test_search_reads_notes_on_both_backends(db_url):
    from db import queries as q
    from tests.dashboard.seed import spec

    a, b, _ = store.create_runs([spec("rnn", seed=s) for s in range(3)], url=db_url)
    store.set_notes(a, "Clipping at 1.0 rescued it", url=db_url)
    store.set_notes(b, "no clipping", url=db_url)
    eng = q.engine_for(db_url)
    assert sorted(q.list_runs({"search": "CLIPPING"}, engine=eng)[0]["id"]) == [a, b]
    assert q.list_runs({"search": "rescued"}, engine=eng)[0]["id"].tolist() == [a]
    assert q.list_runs({"search": "rescued"}, engine=eng)[1] == 1


# --- a diverged run's loss ------------------------------------------------------------------------

def seed_non_finite(url: str) -> dict[str, int]:
    """Runs ended through the store as a worker ends them: diverged with a NaN last val loss (which the
    runs row keeps as NULL), diverged with +inf, a finished run, and a queued run (no epoch yet)."""
    import math

    from tests.dashboard.seed import info_for, records, seed_run, spec

    ids = {"nan": seed_run(url, spec("rnn", seed=7), status="diverged")}
    s = spec("rnn", seed=8)
    (ids["inf"],) = store.create_runs([s], url=url)
    store.claim_run(ids["inf"], "w", url=url)
    store.record_info(ids["inf"], info_for(s), attempt=1, url=url)
    recs = records(s, diverge_at=2)
    recs[-1].val_loss = math.inf
    for rec in recs:
        store.record_epoch(ids["inf"], rec, attempt=1, url=url)
    store.finish_run(ids["inf"], "diverged", "non-finite loss at epoch 2", attempt=1, url=url)
    ids["finite"] = seed_run(url, spec("gru", seed=0))
    ids["queued"] = seed_run(url, spec("lstm", seed=0), status="queued")
    return ids


def seed_nan_metric(url: str) -> tuple[int, int, int]:
    """(a run that diverged with a NaN last metric and loss, stored as a worker stores it; a queued run with
    no epoch; a finished gru run, seed 5)."""
    import math

    from tests.dashboard.seed import info_for, records, seed_run, spec

    s = spec("rnn", seed=11, activation="relu")
    (div,) = store.create_runs([s], url=url)
    store.claim_run(div, "w", url=url)
    store.record_info(div, info_for(s), attempt=1, url=url)
    recs = records(s, diverge_at=2)
    recs[-1].val_metric = math.nan
    for rec in recs:
        store.record_epoch(div, rec, attempt=1, url=url)
    store.finish_run(div, "diverged", "non-finite loss at epoch 2", attempt=1, url=url)
    return div, seed_run(url, spec("gru", seed=6), status="queued"), seed_run(url, spec("gru", seed=5))


def test_a_diverged_runs_loss_is_numeric_and_its_nan_is_marked(page_db, open_page):
    """The val loss column was text ('NaN', '0.1657'): it sorted as strings ('10.2' < '9.8'). It is
    numeric: a finished run's loss is its last epoch's at full precision, +inf stays inf, a queued
    run has none; the grid shows NaN as an empty cell, so that run's status says 'loss NaN'."""
    import math

    import numpy as np

    from tests.dashboard.seed import records, spec

    ids = seed_non_finite(page_db)
    at = open_page("runs")
    no_errors(at)
    shown = at.dataframe[0].value.set_index("id")
    loss = shown["val loss"]
    assert loss.dtype == np.float64
    assert math.isnan(loss[ids["nan"]]) and loss[ids["inf"]] == math.inf and math.isnan(loss[ids["queued"]])
    assert loss[ids["finite"]] == records(spec("gru", seed=0))[-1].val_loss
    assert shown.loc[ids["nan"], "status"] == "diverged · loss NaN"
    assert shown.loc[ids["inf"], "status"] == "diverged" and shown.loc[ids["queued"], "status"] == "queued"
    assert json.loads(at.dataframe[0].proto.columns)["val loss"]["type_config"]["type"] == "number"


def test_the_runs_csv_holds_full_precision_and_nan_inf(page_db, open_page, monkeypatch):
    """'Download CSV' wrote the grid's text column: 4 significant digits, the rest of each loss lost.
    The CSV holds every float as Python writes it, the NaN loss as NaN, the infinite one as inf, the
    true status, and an empty cell only for the run with no epoch."""
    import csv
    import io

    from tests.dashboard.seed import records, spec

    ids = seed_non_finite(page_db)
    got = offered_csv(monkeypatch)
    at = open_page("runs")
    no_errors(at)
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(got["runs.csv"]))}
    want = records(spec("gru", seed=0))[-1].val_loss
    assert rows[ids["finite"]]["val loss"] == repr(want) and float(rows[ids["finite"]]["val loss"]) == want
    assert len(repr(want).split(".")[1]) > 4       # more than the 4 digits the grid shows
    assert rows[ids["nan"]]["val loss"] == "NaN" and rows[ids["inf"]]["val loss"] == "inf"
    assert rows[ids["queued"]]["val loss"] == ""
    assert rows[ids["nan"]]["status"] == "diverged"
    ratio = float(rows[ids["finite"]]["loss ÷ baseline"])
    assert ratio == pytest.approx(want * 6, rel=1e-12)   # the seeded runs' analytic baseline is 1/6


def test_a_small_loss_ratio_keeps_its_digits(page_db, open_page):
    """'loss ÷ baseline' was formatted %.3f, so a solved run at 6e-5 read 0.000."""
    at = open_page("runs")
    fmt = json.loads(at.dataframe[0].proto.columns)["loss ÷ baseline"]["type_config"]["format"]
    import re

    assert re.fullmatch(r"%\.\dg", fmt), fmt
    assert (fmt % 6e-5) != (fmt % 0.0)


def test_a_diverged_runs_nan_metric_is_nan_not_blank_in_the_grid_csv_and_cli(page_db, open_page, monkeypatch):
    """The runs row keeps a NaN metric as NULL, so the grid and runs.csv showed the same empty cell for a
    diverged run's NaN metric (mse of a NaN prediction) as for a queued run with no epoch; the CLI's
    `rnnlab runs` printed a blank. The metric is read like the loss: NaN restored from the last epoch."""
    import csv
    import io
    import math

    from typer.testing import CliRunner

    from cli.main import app
    from tests.dashboard.seed import records, spec

    div, queued, done = seed_nan_metric(page_db)
    got = offered_csv(monkeypatch)
    at = open_page("runs")
    no_errors(at)
    shown = at.dataframe[0].value.set_index("id")
    # the grid draws NaN as an empty cell either way: the status tells the diverged run's NaN metric apart
    assert math.isnan(shown.loc[div, "metric"]) and math.isnan(shown.loc[queued, "metric"])
    assert shown.loc[div, "status"] == "diverged · loss NaN · metric NaN" and shown.loc[queued, "status"] == "queued"
    assert shown.loc[done, "status"] == "succeeded"
    assert shown.loc[done, "metric"] == records(spec("gru", seed=5))[-1].val_metric
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(got["runs.csv"]))}
    assert (rows[div]["metric"], rows[queued]["metric"]) == ("NaN", "")
    assert float(rows[done]["metric"]) == records(spec("gru", seed=5))[-1].val_metric
    monkeypatch.setenv("RNNLAB_DATABASE_URL", page_db)
    res = CliRunner().invoke(app, ["runs", "--limit", "50"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.strip().startswith(f"│ {div} ") or
                ln.split("│")[1:2] == [f" {div} "] or ln.lstrip("│ ").startswith(f"{div} "))
    assert "NaN" in line.split("│")[6], line
