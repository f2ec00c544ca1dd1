"""models/foreach.py: torch's private multi-tensor kernels behind one helper, with a public fallback."""

import math

import pytest
import torch

from models import foreach, train


@pytest.fixture(autouse=True)
def _recheck():
    yield
    foreach.use_private(None)   # leave the module as the engine finds it


A = [torch.tensor([3.0, -4.0]), torch.tensor([[1.0, -2.0], [2.0, 0.0]]), torch.tensor(-7.0)]
B = [torch.tensor([1.0, 1.0]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]), torch.tensor(1.0)]


@pytest.mark.parametrize("private", [True, False])
def test_known_values_on_both_paths(private):
    assert foreach.use_private(private) is private   # torch 2.13 has the private kernels
    assert foreach.norms(A).tolist() == [5.0, 3.0, 7.0]
    assert foreach.norms(A, math.inf).tolist() == [4.0, 2.0, 7.0]
    assert [d.tolist() for d in foreach.sub(A, B)] == [[2.0, -5.0], [[0.5, -2.5], [1.5, -0.5]], -8.0]
    ts = [t.clone() for t in A]
    foreach.mul_(ts, torch.tensor(0.5))
    assert [t.tolist() for t in ts] == [[1.5, -2.0], [[0.5, -1.0], [1.0, 0.0]], -3.5]


def test_clipping_matches_clip_grad_norm():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    for p in params:
        p.grad = torch.randn_like(p) * 10
    ours = [p.grad.clone() for p in params]
    total = torch.linalg.vector_norm(foreach.norms(ours))
    foreach.clip_by_total_norm_(ours, 1.0, total)
    theirs = torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert torch.equal(total, theirs)
    assert all(torch.equal(a, p.grad) for a, p in zip(ours, params))


def test_a_missing_private_kernel_falls_back(monkeypatch):
    monkeypatch.delattr(torch, "_foreach_norm")
    assert foreach.use_private(None) is False
    assert foreach.norms(A).tolist() == [5.0, 3.0, 7.0]


def test_a_changed_signature_falls_back(monkeypatch):
    def changed(tensors):   # no ord argument any more
        return [t.norm() for t in tensors]
    monkeypatch.setattr(torch, "_foreach_norm", changed)
    assert foreach.use_private(None) is False
    assert foreach.norms(A, math.inf).tolist() == [4.0, 2.0, 7.0]


def test_a_run_on_the_fallback_records_the_same_numbers(tiny):
    spec = tiny(cell="lstm", clip={"mode": "norm", "max_norm": 0.05})
    runs = []
    for private in (True, False):
        foreach.use_private(private)
        recs = []
        train(spec, on_epoch=recs.append)
        runs.append(recs)
    for a, b in zip(*runs):
        assert a.clip_fraction == b.clip_fraction
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-5)
        assert a.grad_norm_mean == pytest.approx(b.grad_norm_mean, rel=1e-5)
        for pa, pb in zip(a.params, b.params):
            assert pa.update_ratio == pytest.approx(pb.update_ratio, rel=1e-4, nan_ok=True)
