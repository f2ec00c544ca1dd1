"""Size budget: a 100-epoch run with T = 1000 and 2 layers, probed every epoch, stays under 10 MB in
SQLite (vanilla RNN and LSTM, which also stores the cell-state profile). Profiles are stored as exact
float64 values (issue 8: every summary re-derivable from the database), which doubled the size from
the earlier 5-significant-digit storage (LSTM 4.52 MB → 9.08 MB, `bench/db_size.py`)."""

import os

import pytest

from db import store
from db.engine import get_engine
from rnnlab.spec import parse_spec
from tests.synthetic import epoch_record, run_info

BUDGET = 10_000_000


def _db_bytes(path, url):
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_100_epochs_T1000_two_layers_under_10_MB(cell, sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    empty = _db_bytes(path, sqlite_url)
    spec = parse_spec({"cell": cell, "task": {"name": "adding", "seq_len": 1000}, "num_layers": 2, "epochs": 100})
    (run_id,) = store.create_runs([spec], url=sqlite_url)
    store.claim_run(run_id, "w", url=sqlite_url)
    store.record_info(run_id, run_info(cell, 1000, 2), attempt=1, url=sqlite_url)
    for e in range(101):
        store.record_epoch(run_id, epoch_record(e, cell=cell, seq_len=1000, num_layers=2, seed=3), attempt=1,
                           url=sqlite_url)
    size = _db_bytes(path, sqlite_url) - empty
    recs = store.epoch_records(run_id, url=sqlite_url)
    assert len(recs) == 101 and len(recs[100].layers[1].grad_h) == 1000
    assert size < BUDGET, f"{cell}: {size:,} bytes for one run (budget {BUDGET:,})"
