"""db.queries thins each run's series on its own (SQLite and Postgres): a short run read next to a long
one keeps all its epochs, and every run keeps its own first and last epoch, at most max_epochs of them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db import queries as q  # noqa: E402
from db import store  # noqa: E402
from db.models import Epoch  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402
from tests.dashboard.seed import seed_run, spec  # noqa: E402


def _plant(url: str, n: int, seed: int, nan_last: bool = False) -> int:
    """A run with epochs 0…n−1 whose val_loss is 1/(epoch+1) (NaN at the last epoch when ``nan_last``),
    inserted in one statement (thousands of epochs without a model's layer rows)."""
    (rid,) = store.create_runs([parse_spec({"hidden_size": 8, "epochs": n - 1, "steps_per_epoch": 2,
                                            "seed": seed})], owner="t", url=url)
    rows = []
    for e in range(n):
        bad = nan_last and e == n - 1
        rows.append(dict(run_id=rid, epoch=e, steps=2, train_loss=1.0, val_loss=None if bad else 1.0 / (e + 1),
                         val_metric=0.5, grad_norm_mean=1.0, grad_norm_max=1.0, clip_fraction=0.0,
                         nonfinite_steps=0, train_seconds=0.1, diag_seconds=0.01, probed=e % 3 == 0,
                         nan_fields=["val_loss"] if bad else None, recorded_at=store.now()))
    with q.engine_for(url).begin() as conn:
        conn.execute(insert(Epoch), rows)
    return rid


def _check_thinned(got: list[int], n: int, max_epochs: int) -> None:
    """Epochs 0…n−1 thinned to ``got``: first and last kept, at most max_epochs, none lost below the
    cap, and no gap wider than twice the even spacing (n−1)/(max_epochs−1)."""
    assert got == sorted(set(got))
    assert got[0] == 0 and got[-1] == n - 1
    if n <= max_epochs:
        assert got == list(range(n))
        return
    assert max_epochs // 2 <= len(got) <= max_epochs, (len(got), max_epochs)
    assert max(np.diff(got)) <= 2 * (n - 1) / (max_epochs - 1), max(np.diff(got))


def test_a_short_run_next_to_a_long_one_keeps_every_epoch(db_url):
    eng = q.engine_for(db_url)
    long_, short = _plant(db_url, 5001, 1), _plant(db_url, 11, 2, nan_last=True)
    df = q.epochs([long_, short], engine=eng)     # default max_epochs=500
    _check_thinned(df[df["run_id"] == long_]["epoch"].tolist(), 5001, 500)
    mine = df[df["run_id"] == short]
    assert mine["epoch"].tolist() == list(range(11))
    np.testing.assert_array_equal(mine["val_loss"].to_numpy()[:10], [1.0 / (e + 1) for e in range(10)])
    assert math.isnan(mine["val_loss"].iloc[-1])  # the short run's NaN at its last epoch shows


def test_each_run_keeps_its_own_last_epoch(db_url):
    eng = q.engine_for(db_url)
    a, b = _plant(db_url, 1001, 3), _plant(db_url, 702, 4, nan_last=True)
    df = q.epochs([a, b], engine=eng)
    _check_thinned(df[df["run_id"] == a]["epoch"].tolist(), 1001, 500)
    mine = df[df["run_id"] == b]
    _check_thinned(mine["epoch"].tolist(), 702, 500)
    assert math.isnan(mine["val_loss"].iloc[-1])   # epoch 701, NaN, is the last row
    # read alone or together, a run's rows are the same
    alone = q.epochs([b], engine=eng)
    assert alone["epoch"].tolist() == mine["epoch"].tolist()
    # small caps
    for cap in (2, 3, 7, 699, 700, 701, 702):
        got = q.epochs([a, b], max_epochs=cap, engine=eng)
        _check_thinned(got[got["run_id"] == b]["epoch"].tolist(), 702, cap)
        _check_thinned(got[got["run_id"] == a]["epoch"].tolist(), 1001, cap)


def test_no_cap_reads_every_epoch(db_url):
    eng = q.engine_for(db_url)
    a, b = _plant(db_url, 1001, 5), _plant(db_url, 12, 6)
    df = q.epochs([a, b], max_epochs=None, engine=eng)
    assert df[df["run_id"] == a]["epoch"].tolist() == list(range(1001))
    assert df[df["run_id"] == b]["epoch"].tolist() == list(range(12))


def test_layer_and_param_stats_are_thinned_by_epoch_per_run(db_url):
    """Several rows per epoch (layers, parameters): an epoch is kept or dropped whole, per run."""
    eng = q.engine_for(db_url)
    long_ = seed_run(db_url, spec("rnn", seed=0, epochs=12, num_layers=2))
    short = seed_run(db_url, spec("gru", seed=1, epochs=3, num_layers=2))
    ls = q.layer_stats([long_, short], max_epochs=5, engine=eng)
    got = ls[ls["run_id"] == long_]
    _check_thinned(sorted(set(got["epoch"])), 13, 5)
    assert all(sorted(layers) == [0, 1] for _, layers in got.groupby("epoch")["layer"])
    assert sorted(set(ls[ls["run_id"] == short]["epoch"])) == [0, 1, 2, 3]
    ps = q.param_stats([long_, short], max_epochs=5, engine=eng)
    full = q.param_stats([long_, short], max_epochs=None, engine=eng)
    for rid, n in ((long_, 13), (short, 4)):
        mine = ps[ps["run_id"] == rid]
        _check_thinned(sorted(set(mine["epoch"])), n, 5)
        per_epoch = full[full["run_id"] == rid].groupby("epoch").size()
        assert (mine.groupby("epoch").size() == per_epoch.loc[sorted(set(mine["epoch"]))]).all()

