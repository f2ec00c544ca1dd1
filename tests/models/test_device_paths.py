"""What only a GPU would show, checked where it can be on the CPU (and for real on CUDA, where one is:
bench/gpu_check.sh runs this file with -k cuda): a checkpoint is read onto the CPU whatever the device,
so Adam's step counter stays on the CPU after a resume (read onto a GPU it stayed there, and every step
read it back with .item()); a GPU checkpoint resumes on a CPU worker; cuDNN's RNNs run in full float32."""

from __future__ import annotations

import pytest
import torch

from models import checkpoint, train
from models.build import full_fp32_rnns
from models.train import Trainer

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def test_a_checkpoint_is_read_onto_the_cpu_whatever_the_device(tiny):
    """unpack(…, device) used map_location=device: on 'meta' (a stand-in for a GPU here) every tensor,
    Adam's step counter included, landed on that device."""
    blobs = []
    train(tiny(optimizer={"name": "adam", "lr": 1e-3}), on_checkpoint=lambda e, b: blobs.append(b))
    spec = tiny(optimizer={"name": "adam", "lr": 1e-3})
    state = checkpoint.unpack(blobs[-1], spec.spec_hash(), torch.device("meta"))
    devices = {t.device.type for t in _tensors(state)}
    assert devices == {"cpu"}, devices
    steps = [s["step"] for s in state["optimizer"]["state"].values()]
    assert steps and all(isinstance(s, torch.Tensor) and s.device.type == "cpu" for s in steps)


@pytest.mark.parametrize("device", DEVICES)
def test_after_a_resume_the_weights_are_on_the_device_and_adams_step_on_the_cpu(tiny, device):
    blobs = []
    spec = tiny(device=device, cell="lstm", optimizer={"name": "adam", "lr": 1e-3})
    train(spec, on_checkpoint=lambda e, b: blobs.append(b))
    tr = Trainer(spec)
    tr.restore(blobs[1])
    assert {p.device.type for p in tr.net.parameters()} == {device}
    state = tr.opt.state_dict()["state"]
    assert all(s["exp_avg"].device.type == device for s in state.values())
    assert all(s["step"].device.type == "cpu" for s in state.values())   # as in a fresh run: no sync to read it


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_a_cuda_checkpoint_resumes_on_the_cpu(tiny):
    blobs = []
    train(tiny(device="cuda"), on_checkpoint=lambda e, b: blobs.append(b))
    res = train(tiny(device="cpu"), resume=blobs[0])
    assert res.outcome == "succeeded" and res.epochs_done == 2


def test_cudnn_rnns_are_set_to_full_float32():
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is None or not hasattr(rnn, "fp32_precision"):
        pytest.skip("this torch has no cuDNN RNN precision setting")
    before = rnn.fp32_precision
    try:
        rnn.fp32_precision = "tf32"          # torch's default on this version
        full_fp32_rnns()
        assert rnn.fp32_precision == "ieee"
    finally:
        rnn.fp32_precision = before
