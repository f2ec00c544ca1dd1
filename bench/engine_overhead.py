"""Engine overhead: instrumented ``models.train`` vs a plain PyTorch loop over the same model, task and steps.

Run:  .venv/bin/python bench/engine_overhead.py [--cells lstm gru rnn] [--epochs 1] [--steps 50]
Prints markdown tables: wall seconds and ratio (both loops in this one process, alternating, best of
--repeats), then the unrolled vanilla cell vs a plain hand-written loop (and TorchScript).
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


def _naive_loop(x, w_ih, w_hh, b_ih, b_hh):
    """The plain hand-written loop: every step does both matmuls and both biases."""
    h = x.new_zeros(x.shape[1], w_hh.shape[0])
    hs = []
    for t in range(x.shape[0]):
        h = torch.sigmoid(x[t] @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh)
        hs.append(h)
    return torch.stack(hs)


def unrolled_table(args) -> None:
    """Sigmoid RNN forward+backward: the engine's UnrolledRNN vs a naive loop vs that loop in TorchScript."""
    from models.cells import UnrolledRNN

    torch.manual_seed(0)
    T, B, H = args.seq_len, args.batch, args.hidden
    x = torch.rand(T, B, 2)
    rnn = UnrolledRNN(2, H, 1, "sigmoid", 0.01)
    p = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    scripted = torch.jit.script(_naive_loop)
    variants = {
        "engine UnrolledRNN (input projection hoisted, addmm)": lambda: rnn(x)[0],
        "plain hand-written loop": lambda: _naive_loop(x, *p),
        "plain loop, torch.jit.script": lambda: scripted(x, *p),
    }
    print(f"\nUnrolled vanilla cell (sigmoid), T={T}, H={H}, B={B}: forward + backward per batch, "
          f"best of {args.unrolled_reps}\n")
    print("| implementation | ms per batch |")
    print("|---|---|")
    for name, fn in variants.items():
        fn()[-1].sum().backward()  # warm up (and let TorchScript profile)
        fn()[-1].sum().backward()
        best = float("inf")
        for _ in range(args.unrolled_reps):
            t0 = time.perf_counter()
            fn()[-1].sum().backward()
            best = min(best, time.perf_counter() - t0)
        print(f"| {name} | {best * 1e3:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"],
                    help="lstm, gru, rnn (tanh, fused) or rnn:<activation> (e.g. rnn:sigmoid)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seq-len", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--unrolled-reps", type=int, default=5, help="repeats for the unrolled-cell table (0: skip)")
    ap.add_argument("--skip-engine", action="store_true", help="only the unrolled-cell table")
    args = ap.parse_args()
    print(f"CPU only (no GPU on this machine): {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; adding T={args.seq_len}, "
          f"H={args.hidden}, B={args.batch}, {args.epochs} epochs × {args.steps} steps, probe every epoch "
          f"(default cadence; epoch 0 included), best of {args.repeats}\n")
    if args.skip_engine:
        unrolled_table(args)
        return
    warm = spec_for("lstm", None, argparse.Namespace(**{**vars(args), "epochs": 1, "steps": 2}))
    plain_loop(warm), engine(warm)  # warm up allocators and kernels before timing
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
    if args.unrolled_reps:
        unrolled_table(args)


if __name__ == "__main__":
    main()
