"""Cost of the workers' lost-message check (worker.orphans) with a backlog of queued runs.

Run:  .venv/bin/python -m bench.lost_message_check [--runs 1000 10000] [--repeats 5]

For each backlog size and broker: N runs are created in a fresh SQLite database and their task
messages sent (no worker consumes them); then one check, exactly what each worker's heartbeat does
every RNNLAB_LOST_AFTER_SECONDS/4 while runs are queued (list the queued runs in the database,
then every message the broker holds for this setup's queues), is timed; the median of --repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.queue_common import TINY, add_setup_args, setup


def measure(broker: str, n: int, args) -> float:
    from db import store
    from rnnlab.spec import parse_spec
    from worker.orphans import unsent_queued_runs, waiting_function

    with setup(broker, args.db, args.redis) as (url, app, _env):
        ids = store.create_runs([parse_spec({**TINY, "seed": i}) for i in range(n)], url=url)
        with app.producer_or_acquire() as producer:
            for run_id in ids:
                app.send_task("rnnlab.run", args=[run_id], queue=f"{app.conf.rnnlab_queue_prefix}cpu",
                              producer=producer)
        waiting = waiting_function(app)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            missing = unsent_queued_runs(waiting, url=url)
            times.append(time.perf_counter() - t0)
        assert missing == [], f"{len(missing)} runs reported missing"
        if broker == "redis":   # leave nothing behind in the shared Redis
            with app.connection_for_write() as conn:
                conn.default_channel.client.delete(f"{app.conf.rnnlab_queue_prefix}cpu")
        return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setup_args(ap)
    ap.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print("| broker | queued runs | one check (median) |")
    print("|---|---:|---:|")
    for n in args.runs:
        for broker in args.brokers.split(","):
            seconds = measure(broker, n, args)
            print(f"| {broker} | {n:,} | {seconds * 1000:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
