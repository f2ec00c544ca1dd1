"""Baselines that mean something: on every seed the trivial predictor's loss on the held-out set is
within 2 % of the analytic baseline (../shared/reference/science.md), RunInfo carries that held-out
score, and val_loss comes with its standard error over the held-out sequences."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import describe
from models.build import build_model
from models.tasks import make_task
from models.train import evaluate
from rnnlab.spec import parse_spec

T = 50
# task → (its spec, the analytic trivial-predictor loss from science.md)
SYNTHETIC = {
    "adding-a16": ({"name": "adding", "variant": "a16", "seq_len": T}, 1 / 6),
    "adding-p13": ({"name": "adding", "variant": "p13", "seq_len": T}, 1 / 24),
    "copy": ({"name": "copy", "seq_len": T, "n_symbols": 8, "n_copy": 10}, 10 * math.log(8) / (T + 20)),
    "temporal_order": ({"name": "temporal_order", "seq_len": T}, math.log(4)),
}


def _task(task, seed=0):
    return make_task(parse_spec({"task": task, "seed": seed}).task, seed)


def _trivial_loss(name, task):
    """The trivial predictor's mean loss over the held-out set, computed here from the targets alone."""
    ys = [b.y.double().numpy() if b.y.is_floating_point() else b.y.numpy() for b in task.heldout()]
    if name == "adding-a16":
        return float(np.mean((np.concatenate(ys) - 1.0) ** 2))
    if name == "adding-p13":
        return float(np.mean((np.concatenate(ys) - 0.5) ** 2))
    if name == "copy":   # ln n for each recalled symbol (uniform guess), 0 for each certain blank
        y = np.concatenate(ys, axis=1)
        return float((y > 0).sum() * math.log(8) / y.size)
    return math.log(4)   # chance over four classes, whatever the labels


@pytest.mark.parametrize("name", SYNTHETIC)
def test_trivial_predictor_on_the_heldout_set_is_within_2_percent_of_analytic(name):
    task_spec, analytic = SYNTHETIC[name]
    for seed in range(10):
        task = _task(task_spec, seed)
        measured = _trivial_loss(name, task)
        assert measured == pytest.approx(analytic, rel=0.02), f"seed {seed}: {measured} vs {analytic}"
        assert task.baseline_heldout_loss() == pytest.approx(measured, rel=1e-9)


def test_run_info_carries_the_heldout_baseline_for_every_task(tmp_path):
    spec = lambda task: parse_spec({"task": task, "hidden_size": 4})  # noqa: E731
    adding = describe(spec(SYNTHETIC["adding-a16"][0]))
    assert adding.baseline_heldout_loss == pytest.approx(_trivial_loss("adding-a16", _task(SYNTHETIC["adding-a16"][0])))
    digits = _task({"name": "digits"})
    prior = np.bincount(digits.y[digits.train_idx], minlength=10) / len(digits.train_idx)
    want = -np.mean(np.log(prior[digits.y[digits.held_idx]]))   # cross-entropy of the prior on held-out labels
    assert describe(spec({"name": "digits"})).baseline_heldout_loss == pytest.approx(want, rel=1e-9)
    forecast = describe(spec({"name": "forecast", "seq_len": 30}))
    assert forecast.baseline_heldout_loss == forecast.baseline_loss   # persistence is measured on the held-out set
    charlm = describe(spec({"name": "charlm", "seq_len": 20}))
    assert charlm.baseline_heldout_loss == pytest.approx(charlm.baseline_loss, rel=0.05)
    text = tmp_path / "t.txt"
    text.write_text("ab" * 900 + "q" * 100)   # "q" appears only in the held-out tenth
    unseen = describe(spec({"name": "charlm", "path": str(text), "seq_len": 10}))
    assert math.isfinite(unseen.baseline_loss) and math.isnan(unseen.baseline_heldout_loss)


@pytest.mark.parametrize("name", ["adding-a16", "copy"])
def test_val_loss_and_its_standard_error_from_per_sequence_losses(name):
    task_spec, _ = SYNTHETIC[name]
    spec = parse_spec({"task": {**task_spec, "seq_len": 12}, "hidden_size": 6, "cell": "gru"})
    task = make_task(spec.task, spec.seed)
    net = build_model(spec, task)
    val_loss, _, se = evaluate(net, task, torch.device("cpu"))
    per_seq = []
    with torch.no_grad():
        for b in task.heldout():
            for i in range(b.size):   # one sequence at a time, with torch's own loss functions
                out, y = net(b.x[:, i:i + 1]), (b.y[:, i] if task.output_mode == "every" else b.y[i:i + 1])
                if task.loss_name == "mse":
                    per_seq.append(F.mse_loss(out.reshape(y.shape), y).item())
                else:
                    per_seq.append(F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).item())
    per_seq = np.array(per_seq)
    assert len(per_seq) == task.heldout_size
    assert val_loss == pytest.approx(per_seq.mean(), rel=1e-5)
    assert se == pytest.approx(per_seq.std(ddof=1) / math.sqrt(len(per_seq)), rel=1e-4)


@pytest.mark.parametrize("task", [{"name": "adding", "seq_len": T}, {"name": "adding", "variant": "p13", "seq_len": T},
                                  {"name": "copy", "seq_len": T}, {"name": "temporal_order", "seq_len": T},
                                  {"name": "digits"}, {"name": "digits", "permuted": True}, {"name": "charlm"},
                                  {"name": "forecast", "seq_len": T},
                                  {"name": "forecast", "series": "mackey_glass", "seq_len": T}])
def test_the_metric_baseline_depends_on_the_seed_exactly_for_the_seeded_tasks(task):
    """rnnlab.spec.SEEDED_METRIC_BASELINE tells the dashboard which tasks' metric baselines are measured
    on each seed's held-out set (one band on the metric chart) and which are one value (one line): the
    engine's tasks, built on three seeds, agree with it."""
    from rnnlab.spec import SEEDED_METRIC_BASELINE, TASK_NAMES

    assert set(SEEDED_METRIC_BASELINE) <= set(TASK_NAMES)
    values = {_task(task, seed).baseline_metric for seed in (0, 1, 2)}
    assert (len(values) == 3) == (task["name"] in SEEDED_METRIC_BASELINE), values
    assert len(values) in (1, 3), values
