"""`rnnlab compare`, run as a user runs it (a subprocess) on runs written through the real store
(db.store, both backends), with answers known by construction; and the horizon sort of the runs list
on the same rows (db.queries.list_runs): an exploded or dead run never sorts first."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from db import queries, store
from rnnlab.strategies import FACTORS
from tests.dashboard.seed import info_for, records, spec

REPO = Path(__file__).resolve().parents[2]
T = 50
NORM = {"mode": "norm", "max_norm": 1.0}


def compare(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env.update({"RNNLAB_DATABASE_URL": url, "RNNLAB_HOME": str(REPO / ".pytest_cache"), "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "cli.main", "compare", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def store_run(url: str, cell: str, clip, seed: int, final_loss: float, *, explode_at: int | None = None,
              saturate: bool = False, grow: bool = False, no_gradient: float | None = None, tags=("e2e",)) -> int:
    """A finished run taken through the store like a worker does; its last val loss is ``final_loss``.
    ``explode_at``: that epoch's gradient norm reaches 1.5e7 (mean 1e6 over its 20 steps).
    ``saturate``: from epoch 2 on, ρ(W_hh) is 6,800× its initial value, 99.999 % of units are
    saturated and ‖g_t‖ = 0 at all but the last two steps (as the exploding-init preset records).
    ``grow``: the last probe's ‖g_t‖ grows 1e5-fold going back (horizon T − 1). ``no_gradient``: from
    epoch 2 on, ‖g_t‖ = no_gradient · 0.9^(T − t), every one < 1e-10 (steps_in_past = 0) when
    no_gradient < 1e-10 (0: exactly zero). The diagnosis is models.diagnose's, as the worker stores it."""
    import models
    from models import diagnostics as D

    s = spec(cell, seq_len=T, seed=seed, clip=clip)
    (run_id,) = store.create_runs([s], tags=tags, url=url)
    store.claim_run(run_id, "e2e-worker", url=url)
    store.record_info(run_id, info_for(s), attempt=1, url=url)
    recs = records(s)
    recs[-1].val_loss = final_loss
    rho0 = recs[0].layers[0].rho
    for rec in recs:
        if rec.epoch == explode_at:
            rec.grad_norm_max, rec.grad_norm_mean = 1.5e7, 1e6
        if saturate and rec.epoch >= 2:
            layer = rec.layers[0]
            layer.rho, layer.saturated_frac = 6.8e3 * rho0, 0.99999
            layer.grad_h = [0.0] * (T - 2) + [0.038, 0.093]
            layer.log_ratio, layer.horizon, layer.steps_in_past = -math.inf, 1.0, 2 / T
        if no_gradient is not None and rec.epoch >= 2:
            layer = rec.layers[0]
            layer.grad_h = [no_gradient * 0.9 ** (T - t) for t in range(1, T + 1)]
            layer.grad_c = None
            g = np.array(layer.grad_h)
            layer.steps_in_past, layer.log_ratio, layer.horizon = D.steps_in_past(g), D.log_ratio(g), D.horizon(g)
        if grow and rec is recs[-1]:
            layer = rec.layers[0]
            layer.grad_h = [10 ** (5 * (T - t) / (T - 1)) for t in range(1, T + 1)]
            layer.log_ratio, layer.horizon = 5.0, T - 1.0
        store.record_epoch(run_id, rec, attempt=1, url=url)
    store.record_diagnosis(run_id, models.diagnose(recs[-1], info_for(s), recs[0]), attempt=1, url=url)
    store.finish_run(run_id, "succeeded", "finished", attempt=1, url=url)
    return run_id


def test_factor_names_match_the_strategies_module():
    from cli.compare import FACTOR_NAMES

    assert FACTOR_NAMES == tuple(FACTORS)


def test_compare_json_names_the_healthy_winner_and_flags_the_exploded_group(db_url):
    """Without clipping the LSTMs reach the lowest loss but one gradient-norm explosion each: the
    old loss-only verdict named 'none' best. Clipped runs beat the baseline and are healthy."""
    exploded = [store_run(db_url, "lstm", "none", s, loss, explode_at=2)
                for s, loss in enumerate([0.002, 0.003, 0.0025])]
    clipped = [store_run(db_url, "lstm", NORM, s, loss) for s, loss in enumerate([0.01, 0.012, 0.011])]
    r = compare(db_url, "--by", "clipping", "--tag", "e2e", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run_ids"] == exploded + clipped and doc["factor"] == "clipping"
    assert doc["best"] == "norm ≤ 1.0" and doc["conclusion"].startswith("Best clipping here: **norm ≤ 1.0**")
    by = {g["group"]: g for g in doc["groups"]}
    assert by["none"]["rank"] is None and by["none"]["broken"] == ["exploding"]
    assert by["none"]["flags"] == {"exploding": 3}
    assert by["norm ≤ 1.0"]["rank"] == 1 and by["norm ≤ 1.0"]["beats_baseline"] and by["norm ≤ 1.0"]["broken"] == []
    assert by["none"]["loss_over_baseline"] == pytest.approx(sum([0.002, 0.003, 0.0025]) / 3 * 6)
    assert "**none**: exploding in 3/3 runs (gradient norm up to 1.5e+07)" in doc["conclusion"]


def test_compare_says_no_group_solved_the_task(db_url):
    """The exploding-init preset: both arms sit on the baseline (1/6) and one is saturated and dead."""
    ids = [store_run(db_url, "rnn", "none", s, loss, saturate=True) for s, loss in enumerate([0.165, 0.17, 0.168])]
    ids += [store_run(db_url, "rnn", NORM, s, loss) for s, loss in enumerate([0.166, 0.164, 0.171])]
    r = compare(db_url, "--by", "clipping", "--runs", ",".join(map(str, ids)), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["best"] is None and doc["conclusion"].startswith("No group solved the task")
    by = {g["group"]: g for g in doc["groups"]}
    assert by["none"]["broken"] == ["exploding", "saturated"]            # ρ(W_hh) grew 6,800×: read from SQL
    assert not by["norm ≤ 1.0"]["beats_baseline"] and by["norm ≤ 1.0"]["rank"] is None
    text = compare(db_url, "--by", "clipping", "--runs", ",".join(map(str, ids)))
    assert text.returncode == 0 and "No group solved the task" in text.stdout and "! none:" in text.stdout


def test_compare_tells_a_converged_group_from_a_dead_one(sqlite_url):
    """Both groups have no gradient at any step of the last probe (every ‖g_t‖ < 1e-10). The LSTMs'
    loss is 1e-9 (converged: ~0 gradient because ~0 loss): healthy, best. The RNNs sit on the baseline
    (1/6) with exactly zero gradients: dead. The stored diagnoses (models.diagnose) say the same."""
    conv = [store_run(sqlite_url, "lstm", NORM, s, 1e-9, no_gradient=1e-11) for s in range(2)]
    dead = [store_run(sqlite_url, "rnn", NORM, s, loss, no_gradient=0.0) for s, loss in enumerate([0.166, 0.168])]
    ids = ",".join(map(str, conv + dead))
    h = queries.run_health(conv + dead, engine=queries.engine_for(sqlite_url)).set_index("run_id")
    assert (h.loc[conv + dead, "steps_in_past_min"] == 0).all()
    r = compare(sqlite_url, "--by", "cell", "--runs", ids, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    by = {g["group"]: g for g in doc["groups"]}
    assert doc["best"] == "lstm" and by["lstm"]["rank"] == 1 and by["lstm"]["broken"] == []
    assert by["lstm"]["final_loss"] == pytest.approx(1e-9)
    assert by["rnn"]["broken"] == ["dead"] and by["rnn"]["rank"] is None
    assert doc["conclusion"].startswith("Best cell here: **lstm**") and "**rnn**: dead in 2/2 runs" in doc["conclusion"]
    runs = queries.runs_by_ids(conv + dead, engine=queries.engine_for(sqlite_url)).set_index("id")["diagnosis"]
    assert all(runs[i].startswith("healthy: converged (loss 1e-09 ≤ 10% of the baseline 0.167)") for i in conv), runs
    assert all(runs[i] == "gradients are zero: ‖∂L/∂h_t‖ = 0 at every step" for i in dead)
    text = compare(sqlite_url, "--by", "cell", "--runs", ids)
    assert text.returncode == 0 and "Best cell here: lstm" in text.stdout.replace("*", "") and "! rnn:" in text.stdout


def test_run_health_reads_the_evidence_from_the_stored_rows(db_url):
    exploded = store_run(db_url, "lstm", "none", 0, 0.002, explode_at=2)
    dead = store_run(db_url, "rnn", "none", 1, 0.17, saturate=True)
    h = queries.run_health([dead, exploded], engine=queries.engine_for(db_url)).set_index("run_id")
    assert h.loc[exploded, "grad_norm_max"] == 1.5e7 and h.loc[exploded, "nonfinite_steps"] == 0
    assert h.loc[exploded, "spike"] == pytest.approx(1.5e7 / ((1e6 * 20 - 1.5e7) / 19))   # max ÷ mean of the other 19
    assert h.loc[dead, "rho_growth"] == pytest.approx(6.8e3) and h.loc[dead, "saturated_frac"] == 0.99999
    assert h.loc[dead, "steps_in_past_min"] == pytest.approx(2 / T) and h.loc[dead, "log_ratio_max"] == -math.inf
    assert h.loc[dead, "grad_norm_max"] < 2 and math.isnan(h.loc[dead, "val_loss_se"])


def test_horizon_sort_puts_exploded_and_dead_runs_last(db_url):
    """The runs list sorted by horizon: a tanh-RNN whose gradient reaches ≈22 steps comes first; one
    whose ‖g_1‖/‖g_T‖ = 1e5 (horizon = the whole sequence) and a saturated dead one come after it."""
    healthy = store_run(db_url, "rnn", NORM, 0, 0.16, tags=("sort",))
    grown = store_run(db_url, "rnn", "none", 1, 0.17, grow=True, tags=("sort",))
    dead = store_run(db_url, "rnn", "none", 2, 0.17, saturate=True, tags=("sort",))
    df, _ = queries.list_runs({"tags": ["sort"]}, 0, 10, "horizon", engine=queries.engine_for(db_url))
    by_id = df.set_index("id")
    assert by_id.loc[grown, "last_horizon"] == T - 1 > by_id.loc[healthy, "last_horizon"]
    assert by_id.loc[grown, "diagnosis"].startswith("gradients explode")
    assert by_id.loc[dead, "diagnosis"].startswith("weights explode")
    assert df["id"].tolist() == [healthy, dead, grown]     # then by id, newest first


def test_bad_input_names_the_option_and_what_is_allowed(sqlite_url):
    r = compare(sqlite_url, "--by", "colour", "--runs", "1")
    assert r.returncode == 2 and "--by: got 'colour'; allowed: 'cell'" in r.stderr
    r = compare(sqlite_url, "--by", "cell", "--runs", "1", "--tag", "x")
    assert r.returncode == 2 and "exactly one of --sweep, --runs, --tag (got --runs, --tag)" in r.stderr
    r = compare(sqlite_url, "--by", "cell", "--runs", "41,42")
    assert r.returncode == 2 and "no such run(s): 41, 42" in r.stderr


def test_an_out_of_range_sweep_id_is_refused_naming_the_option(sqlite_url):
    for bad in ("99999999999999999999", "0", str(2 ** 31)):
        r = compare(sqlite_url, "--by", "cell", "--sweep", bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert f"--sweep: got {bad}; a sweep id is a whole number from 1 to 2,147,483,647" in " ".join(r.stderr.split())


def test_more_than_max_runs_ids_are_refused_before_any_query(tmp_path):
    from cli.compare import MAX_RUNS

    nowhere = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"   # any query would fail here
    ids = ",".join(map(str, range(1, 20_001)))
    r = compare(nowhere, "--by", "cell", "--runs", ids)
    assert r.returncode == 2, r.stderr
    assert f"--runs: 20,000 run ids; at most {MAX_RUNS:,}" in " ".join(r.stderr.split())
    assert len(r.stderr) < 500
    r = compare(nowhere, "--by", "cell", "--runs", "5,99999999999999999999")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--runs: got 99999999999999999999; a run id is a whole number from 1 to 2,147,483,647" in \
        " ".join(r.stderr.split())


def test_missing_run_ids_are_listed_up_to_ten_with_the_count(sqlite_url):
    r = compare(sqlite_url, "--by", "cell", "--runs", ",".join(map(str, range(101, 131))))
    assert r.returncode == 2, r.stderr
    err = " ".join(r.stderr.split())
    assert "--runs: no such run(s): " + ", ".join(map(str, range(101, 111))) + " … and 20 more (30 in all)" in err
    assert "111" not in err


def test_compare_does_not_rank_cells_that_ran_different_tasks(sqlite_url):
    """`rnnlab compare --by cell` on GRUs on adding (2.0–2.2% of the baseline 1/6) and LSTMs on copy
    (5.0–5.2% of the baseline 0.05, a smaller raw loss): it named the LSTM best and the difference
    'clear', with an empty confounded column. The groups differ in the task: no best, no rank, and the
    JSON names the field that sets each group apart."""
    from tests.test_strategies_conclusions import put

    ids = [put(sqlite_url, "gru", s, (0.020 + 0.001 * s) / 6) for s in range(3)]
    ids += [put(sqlite_url, "lstm", s, 0.05 * (0.050 + 0.001 * s), task={"name": "copy", "seq_len": 50},
                baseline=0.05) for s in range(3)]
    r = compare(sqlite_url, "--by", "cell", "--runs", ",".join(map(str, ids)), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["best"] is None and [g["rank"] for g in doc["groups"]] == [None, None]
    assert [g["group"] for g in doc["groups"]] == ["gru", "lstm"]            # by loss ÷ baseline
    assert doc["conclusion"].startswith("No best cell: the groups differ in more than the cell")
    by = {g["group"]: g for g in doc["groups"]}
    assert by["lstm"]["confounded_between_groups"] == {"task.name": ['"copy"']}
    text = compare(sqlite_url, "--by", "cell", "--runs", ",".join(map(str, ids)))
    assert text.returncode == 0 and "clear" not in text.stdout and "Best" not in text.stdout
    assert 'between groups: task.name: "copy"' in text.stdout
