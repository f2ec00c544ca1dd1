"""Task data and baselines, checked empirically on generated data; every task runs with every cell."""

import collections
import math

import numpy as np
import pytest
import torch

from models import EngineError, describe, train
from models.tasks import make_task
from rnnlab.spec import parse_spec


def _task(**task):
    spec = parse_spec({"task": task})
    return make_task(spec.task, spec.seed)


def _many(task, n_batches=40, B=500):
    return [task.batch(1, s, B) for s in range(n_batches)]


def test_adding_a16_data_and_baselines():
    t = _task(name="adding", variant="a16", seq_len=30)
    ys = []
    for b in _many(t):
        marks = b.x[:, :, 1]
        assert torch.all(marks[:15].sum(0) == 1) and torch.all(marks[15:].sum(0) == 1)  # one per half
        np.testing.assert_allclose((b.x[:, :, 0] * marks).sum(0).numpy(), b.y[:, 0].numpy(), rtol=1e-6)
        ys.append(b.y[:, 0].numpy())
    y = np.concatenate(ys)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(t.baseline_loss, rel=0.03)      # 1/6
    assert t.baseline_loss == pytest.approx(1 / 6)
    assert np.mean((y - 1.0) ** 2 < 0.04) == pytest.approx(t.baseline_metric, abs=0.01)
    assert np.mean((y - y.mean()) ** 2) == pytest.approx(1 / 6, rel=0.03)            # predicting 1 is optimal


def test_adding_p13_lengths_markers_and_baselines():
    t = _task(name="adding", variant="p13", seq_len=50)
    ys, lengths = [], set()
    for b in _many(t):
        L = b.x.shape[0]
        lengths.add(L)
        assert 50 <= L < 55
        pos = b.x[:, :, 1].T.nonzero()           # (example, step), sorted by example then step
        first, second = pos[::2, 1], pos[1::2, 1]
        assert (torch.all(first < int(L * 0.1)) and torch.all(second >= int(L * 0.1))
                and torch.all(second < int(L * 0.5)))
        ys.append(b.y[:, 0].numpy())
    y = np.concatenate(ys)
    assert len(lengths) > 1
    assert t.baseline_loss == pytest.approx(1 / 24)
    assert np.mean((y - 0.5) ** 2) == pytest.approx(1 / 24, rel=0.03)
    assert np.mean((y - 0.5) ** 2 < 0.04) == pytest.approx(t.baseline_metric, abs=0.01)


@pytest.mark.parametrize("T,n,k", [(50, 8, 10), (20, 4, 3)])
def test_copy_layout_and_memoryless_baseline(T, n, k):
    t = _task(name="copy", seq_len=T, n_symbols=n, n_copy=k)
    bs = _many(t, 10, 400)
    b = bs[0]
    L = T + 2 * k
    assert b.x.shape == (L, 400, n + 2) and b.y.shape == (L, 400)
    seq = b.x.argmax(-1)
    assert torch.all(seq[T + k - 1] == n + 1) and torch.all(seq[k:T + k - 1] == 0) and torch.all(seq[T + k:] == 0)
    assert torch.equal(b.y[-k:], seq[:k]) and torch.all(b.y[:-k] == 0)
    # the best memoryless predictor outputs each position's marginal: its CE is the mean entropy
    y = torch.cat([b.y for b in bs], 1).numpy()
    ce = 0.0
    for pos in range(L):
        counts = np.bincount(y[pos], minlength=n + 1).astype(float)
        p = counts[counts > 0] / counts.sum()
        ce -= (p * np.log(p)).sum()
    assert ce / L == pytest.approx(t.baseline_loss, rel=0.02)
    assert t.baseline_loss == pytest.approx(k * math.log(n) / (T + 2 * k))


def test_temporal_order_positions_and_chance():
    L = 60
    t = _task(name="temporal_order", seq_len=L)
    ys = []
    for b in _many(t, 10):
        sym = b.x.argmax(-1)
        rel = (sym < 2).T.nonzero()              # (example, step), sorted by example then step
        p0, p1 = rel[::2, 1], rel[1::2, 1]
        assert torch.all((p0 >= 6) & (p0 < 12)) and torch.all((p1 >= 30) & (p1 < 36))
        ex = rel[::2, 0]
        assert torch.equal(sym[p0, ex] + 2 * sym[p1, ex], b.y)
        ys.append(b.y.numpy())
    freq = np.bincount(np.concatenate(ys), minlength=4) / (10 * 500)
    np.testing.assert_allclose(freq, 0.25, atol=0.02)
    assert t.baseline_metric == 0.25 and t.baseline_loss == pytest.approx(math.log(4))


def test_digits_split_and_permutation():
    plain, perm = _task(name="digits"), _task(name="digits", permuted=True, perm_seed=3)
    assert set(plain.train_idx).isdisjoint(plain.held_idx) and len(plain.train_idx) + len(plain.held_idx) == 1797
    assert np.array_equal(plain.held_idx, _task(name="digits").held_idx)  # fixed split
    a, b = plain.heldout()[0], perm.heldout()[0]
    assert a.x.shape[0] == 64 and torch.equal(a.y, b.y)
    assert torch.equal(a.x.sort(0).values, b.x.sort(0).values) and not torch.equal(a.x, b.x)
    assert sum(h.size for h in plain.heldout()) == len(plain.held_idx)


def test_charlm_baseline_is_unigram_entropy_of_training_text(tmp_path):
    text = "abracadabra " * 50 + "zzz" * 40
    f = tmp_path / "t.txt"
    f.write_text(text)
    t = _task(name="charlm", path=str(f), seq_len=10)
    train_text = text[: int(len(text) * 0.9)]
    c = collections.Counter(train_text)
    h_bits = -sum(v / len(train_text) * math.log2(v / len(train_text)) for v in c.values())
    assert t.baseline_metric == pytest.approx(h_bits)
    b = t.batch(1, 0, 4)
    assert torch.equal(b.x.argmax(-1)[1:], b.y[:-1])  # the target is the next character
    bundled = _task(name="charlm")
    assert len(bundled.train) > 15_000 and 3.0 < bundled.baseline_metric < 5.0


def test_charlm_missing_file_is_an_engine_error():
    with pytest.raises(EngineError, match="not found"):
        _task(name="charlm", path="/nonexistent/text.txt")


@pytest.mark.parametrize("series", ["sine", "mackey_glass"])
def test_forecast_target_is_next_value_and_persistence_baseline(series):
    t = _task(name="forecast", series=series, seq_len=30)
    b = t.heldout()[0]
    assert torch.equal(b.x[1:], b.y[:-1])
    err = np.mean([((h.y - h.x) ** 2).double().mean().item() for h in t.heldout()])
    assert t.baseline_loss == pytest.approx(err, rel=1e-6)


def test_mackey_glass_follows_its_equation():
    from models.tasks.forecast import mackey_glass
    x = mackey_glass(400)
    assert 0.2 < x.min() and x.max() < 1.6 and x.std() > 0.1   # the chaotic attractor's range
    # dx/dt ≈ 0.2·x(t−17)/(1+x(t−17)^10) − 0.1·x(t), checked with a central difference
    t = np.arange(20, 399)
    dxdt = (x[t + 1] - x[t - 1]) / 2
    rhs = 0.2 * x[t - 17] / (1 + x[t - 17] ** 10) - 0.1 * x[t]
    assert np.corrcoef(dxdt, rhs)[0, 1] > 0.95


def test_forecast_csv(tmp_path):
    f = tmp_path / "s.csv"
    rows = ["t,a,label,b"] + [f"{i},{math.sin(i / 5):.5f},x{i},{i % 7}" for i in range(300)]
    f.write_text("\n".join(rows))
    t = _task(name="forecast", series="csv", path=str(f), seq_len=20)
    assert t.series.shape == (300, 3)   # the non-numeric column is dropped
    with pytest.raises(EngineError, match="seq_len"):
        _task(name="forecast", series="csv", path=str(f), seq_len=100)


TASKS = [
    {"name": "adding", "seq_len": 8}, {"name": "adding", "variant": "p13", "seq_len": 10},
    {"name": "copy", "seq_len": 5, "n_copy": 2, "n_symbols": 3}, {"name": "temporal_order", "seq_len": 10},
    {"name": "digits"}, {"name": "digits", "permuted": True}, {"name": "charlm", "seq_len": 8},
    {"name": "forecast", "seq_len": 8}, {"name": "forecast", "series": "mackey_glass", "seq_len": 8},
]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task", TASKS, ids=lambda t: "-".join(str(v) for v in t.values()))
def test_every_task_runs_with_every_cell(tiny, task, cell):
    spec = tiny(cell=cell, task=task, epochs=1, steps_per_epoch=2, hidden_size=4)
    recs = []
    info = describe(spec)
    res = train(spec, on_epoch=recs.append)
    assert res.outcome == "succeeded", res.message
    assert info.task == task["name"] and len(recs[1].layers[0].grad_h) == info.seq_len
    assert all(math.isfinite(r.val_loss) and math.isfinite(r.val_metric) for r in recs)
    assert math.isfinite(info.baseline_loss) and math.isfinite(info.baseline_metric)
