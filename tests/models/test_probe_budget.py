"""probe.budget: the planner's choices on known costs, and the engine's wiring (which epochs, what is recorded).

Whether the measured share of a real run stays within the budget is a timing question: it is
measured by bench/probe_budget.py, not asserted here."""

import math

import pytest

from models import train
from models.train import ProbePlanner
from rnnlab.records import EpochRecord
from rnnlab.spec import SpecError, parse_spec


def _rec(epoch: int, train_s: float, diag_s: float, probed: bool) -> EpochRecord:
    return EpochRecord(epoch=epoch, steps=1, train_loss=None, val_loss=0.0, val_metric=0.0, grad_norm_mean=0.0,
                       grad_norm_max=0.0, clip_fraction=None, nonfinite_steps=0, train_seconds=train_s,
                       diag_seconds=diag_s, probed=probed)


def simulate(budget, epochs, train_s, probed_s, plain_s, probe_part):
    """Drive the planner with constant costs, as the engine does; returns (probed epochs, spent, trained)."""
    pl = ProbePlanner(budget, epochs)
    probed = []
    for e in range(epochs + 1):
        t = 0.0 if e == 0 else train_s
        p = pl.wants(e, t)
        if p:
            probed.append(e)
        pl.record(_rec(e, t, probed_s if p else plain_s, p), probe_part if p else 0.0)
    return probed, pl.spent, pl.trained


def test_a_hand_worked_case():
    # budget 0.1, 10 s of training per epoch, a probed epoch costs 2 s of which the probe 1.5 s, else 0.5 s.
    # Epoch 0 spends 2 s. Epoch k (unprobed so far) has spent 2 + 0.5(k−1); probing it needs that
    # + 2 + the 1.5 s reserve ≤ 0.1 · 10k, i.e. 5.5 + 0.5(k−1) ≤ k: first true at k = 10.
    probed, spent, trained = simulate(0.1, 12, 10.0, 2.0, 0.5, 1.5)
    assert probed == [0, 10, 12]
    assert spent == pytest.approx(2.0 + 10 * 0.5 + 2.0 + 2.0) and trained == pytest.approx(120.0)


@pytest.mark.parametrize("budget,probed_s,plain_s", [(0.03, 0.35, 0.1), (0.05, 0.4, 0.1), (0.2, 3.0, 0.5),
                                                     (0.01, 0.2, 0.02)])
def test_a_long_run_uses_its_budget_and_never_exceeds_it(budget, probed_s, plain_s):
    epochs, train_s = 300, 5.0
    probed, spent, trained = simulate(budget, epochs, train_s, probed_s, plain_s, probed_s - plain_s)
    share = spent / trained
    assert share <= budget
    assert share >= budget - probed_s / train_s / 10          # within a tenth of one probe per epoch of it
    assert probed[0] == 0 and probed[-1] == epochs
    inner = probed[1:-1]   # after epoch 0's debt is paid and before the forced last one: evenly spread
    gaps = [b - a for a, b in zip(inner, inner[1:])]
    assert gaps and max(gaps) - min(gaps) <= 2     # a steady cadence, give or take one epoch either way


def test_when_the_fixed_diagnostics_alone_exceed_the_budget_only_the_forced_epochs_are_probed():
    probed, spent, trained = simulate(0.01, 50, 1.0, 0.5, 0.2, 0.3)   # unprobed epochs cost 20% already
    assert probed == [0, 50]
    assert spent / trained > 0.01                                 # honestly recorded as over budget


def test_the_spec_field_is_bounded_and_excludes_every():
    assert parse_spec({"probe": {"budget": 0.03}}).probe.budget == 0.03
    for bad, words in [({"budget": 0}, "probe.budget"), ({"budget": 1.5}, "probe.budget"),
                       ({"budget": 0.05, "every": 3}, "exclude each other")]:
        with pytest.raises(SpecError, match=words):
            parse_spec({"probe": bad})
    # no budget: no key, so existing specs keep their hashes
    assert "budget" not in parse_spec({}).to_dict()["probe"]
    assert parse_spec({}).spec_hash() != parse_spec({"probe": {"budget": 0.5}}).spec_hash()


def _numbers(rec):
    d = rec.to_dict()
    for k in ("train_seconds", "diag_seconds"):
        d.pop(k)
    return d


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_a_tiny_budget_probes_epoch_0_and_the_last_and_trains_exactly_as_without(tiny):
    # any probe costs far more than 0.1% of a few milliseconds of training
    budgeted, plain = [], []
    train(tiny(epochs=4, probe={"batch_size": 3, "budget": 0.001}), on_epoch=budgeted.append)
    train(tiny(epochs=4, probe={"batch_size": 3, "every": 4}), on_epoch=plain.append)
    assert [r.probed for r in budgeted] == [True, False, False, False, True]
    assert [bool(r.layers) for r in budgeted] == [True, False, False, False, True]
    assert all(_same(_numbers(a), _numbers(b)) for a, b in zip(budgeted, plain))
    assert all(r.diag_seconds > 0 and (r.epoch == 0 or r.train_seconds > 0) for r in budgeted)


def test_a_diverged_epoch_is_probed_under_a_budget(tiny):
    spec = tiny(cell="rnn", activation="relu", init="identity", optimizer={"name": "sgd", "lr": 10.0},
                epochs=5, steps_per_epoch=5, task={"name": "adding", "seq_len": 30},
                probe={"batch_size": 3, "budget": 0.001})
    recs = []
    res = train(spec, on_epoch=recs.append)
    assert res.outcome == "diverged" and recs[-1].epoch < 5
    assert recs[-1].probed and recs[-1].layers
    assert [r.probed for r in recs[1:-1]] == [False] * (len(recs) - 2)


def test_the_checkpoint_time_is_part_of_diag_seconds(tiny, monkeypatch):
    # packing happens before the record is emitted, so the record on_epoch sees already includes it;
    # a packer made 0.3 s slower shows up in every epoch's diag_seconds, and the callbacks keep their order
    import time

    from models import checkpoint
    real = checkpoint.pack

    def slow_pack(**kw):
        time.sleep(0.3)
        return real(**kw)

    monkeypatch.setattr(checkpoint, "pack", slow_pack)
    order, recs = [], []
    train(tiny(epochs=1), on_epoch=lambda r: (order.append(("epoch", r.epoch)), recs.append(r)),
          on_checkpoint=lambda e, b: order.append(("checkpoint", e)))
    assert order == [("epoch", 0), ("checkpoint", 0), ("epoch", 1), ("checkpoint", 1)]
    assert all(r.diag_seconds >= 0.3 for r in recs)
