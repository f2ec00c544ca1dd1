"""probe.budget: does the diagnostics' measured share of a real run stay within its budget?

Run:  .venv/bin/python bench/probe_budget.py --threads 1 [--cell rnn] [--steps 200] [--epochs 8] [--budgets 0.03 0.1]

Each budget is one models.train run (adding task, T = 200, H = 128, B = 64, Adam, norm clipping).
The share is the engine's own record: Σ diag_seconds / Σ train_seconds over the run, epoch 0
included (both wall clock, both measured in the same process, so a loaded machine slows both).
"fixed share" is what an unprobed epoch costs (held-out evaluation, histograms, checkpoint) over
its training time: the floor no budget can go below, since only the probe is moved.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import train  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402


def spec_for(args, budget: float | None):
    probe = {"batch_size": 32} if budget is None else {"batch_size": 32, "budget": budget}
    return parse_spec({
        "cell": args.cell, "hidden_size": args.hidden, "batch_size": 64, "epochs": args.epochs,
        "steps_per_epoch": args.steps, "device": "cpu", "task": {"name": "adding", "seq_len": args.seq_len},
        "optimizer": {"name": "adam", "lr": 1e-3}, "clip": {"mode": "norm", "max_norm": 1.0}, "probe": probe,
    })


def measure(spec) -> dict:
    recs = []
    train(spec, on_epoch=recs.append, on_checkpoint=lambda e, b: None)
    trained = sum(r.train_seconds for r in recs)
    spent = sum(r.diag_seconds for r in recs)
    plain = [r for r in recs if not r.probed]
    probed = [r for r in recs if r.probed and r.epoch > 0]
    return {
        "share": spent / trained,
        "fixed": statistics.median(r.diag_seconds / r.train_seconds for r in plain) if plain else float("nan"),
        "probed_share": (statistics.median(r.diag_seconds / r.train_seconds for r in probed)
                         if probed else float("nan")),
        "probed": [r.epoch for r in recs if r.probed],
        "train_s": trained,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", default="rnn", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--steps", type=int, default=200, help="steps per epoch")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.03, 0.1])
    ap.add_argument("--no-reference", action="store_true", help="skip the run without a budget")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU only: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"{args.cell} adding T={args.seq_len}, H={args.hidden}, B=64; {args.epochs} epochs × {args.steps} steps; "
          f"load average before: {os.getloadavg()[0]:.1f}\n", flush=True)
    print("| probe.budget | measured share Σdiag/Σtrain | fixed share (unprobed epoch) | probed epoch's share "
          "| probed epochs | training (s) | load average |")
    print("|---|---|---|---|---|---|---|")
    for budget in ([] if args.no_reference else [None]) + args.budgets:
        r = measure(spec_for(args, budget))
        label = "none (probe every epoch)" if budget is None else f"{budget:g}"
        print(f"| {label} | {r['share']:.4f} | {r['fixed']:.4f} | {r['probed_share']:.4f} | "
              f"{', '.join(map(str, r['probed']))} | {r['train_s']:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
