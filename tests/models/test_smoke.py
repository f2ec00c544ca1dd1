"""Smoke matrix: every cell/activation × every init × every clipping mode trains one tiny epoch."""

import math

import pytest

from models import diagnose, train

CELLS = [("rnn", "tanh"), ("rnn", "sigmoid"), ("rnn", "relu"), ("rnn", "leaky_relu"), ("rnn", "prelu"),
         ("lstm", None), ("gru", None)]
INITS = ["default", "zeros", "normal", "uniform", "xavier_uniform", "xavier_normal", "kaiming",
         "orthogonal", "identity"]
CLIPS = [None, {"mode": "norm", "max_norm": 0.5}, {"mode": "value", "clip_value": 0.01}]


@pytest.mark.parametrize("clip", CLIPS, ids=["noclip", "norm", "value"])
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cell,activation", CELLS, ids=[f"{c}-{a}" if a else c for c, a in CELLS])
def test_one_tiny_epoch(tiny, cell, activation, init, clip):
    spec = tiny(cell=cell, activation=activation,
                init={"recurrent": init, "input": init if init != "identity" else "default"},
                clip=clip, epochs=1, steps_per_epoch=2, hidden_size=4, task={"name": "adding", "seq_len": 6},
                leaky_slope=0.1 if activation == "leaky_relu" else None)
    recs = []
    res = train(spec, on_epoch=recs.append)
    assert res.outcome == "succeeded", res.message
    rec = recs[-1]
    assert rec.steps == 2 and len(rec.layers[0].grad_h) == 6 and len(rec.params) >= 6
    assert 0.0 <= rec.clip_fraction <= 1.0
    if clip and clip["mode"] == "value" and rec.grad_norm_max > 0.1:
        assert rec.clip_fraction > 0
    assert isinstance(diagnose(rec, None), str) and math.isfinite(rec.val_loss)
