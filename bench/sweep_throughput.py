"""Sweep throughput: runs per hour of one fixed, study-sized sweep on workers with 1, 2, 4 or 8 slots.

Usage (CPU):  nice -n 10 .venv/bin/python -m bench.sweep_throughput --slots 1 2 --split --repeat 2
      (GPU):  .venv/bin/python -m bench.sweep_throughput --device cuda --slots 1 4 8 --repeat 2

The sweep (SWEEP below, 12 runs): tanh-RNN, GRU and LSTM x hidden 32 and 128 x seeds 1 and 2, on the adding
task with T = 50, 2 epochs of 20 steps of batch 32, probes at their defaults: the kind of small runs a
vanishing-gradient study is made of. Each configuration gets a fresh SQLite database and private broker
queues (filesystem broker by default, --broker redis for Redis), starts its worker(s) with the real CLI
(``rnnlab worker --slots N [--threads T]``), waits until they have registered, then submits the whole
sweep at once and times it until the last run has finished. runs/h = runs / that wall time x 3600.
``in flight`` is the runs' summed attempt time (database clock) divided by the wall time: the average
number of runs training at once.

--split adds the CPU comparison of one worker with 2 torch threads (``--slots 1 --threads 2``) against
two workers with 1 thread each (two ``--slots 1 --threads 1`` processes), and one worker with 1 thread as
the baseline (measured last: the most useful rows come first on a slow machine). Configurations the
slot plan refuses (more slots x threads than cores) are reported as such.
With --repeat R the configurations are measured R times, interleaved, so a change in the machine's load
hits all of them alike; the load average is printed with each row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.queue_common import REPO, setup, stop_workers, wait_all

CLI = [sys.executable, "-c", "from cli.main import main; main()", "worker"]
SWEEP_BASE = {"task": {"name": "adding", "seq_len": 50}, "epochs": 2, "steps_per_epoch": 20, "batch_size": 32}
SWEEP = [{"cell": cell, "hidden_size": h, "seed": seed}
         for cell in ("rnn", "gru", "lstm") for h in (32, 128) for seed in (1, 2)]


@dataclass(frozen=True)
class Config:
    label: str
    workers: int       # worker processes
    slots: int         # slots per worker
    threads: int | None = None   # torch threads per slot (None: the plan's cores // slots)


def sweep_specs(device: str):
    from rnnlab.spec import parse_spec

    return [parse_spec({**SWEEP_BASE, **run, "device": device}) for run in SWEEP]


def start(config: Config, env: dict, url: str, log_dir: str, queue: str) -> list[subprocess.Popen]:
    """Start the configuration's workers through the CLI and wait until all have registered."""
    from sqlalchemy import func, select

    from db.engine import session
    from db.models import Worker

    procs = []
    for i in range(config.workers):
        args = ["--queues", queue, "--slots", str(config.slots), "--name", f"bench{i}-{uuid.uuid4().hex[:4]}@h",
                "--loglevel", "WARNING"]
        if queue == "gpu":
            args += ["--gpu", "0"]
        if config.threads is not None:
            args += ["--threads", str(config.threads)]
        log = open(Path(log_dir) / f"worker{i}.log", "w")
        procs.append(subprocess.Popen([*CLI, *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            stop_workers(procs)
            text = (Path(log_dir) / f"worker{procs.index(dead[0])}.log").read_text()
            raise RuntimeError(" ".join(text.split())[-300:])
        with session(url) as s:
            if s.execute(select(func.count()).select_from(Worker)).scalar() >= config.workers:
                time.sleep(1.0)   # let the consumers finish connecting
                return procs
        time.sleep(0.2)
    stop_workers(procs)
    raise TimeoutError("workers did not start")


def measure(config: Config, args) -> dict:
    """One configuration, once: wall time of the whole sweep and the runs' own time in the database."""
    from client.submit import submit
    from db.store import get_run

    specs = sweep_specs(args.device)
    with setup(args.broker, None, args.redis) as (url, app, env), tempfile.TemporaryDirectory() as logs:
        for k in ("RNNLAB_TORCH_THREADS", "OMP_NUM_THREADS"):   # the slot plan sizes the threads
            env.pop(k, None)
        procs = start(config, env, url, logs, "gpu" if args.device == "cuda" else "cpu")
        try:
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            ids = submit(specs, url=url, app=app)
            wait_all(url, ids, timeout=args.timeout)
            wall = time.perf_counter() - t0
            load1 = os.getloadavg()[0]
        finally:
            stop_workers(procs)
        runs = [get_run(i, url=url) for i in ids]
    busy = sum((a["ended_at"] - a["started_at"]).total_seconds() for r in runs for a in r["attempt_history"]
               if a["ended_at"] is not None)
    return {"wall": wall, "runs_per_h": len(ids) / wall * 3600, "in_flight": busy / wall,
            "failed": sum(r["status"] != "succeeded" for r in runs), "load": (load0 + load1) / 2}


def configs(args, cores: int) -> list[Config]:
    """The slot counts (threads as the plan sizes them: cores // slots), then the --split comparison."""
    def label(workers: int, slots: int, threads: int) -> str:
        return f"{workers} worker(s) x {slots} slot(s) x {threads} thread(s)"

    out = [Config(label(1, n, max(1, cores // n)), 1, n) for n in args.slots]
    if args.split:
        for workers, threads in ((1, 2), (2, 1), (1, 1)):
            if label(workers, 1, threads) not in {c.label for c in out}:
                out.append(Config(label(workers, 1, threads), workers, 1, threads))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, nargs="+", default=[1, 2], choices=[1, 2, 4, 8],
                    help="slot counts to measure (one worker each)")
    ap.add_argument("--split", action="store_true",
                    help="also 1 worker x 1 thread, 1 worker x 2 threads and 2 workers x 1 thread (CPU)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--broker", choices=["filesystem", "redis"], default="filesystem")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--repeat", type=int, default=1, choices=range(1, 11), metavar="1..10")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one configuration may take")
    args = ap.parse_args()
    from worker.slots import available_cores

    print(f"sweep: {len(SWEEP)} runs ({SWEEP_BASE['task']['name']} T={SWEEP_BASE['task']['seq_len']}, "
          f"{SWEEP_BASE['epochs']} x {SWEEP_BASE['steps_per_epoch']} steps, batch {SWEEP_BASE['batch_size']}, "
          f"rnn/gru/lstm x H 32/128 x 2 seeds) on {args.device}; {available_cores()} core(s); "
          f"SQLite + {args.broker} broker", flush=True)
    print("| configuration | repeat | wall s | runs/h | in flight | failed | load avg |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for rep in range(1, args.repeat + 1):
        for c in configs(args, available_cores()):
            try:
                m = measure(c, args)
            except RuntimeError as e:   # e.g. the slot plan refused it: say so and go on
                print(f"| {c.label} | {rep} | — | not run: {e} | | | |", flush=True)
                continue
            print(f"| {c.label} | {rep} | {m['wall']:.1f} | {m['runs_per_h']:.0f} | {m['in_flight']:.2f} | "
                  f"{m['failed']} | {m['load']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
