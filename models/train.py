"""The training loop: epoch 0 at init, then N epochs of steps, each followed by diagnostics and a checkpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from rnnlab.records import EpochRecord, RunInfo, RunResult
from rnnlab.spec import JobSpec

from . import checkpoint, foreach
from .build import build_model, make_optimizer, resolve_device, run_info
from .diagnostics import StepStats, update_ratios
from .errors import EngineError
from .probe import run_probe
from .report import global_norm, layer_stats, param_stats
from .tasks import Task, make_task


class _Diverged(Exception):
    """A step's loss or gradient was non-finite; ``message`` says where and what."""

    def __init__(self, message: str):
        self.message = message


EVAL_CHUNK_CPU = 64   # held-out sequences per forward of a fused net on the CPU


def _forward(net, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """net(x), in chunks of EVAL_CHUNK_CPU sequences for a fused net on the CPU, where ATen's LSTM/GRU/RNN
    run 8-17% faster on 64 sequences at a time than on 256 (docs/benchmarks.md); every sequence's
    output depends on that sequence alone, so the outputs are the same."""
    if device.type != "cpu" or not net.fused or x.shape[1] <= EVAL_CHUNK_CPU:
        return net(x)
    outs = [net(c) for c in x.split(EVAL_CHUNK_CPU, dim=1)]
    return torch.cat(outs, dim=0 if net.output_mode == "last" else 1)


@torch.inference_mode()
def evaluate(net, task: Task, device: torch.device) -> tuple[float, float, float]:
    """Over the fixed held-out set: the mean of the per-sequence losses, the metric (weighted by batch
    size) and the loss's standard error, sample std of the per-sequence losses / √N (NaN for N < 2)."""
    net.eval()
    losses, metric, n = [], 0.0, 0
    for b in task.heldout():
        b = b.to(device)
        out = _forward(net, b.x, device)
        losses.append(task.loss_per_sequence(out, b.y))
        metric += float(task.metric(out, b.y)) * b.size
        n += b.size
    net.train()
    per_seq = torch.cat(losses)
    se = per_seq.std() / math.sqrt(n) if n > 1 else per_seq.new_tensor(math.nan)
    return float(per_seq.mean()), metric / n, float(se)


def _probe_grads(net, task: Task, batch) -> list[torch.Tensor]:
    """∂L/∂θ on the probe batch through the fast (fused) path, for the histograms of unprobed epochs."""
    params = [p for _, p in net.named_params()]
    with torch.enable_grad():
        loss = task.loss(net(batch.x), batch.y)
        return [g.detach() for g in torch.autograd.grad(loss, params)]


class ProbePlanner:
    """Picks the probed epochs under ``probe.budget``: the diagnostics (``diag_seconds``, which
    includes packing the checkpoint) may take at most ``budget`` × the training time so far
    (``train_seconds``), epoch 0 counted.

    Epoch 0, the last epoch and a diverged epoch are always probed. Any other epoch is probed when
    the time spent so far, plus what a probed epoch last cost, plus a reserve for the extra cost of
    the forced last probe, fits in ``budget`` × (training time including this epoch's); otherwise
    it gets the cheap diagnostics only. Costs are the latest measured ones (wall clock), so which
    epochs are probed depends on timings: a budgeted run is not bit-reproducible in *which* epochs
    are probed, while everything trained (weights, losses, gradient statistics) still is. After a
    resume the accounting starts afresh and the first epoch is probed to measure the cost.

    The budget moves only the probe: held-out evaluation, the gradient histograms and the
    checkpoint happen every epoch, so when they alone take more than the budget only the forced
    epochs are probed and the recorded share exceeds it."""

    def __init__(self, budget: float, last_epoch: int):
        self.budget = budget
        self.last = last_epoch
        self.trained = 0.0         # seconds of training so far
        self.spent = 0.0           # seconds of diagnostics so far
        self.cost_probed: float | None = None   # diag seconds of the latest probed epoch
        self.cost_plain: float | None = None    # diag seconds of the latest unprobed epoch
        self.probe_part = 0.0      # of cost_probed, the probe itself

    def wants(self, epoch: int, train_seconds: float) -> bool:
        if epoch == 0 or epoch == self.last or self.cost_probed is None:
            return True
        plain = self.cost_plain if self.cost_plain is not None else max(self.cost_probed - self.probe_part, 0.0)
        extra = max(self.cost_probed - plain, 0.0)
        return self.spent + self.cost_probed + extra <= self.budget * (self.trained + train_seconds)

    def record(self, rec: EpochRecord, probe_seconds: float) -> None:
        self.trained += rec.train_seconds
        self.spent += rec.diag_seconds
        if rec.probed:
            self.cost_probed, self.probe_part = rec.diag_seconds, probe_seconds
        else:
            self.cost_plain = rec.diag_seconds


class Trainer:
    """One run: the model, optimizer, task and the per-epoch bookkeeping."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.task = make_task(spec.task, spec.seed)
        self.net = build_model(spec, self.task).to(self.device)
        self.opt = make_optimizer(spec, self.net)
        self.names = [n for n, _ in self.net.named_params()]
        self.params = [p for _, p in self.net.named_params()]
        self.probe_batch = self.task.probe(spec.probe.batch_size).to(self.device)
        self.spec_hash = spec.spec_hash()
        budget = spec.probe.budget
        self.planner = ProbePlanner(budget, spec.epochs) if budget is not None else None
        self.probe_seconds = 0.0   # time of the probe (pass and layer statistics) in the latest diagnosis

    def info(self) -> RunInfo:
        return run_info(self.spec, self.task, self.net, str(self.device))

    def is_probe_epoch(self, epoch: int) -> bool:
        """Probed by the cadence alone (with a budget: only epoch 0 and the last; the planner adds more)."""
        if epoch == 0 or epoch == self.spec.epochs:
            return True
        return self.planner is None and epoch % self.spec.probe.every == 0

    # -- one optimizer step ----------------------------------------------------------------
    def step(self, epoch: int, step: int, stats: StepStats) -> None:
        clip = self.spec.clip
        b = self.task.batch(epoch, step, self.spec.batch_size).to(self.device)
        loss = self.task.loss(self.net(b.x), b.y)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        norms = foreach.norms(grads)
        total = torch.linalg.vector_norm(norms)  # the global norm, exactly as clip_grad_norm_ computes it
        if clip.mode == "norm":  # clip with the norms already at hand instead of clip_grad_norm_ (same result)
            clipped = total > clip.max_norm
            foreach.clip_by_total_norm_(grads, clip.max_norm, total)
        else:
            clipped = torch.zeros((), dtype=torch.bool, device=total.device)
            if clip.mode == "value":
                clipped = foreach.norms(grads, math.inf).max() > clip.clip_value
                torch.nn.utils.clip_grad_value_(self.params, clip.clip_value)
        stats.add(loss.detach(), norms, total, clipped)
        ok = torch.isfinite(loss) & torch.isfinite(total)
        if not bool(ok):  # the one host sync per step
            lv, tv = float(loss.detach()), float(total)
            what = "loss" if not math.isfinite(lv) else "gradient"
            raise _Diverged(f"non-finite {what} at epoch {epoch}, step {step} "
                            f"(loss {lv:.4g}, gradient norm {tv:.4g}); update skipped")
        self.opt.step()

    # -- one epoch -------------------------------------------------------------------------
    def run_epoch(self, epoch: int, should_stop, on_step) -> tuple[EpochRecord | None, str | None]:
        """Train one epoch (none for epoch 0) and diagnose it. Returns (record, divergence message);
        record is None when cancelled."""
        stats = StepStats(len(self.params), self.device)
        start = [p.detach().clone() for p in self.params]
        diverged = None
        t0 = time.perf_counter()
        steps = self.spec.steps_per_epoch if epoch > 0 else 0
        taken = 0  # optimizer updates applied (a non-finite step is recorded but not applied)
        for s in range(steps):
            if should_stop is not None and should_stop():
                return None, None
            try:
                self.step(epoch, s, stats)
            except _Diverged as d:
                diverged = d.message
                break
            taken += 1
            if on_step is not None:
                on_step(epoch, s)
        if diverged is None and steps and not all(
                bool(torch.isfinite(p).all()) for p in self.params):
            diverged = f"weights became non-finite after the updates of epoch {epoch}"
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        force = diverged is not None or (self.planner is not None and self.planner.wants(epoch, t1 - t0))
        rec = self.diagnose_epoch(epoch, stats, start, force)
        rec.train_seconds = t1 - t0
        rec.diag_seconds = time.perf_counter() - t1
        rec.steps = taken
        return rec, diverged

    def diagnose_epoch(self, epoch: int, stats: StepStats, start: list[torch.Tensor], force_probe: bool) -> EpochRecord:
        val_loss, val_metric, val_loss_se = evaluate(self.net, self.task, self.device)
        probed = force_probe or self.is_probe_epoch(epoch)
        tp = time.perf_counter()
        probe = run_probe(self.net, self.task, self.probe_batch) if probed else None
        layers = layer_stats(self.net, probe) if probe else []
        self.probe_seconds = time.perf_counter() - tp if probe else 0.0
        probe_grads = probe.param_grads if probe else _probe_grads(self.net, self.task, self.probe_batch)
        ratios, weight_norms = update_ratios(start, [p.detach() for p in self.params])
        if stats.steps:
            s = stats.summary()
            train_loss, gmean, gmax, clip_frac = (s["train_loss"], s["grad_norm_mean"], s["grad_norm_max"],
                                                  s["clip_fraction"])
            pmean, pmax, nonfinite = s["param_mean"], s["param_max"], s["nonfinite_steps"]
        else:  # epoch 0: gradient sizes from the probe batch
            pmean = foreach.norms(probe_grads).double().tolist()
            pmax = pmean
            gmean = gmax = global_norm(pmean)
            train_loss, clip_frac, nonfinite = None, None, 0
        return EpochRecord(
            epoch=epoch, steps=stats.steps, train_loss=train_loss, val_loss=val_loss, val_metric=val_metric,
            grad_norm_mean=gmean, grad_norm_max=gmax, clip_fraction=clip_frac, nonfinite_steps=nonfinite,
            train_seconds=0.0, diag_seconds=0.0, probed=probed,
            params=param_stats(self.names, pmean, pmax, ratios, weight_norms, probe_grads),
            layers=layers, val_loss_se=val_loss_se,
        )

    def account(self, rec: EpochRecord) -> None:
        """Count the epoch's measured times towards the probe budget (no-op without one)."""
        if self.planner is not None:
            self.planner.record(rec, self.probe_seconds)

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self, epoch: int) -> bytes:
        return checkpoint.pack(spec_hash=self.spec_hash, epoch=epoch,
                               model=self.net.state_dict(), optimizer=self.opt.state_dict())

    def restore(self, data: bytes) -> int:
        try:
            state = checkpoint.unpack(data, self.spec_hash, self.device)
        except EngineError:   # a checkpoint made before spec hashes were canonical (rnnlab.spec.legacy_hash)
            state = checkpoint.unpack(data, self.spec.legacy_hash(), self.device)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        return int(state["epoch"])


def train(
    spec: JobSpec,
    *,
    on_info: Callable[[RunInfo], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
    resume: bytes | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Train ``spec``, emitting RunInfo once, an EpochRecord for epoch 0 (at init) and 1..N, and a
    checkpoint after each. Ends 'succeeded', 'diverged' (non-finite loss/gradient) or 'cancelled'."""
    tr = Trainer(spec)
    if on_info is not None:
        on_info(tr.info())
    first = tr.restore(resume) + 1 if resume is not None else 0
    done = first - 1
    for epoch in range(first, spec.epochs + 1):
        if should_stop is not None and should_stop():
            return RunResult("cancelled", f"cancelled before epoch {epoch}", done)
        rec, diverged = tr.run_epoch(epoch, should_stop, on_step)
        if rec is None:
            return RunResult("cancelled", f"cancelled during epoch {epoch}", done)
        blob = None
        if not diverged and on_checkpoint is not None:  # packed before the record is emitted: its time is
            t = time.perf_counter()                      # part of the epoch's diag_seconds
            blob = tr.checkpoint(epoch)
            rec.diag_seconds += time.perf_counter() - t
        tr.account(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if diverged:
            return RunResult("diverged", diverged, done)
        done = epoch
        if blob is not None:
            on_checkpoint(epoch, blob)
    return RunResult("succeeded", f"trained {spec.epochs} epochs", done)
