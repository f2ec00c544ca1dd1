"""Synthetic EpochRecords shaped like the engine's, for tests, benchmarks and demo databases."""

from __future__ import annotations

import math
import random

from rnnlab.records import HIST_LEN, EpochRecord, LayerStat, ParamStat, RunInfo


def param_names(cell: str, num_layers: int) -> list[str]:
    names = [f"{w}_l{k}" for k in range(num_layers) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return names + ["head.weight", "head.bias"]


def run_info(cell: str = "rnn", seq_len: int = 100, num_layers: int = 1) -> RunInfo:
    return RunInfo(task="adding", variant="a16", seq_len=seq_len, metric_name="mse", higher_is_better=False,
                   baseline_loss=1 / 6, baseline_metric=1 / 6, loss_name="mse", num_params=1234, device="cpu",
                   gamma=1.0 if cell == "rnn" else None, param_names=param_names(cell, num_layers))


def epoch_record(epoch: int, *, cell: str = "rnn", seq_len: int = 100, num_layers: int = 1,
                 seed: int = 0, nonfinite: bool = False) -> EpochRecord:
    """One epoch with full-precision random floats; ``nonfinite`` plants NaN, +inf and -inf."""
    rng = random.Random(seed * 100_003 + epoch)
    decay = 0.02 + 0.05 * rng.random()

    def profile() -> list[float]:
        return [math.exp(-decay * (seq_len - t)) * (0.5 + rng.random()) for t in range(1, seq_len + 1)]

    gated = cell != "rnn"
    layers = []
    for k in range(num_layers):
        grad_h = profile()
        layers.append(LayerStat(
            layer=k, rho=0.9 + rng.random() / 10, sigma_max=1 + rng.random(),
            gamma_sigma_max=None if gated else 1 + rng.random(),
            gate_spectra={g: {"rho": rng.random(), "sigma_max": rng.random()} for g in "ifgo"} if gated else {},
            saturated_frac=rng.random(), dead_frac=None,
            gate_mean={g: rng.random() for g in "ifo"} if gated else {},
            gate_saturated={g: rng.random() for g in "ifo"} if gated else {},
            grad_h=grad_h, grad_c=profile() if cell == "lstm" else None,
            log_ratio=math.log10(grad_h[0] / grad_h[-1]), decay_per_step=-decay / math.log(10),
            horizon=1 / decay, steps_in_past=rng.random() * seq_len,
        ))
    params = [ParamStat(name=n, grad_norm_mean=rng.random(), grad_norm_max=1 + rng.random(),
                        update_ratio=rng.random() / 100, weight_norm=5 * rng.random(),
                        hist=[rng.randrange(1000) for _ in range(HIST_LEN)], hist_zeros=rng.randrange(3),
                        hist_nonfinite=0)
              for n in param_names(cell, num_layers)]
    rec = EpochRecord(
        epoch=epoch, steps=0 if epoch == 0 else 50, train_loss=None if epoch == 0 else rng.random(),
        val_loss=rng.random(), val_metric=rng.random(), grad_norm_mean=rng.random(), grad_norm_max=2 * rng.random(),
        clip_fraction=None if epoch == 0 else rng.random(), nonfinite_steps=0, train_seconds=rng.random(),
        diag_seconds=rng.random() / 10, probed=True, params=params, layers=layers,
    )
    if nonfinite:
        rec.val_loss, rec.grad_norm_max, rec.train_loss = math.nan, math.inf, -math.inf
        rec.nonfinite_steps = 3
        params[0].grad_norm_mean, params[0].update_ratio = math.nan, math.inf
        layers[0].horizon, layers[0].log_ratio = math.nan, -math.inf
        layers[0].grad_h[0], layers[0].grad_h[1], layers[0].grad_h[2] = math.nan, math.inf, -math.inf
        if gated:
            layers[0].gate_mean["i"] = math.nan
    return rec


def seed_demo(url: str | None = None) -> list[int]:
    """Fill a database with a few finished runs of synthetic records (succeeded, diverged with NaN,
    one that lost a worker and resumed, one still queued); returns the run ids."""
    import time

    from db import store
    from rnnlab.spec import parse_spec

    def spec(**kw):
        return parse_spec({"hidden_size": 8, "epochs": 2, "steps_per_epoch": 2, **kw})

    plan = [
        (spec(task={"name": "adding", "seq_len": 10}), "succeeded", ["demo"]),
        (spec(task={"name": "adding", "seq_len": 20}, seed=1), "succeeded", ["demo"]),
        (spec(task={"name": "adding", "seq_len": 10}, cell="lstm", num_layers=2), "succeeded", []),
        (spec(task={"name": "adding", "seq_len": 10}, activation="relu"), "diverged", []),
        (spec(task={"name": "adding", "seq_len": 10}, cell="gru"), "lost-then-succeeded", []),
        (spec(task={"name": "adding", "seq_len": 10}, seed=5), "queued", []),
    ]
    ids = []
    for sp, outcome, tags in plan:
        (run_id,) = store.create_runs([sp], tags=tags, owner="demo", url=url)
        ids.append(run_id)
        if outcome == "queued":
            continue
        claimed = store.claim_run(run_id, "demo-worker@host", url=url)
        T, cell, layers = sp.task.seq_len, sp.cell, sp.num_layers
        store.record_info(run_id, run_info(cell, T, layers), attempt=None, url=url)
        for epoch in range(sp.epochs + 1):
            bad = outcome == "diverged" and epoch == sp.epochs
            store.record_epoch(run_id, epoch_record(epoch, cell=cell, seq_len=T, num_layers=layers, seed=run_id,
                                                    nonfinite=bad), attempt=None, url=url)
            store.save_checkpoint(run_id, epoch, b"demo", attempt=None, url=url)
            if outcome == "lost-then-succeeded" and epoch == 1 and claimed["attempt"] == 1:
                time.sleep(0.02)
                store.claim_run(run_id, "demo-worker-2@host", stale_after_s=0.01, url=url)
        if outcome == "diverged":
            store.finish_run(run_id, "diverged", f"non-finite loss at epoch {sp.epochs}", attempt=None, url=url)
        else:
            store.finish_run(run_id, "succeeded", f"trained {sp.epochs} epochs", attempt=None, url=url)
    return ids
