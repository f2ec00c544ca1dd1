"""Held-out evaluation cost: seconds of ``models.train.evaluate`` per epoch vs the seconds of the
epoch's training steps, for the engine-overhead case (adding, T=200, H=128, B=64, 50 steps) and the
examples/adding_lstm.yaml case (T=50, H=32, B=32, 100 steps).

Usage: .venv/bin/python bench/heldout_cost.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models.diagnostics import StepStats  # noqa: E402
from models.train import Trainer, evaluate  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402

CASES = {
    "overhead bench (adding T=200, H=128, B=64, 50 steps)": {"seq_len": 200, "hidden_size": 128, "batch_size": 64,
                                                            "steps": 50},
    "examples/adding_lstm.yaml (T=50, H=32, B=32, 100 steps)": {"seq_len": 50, "hidden_size": 32, "batch_size": 32,
                                                                "steps": 100},
}


def measure(case: dict, repeats: int) -> tuple[int, float, float]:
    """(held-out sequences, evaluate seconds, training-epoch seconds), best of ``repeats``."""
    spec = parse_spec({"cell": "lstm", "hidden_size": case["hidden_size"], "batch_size": case["batch_size"],
                       "steps_per_epoch": case["steps"], "device": "cpu",
                       "task": {"name": "adding", "seq_len": case["seq_len"]}})
    tr = Trainer(spec)
    n = sum(b.size for b in tr.task.heldout())
    evals, trains = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate(tr.net, tr.task, tr.device)
        evals.append(time.perf_counter() - t0)
        stats = StepStats(len(tr.params), tr.device)
        t0 = time.perf_counter()
        for s in range(case["steps"]):
            tr.step(1, s, stats)
        trains.append(time.perf_counter() - t0)
    return n, min(evals), min(trains)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("| case | held-out sequences | validation s/epoch | training s/epoch | validation / training |")
    print("|---|---|---|---|---|")
    for name, case in CASES.items():
        n, ev, tr = measure(case, a.repeats)
        print(f"| {name} | {n} | {ev:.3f} | {tr:.2f} | {ev / tr:.1%} |")


if __name__ == "__main__":
    main()
