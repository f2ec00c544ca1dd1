"""Engine overhead: instrumented training vs a plain PyTorch loop over the same model, task and steps.

Run:  .venv/bin/python bench/engine_overhead.py [--cells lstm gru rnn] [--epochs 2] [--steps 50]
      .venv/bin/python bench/engine_overhead.py --peers --threads 1   (needs: pip install -e '.[bench]')
      python3 bench/engine_overhead.py --device cuda --epochs 5         (on a GPU; bench/gpu_check.sh runs it)

Two measurements, both in this one process:
- paired: the engine's own step and diagnostics (``Trainer.step``, ``diagnose_epoch`` and the
  checkpoint, exactly what ``models.train`` calls) interleaved step by step with a plain loop on
  an identical model, the order alternating every step; ratio = engine time / plain time, summed
  over all steps and diagnostics, in wall time and in this thread's CPU time (the CPU-time ratio is
  the one that survives other processes sharing the machine; use --threads 1 for it to be exact);
- end to end: wall time of ``models.train`` vs the plain loop run back to back (best of --repeats).
Then the unrolled vanilla cell (custom activations) vs a plain hand-written loop and TorchScript.

--device cuda: the specs, the plain loop's model and batches and the unrolled-cell table all go to the GPU
(cuDNN's fused kernels for lstm, gru and the tanh rnn). CPU time means nothing there (kernels run
asynchronously), so every figure is wall time read after ``torch.cuda.synchronize()``: the clock is
--clock auto (CPU time for --device cpu, synchronized wall time for cuda); --clock wall prints the GPU
table's layout on the CPU too. The header names the device. --peers is CPU only.

--peers: rnnlab next to other tools that instrument the same plain loop, each a whole run of
epochs × steps (default 2 × 50, LSTM), as a ratio to the plain loop measured in the same repeat.
Rows (--only picks some; the plain loop is always measured):
  plain, plain+val     the plain loop; the same plus held-out validation after every epoch (the engine's
                       ``evaluate`` on the task's held-out set: what a script that validates pays)
  rnnlab               ``models.train`` at the default cadence (epoch 0, held-out evaluation, probe,
                       histograms and a packed checkpoint every epoch)
  rnnlab-db            what a worker does with a queued run (``worker.runner.execute``): the same, plus
                       the heartbeat thread and every record and checkpoint written to a SQLite file
  rnnlab-budget        ``models.train`` with ``probe.budget`` (--budget)
  wandb1, wandb10      ``wandb.watch(log='gradients')`` every step / every 10 steps, offline
                       (WANDB_MODE=offline, nothing leaves the machine); the loss is wandb.log'ged every
                       step, which is what commits the histograms
  wandb1+val           wandb1 plus the held-out validation of plain+val, logged
  tb1, tb10            TensorBoard's ``add_histogram`` of every gradient every step / every 10 steps
Every run is timed whole: building the model and task, ``wandb.init`` to ``run.finish()``, opening to
closing the SummaryWriter. Repeats rotate the order; ratios are medians over repeats of CPU time,
counted two ways (this process, all its threads; and this process plus its helper processes, which
is where wandb's ``wandb-core`` service and its system monitor run, read from /proc), and of wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import train  # noqa: E402
from models.build import build_model, make_optimizer, resolve_device  # noqa: E402
from models.diagnostics import StepStats  # noqa: E402
from models.tasks import make_task  # noqa: E402
from models.train import Trainer  # noqa: E402
from rnnlab.spec import parse_spec  # noqa: E402

CLIP = 1.0


def _no_sync() -> None:
    pass


# Called before every clock read: torch.cuda.synchronize for --device cuda (main sets it), else nothing.
_sync = _no_sync


def spec_for(cell: str, activation: str | None, args) -> object:
    return parse_spec({
        "cell": cell, "activation": activation, "hidden_size": args.hidden, "batch_size": args.batch,
        "epochs": args.epochs, "steps_per_epoch": args.steps, "device": args.device,
        "task": {"name": "adding", "seq_len": args.seq_len}, "optimizer": {"name": "adam", "lr": 1e-3},
        "clip": {"mode": "norm", "max_norm": CLIP},
    })


class PlainLoop:
    """The same model, batches, optimizer and clipping with no instrumentation at all."""

    def __init__(self, spec):
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.task = make_task(spec.task, spec.seed)
        self.net = build_model(spec, self.task).to(self.device)
        self.opt = make_optimizer(spec, self.net)

    def step(self, epoch: int, step: int) -> None:
        b = self.task.batch(epoch, step, self.spec.batch_size).to(self.device)
        loss = self.task.loss(self.net(b.x), b.y)
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), CLIP)
        self.opt.step()


def _timed(fn) -> float:
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def _timed2(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread): CPU time is far less disturbed by other processes.
    On a GPU the wall time is read after synchronizing; the CPU time then means nothing."""
    _sync()
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    _sync()
    return time.perf_counter() - t0, time.thread_time() - c0


def paired(spec) -> dict:
    """Interleave engine and plain steps; time the engine's per-epoch diagnostics and checkpoints."""
    tr, plain = Trainer(spec), PlainLoop(spec)
    t_eng, t_plain, t_diag = [], [], []

    def diag(epoch, stats, start):
        tr.diagnose_epoch(epoch, stats, start, False)
        tr.checkpoint(epoch)

    t_diag.append(_timed2(lambda: diag(0, StepStats(len(tr.params), tr.device),
                                       [p.detach().clone() for p in tr.params])))
    for epoch in range(1, spec.epochs + 1):
        stats = StepStats(len(tr.params), tr.device)
        start = [p.detach().clone() for p in tr.params]
        for s in range(spec.steps_per_epoch):
            pair = [(t_eng, lambda: tr.step(epoch, s, stats)), (t_plain, lambda: plain.step(epoch, s))]
            for out, fn in (pair if s % 2 == 0 else pair[::-1]):
                out.append(_timed2(fn))
        t_diag.append(_timed2(lambda: diag(epoch, stats, start)))
    wall = lambda ts: [t[0] for t in ts]  # noqa: E731
    cpu = lambda ts: [t[1] for t in ts]  # noqa: E731
    return {
        "plain_step_ms": 1e3 * statistics.median(cpu(t_plain)), "engine_step_ms": 1e3 * statistics.median(cpu(t_eng)),
        "diag_s": statistics.median(cpu(t_diag)),
        "plain_step_ms_wall": 1e3 * statistics.median(wall(t_plain)),
        "engine_step_ms_wall": 1e3 * statistics.median(wall(t_eng)), "diag_s_wall": statistics.median(wall(t_diag)),
        "ratio_wall": (sum(wall(t_eng)) + sum(wall(t_diag))) / sum(wall(t_plain)),
        "ratio_cpu": (sum(cpu(t_eng)) + sum(cpu(t_diag))) / sum(cpu(t_plain)),
    }


def end_to_end(spec, repeats: int) -> tuple[float, float]:
    """Best-of wall seconds: (plain loop, models.train with epoch 0)."""
    plain_s, eng_s = [], []
    for _ in range(repeats):
        p = PlainLoop(spec)
        plain_s.append(_timed(lambda: [p.step(e, s) for e in range(1, spec.epochs + 1)
                                       for s in range(spec.steps_per_epoch)]))
        eng_s.append(_timed(lambda: train(spec)))
    return min(plain_s), min(eng_s)


def _warm_up(spec) -> None:
    """A 1-epoch, 2-step train() and three plain steps: cuDNN plans, cuBLAS/cuSOLVER handles and the
    allocator's pools are made before anything is timed (on the CPU: the same, for the --clock wall table)."""
    train(spec.model_copy(update={"epochs": 1, "steps_per_epoch": 2}))
    p = PlainLoop(spec)
    for s in range(3):
        p.step(1, s)
    _sync()


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
    x = torch.rand(T, B, 2).to(args.device)
    rnn = UnrolledRNN(2, H, 1, "sigmoid", 0.01).to(args.device)
    p = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    scripted = torch.jit.script(_naive_loop)
    variants = {
        "engine UnrolledRNN (input projection hoisted, addmm)": lambda: rnn(x)[0],
        "plain hand-written loop": lambda: _naive_loop(x, *p),
        "plain loop, torch.jit.script": lambda: scripted(x, *p),
    }
    print(f"\nUnrolled vanilla cell (sigmoid), T={T}, H={H}, B={B}: forward + backward per batch, "
          f"median of {args.unrolled_reps}, the variants interleaved"
          f"{'; on the GPU, wall time after torch.cuda.synchronize()' if args.device == 'cuda' else ''}\n")
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm up (and let TorchScript profile)
        fn()[-1].sum().backward()
        fn()[-1].sum().backward()
    for _ in range(args.unrolled_reps):
        for name, fn in variants.items():
            times[name].append(_timed(lambda: fn()[-1].sum().backward()))
    print("| implementation | ms per batch |")
    print("|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {1e3 * statistics.median(ts):.1f} |", flush=True)


# -- --peers: rnnlab next to wandb.watch and TensorBoard histograms ------------------------------

def _plain_run(spec, hook=None) -> None:
    """The plain loop over all epochs × steps; ``hook(loop, global_step, loss)`` after each step."""
    p = PlainLoop(spec)
    n = 0
    for e in range(1, spec.epochs + 1):
        for s in range(spec.steps_per_epoch):
            b = p.task.batch(e, s, spec.batch_size).to(p.device)
            loss = p.task.loss(p.net(b.x), b.y)
            p.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(p.net.parameters(), CLIP)
            p.opt.step()
            if hook is not None:
                hook(p, n, loss)
            n += 1
    return p


def _validated(p) -> float:
    """The held-out loss over the task's held-out set, with the engine's own ``evaluate``: what a
    training script that validates after every epoch pays."""
    from models.train import evaluate

    return evaluate(p.net, p.task, p.device)[0]


def _plain_validated_run(spec) -> None:
    """The plain loop, plus held-out validation after every epoch (not at init)."""
    def hook(loop, n, loss):
        if (n + 1) % spec.steps_per_epoch == 0:
            _validated(loop)
    _plain_run(spec, hook)


def _wandb_run(spec, freq: int, validate: bool = False) -> tuple[float, float, float]:
    """wandb.watch on the plain loop, as one training script pays for it: the clock runs from
    ``wandb.init`` (which starts wandb's service process, ``wandb-core``, and its system monitor) to
    ``run.finish()`` (which commits the offline files) and ``wandb.teardown()`` (which stops the
    service, as the script's exit would), with the service's CPU time counted. Tearing the service
    down also keeps its idle CPU out of the other rows' clocks."""
    import wandb

    p = PlainLoop(spec)   # built first so that watch() can hook it; the loop below reuses it
    t = _Clock()
    run = wandb.init(project="rnnlab-bench", mode="offline", reinit="finish_previous",
                     settings=wandb.Settings(silent=True, console="off"))
    wandb.watch(p.net, log="gradients", log_freq=freq)
    n = 0
    for e in range(1, spec.epochs + 1):
        for s in range(spec.steps_per_epoch):
            b = p.task.batch(e, s, spec.batch_size)
            loss = p.task.loss(p.net(b.x), b.y)
            p.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(p.net.parameters(), CLIP)
            p.opt.step()
            wandb.log({"loss": loss.item()}, step=n)
            n += 1
        if validate:
            wandb.log({"val_loss": _validated(p)}, step=n - 1)
    run.finish()
    wandb.teardown()
    return t.stop()


def _rnnlab_recorded_run(spec, url: str) -> tuple[float, float, float]:
    """What a worker does with one queued run (``worker.runner.execute``): claim it, train with the
    heartbeat thread, write every epoch's records and checkpoint to the database, finish it. The run
    row is created (submitted) before the clock starts."""
    from db import store
    from rnnlab.settings import get_settings
    from worker.runner import execute

    (run_id,) = store.create_runs([spec], owner="bench", tags=[], max_attempts=1, url=url)
    s = get_settings()
    t = _Clock()
    status = execute(run_id, "bench@engine_overhead", heartbeat_s=s.heartbeat_seconds,
                     lost_after_s=s.lost_after_seconds, url=url)
    out = t.stop()
    if status != "succeeded":
        raise SystemExit(f"engine_overhead: the recorded rnnlab run ended {status!r}")
    return out


def _tensorboard_run(spec, freq: int, logdir: str) -> tuple[float, float, float]:
    """TensorBoard histograms on the plain loop; the clock includes opening and closing the writer."""
    from torch.utils.tensorboard import SummaryWriter

    t = _Clock()
    w = SummaryWriter(logdir)

    def hook(loop, n, loss):
        w.add_scalar("loss", loss.item(), n)
        if n % freq == 0:
            for name, prm in loop.net.named_parameters():
                w.add_histogram(f"grad/{name}", prm.grad, n)
    _plain_run(spec, hook)
    w.close()
    return t.stop()


def _descendants_cpu() -> float:
    """CPU seconds (user + system) of this process's live descendants and of the children they have
    waited for, from /proc (Linux), plus this process's own waited-for children: wandb's service
    processes run outside this process."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:   # gone meanwhile
            continue
        fields = st[st.rindex(")") + 2:].split()   # proc(5): fields 4 on; utime, stime, cutime, cstime
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = sum(int(f) for f in fields[11:15]) / ticks
    me, total = os.getpid(), 0.0
    for pid in parent:
        p = parent[pid]
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += cpu[pid]
    t = os.times()
    return total + t.children_user + t.children_system


class _Clock:
    """Since construction: wall seconds, CPU seconds of this process (all threads), and CPU seconds
    of this process plus its helper processes (``_descendants_cpu``)."""

    def __init__(self):
        self.w, self.c, self.d = time.perf_counter(), time.process_time(), _descendants_cpu()

    def stop(self) -> tuple[float, float, float]:
        c = time.process_time() - self.c
        return time.perf_counter() - self.w, c, c + _descendants_cpu() - self.d


def _timed_run(fn) -> tuple[float, float, float]:
    t = _Clock()
    fn()
    return t.stop()


ROWS = {  # key: label; the plain loop is always measured (every ratio is to it)
    "plain": "plain PyTorch loop",
    "plain+val": "plain loop + held-out validation every epoch",
    "rnnlab": "rnnlab models.train, default cadence (probe every epoch)",
    "rnnlab-db": "rnnlab as a worker runs it: models.train + every record and checkpoint written to SQLite",
    "rnnlab-budget": "rnnlab models.train, probe.budget",
    "wandb1": "wandb.watch(log='gradients', log_freq=1)",
    "wandb10": "wandb.watch(log='gradients', log_freq=10)",
    "wandb1+val": "wandb.watch(log='gradients', log_freq=1) + held-out validation every epoch",
    "tb1": "TensorBoard add_histogram, every step",
    "tb10": "TensorBoard add_histogram, every 10 steps",
}


def peers(args) -> None:
    import tempfile

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    tmp = tempfile.mkdtemp(prefix="rnnlab-peers-")
    os.environ.setdefault("WANDB_DIR", tmp)
    spec = spec_for(args.peer_cell, None, args)
    budgeted = spec.model_copy(update={"probe": spec.probe.model_copy(update={"budget": args.budget})})
    shares: dict[str, list[float]] = {"rnnlab": [], "rnnlab-budget": []}
    keys = ["plain"] + [k for k in (args.only or list(ROWS)) if k != "plain"]
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        raise SystemExit(f"engine_overhead: --only {' '.join(unknown)}: not a row; the rows are {', '.join(ROWS)}")
    url = None
    if "rnnlab-db" in keys:
        from db.migrate import ensure_schema

        url = f"sqlite:///{tmp}/peers.db"
        ensure_schema(url)

    def rnnlab_run(sp, key):
        def go():
            recs = []
            train(sp, on_epoch=recs.append, on_checkpoint=lambda e, b: None)
            shares[key].append(sum(r.diag_seconds for r in recs) / sum(r.train_seconds for r in recs))
            shares[key + "_probed"] = [r.epoch for r in recs if r.probed]
        return go

    variants = {
        "plain": lambda: _timed_run(lambda: _plain_run(spec)),
        "plain+val": lambda: _timed_run(lambda: _plain_validated_run(spec)),
        "rnnlab": lambda: _timed_run(rnnlab_run(spec, "rnnlab")),
        "rnnlab-db": lambda: _rnnlab_recorded_run(spec, url),
        "rnnlab-budget": lambda: _timed_run(rnnlab_run(budgeted, "rnnlab-budget")),
        "wandb1": lambda: _wandb_run(spec, 1),
        "wandb10": lambda: _wandb_run(spec, 10),
        "wandb1+val": lambda: _wandb_run(spec, 1, validate=True),
        "tb1": lambda: _tensorboard_run(spec, 1, f"{tmp}/tb1"),
        "tb10": lambda: _tensorboard_run(spec, 10, f"{tmp}/tb10"),
    }
    try:
        if any(k.startswith("wandb") for k in keys):
            import wandb  # noqa: F401
        if any(k.startswith("tb") for k in keys):
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"--peers needs the bench extra (pip install -e '.[bench]'): {e}") from None
    label = dict(ROWS, **{"rnnlab-budget": f"{ROWS['rnnlab-budget']} {args.budget}"})
    print(f"CPU only: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"{args.peer_cell} adding T={args.seq_len}, H={args.hidden}, B={args.batch}, Adam, norm clipping; "
          f"{args.epochs} epochs × {args.steps} steps; {args.peer_reps} repeats, order rotated; "
          f"flush denormals: {args.flush_denormal}; load average before: {os.getloadavg()[0]:.1f}\n", flush=True)
    warm = spec.model_copy(update={"epochs": 1, "steps_per_epoch": 2})
    _plain_run(warm)
    if any(k.startswith("wandb") for k in keys):
        _wandb_run(warm, 1)
    wall: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    bill: dict[str, list[float]] = {k: [] for k in keys}
    for rep in range(args.peer_reps):
        for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
            w, c, b = variants[key]()
            wall[key].append(w)
            cpu[key].append(c)
            bill[key].append(b)
        print(f"  repeat {rep + 1}/{args.peer_reps} done, load average {os.getloadavg()[0]:.1f}", flush=True)

    def ratio(xs: dict[str, list[float]], key: str) -> float:
        return statistics.median(a / b for a, b in zip(xs[key], xs["plain"]))

    print("\n| instrumentation | ratio to plain loop: CPU time, this process and its helper processes "
          "| CPU time, this process only | wall time | CPU s per run, all processes (median) |")
    print("|---|---|---|---|---|")
    for key in keys:
        print(f"| {label[key]} | {ratio(bill, key):.3f} | {ratio(cpu, key):.3f} | {ratio(wall, key):.3f} "
              f"| {statistics.median(bill[key]):.2f} |", flush=True)
    done = [f"{k} {statistics.median(shares[k]):.3f}" for k in ("rnnlab", "rnnlab-budget") if shares[k]]
    if done:
        print(f"\nrnnlab's own record, diag_seconds / train_seconds summed over the run (wall): {', '.join(done)}"
              + (f" (budget: probed epochs {shares['rnnlab-budget_probed']})" if shares["rnnlab-budget"] else ""))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"],
                    help="lstm, gru, rnn (tanh, fused) or rnn:<activation> (e.g. rnn:sigmoid)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seq-len", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1, help="end-to-end repeats (0: skip end to end)")
    ap.add_argument("--unrolled-reps", type=int, default=7, help="repeats for the unrolled-cell table (0: skip)")
    ap.add_argument("--skip-engine", action="store_true", help="only the unrolled-cell table")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True) for both loops")
    ap.add_argument("--peers", action="store_true",
                    help="rnnlab vs wandb.watch and TensorBoard histograms (needs the bench extra)")
    ap.add_argument("--peer-cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--peer-reps", type=int, default=5)
    ap.add_argument("--only", nargs="+", metavar="ROW", choices=list(ROWS),
                    help=f"--peers: measure only these rows (the plain loop always): {', '.join(ROWS)}")
    ap.add_argument("--budget", type=float, default=0.03, help="probe.budget of the budgeted rnnlab row")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the engine and the plain loop train (cuda: cuDNN, timed in synchronized wall time)")
    ap.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                    help="the paired table's clock: auto = cpu (this thread's CPU time) for --device cpu, "
                         "wall (synchronized) for cuda; CPU time is refused on a GPU")
    args = ap.parse_args()
    if args.clock == "auto":
        args.clock = "wall" if args.device == "cuda" else "cpu"
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"engine_overhead: --device cuda, but torch {torch.__version__} sees no CUDA GPU "
                             f"(torch.cuda.is_available() is False; built for CUDA {torch.version.cuda}); "
                             f"use --device cpu")
        if args.clock == "cpu":
            raise SystemExit("engine_overhead: --clock cpu means nothing on a GPU (kernels run asynchronously); "
                             "use --clock wall or auto")
        if args.peers:
            raise SystemExit("engine_overhead: --peers is CPU only; drop --device cuda")
        global _sync
        _sync = torch.cuda.synchronize
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.flush_denormal:  # both loops alike; see docs/benchmarks.md on denormals in vanishing regimes
        torch.set_flush_denormal(True)
    if args.peers:
        peers(args)
        return
    if not args.skip_engine:
        if args.device == "cuda":
            print(f"GPU: {torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda}, "
                  f"cuDNN {torch.backends.cudnn.version()}, cuDNN enabled: {torch.backends.cudnn.enabled}); "
                  f"host {platform.machine()}, {torch.get_num_threads()} threads; ", end="")
        elif args.clock == "wall":
            print(f"CPU, GPU table layout (--clock wall): {platform.machine()}, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} threads; ", end="")
        else:
            print(f"CPU only (no GPU on this machine): {platform.machine()}, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} threads; ", end="")
        print(f"adding T={args.seq_len}, H={args.hidden}, B={args.batch}; "
              f"{args.epochs} epochs × {args.steps} steps; probe every epoch (the default cadence), "
              f"epoch 0 included; Adam, norm clipping; flush denormals: {args.flush_denormal}\n")
        if args.clock == "wall":
            synced = ", read after torch.cuda.synchronize()" if args.device == "cuda" else ""
            print(f"clock: wall time (time.perf_counter){synced}; "
                  f"each cell warmed up first (a 1-epoch train() and plain steps)\n")
            print("| cell | plain step (wall ms, median) | engine step (wall ms, median) "
                  "| diagnostics + checkpoint per epoch (wall s, median) "
                  "| paired ratio (wall time) | end to end: plain (s) "
                  "| end to end: train() (s) | end-to-end ratio (wall) |")
            print("|---|---|---|---|---|---|---|---|")
        else:
            print("| cell | plain step (CPU ms, median) | engine step (CPU ms, median) "
                  "| diagnostics + checkpoint per epoch (CPU s, median) "
                  "| paired ratio (CPU time) | paired ratio (wall time) | end to end: plain (s) "
                  "| end to end: train() (s) | end-to-end ratio (wall) |")
            print("|---|---|---|---|---|---|---|---|---|")
            PlainLoop(spec_for("lstm", None, args)).step(1, 0)  # warm up allocators and kernels
        for c in args.cells:
            cell, _, act = c.partition(":")
            spec = spec_for(cell, act or None, args)
            label = cell if cell != "rnn" else f"rnn/{act or 'tanh'}"
            if args.clock == "wall":
                _warm_up(spec)
                r = paired(spec)
                e2e = end_to_end(spec, args.repeats) if args.repeats else (float("nan"), float("nan"))
                print(f"| {label} | {r['plain_step_ms_wall']:.2f} | {r['engine_step_ms_wall']:.2f} | "
                      f"{r['diag_s_wall']:.3f} | {r['ratio_wall']:.3f} | {e2e[0]:.2f} | {e2e[1]:.2f} | "
                      f"{e2e[1] / e2e[0]:.3f} |", flush=True)
                continue
            r = paired(spec)
            e2e = end_to_end(spec, args.repeats) if args.repeats else (float("nan"), float("nan"))
            print(f"| {label} | {r['plain_step_ms']:.0f} | {r['engine_step_ms']:.0f} | {r['diag_s']:.2f} | "
                  f"{r['ratio_cpu']:.3f} | {r['ratio_wall']:.3f} | {e2e[0]:.1f} | {e2e[1]:.1f} | "
                  f"{e2e[1] / e2e[0]:.3f} |", flush=True)
    if args.unrolled_reps:
        unrolled_table(args)


if __name__ == "__main__":
    main()
