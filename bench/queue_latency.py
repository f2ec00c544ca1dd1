"""Latency from submit to start (claim by an idle worker), per broker.

Usage: .venv/bin/python bench/queue_latency.py [--n 20] [--db URL] [--redis URL]
One idle worker; submits one tiny run at a time and waits for it to finish before the next.
Latency = runs.started_at (the claim) − the moment submit() was called.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time

from bench.queue_common import TINY, add_setup_args, setup, start_workers, stop_workers, wait_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    add_setup_args(ap)
    a = ap.parse_args()
    from client.submit import submit
    from db.store import get_run
    from rnnlab.spec import parse_spec

    print("| broker | database | n | median ms | p90 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for broker in a.brokers.split(","):
        with setup(broker, a.db, a.redis) as (url, app, env), tempfile.TemporaryDirectory() as logs:
            procs = start_workers(1, env, url, logs)
            lat = []
            try:
                for i in range(a.n):
                    t0 = dt.datetime.now(dt.UTC)
                    (run_id,) = submit([parse_spec({**TINY, "seed": i})], url=url, app=app)
                    wait_all(url, [run_id], 60)
                    lat.append((get_run(run_id, url=url)["started_at"] - t0).total_seconds() * 1e3)
                    time.sleep(0.3)  # the worker is idle again, polling
            finally:
                stop_workers(procs)
            lat.sort()
            db = "postgres" if url.startswith("postgresql") else "sqlite"
            print(f"| {broker} | {db} | {a.n} | {statistics.median(lat):.0f} | {lat[int(0.9 * (len(lat) - 1))]:.0f} "
                  f"| {lat[-1]:.0f} |")


if __name__ == "__main__":
    main()
