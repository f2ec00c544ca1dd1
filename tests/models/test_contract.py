"""Contract 1: callbacks, epochs 0..N, determinism, checkpoint-resume, cancellation, EngineError."""

import math

import pytest
import torch

from models import EngineError, describe, diagnose, train


def _run(spec, **kw):
    recs, cks, infos = [], [], []
    res = train(spec, on_info=infos.append, on_epoch=recs.append,
                on_checkpoint=lambda e, b: cks.append((e, b)), **kw)
    return res, recs, cks, infos


def _numbers(rec):
    d = rec.to_dict()
    d.pop("train_seconds"), d.pop("diag_seconds")
    return d


def _same(a, b):
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_epochs_zero_to_n_with_checkpoints(cell, tiny):
    res, recs, cks, infos = _run(tiny(cell=cell))
    assert res.outcome == "succeeded" and res.epochs_done == 2
    assert [r.epoch for r in recs] == [0, 1, 2]
    assert [e for e, _ in cks] == [0, 1, 2] and all(isinstance(b, bytes) for _, b in cks)
    assert len(infos) == 1 and infos[0].seq_len == 12
    assert recs[0].steps == 0 and recs[0].train_loss is None and recs[1].steps == 3
    assert all(r.probed and len(r.layers) == 1 for r in recs)
    assert isinstance(diagnose(recs[-1], infos[0]), str)


def test_same_seed_same_numbers_and_different_seed_differs(tiny):
    a = _run(tiny(cell="lstm"))[1]
    b = _run(tiny(cell="lstm"))[1]
    c = _run(tiny(cell="lstm", seed=1))[1]
    assert all(_same(_numbers(x), _numbers(y)) for x, y in zip(a, b))
    assert not _same(_numbers(a[-1]), _numbers(c[-1]))


@pytest.mark.parametrize("cell,activation", [("rnn", "tanh"), ("rnn", "sigmoid"), ("lstm", None), ("gru", None)])
def test_resume_from_checkpoint_matches_uninterrupted(cell, activation, tiny):
    spec = tiny(cell=cell, activation=activation, epochs=3, optimizer={"name": "adam", "lr": 0.01})
    _, full, cks, _ = _run(spec)
    _, resumed, _, _ = _run(spec, resume=dict(cks)[1])
    assert [r.epoch for r in resumed] == [2, 3]
    assert all(_same(_numbers(x), _numbers(y)) for x, y in zip(full[2:], resumed))


def test_resume_with_another_spec_is_refused(tiny):
    _, _, cks, _ = _run(tiny())
    with pytest.raises(EngineError, match="different spec"):
        train(tiny(hidden_size=9), resume=cks[0][1])


def test_should_stop_cancels(tiny):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 4

    res, recs, _, _ = _run(tiny(epochs=5), should_stop=stop)
    assert res.outcome == "cancelled"
    assert len(recs) < 6 and res.epochs_done == recs[-1].epoch


def test_on_step_reports_progress(tiny):
    steps = []
    train(tiny(), on_step=lambda e, s: steps.append((e, s)))
    assert steps == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]


def test_device_cuda_trains_on_the_gpu_or_is_an_engine_error_without_one(tiny):
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="cuda"):
            train(tiny(device="cuda"))
        return
    res, recs, _, infos = _run(tiny(device="cuda", cell="lstm"))
    assert res.outcome == "succeeded" and infos[0].device.startswith("cuda")
    assert all(math.isfinite(x) and x > 0 for x in recs[-1].layers[0].grad_c)   # c_T included


def test_describe_is_cheap_and_matches_train_info(tiny):
    spec = tiny(cell="gru")
    info = describe(spec)
    _, _, _, infos = _run(spec)
    assert info.param_names == infos[0].param_names and info.num_params == infos[0].num_params
    assert info.baseline_loss == pytest.approx(1 / 6)


def test_callbacks_come_in_contract_order(tiny):
    events = []
    train(tiny(epochs=2), on_info=lambda i: events.append("info"),
          on_epoch=lambda r: events.append(f"epoch{r.epoch}"),
          on_checkpoint=lambda e, b: events.append(f"ckpt{e}"))
    assert events == ["info", "epoch0", "ckpt0", "epoch1", "ckpt1", "epoch2", "ckpt2"]


def test_cancel_before_anything_reports_no_completed_epoch(tiny):
    recs = []
    res = train(tiny(), on_epoch=recs.append, should_stop=lambda: True)
    assert res.outcome == "cancelled" and res.epochs_done == -1 and recs == []
