"""Realistic runs for dashboard tests, benchmarks and screenshots, written through the real store
(db.store) into a real database: gradient profiles that decay geometrically at a rate set by the
cell (and obey the vanilla bound ‖g_{t−1}‖ ≤ γ·σ_max·‖g_t‖), losses that fall or stay on the
baseline, histograms on the fixed bins of rnnlab.records."""

from __future__ import annotations

import math

import numpy as np

from db import store
from rnnlab.records import HIST_EDGES, HIST_LEN, EpochRecord, LayerStat, ParamStat, RunInfo
from rnnlab.spec import JobSpec, parse_spec
from tests.synthetic import param_names

GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "leaky_relu": 1.0, "prelu": 1.0}
# per-step decay of ‖∂L/∂h_t‖ after training, and the loss reached (fraction of the baseline)
BEHAVIOUR = {"rnn": (0.90, 0.97), "gru": (0.985, 0.08), "lstm": (0.993, 0.03)}


def spec(cell: str = "rnn", seq_len: int = 50, num_layers: int = 1, seed: int = 0, epochs: int = 5,
         **extra) -> JobSpec:
    return parse_spec({"cell": cell, "task": {"name": "adding", "seq_len": seq_len}, "num_layers": num_layers,
                       "seed": seed, "epochs": epochs, "hidden_size": 32, "steps_per_epoch": 20, **extra})


def info_for(s: JobSpec) -> RunInfo:
    return RunInfo(task="adding", variant=s.task.variant, seq_len=s.task.seq_len, metric_name="mse",
                   higher_is_better=False, baseline_loss=1 / 6, baseline_metric=1 / 6, loss_name="mse",
                   num_params=4 * s.hidden_size ** 2, device="cpu",
                   gamma=GAMMA[s.act] if s.cell == "rnn" else None, param_names=param_names(s.cell, s.num_layers))


def _hist(rng: np.random.Generator, centre: float, n: int = 4000) -> list[int]:
    x = rng.normal(centre, 0.8, n)
    inner, _ = np.histogram(x, bins=HIST_EDGES)
    out = [int((x < HIST_EDGES[0]).sum()), *map(int, inner), int((x >= HIST_EDGES[-1]).sum())]
    assert len(out) == HIST_LEN
    return out


def records(s: JobSpec, *, diverge_at: int | None = None) -> list[EpochRecord]:
    """Epochs 0..s.epochs of a plausible run of ``s`` (deterministic in the seed)."""
    # sum of ord(), not hash(): str hashes change from process to process, and so would the data
    rng = np.random.default_rng(s.seed * 7919 + s.task.seq_len + 13 * s.num_layers + sum(map(ord, s.cell)) % 97)
    T, E = s.task.seq_len, s.epochs
    final_rate, final_frac = BEHAVIOUR[s.cell]
    gamma = GAMMA[s.act] if s.cell == "rnn" else None
    if s.cell == "rnn" and s.act == "sigmoid":
        final_rate = 0.6
    out = []
    for e in range(E + 1):
        f = e / max(E, 1)
        rate = (0.8 + (final_rate - 0.8) * f) * (1 + rng.normal(0, 0.003))
        loss = (1 / 6) * (1 - (1 - final_frac) * (1 - math.exp(-4 * f))) * (1 + rng.normal(0, 0.02))
        layers = []
        for k in range(s.num_layers):
            sigma = 1.14 + 0.3 * f + 0.05 * k
            r = min(rate * (0.97 ** k), (gamma or 1) * sigma * 0.999)
            steps_back = np.arange(T)[::-1]           # k = T − t for t = 1..T
            g = 0.05 * np.power(r, steps_back) * np.exp(rng.normal(0, 0.05, T))
            if gamma is not None:                     # keep the vanilla bound exact step by step
                for t in range(T - 2, -1, -1):
                    g[t] = min(g[t], gamma * sigma * g[t + 1])
            slope = float(np.polyfit(np.arange(T), np.log10(g[::-1]), 1)[0])
            layers.append(LayerStat(
                layer=k, rho=0.56 + 0.4 * f, sigma_max=sigma, gamma_sigma_max=None if gamma is None else gamma * sigma,
                gate_spectra={} if s.cell == "rnn" else {"f": {"rho": 0.9, "sigma_max": 1.2}},
                saturated_frac=0.05 + 0.2 * f if s.act in ("tanh", "sigmoid") or s.cell != "rnn" else None,
                dead_frac=0.1 * f if s.act == "relu" else None, gate_mean={}, gate_saturated={},
                grad_h=g.tolist(), grad_c=(g * 1.5).tolist() if s.cell == "lstm" else None,
                log_ratio=float(math.log10(g[0] / g[-1])), decay_per_step=slope,
                horizon=float(-1 / slope) if slope < 0 else float(T),
                steps_in_past=float((g ** 2 >= 1e-20).mean() * T)))
        params = [ParamStat(name=n, grad_norm_mean=float(0.1 * (1 + rng.random()) * (0.5 if "bias" in n else 1)),
                            grad_norm_max=float(0.3 + rng.random()), update_ratio=float(1e-3 * (1 + rng.random())),
                            weight_norm=float(3 + f), hist=_hist(rng, -3.5 + (1.0 if s.cell != "rnn" else 0) - 0.5 * f),
                            hist_zeros=int(rng.integers(0, 5)), hist_nonfinite=0)
                  for n in param_names(s.cell, s.num_layers)]
        rec = EpochRecord(
            epoch=e, steps=0 if e == 0 else s.steps_per_epoch, train_loss=None if e == 0 else loss * 1.05,
            val_loss=loss, val_metric=loss, grad_norm_mean=float(0.2 + 0.1 * rng.random()),
            grad_norm_max=float(0.5 + rng.random()), clip_fraction=None if e == 0 else float(0.3 * (1 - f)),
            nonfinite_steps=0, train_seconds=0.0 if e == 0 else 0.02 * T * s.num_layers / 50,
            diag_seconds=0.01, probed=True, params=params, layers=layers)
        if diverge_at is not None and e == diverge_at:
            rec.val_loss, rec.train_loss, rec.grad_norm_max, rec.nonfinite_steps = math.nan, math.inf, math.inf, 3
        out.append(rec)
        if diverge_at is not None and e == diverge_at:
            break
    return out


def seed_run(url: str, s: JobSpec, *, status: str = "succeeded", worker: str = "seed-worker@lab",
             epochs_done: int | None = None, tags: tuple[str, ...] = (), owner: str | None = "local",
             sweep=None) -> int:
    """Create a run and take it through the store like a worker would, ending in ``status``."""
    (run_id,) = store.create_runs([s], owner=owner, tags=tags, sweep=sweep, url=url)
    if status == "queued":
        return run_id
    store.claim_run(run_id, worker, url=url)
    store.record_info(run_id, info_for(s), attempt=1, url=url)
    recs = records(s, diverge_at=2 if status == "diverged" else None)
    if epochs_done is not None:
        recs = recs[:epochs_done + 1]
    for rec in recs:
        store.record_epoch(run_id, rec, attempt=1, url=url)
    store.record_diagnosis(run_id, _diagnosis(recs[-1]), attempt=1, url=url)
    if status != "running":
        msg = {"succeeded": f"finished {s.epochs} epochs", "diverged": "non-finite loss at epoch 2",
               "failed": "engine error", "cancelled": "cancelled by local"}[status]
        store.finish_run(run_id, status, msg, attempt=1, url=url)
    return run_id


def _diagnosis(rec: EpochRecord) -> str:
    if not rec.layers:
        return ""
    l0 = rec.layers[0]
    word = "gradients vanish" if l0.log_ratio < -3 else "gradients flow"
    return f"{word}: ‖g_1‖/‖g_T‖ = 1e{l0.log_ratio:.0f}, horizon {l0.horizon:.0f} steps"


def seed_worker(url: str, name: str = "seed-worker@lab", current: int | None = None) -> None:
    store.heartbeat(name, host="lab", pid=123, queues="cpu", device="cpu", url=url)


def small_lab(url: str) -> dict[str, list[int]]:
    """A few runs of each kind: 3 cells × 2 seeds succeeded on adding T=50, one running, one queued,
    one diverged; a worker; tags. Returns ids by role."""
    ids: dict[str, list[int]] = {"cells": []}
    for cell in ("rnn", "lstm", "gru"):
        for seed in (0, 1):
            ids["cells"].append(seed_run(url, spec(cell, seed=seed), tags=("cells", f"seed{seed}")))
    ids["running"] = [seed_run(url, spec("lstm", seed=5, epochs=8), status="running", epochs_done=3)]
    ids["queued"] = [seed_run(url, spec("gru", seed=6), status="queued", tags=("<b>html</b>",))]
    ids["diverged"] = [seed_run(url, spec("rnn", seed=7, activation="relu"), status="diverged")]
    seed_worker(url)
    return ids
