"""Bytes per run in SQLite, and write time per epoch, for the 100-epoch, T=1000, 2-layer case.

Usage: .venv/bin/python bench/db_size.py [--epochs 100] [--seq-len 1000] [--layers 2]
Records realistically shaped synthetic EpochRecords (full-precision random floats, every epoch
probed) through db.store, then reports the database file's growth and the mean record_epoch time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the checkout: tests/synthetic.py

from db import store  # noqa: E402
from db.engine import get_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402
from tests.synthetic import epoch_record, run_info  # noqa: E402


def measure(url: str, cell: str, epochs: int, seq_len: int, layers: int) -> tuple[int, float]:
    """(bytes added to the database, mean seconds per record_epoch) for one run."""
    spec = parse_spec({"cell": cell, "task": {"name": "adding", "seq_len": seq_len}, "num_layers": layers,
                       "epochs": epochs})
    (run_id,) = store.create_runs([spec], url=url)
    store.claim_run(run_id, "bench", url=url)
    store.record_info(run_id, run_info(cell, seq_len, layers), attempt=1, url=url)
    recs = [epoch_record(e, cell=cell, seq_len=seq_len, num_layers=layers, seed=run_id) for e in range(epochs + 1)]
    t0 = time.perf_counter()
    for rec in recs:
        store.record_epoch(run_id, rec, attempt=1, url=url)
    per_epoch = (time.perf_counter() - t0) / len(recs)
    store.finish_run(run_id, "succeeded", "bench", attempt=1, url=url)
    return run_id, per_epoch


def sqlite_bytes(path: str, url: str) -> int:
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--postgres", default=os.environ.get("RNNLAB_BENCH_POSTGRES_URL"),
                    help="also time writes on this Postgres database (it is migrated)")
    a = ap.parse_args()
    print("| cell | backend | bytes/run | MB/run | record_epoch ms |")
    print("|---|---|---|---|---|")
    for cell in ("rnn", "lstm"):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench.db")
            url = f"sqlite:///{path}"
            upgrade(url)
            empty = sqlite_bytes(path, url)
            _, per_epoch = measure(url, cell, a.epochs, a.seq_len, a.layers)
            size = sqlite_bytes(path, url) - empty
            print(f"| {cell} | sqlite | {size:,} | {size / 1e6:.2f} | {per_epoch * 1e3:.1f} |")
        if a.postgres:
            from sqlalchemy import text
            upgrade(a.postgres)
            run_id, per_epoch = measure(a.postgres, cell, a.epochs, a.seq_len, a.layers)
            with get_engine(a.postgres).connect() as conn:
                size = sum(conn.execute(text(
                    f"SELECT COALESCE(SUM(pg_column_size(t.*)), 0) FROM {tbl} t WHERE run_id = :r"), {"r": run_id}
                ).scalar() for tbl in ("epochs", "param_stats", "layer_stats", "grad_profiles", "histograms"))
            store.delete_run(run_id, url=a.postgres)
            print(f"| {cell} | postgres (row bytes) | {size:,} | {size / 1e6:.2f} | {per_epoch * 1e3:.1f} |")


if __name__ == "__main__":
    main()
