"""Helpers for the queue benchmarks: a throwaway setup (database + broker) and real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from rnnlab.records import FINAL_STATUSES as FINAL

REPO = Path(__file__).resolve().parent.parent
TINY = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 10}, "epochs": 1, "steps_per_epoch": 2,
        "batch_size": 8, "probe": {"batch_size": 4}, "device": "cpu"}


def add_setup_args(ap) -> None:
    """The options every queue benchmark takes: database, Redis and which brokers to measure."""
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--brokers", default="filesystem,redis")


@contextmanager
def setup(broker: str, db_url: str | None, redis_url: str):
    """Yield (db_url, celery app, env for workers) for a fresh database and private queues."""
    from db.migrate import upgrade
    from rnnlab.queue import make_app

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = db_url or f"sqlite:///{home / 'bench.db'}"
        upgrade(url)
        prefix = f"rnnlab-bench-{uuid.uuid4().hex[:6]}-"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
        env.update({"RNNLAB_HOME": str(home), "RNNLAB_DATABASE_URL": url, "RNNLAB_QUEUE_PREFIX": prefix,
                    "RNNLAB_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"})
        if broker == "redis":
            env["RNNLAB_BROKER_URL"] = redis_url
        app = make_app(redis_url if broker == "redis" else "filesystem://", home=home, prefix=prefix)
        yield url, app, env


def start_workers(n: int, env: dict, url: str, log_dir: str) -> list[subprocess.Popen]:
    """Start n workers (concurrency 1 each) and wait until each has registered."""
    from sqlalchemy import func, select

    from db.engine import session
    from db.models import Worker

    procs = []
    for i in range(n):
        log = open(Path(log_dir) / f"worker{i}.log", "w")
        cmd = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-n", f"bench{i}-{uuid.uuid4().hex[:4]}@h",
               "-Q", env["RNNLAB_QUEUE_PREFIX"] + "cpu", "-c", "1", "-l", "WARNING", "--without-mingle",
               "--without-gossip"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session(url) as s:
            if s.execute(select(func.count()).select_from(Worker)).scalar() >= n:
                time.sleep(1.0)  # let the consumers finish connecting
                return procs
        time.sleep(0.2)
    raise TimeoutError("workers did not start")


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_all(url: str, ids: list[int], timeout: float = 900) -> None:
    from sqlalchemy import func, select

    from db.engine import session
    from db.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session(url) as s:
            done = s.execute(select(func.count()).select_from(Run)
                             .where(Run.id.in_(ids), Run.status.in_(FINAL))).scalar()
        if done == len(ids):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{done}/{len(ids)} runs finished")
