"""db.queries' chart reads on real databases (SQLite and Postgres): the epoch clock behind the step and time x
axes, against the records the store was given, and one parameter's histograms across epochs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db import queries as cr  # noqa: E402
from db import queries as q  # noqa: E402
from db import store  # noqa: E402
from tests.dashboard.seed import records, seed_run, spec  # noqa: E402


def test_epoch_clock_sums_steps_and_seconds_over_every_epoch(db_url):
    eng = q.engine_for(db_url)
    s1, s2 = spec("rnn", seed=0, epochs=6), spec("lstm", seed=1, epochs=4, steps_per_epoch=7)
    r1, r2 = seed_run(db_url, s1), seed_run(db_url, s2)
    clock = cr.epoch_clock([r1, r2], engine=eng)
    for rid, s in ((r1, s1), (r2, s2)):
        recs = records(s)
        got = clock[clock["run_id"] == rid]
        assert got["epoch"].tolist() == [r.epoch for r in recs]
        assert got["step"].tolist() == [s.steps_per_epoch * r.epoch for r in recs]  # epoch 0 takes no step
        np.testing.assert_allclose(got["seconds"], np.cumsum([r.train_seconds + r.diag_seconds for r in recs]))
    assert cr.epoch_clock([], engine=eng).empty


def test_the_clock_stays_exact_where_the_series_are_thinned(sqlite_url):
    eng = q.engine_for(sqlite_url)
    s = spec("rnn", seed=3, epochs=30)
    rid = seed_run(sqlite_url, s)
    thin = q.epochs([rid], max_epochs=7, engine=eng)  # every 5th epoch and the last
    assert len(thin) < 31
    both = cr.with_clock(thin, cr.epoch_clock([rid], engine=eng))
    recs = {r.epoch: r for r in records(s)}
    cum = np.cumsum([recs[e].train_seconds + recs[e].diag_seconds for e in range(31)])
    assert both["step"].tolist() == [20 * e for e in both["epoch"]]
    np.testing.assert_allclose(both["seconds"], cum[both["epoch"].to_numpy()])


def test_histogram_history_returns_the_stored_counts_of_every_epoch(db_url):
    eng = q.engine_for(db_url)
    s = spec("gru", seed=2, epochs=9)
    rid = seed_run(db_url, s)
    other = seed_run(db_url, spec("rnn", seed=4, epochs=3))
    hist = cr.histogram_history([rid, other], "weight_hh_l0", engine=eng)
    mine = hist[hist["run_id"] == rid]
    recs = records(s)
    assert mine["epoch"].tolist() == [r.epoch for r in recs]
    for (_, row), rec in zip(mine.iterrows(), recs):
        p = next(p for p in rec.params if p.name == "weight_hh_l0")
        assert list(row["counts"]) == p.hist and row["zeros"] == p.hist_zeros and row["nonfinite"] == 0
    assert hist["run_id"].tolist()[:len(mine)] == [rid] * len(mine)  # in the order asked for
    few = cr.histogram_history([rid], "weight_hh_l0", max_epochs=4, engine=eng)
    assert few["epoch"].tolist() == [0, 3, 6, 9]                     # evenly spaced, first and last kept
    with pytest.raises(ValueError, match="max_epochs"):
        cr.histogram_history([rid], "weight_hh_l0", max_epochs=10_000, engine=eng)
    assert cr.histogram_history([rid], "no_such_param", engine=eng).empty


def test_notes_of_the_runs_that_have_any(sqlite_url):
    eng = q.engine_for(sqlite_url)
    a, b = seed_run(sqlite_url, spec("rnn", seed=0)), seed_run(sqlite_url, spec("rnn", seed=1))
    store.set_notes(a, "lr too high?", url=sqlite_url)
    store.set_notes(b, "   ", url=sqlite_url)
    assert cr.run_notes([a, b], engine=eng) == {a: "lr too high?"}


def test_with_clock_of_an_empty_frame_has_the_columns():
    out = cr.with_clock(pd.DataFrame(columns=["run_id", "epoch", "val_loss"]),
                        pd.DataFrame(columns=["run_id", "epoch", "step", "seconds"]))
    assert {"step", "seconds"} <= set(out.columns)
