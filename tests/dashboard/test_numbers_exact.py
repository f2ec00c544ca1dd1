"""Numbers the dashboard shows, against known answers planted in a real SQLite database: the diagnostics
overhead of every epoch (not the thinned chart series), a budget verdict printed with the digits that
decide it, loss ÷ baseline on the held-out baseline on every page, and the study numbers' CSV exact."""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from db import queries as q
from db import store
from db.models import Epoch
from rnnlab.spec import parse_spec
from tests.dashboard.conftest import no_errors, offered_csv
from tests.synthetic import epoch_record, run_info

# --- the diagnostics overhead reads every epoch ------------------------------------------------------


def _plant_overhead_run(url: str) -> tuple[int, float]:
    """1001 epochs, every 3rd probed (1 s of diagnostics against 0.01 s otherwise, 10 s of training
    each): probe.budget 5%. Returns the run id and Σ diag / Σ train over every epoch."""
    s = parse_spec({"hidden_size": 8, "epochs": 1000, "steps_per_epoch": 2, "probe": {"budget": 0.05}})
    (rid,) = store.create_runs([s], owner="local", url=url)
    a = store.claim_run(rid, "w", url=url)["attempt"]
    store.record_info(rid, run_info(), attempt=a, url=url)
    train = [0.0 if e == 0 else 10.0 for e in range(1001)]
    diag = [1.0 if e % 3 == 0 else 0.01 for e in range(1001)]
    rows = [dict(run_id=rid, epoch=e, steps=2, train_loss=1.0, val_loss=1.0, val_metric=1.0, grad_norm_mean=1.0,
                 grad_norm_max=1.0, clip_fraction=0.0, nonfinite_steps=0, train_seconds=train[e],
                 diag_seconds=diag[e], probed=e % 3 == 0, nan_fields=None, recorded_at=store.now())
            for e in range(1001)]
    with q.engine_for(url).begin() as conn:
        conn.execute(insert(Epoch), rows)
    store.finish_run(rid, "succeeded", "ok", attempt=a, url=url)
    return rid, math.fsum(diag) / math.fsum(train)


def test_the_overhead_tab_sums_every_epoch(lab, open_page):
    url, _ = lab
    rid, share = _plant_overhead_run(url)
    assert share < 0.05                         # 3.4%: within the budget, on every epoch
    at = open_page("run_detail", run=str(rid), view="Diagnostics overhead")
    no_errors(at)
    (line,) = [c.value for c in at.caption if "Diagnostics took" in c.value]
    assert "334 of 1001 epochs probed" in line, line
    pct = float(re.search(r"took ([\d.]+)%", line).group(1))
    assert pct == pytest.approx(100 * share, abs=0.05), line
    assert line.endswith("— within it."), line
    (tab,) = [d.value for d in at.dataframe if "cumulative" in d.value.columns]
    assert tab["epoch"].tolist() == list(range(1001))
    assert tab["cumulative"].iloc[-1] == pytest.approx(share, rel=1e-12)


# --- the budget verdict prints the digits that decide it -----------------------------------------------

@pytest.mark.parametrize("total,budget", [(0.05004, 0.05), (0.05, 0.05), (0.0499996, 0.05), (0.050000001, 0.05),
                                          (0.1125, 0.2), (0.0333, 0.05), (0.123456789, 0.1234568)])
def test_the_printed_share_and_budget_compare_as_the_verdict_says(total, budget):
    from dashboard.overhead import overhead_summary, overhead_table

    t = overhead_table(pd.DataFrame({"epoch": [0, 1], "train_seconds": [0.0, 1.0], "diag_seconds": [0.0, total],
                                     "probed": [True, True]}))
    line = overhead_summary(t, budget)
    shown = float(re.search(r"took ([\d.e+-]+)%", line).group(1))
    limit = float(re.search(r"probe.budget ([\d.e+-]+)%", line).group(1))
    if total <= budget:
        assert line.endswith("— within it.") and shown <= limit, line
    else:
        assert line.endswith("— over it.") and shown > limit, line
    assert (shown == limit) == (total == budget), line
    assert shown == pytest.approx(100 * total, rel=5e-3), line   # still about three significant figures


# --- loss ÷ baseline divides by the held-out baseline ----------------------------------------------------

def _plant_baselines(url: str, heldout: float | None, loss: float = 0.15, analytic: float = 0.1) -> int:
    s = parse_spec({"hidden_size": 8, "epochs": 1, "steps_per_epoch": 2, "seed": 77 if heldout else 78})
    (rid,) = store.create_runs([s], owner="local", url=url)
    a = store.claim_run(rid, "w", url=url)["attempt"]
    info = run_info()
    info.baseline_loss, info.baseline_heldout_loss = analytic, heldout
    store.record_info(rid, info, attempt=a, url=url)
    for e in (0, 1):
        rec = epoch_record(e)
        rec.val_loss = loss
        store.record_epoch(rid, rec, attempt=a, url=url)
    store.finish_run(rid, "succeeded", "ok", attempt=a, url=url)
    return rid


def test_the_run_reads_carry_the_heldout_baseline(db_url):
    rid = _plant_baselines(db_url, 0.2)
    eng = q.engine_for(db_url)
    listed, _ = q.list_runs({"ids": [rid]}, engine=eng)
    assert float(listed["baseline_heldout_loss"].iloc[0]) == 0.2
    assert float(q.runs_by_ids([rid], engine=eng)["baseline_heldout_loss"].iloc[0]) == 0.2


def test_runs_page_divides_by_the_heldout_baseline(lab, open_page):
    url, _ = lab
    held, plain = _plant_baselines(url, 0.2), _plant_baselines(url, None)
    at = open_page("runs")
    no_errors(at)
    df = at.dataframe[0].value.set_index("id")
    assert df.loc[held, "loss ÷ baseline"] == pytest.approx(0.15 / 0.2)     # not 0.15 / 0.1
    assert df.loc[plain, "loss ÷ baseline"] == pytest.approx(0.15 / 0.1)    # no held-out: the task's
    import json
    help_ = json.loads(at.dataframe[0].proto.columns)["loss ÷ baseline"]["help"]
    assert "held-out" in help_, help_


def test_run_detail_header_divides_by_the_heldout_baseline(lab, open_page):
    url, _ = lab
    rid = _plant_baselines(url, 0.2)
    at = open_page("run_detail", run=str(rid))
    no_errors(at)
    (m,) = [m for m in at.metric if m.label.startswith("Val loss")]
    assert m.delta.startswith(f"{0.15 / 0.2:.2f} ×"), m.delta


def test_compare_summary_divides_by_the_heldout_baseline(lab, open_page):
    url, _ = lab
    held, plain = _plant_baselines(url, 0.2), _plant_baselines(url, None)
    at = open_page("compare", runs=f"{held},{plain}")
    no_errors(at)
    (df,) = [d.value for d in at.dataframe if "loss ÷ baseline" in d.value.columns]
    df = df.set_index("id")
    assert df.loc[held, "loss ÷ baseline"] == pytest.approx(0.75)
    assert df.loc[plain, "loss ÷ baseline"] == pytest.approx(1.5)
    assert df.loc[held, "baseline"] == 0.2 and df.loc[plain, "baseline"] == 0.1


def test_compare_loss_chart_draws_the_baseline_the_ratio_divides_by(lab, open_page):
    """The dotted baseline of each run on Compare's loss chart is the one its loss ÷ baseline uses:
    held-out when stored (0.2 here), else the task's analytic one (0.1); it drew the analytic one."""
    from tests.dashboard.conftest import figures

    url, _ = lab
    held, plain = _plant_baselines(url, 0.2), _plant_baselines(url, None)
    at = open_page("compare", runs=f"{held},{plain}")
    no_errors(at)
    (loss,) = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Validation loss")]
    lines = sorted(round(sh["y0"], 12) for sh in loss["layout"].get("shapes", []) if sh.get("type") == "line")
    assert lines == [0.1, 0.2]


# --- the study numbers' CSV holds the values, not their display -------------------------------------------

def test_study_numbers_csv_round_trips(page_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import studies
    from studies import service
    from tests.conftest import REPO
    from tests.studies.helpers import plant

    act = studies.get("activations")
    rng = np.random.default_rng(5)

    def values(spec):   # full-precision values, negative ones (U+2212 on screen), a NaN on one run
        if spec.activation == "relu" and spec.seed == 1:
            return {"log_ratio0": math.nan, "horizon0": 49.0}
        return {"log_ratio0": -float(rng.uniform(0.1, 40)), "horizon0": float(rng.uniform(1, 50)),
                "val_loss": float(rng.uniform(0, 1)) / 3}

    plant(act, page_db, values)
    want = service.outcome(act, "cpu", page_db)
    assert want.numbers and any(math.isnan(v) for n in want.numbers for v in n.per_seed.values())

    got = offered_csv(monkeypatch)
    at = AppTest.from_file(str(REPO / "dashboard" / "app_pages" / "studies.py"), default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = act.name, "cpu"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (name,) = [f for f in got if f.endswith("-numbers.csv")]
    rows = list(csv.DictReader(io.StringIO(got[name])))
    assert len(rows) == len(want.numbers)
    checked = 0
    for n, row in zip(want.numbers, rows):
        assert (row["quantity"], row["group"]) == (n.label, n.group)
        for s in want.seeds_complete:
            cell = row[f"seed {s}"]
            if s not in n.per_seed:
                assert cell == ""
                continue
            v = n.per_seed[s]
            assert (math.isnan(float(cell)) and math.isnan(v)) or float(cell) == v, (cell, v)
            assert "−" not in cell
            checked += 1
        for k, v in n.summary().items():
            assert (math.isnan(float(row[k])) and math.isnan(v)) or float(row[k]) == v, (k, row[k], v)
    assert checked >= len(want.numbers)
