"""Throughput: N tiny runs on W workers (concurrency 1 each), per broker.

Usage: .venv/bin/python bench/queue_throughput.py [--runs 200] [--workers 2] [--db URL] [--redis URL]
Submits all runs at once (one transaction, then one message each) to idle workers and times until
the last run is finished. A tiny run: hidden 8, T = 10, 1 epoch of 2 steps (2 EpochRecords).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.queue_common import TINY, add_setup_args, setup, start_workers, stop_workers, wait_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    add_setup_args(ap)
    a = ap.parse_args()
    from client.submit import submit
    from db.reads import runs_by_ids
    from rnnlab.spec import parse_spec

    print("| broker | database | runs | workers | submit s | total s | runs/s | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for broker in a.brokers.split(","):
        with setup(broker, a.db, a.redis) as (url, app, env), tempfile.TemporaryDirectory() as logs:
            procs = start_workers(a.workers, env, url, logs)
            try:
                specs = [parse_spec({**TINY, "seed": i}) for i in range(a.runs)]
                t0 = time.perf_counter()
                ids = submit(specs, url=url, app=app)
                t_submit = time.perf_counter() - t0
                wait_all(url, ids)
                total = time.perf_counter() - t0
            finally:
                stop_workers(procs)
            bad = int((runs_by_ids(ids, url=url)["status"] != "succeeded").sum())
            db = "postgres" if url.startswith("postgresql") else "sqlite"
            print(f"| {broker} | {db} | {a.runs} | {a.workers} | {t_submit:.2f} | {total:.1f} | {a.runs / total:.1f} "
                  f"| {bad} |")


if __name__ == "__main__":
    main()
