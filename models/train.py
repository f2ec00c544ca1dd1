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


@torch.inference_mode()
def evaluate(net, task: Task, device: torch.device) -> tuple[float, float, float]:
    """Over the fixed held-out set: the mean of the per-sequence losses, the metric (weighted by batch
    size) and the loss's standard error, sample std of the per-sequence losses / √N (NaN for N < 2)."""
    net.eval()
    losses, metric, n = [], 0.0, 0
    for b in task.heldout():
        b = b.to(device)
        out = net(b.x)
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

    def info(self) -> RunInfo:
        return run_info(self.spec, self.task, self.net, str(self.device))

    def is_probe_epoch(self, epoch: int) -> bool:
        return epoch == 0 or epoch == self.spec.epochs or epoch % self.spec.probe.every == 0

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
        rec = self.diagnose_epoch(epoch, stats, start, diverged is not None)
        rec.train_seconds = t1 - t0
        rec.diag_seconds = time.perf_counter() - t1
        rec.steps = taken
        return rec, diverged

    def diagnose_epoch(self, epoch: int, stats: StepStats, start: list[torch.Tensor], force_probe: bool) -> EpochRecord:
        val_loss, val_metric, val_loss_se = evaluate(self.net, self.task, self.device)
        probed = force_probe or self.is_probe_epoch(epoch)
        probe = run_probe(self.net, self.task, self.probe_batch) if probed else None
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
            layers=layer_stats(self.net, probe) if probe else [], val_loss_se=val_loss_se,
        )

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
        if on_epoch is not None:
            on_epoch(rec)
        if diverged:
            return RunResult("diverged", diverged, done)
        done = epoch
        if on_checkpoint is not None:
            on_checkpoint(epoch, tr.checkpoint(epoch))
    return RunResult("succeeded", f"trained {spec.epochs} epochs", done)
