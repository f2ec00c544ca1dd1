"""Bulk submit: how long N runs take to reach Redis through client.submit.submit (rows + messages).

Usage: .venv/bin/python bench/bulk_submit.py [--runs 1000] [--repeat 3] [--db URL] [--redis URL]
Each repeat uses a fresh database (a SQLite file unless --db is given: then that database, migrated)
and a queue prefix of its own on the given Redis; it times submit() until it returns (every message
is then in Redis: checked with LLEN), and, for reference, the old way of sending (one send_task per
run, each taking a producer from the pool and declaring the queue). Afterwards it deletes exactly the
keys of its prefix (never FLUSH). No worker is started.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


def _cleanup(r, prefix: str) -> None:
    for pattern in (f"{prefix}*", f"_kombu.binding*.{prefix}*"):   # its queues and their bindings
        for key in r.scan_iter(pattern):
            r.delete(key)


def one(n: int, db: str | None, redis_url: str) -> tuple[float, float, float, int]:
    """(submit wall s, submit CPU s of this process, old-way send s, messages in Redis after submit)."""
    import redis

    from client.submit import submit
    from db.migrate import upgrade
    from rnnlab.queue import make_app, send_run
    from rnnlab.spec import parse_spec

    r = redis.Redis.from_url(redis_url)
    prefix = f"rnnlab-bench-bulk-{uuid.uuid4().hex[:8]}-"
    with tempfile.TemporaryDirectory() as tmp:
        url = db or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        app = make_app(redis_url, prefix=prefix)
        specs = [parse_spec({**TINY, "seed": i, "name": f"bulk-{prefix}"}) for i in range(n)]
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            ids = submit(specs, url=url, app=app)
            t_submit, c_submit = time.perf_counter() - t0, time.process_time() - c0
            held = r.llen(f"{prefix}cpu")
            old_app = make_app(redis_url, prefix=prefix + "old-")
            t0 = time.perf_counter()
            for run_id in ids:
                send_run(old_app, run_id, "cpu")
            t_old = time.perf_counter() - t0
        finally:
            _cleanup(r, prefix)
    return t_submit, c_submit, t_old, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file per repeat)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    a = ap.parse_args()
    backend = "sqlite" if a.db is None else a.db.split(":", 1)[0]
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {os.cpu_count()} CPUs (wall times grow with it; CPU s does not)\n")
    print("| database | runs | submit() wall s (rows + messages) | submit() CPU s | messages in Redis "
          "| old way, messages only, wall s |")
    print("|---|---|---|---|---|---|")
    for _ in range(a.repeat):
        t_submit, c_submit, t_old, held = one(a.runs, a.db, a.redis)
        print(f"| {backend} | {a.runs} | {t_submit:.2f} | {c_submit:.2f} | {held} | {t_old:.2f} |", flush=True)


if __name__ == "__main__":
    main()
