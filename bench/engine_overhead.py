"""Engine overhead: instrumented ``models.train`` vs a plain PyTorch loop over the same model, task and steps.

Run:  .venv/bin/python bench/engine_overhead.py [--cells lstm gru rnn] [--epochs 2] [--steps 50]
Prints a markdown table (wall seconds, ratio). Both loops run in this one process, alternating.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import train  # noqa: E402
from models.build import build_model, make_optimizer  # noqa: E402
from models.tasks import make_task  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402


def spec_for(cell: str, activation: str | None, args) -> object:
    return parse_spec({
        "cell": cell, "activation": activation, "hidden_size": args.hidden, "batch_size": args.batch,
        "epochs": args.epochs, "steps_per_epoch": args.steps, "device": "cpu",
        "task": {"name": "adding", "seq_len": args.seq_len}, "optimizer": {"name": "adam", "lr": 1e-3},
        "clip": {"mode": "norm", "max_norm": 1.0},
    })


def plain_loop(spec) -> float:
    """The same model, batches and optimizer with no instrumentation at all."""
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    opt = make_optimizer(spec, net)
    t0 = time.perf_counter()
    for epoch in range(1, spec.epochs + 1):
        for step in range(spec.steps_per_epoch):
            b = task.batch(epoch, step, spec.batch_size)
            loss = task.loss(net(b.x), b.y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
    return time.perf_counter() - t0


def engine(spec) -> tuple[float, float]:
    """Wall seconds of models.train (epoch 0 included) and the diag_seconds it reported."""
    diag = []
    t0 = time.perf_counter()
    res = train(spec, on_epoch=lambda r: diag.append(r.diag_seconds))
    assert res.outcome == "succeeded", res
    return time.perf_counter() - t0, sum(diag)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"],
                    help="lstm, gru, rnn (tanh, fused) or rnn:<activation> (e.g. rnn:sigmoid)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seq-len", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"CPU only (no GPU on this machine): {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; adding T={args.seq_len}, "
          f"H={args.hidden}, B={args.batch}, {args.epochs} epochs × {args.steps} steps, probe every epoch "
          f"(default cadence; epoch 0 included), best of {args.repeats}\n")
    print("| cell | plain loop (s) | engine (s) | of which diagnostics (s) | ratio |")
    print("|---|---|---|---|---|")
    for c in args.cells:
        cell, _, act = c.partition(":")
        spec = spec_for(cell, act or None, args)
        plain, eng, diag = [], [], []
        for _ in range(args.repeats):  # alternate, keep the best of each
            plain.append(plain_loop(spec))
            e, d = engine(spec)
            eng.append(e)
            diag.append(d)
        i = min(range(args.repeats), key=eng.__getitem__)
        label = cell if cell != "rnn" else f"rnn/{act or 'tanh'}"
        print(f"| {label} | {min(plain):.2f} | {eng[i]:.2f} | {diag[i]:.2f} | {eng[i] / min(plain):.3f} |")


if __name__ == "__main__":
    main()
