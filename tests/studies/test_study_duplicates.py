"""One run per seed and grid point: a re-run under the study's tag replaces the run before it in the
numbers, the checks, the figures and the SQL alike (the outcome's notes name the superseded run); the SQL
under each number returns exactly the table's values, an incomplete seed and a running run left out; the
report draws a recorded NaN wherever it is; the Studies page draws a line of one point."""

from __future__ import annotations

import math
import re

import pytest
from sqlalchemy import create_engine, text

import studies
from db import store
from studies import svg
from studies.core import Figure, Series
from studies.data import load
from tests.studies.helpers import plant
from tests.synthetic import epoch_record, run_info

ADD = studies.get("adding")
BASE = 1 / 6


def _rerun(study, url, cell, seed, losses, status="succeeded"):
    """A second run of the same spec (the same seed and grid point), tagged with the study's tag."""
    spec = next(s for s in study.specs("cpu") if s.cell == cell and s.seed == seed)
    [rid] = store.create_runs([spec], tags=[study.tag("cpu")], url=url)
    a = store.claim_run(rid, "w", url=url)["attempt"]
    store.record_info(rid, run_info(spec.cell, spec.task.seq_len, 1), attempt=a, url=url)
    for ep, loss in enumerate(losses):
        r = epoch_record(ep, cell=spec.cell, seq_len=spec.task.seq_len, seed=rid)
        r.val_loss = loss
        store.record_epoch(rid, r, attempt=a, url=url)
    if status != "running":
        store.finish_run(rid, status, "rerun", attempt=a, url=url)
    return rid


def _sql_rows(url, q):
    with create_engine(url).connect() as c:
        return c.execute(text(q)).mappings().all()


def _adding_values(spec):
    if (spec.cell, spec.seed) == ("rnn", 1):
        return {"status": "diverged", "val_losses": [BASE, math.nan]}
    return {"val_loss": BASE * (1.0 if spec.cell == "rnn" else 0.002 * (1 + spec.seed))}


def test_a_rerun_replaces_the_run_before_it_everywhere(db_url):
    ids = plant(ADD, db_url, _adding_values)
    first = next(i for i, s in zip(ids, ADD.specs("cpu")) if (s.cell, s.seed) == ("rnn", 1))
    rerun = _rerun(ADD, db_url, "rnn", 1, [BASE, 0.3 * BASE])
    out = ADD.decide(load(ADD, "cpu", db_url), "cpu")
    assert out.notes == [f"seed 1, point cell=rnn: run {rerun} used, run {first} superseded"]
    assert out.to_dict()["notes"] == out.notes
    rnn = next(n for n in out.numbers if n.group == "rnn")
    assert rnn.per_seed == {0: pytest.approx(1.0), 1: pytest.approx(0.3), 2: pytest.approx(1.0)}
    # the check reads the re-run (0.3 × baseline: it did not stay), not the diverged first run
    stays = next(c for c in out.checks if c.text.startswith("the tanh RNN stays"))
    assert stays.per_seed == {0: True, 1: False, 2: True}
    assert out.verdict == studies.INCONCLUSIVE and "fails on 1" in out.reason
    # one curve per seed, the re-run's, not the two runs' epochs interleaved
    curves = [s for s in out.figures[1].series if s.name == "rnn s1"]
    assert len(curves) == 1 and curves[0].x == [0, 1] and curves[0].y == pytest.approx([1.0, 0.3])
    # the SQL returns the same run: one row per (group, seed), the table's values
    rows = _sql_rows(db_url, rnn.sql)
    got = [(r["grp"], r["seed"]) for r in rows]
    assert len(got) == len(set(got)) == 9
    for n in out.numbers:
        assert {r["seed"]: r["ratio"] for r in rows if r["grp"] == n.group} == pytest.approx(n.per_seed), n.group


def test_the_latest_finished_run_is_used_not_a_later_failed_or_running_one(sqlite_url):
    ids = plant(ADD, sqlite_url, lambda s: {"val_loss": BASE * (1.0 if s.cell == "rnn" else 0.01)})
    first = next(i for i, s in zip(ids, ADD.specs("cpu")) if (s.cell, s.seed) == ("gru", 0))
    _rerun(ADD, sqlite_url, "gru", 0, [BASE, 0.5 * BASE], status="failed")
    out = ADD.decide(load(ADD, "cpu", sqlite_url), "cpu")
    assert out.notes == [] and out.verdict == studies.REPRODUCED, out.reason
    gru = next(n for n in out.numbers if n.group == "gru")
    assert gru.per_seed[0] == pytest.approx(0.01)
    assert [r["ratio"] for r in _sql_rows(sqlite_url, gru.sql) if (r["grp"], r["seed"]) == ("gru", 0)] == \
        [pytest.approx(0.01)]
    # a re-run still running leaves the verdict pending; the numbers keep the finished run
    _rerun(ADD, sqlite_url, "gru", 0, [BASE], status="running")
    out = ADD.decide(load(ADD, "cpu", sqlite_url), "cpu")
    assert out.verdict == studies.PENDING
    gru = next(n for n in out.numbers if n.group == "gru")
    assert gru.per_seed[0] == pytest.approx(0.01)
    assert first in {int(i) for i in re.findall(r"\d+", gru.sql.split("r.id IN (")[1].split(")")[0])}


@pytest.mark.parametrize("name", sorted(studies.STUDIES))
def test_each_numbers_sql_returns_only_the_complete_seeds(sqlite_url, name):
    """Seed 0 has a failed run at the first grid point, seed 2 a run still running at the last: only seed 1
    is complete, and every number's SQL returns rows of seed 1 only, one per run (as the table shows)."""
    study = studies.get(name)
    points = study.points("cpu")
    first, last = points[0], points[-1]

    def label(spec):
        from studies.data import _point_of
        return _point_of(study.grid("cpu"), spec.to_dict())

    def values(spec):
        p = label(spec)
        if (p, spec.seed) == (first, 0):
            return {"status": "failed"}
        if (p, spec.seed) == (last, 2):
            return {"status": "running"}
        return {}

    plant(study, sqlite_url, values)
    out = study.decide(load(study, "cpu", sqlite_url), "cpu")
    assert out.seeds_complete == [1]
    assert out.numbers
    for n in out.numbers:
        assert set(n.per_seed) <= {1}, n.label
        rows = _sql_rows(sqlite_url, n.sql)
        assert {r["seed"] for r in rows} <= {1}, (n.label, n.sql)
    if name == "adding":
        for n in out.numbers:
            got = {r["seed"]: r["ratio"] for r in _sql_rows(sqlite_url, n.sql) if r["grp"] == n.group}
            assert got == pytest.approx(n.per_seed), n.group


def _marks(s: str, name: str) -> list[str]:
    return re.findall(rf"<title>{re.escape(name)}(?::[^<]*)?</title>", s)


def test_svg_draws_a_recorded_nan_wherever_it_is():
    """A curve's points are its run's stored epochs: a NaN before the first finite value, and a run whose
    every value is NaN, are drawn as ✕ with the key line, not left out."""
    fig = Figure("t", "epoch", "y", [Series("a", [0, 1, 2], [math.nan, 1.0, 2.0], mode="lines"),
                                     Series("b", [0, 1], [math.nan, math.nan], mode="lines")],
                 categorical_x=False, log_y=True)
    s = svg.render(fig)
    assert len(re.findall(r"<title>b: NaN</title>", s)) == 2
    assert len(re.findall(r"<title>a: NaN</title>", s)) == 1
    assert re.findall(r'class="key"[^>]*>([^<]*)<', s) == ["✕ NaN: top edge"]
    assert svg.point_kinds([math.nan, math.nan], True) == ["nan", "nan"]


def test_the_diverged_at_once_run_is_drawn_in_the_report(sqlite_url):
    plant(ADD, sqlite_url, lambda s: {"status": "diverged", "val_losses": [math.nan, math.nan]}
          if (s.cell, s.seed) == ("rnn", 0) else {"val_loss": BASE * (1.0 if s.cell == "rnn" else 0.003)})
    out = ADD.decide(load(ADD, "cpu", sqlite_url), "cpu")
    s = svg.render(out.figures[1], colours=svg.group_colours(out.figures))
    assert len(re.findall(r"<title>rnn s0: NaN</title>", s)) == 2


def test_the_studies_page_draws_a_line_of_one_point(page_db, monkeypatch):
    """Plotly draws nothing for a 'lines' trace of one point (a 1-layer stack, a run that diverged after
    epoch 0): the page's line traces carry markers."""
    from streamlit.testing.v1 import AppTest

    from studies import service
    from studies.core import Outcome
    from tests.conftest import REPO
    from tests.dashboard.conftest import figures, no_errors

    fig = Figure("depth", "layer", "log10 ratio", [
        Series("rnn 1L s0", [1], [-2.0], mode="lines", group="rnn 1L"),
        Series("rnn 2L s0", [1, 2], [-2.0, -3.0], mode="lines", group="rnn 2L"),
        Series("lstm s0", [0, 1], [1.0, math.nan], mode="lines", group="lstm"),
        Series("pts", ["a"], [1.0], group="pts")], categorical_x=False)
    monkeypatch.setattr(service, "outcome", lambda study, scale, url=None: Outcome(
        study=study.name, version=study.version, scale=scale, tag="t", verdict=studies.INCONCLUSIVE,
        reason="planted", counts={"succeeded": 3}, expected_runs=3, seeds_complete=[0, 1, 2], figures=[fig]))
    at = AppTest.from_file(str(REPO / "dashboard" / "app_pages" / "studies.py"), default_timeout=60)
    at.query_params["study"], at.query_params["scale"] = "adding", "cpu"
    at.run()
    no_errors(at)
    (shown,) = figures(at)
    by_name = {t["name"]: t for t in shown["data"]}
    for name in ("rnn 1L s0", "rnn 2L s0", "lstm s0"):
        assert by_name[name]["mode"] == "lines+markers", name
    assert by_name["pts"]["mode"] == "markers"
    one = by_name["rnn 1L s0"]
    assert list(one["x"]) == [1] and list(one["y"]) == [-2.0]
    # the diverged run's epoch-0 point is drawn, its NaN as ✕ at the top edge
    assert list(by_name["lstm s0"]["y"])[0] == 1.0
    assert any(t["name"] == "lstm s0 (NaN)" and t["marker"]["symbol"] == "x" for t in shown["data"])


def test_the_report_names_the_superseded_run(sqlite_url, tmp_path):
    from studies import service

    ids = plant(ADD, sqlite_url, _adding_values)
    first = next(i for i, s in zip(ids, ADD.specs("cpu")) if (s.cell, s.seed) == ("rnn", 1))
    rerun = _rerun(ADD, sqlite_url, "rnn", 1, [BASE, 0.3 * BASE])
    html, md, _ = service.write_report(ADD, "cpu", tmp_path / "r.html", url=sqlite_url)
    note = f"seed 1, point cell=rnn: run {rerun} used, run {first} superseded"
    assert note in html.read_text() and note in md.read_text()


def test_the_cli_status_names_the_superseded_run(sqlite_url):
    from tests.studies.test_study_report import run_cli

    ids = plant(ADD, sqlite_url, _adding_values)
    first = next(i for i, s in zip(ids, ADD.specs("cpu")) if (s.cell, s.seed) == ("rnn", 1))
    rerun = _rerun(ADD, sqlite_url, "rnn", 1, [BASE, 0.3 * BASE])
    r = run_cli("status", "adding", url=sqlite_url)
    assert r.returncode == 0, r.stderr
    assert f"note:    seed 1, point cell=rnn: run {rerun} used, run {first} superseded" in r.stdout, r.stdout
